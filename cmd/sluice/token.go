package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The demo's token settings; production tokens come from the
// organisation's identity provider.
const (
	demoIssuer   = "sluice-demo"
	demoAudience = "sluice"
	demoKeyID    = "demo-ed25519"

	signingKeyFile = "token-signing.pem"
	verifyKeyFile  = "token-verify.pem"
	hmacKeyFile    = "hmac.key"
	upstreamFile   = "upstream.token"
)

// tokenClaims are what a demo token says about its holder.
type tokenClaims struct {
	Subject  string
	Roles    []string
	Dept     string
	District string
	Purpose  string
	// IDNumber is a citizen's resident identity number (claim
	// id_number): whose data the citizen may ask about.
	IDNumber string
	TTL      time.Duration
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "revoke" {
		return runTokenRevoke(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		// A word first is a subcommand mistyped: the revoke flags that
		// follow would only be reported unknown.
		return usagef("token", "unexpected argument %q%s", args[0], didYouMean(args[0], []string{"revoke"}))
	}
	cmd := newCommand("token", "Print a token signed with the demo's key, for trying the demo gateway.")
	cmd.usage = "--sub ID --roles R1,R2 [flags]\n       sluice token revoke [flags]"
	cmd.about = `Production tokens come from the organisation's identity provider; the demo's
signing key is created by sluice demo in its directory.

subcommands:
  revoke    revoke a token, or a subject's tokens (sluice token revoke --help)`
	cmd.examples = []string{
		"sluice token --dir .sluice-demo --sub alice --roles analyst --dept health --purpose public-health",
		"sluice token --sub carol --roles caseworker --district 朝阳区 --ttl 15m",
	}
	fs := cmd.flags
	dir := fs.String("dir", ".sluice-demo", "demo directory holding the signing key")
	var c tokenClaims
	var roles string
	fs.StringVar(&c.Subject, "sub", "", "subject id (required)")
	fs.StringVar(&roles, "roles", "", "comma-separated roles (required)")
	fs.StringVar(&c.Dept, "dept", "", "department claim")
	fs.StringVar(&c.District, "district", "", "district claim")
	fs.StringVar(&c.Purpose, "purpose", "", "purpose claim")
	fs.DurationVar(&c.TTL, "ttl", time.Hour, "lifetime")
	rest, err := cmd.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := cmd.noArgs(rest, "revoke"); err != nil {
		return err
	}
	if c.Subject == "" || roles == "" {
		return usagef("token", "--sub and --roles are required")
	}
	if c.TTL <= 0 || c.TTL > 30*24*time.Hour {
		return usagef("token", "--ttl must be between 1s and 720h")
	}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.Roles = append(c.Roles, r)
		}
	}
	key, err := readSigningKey(*dir)
	if err != nil {
		return err
	}
	tok, err := signToken(key, c, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// signToken makes an EdDSA token with the demo issuer and audience.
func signToken(key ed25519.PrivateKey, c tokenClaims, now time.Time) (string, error) {
	var jti [12]byte
	rand.Read(jti[:])
	claims := jwt.MapClaims{
		"iss":   demoIssuer,
		"aud":   demoAudience,
		"sub":   c.Subject,
		"roles": c.Roles,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(c.TTL).Unix(),
		"jti":   hex.EncodeToString(jti[:]),
	}
	for k, v := range map[string]string{"dept": c.Dept, "district": c.District, "purpose": c.Purpose, "id_number": c.IDNumber} {
		if v != "" {
			claims[k] = v
		}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = demoKeyID
	return t.SignedString(key)
}

func readSigningKey(dir string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, signingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read signing key (run sluice demo first to create it): %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("signing key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("signing key: not an Ed25519 key")
	}
	return ek, nil
}

// ensureDemoKeys creates the demo's keys in dir unless they exist, so that
// tokens and the trail stay valid across runs.
func ensureDemoKeys(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, signingKeyFile)); errors.Is(err, fs.ErrNotExist) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		p8, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		pk, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return err
		}
		if err := writeSecret(filepath.Join(dir, signingKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, verifyKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, name := range []string{hmacKeyFile, upstreamFile} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			var b [32]byte
			rand.Read(b[:])
			if err := writeSecret(path, []byte(hex.EncodeToString(b[:])+"\n")); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

func writeSecret(path string, b []byte) error {
	return os.WriteFile(path, b, 0o600)
}
