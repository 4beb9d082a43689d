package webhook

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
)

// MinSecretLen is the shortest secret accepted, in bytes: as long as the
// HMAC-SHA256 output, so that the key is not the weak part.
const MinSecretLen = 32

// maxSecretFile bounds what LoadSecret reads, so that a path naming a
// device or a log by mistake fails instead of filling memory.
const maxSecretFile = 4 << 10

// LoadSecret reads a signing secret from the file at path: its bytes
// without a trailing newline ("\n" or "\r\n"), at least [MinSecretLen] of
// them. Except on Windows, where modes do not say who may read, a file
// that group or others may read or write is refused: the secret lets
// anyone who holds it sign as the gateway.
func LoadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook: read secret: %w", err)
	}
	defer f.Close()
	// The mode is checked on the file opened, not on the path, so that
	// it is the file read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("webhook: read secret: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("webhook: secret %s: mode %04o lets group or others at it; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read secret: %w", err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("webhook: secret %s: longer than %d bytes; is it the right file?", path, maxSecretFile)
	}
	if line, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b = bytes.TrimSuffix(line, []byte("\r"))
	}
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("webhook: secret %s: %d bytes, want at least %d", path, len(b), MinSecretLen)
	}
	return b, nil
}
