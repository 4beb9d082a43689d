package hub

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealed is free text sealed by a [Sealer] for one field of one object:
// what a store keeps in the text's place. It is a 96-bit random nonce
// followed by the AES-256-GCM ciphertext and its tag; in JSON, base64.
type Sealed []byte

// Sealer seals the free text of objections (claims, reasons), which is
// personal data, before any store sees it, and opens it again for the
// hub's readers. Each text is bound to the object and the field it
// belongs to (the AEAD's additional data), so a ciphertext moved to
// another objection, or to another field of the same one, does not open.
// A Sealer is safe for concurrent use.
type Sealer struct{ aead cipher.AEAD }

// SealerKeySize is the length of a sealer's key: 32 bytes, AES-256.
const SealerKeySize = 32

// ErrNoSealer is returned for an objection whose text would have to be
// sealed or opened by a hub given no [Sealer] (see [Options]): objections
// fail closed rather than keep their text in clear. The gateway answers it
// as a hub that is not configured for objections (503).
var ErrNoSealer = errors.New("hub: objections need a sealer (Options.Sealer) to keep their text encrypted at rest")

// errUnopenable is the one error of a text that does not open: tampered
// with, moved from another object or field, or sealed under another key.
// It says no more, as GCM itself does not.
var errUnopenable = errors.New("hub: sealed text does not open: altered, moved from another object or field, or sealed under another key")

// NewSealer returns a sealer keyed by key, which must be [SealerKeySize]
// random bytes (keep it in a file beside the HMAC key, and apart from the
// store: whoever holds both reads every objection).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealerKeySize {
		return nil, fmt.Errorf("hub: a sealer key is %d bytes, not %d", SealerKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("hub: sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("hub: sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal seals text as field of object. Sealing the same text twice gives
// two different ciphertexts (a fresh random nonce each time: with 96-bit
// nonces one key seals 2³² texts before a repeat becomes a concern, far
// more than a hub holds).
func (s *Sealer) Seal(object, field, text string) Sealed {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(text)+s.aead.Overhead())
	rand.Read(nonce) // never fails: crypto/rand crashes the program instead
	return s.aead.Seal(nonce, nonce, []byte(text), sealAAD(object, field))
}

// Open opens what [Sealer.Seal] sealed as field of object. Any other
// object, field or key, or any change to the bytes, fails.
func (s *Sealer) Open(object, field string, sealed Sealed) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errUnopenable
	}
	text, err := s.aead.Open(nil, sealed[:n], sealed[n:], sealAAD(object, field))
	if err != nil {
		return "", errUnopenable
	}
	return string(text), nil
}

// sealAAD is the additional data binding a text to its place. Object ids
// and field names hold no NUL, so no two places share it.
func sealAAD(object, field string) []byte {
	return []byte("sluice/hub/sealed/v1\x00" + object + "\x00" + field)
}
