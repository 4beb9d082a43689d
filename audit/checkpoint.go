package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Checkpoints. Every so many records, every so often, before a segment is
// rotated away and on Close, a Log with a checkpoint key signs a statement
// of the trail's head and appends it as one JSON line to checkpoints.jsonl in
// the trail directory; it also hands it to a [Witness] kept outside the
// trail. Checkpoints chain: each carries its number N (contiguous from 1)
// and the hash of the previous one. The hash chain of records catches an
// edited, removed, inserted or reordered record; checkpoints add what a
// chain alone cannot show: a chain recomputed after an edit (the record at
// a checkpoint's seq no longer has the head it signed), records or whole
// segments cut off the end (a checkpoint covers more than the trail holds),
// and, through the witness, checkpoints cut off with them.
const (
	checkpointFile = "checkpoints.jsonl"
	// checkpointDomain separates checkpoint signatures from anything else
	// the key might sign.
	checkpointDomain = "sluice/audit/checkpoint/v1\n"
	// maxCheckpoint bounds one checkpoint line; real ones are ~450 bytes.
	maxCheckpoint = 4 << 10
)

// Checkpoint is a signed statement that the trail's record Seq, the last
// one when it was made, has hash Head and ends Size bytes into Segment.
// Its fields except Sig, encoded by encoding/json in this order, are the
// signed body; Time, MinTime and MaxTime are in UTC.
type Checkpoint struct {
	// N numbers checkpoints from 1, contiguous.
	N uint64 `json:"n"`
	// Segment is the file name of the segment holding record Seq.
	Segment string `json:"segment"`
	// Size is the length of Segment up to and including record Seq.
	Size int64 `json:"size"`
	// Seq is the last record covered.
	Seq uint64 `json:"seq"`
	// Head is the hex hash of record Seq.
	Head string `json:"head"`
	// Time is when the checkpoint was made.
	Time time.Time `json:"time"`
	// Prev is the Hash of checkpoint N-1, "" for the first.
	Prev string `json:"prev"`
	// MinTime and MaxTime bound the times of Segment's records up to Seq,
	// so that a search can skip a segment without reading it.
	MinTime time.Time `json:"min_time"`
	MaxTime time.Time `json:"max_time"`
	// KeyID names the signing key: see [KeyID].
	KeyID string `json:"key_id"`
	// Sig is the base64 Ed25519 signature of the body.
	Sig string `json:"sig,omitempty"`
}

// body returns the signed bytes: the checkpoint's JSON without Sig.
func (c *Checkpoint) body() []byte {
	b := *c
	b.Sig = ""
	out, err := json.Marshal(&b)
	if err != nil {
		// Only an out-of-range time fails to encode; parsed and made
		// checkpoints never have one.
		panic("audit: encode checkpoint: " + err.Error())
	}
	return out
}

// Hash returns the hex SHA-256 of the checkpoint's signed body; the next
// checkpoint's Prev.
func (c *Checkpoint) Hash() string {
	sum := sha256.Sum256(c.body())
	return hex.EncodeToString(sum[:])
}

// sign sets KeyID and Sig.
func (c *Checkpoint) sign(key ed25519.PrivateKey) {
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	msg := append([]byte(checkpointDomain), c.body()...)
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
}

// verifySig checks Sig against the key among keys that KeyID names.
func (c *Checkpoint) verifySig(keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Errorf("signed by key %s, which is not a trusted checkpoint key", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("signature is not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(pub, append([]byte(checkpointDomain), c.body()...), sig) {
		return errors.New("bad signature: checkpoint altered or forged")
	}
	return nil
}

// line returns the checkpoint as it is stored: its JSON and a newline.
func (c *Checkpoint) line() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic("audit: encode checkpoint: " + err.Error())
	}
	return append(b, '\n')
}

// parseCheckpoint decodes one stored checkpoint and checks its form (not
// its signature or its place in the chain).
func parseCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // an unsigned field must not ride along
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("malformed checkpoint: %w", err)
	}
	if dec.More() {
		return c, errors.New("malformed checkpoint: data after the object")
	}
	if err := c.checkForm(); err != nil {
		return c, fmt.Errorf("malformed checkpoint: %w", err)
	}
	return c, nil
}

// checkForm checks what can be checked of one checkpoint alone.
func (c *Checkpoint) checkForm() error {
	var h [sha256.Size]byte
	switch {
	case c.N == 0:
		return errors.New("n is not positive")
	case c.Seq == 0:
		return errors.New("seq is not positive")
	case c.Size <= 0:
		return errors.New("size is not positive")
	case !decodeLowerHex(h[:], []byte(c.Head)):
		return errors.New("head is not 64 lowercase hex digits")
	case c.N == 1 && c.Prev != "":
		return errors.New("the first checkpoint has a prev")
	case c.N > 1 && !decodeLowerHex(h[:], []byte(c.Prev)):
		return errors.New("prev is not 64 lowercase hex digits")
	case c.Sig == "":
		return errors.New("no signature")
	}
	if _, ok := segmentNumber(c.Segment); !ok {
		return fmt.Errorf("segment %q is not a segment name", c.Segment)
	}
	return nil
}

// KeyID names an Ed25519 checkpoint key: the first 8 bytes of the SHA-256
// of the public key, in hex. It lets a verifier holding several keys (old
// and new, after a rotation) pick the right one.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ReadPrivateKey reads an Ed25519 private key from a PEM file holding a
// PKCS #8 "PRIVATE KEY" block, as `openssl genpkey -algorithm ed25519`
// writes it.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: checkpoint key %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: checkpoint key %s: not an Ed25519 key", path)
	}
	return ek, nil
}

// ReadPublicKey reads an Ed25519 public key from a PEM file holding a PKIX
// "PUBLIC KEY" block, or the public half of a PKCS #8 "PRIVATE KEY".
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("audit: public key %s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "PRIVATE KEY":
		var priv any
		if priv, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			if ek, ok := priv.(ed25519.PrivateKey); ok {
				k = ek.Public()
			}
		}
	default:
		return nil, fmt.Errorf("audit: public key %s: PEM block %q is not a PUBLIC KEY", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key %s: not an Ed25519 key", path)
	}
	return pub, nil
}
