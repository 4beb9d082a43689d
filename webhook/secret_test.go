package webhook

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeSecret writes b to a file of the given mode and returns its path.
func writeSecret(t *testing.T, b string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhook.key")
	if err := os.WriteFile(path, []byte(b), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is cut by the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadSecretDropsOneTrailingNewline(t *testing.T) {
	const s = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ file, want string }{
		{s, s},
		{s + "\n", s},
		{s + "\r\n", s},
		{s + "\n\n", s + "\n"},
		{"line one of the secret\nline two of it\n", "line one of the secret\nline two of it"},
	} {
		got, err := LoadSecret(writeSecret(t, tc.file, 0o600))
		if err != nil {
			t.Errorf("LoadSecret(%q): %v", tc.file, err)
			continue
		}
		if diff := cmp.Diff(tc.want, string(got)); diff != "" {
			t.Errorf("LoadSecret(%q) (-want +got):\n%s", tc.file, diff)
		}
	}
}

func TestLoadSecretRefusesSecretsShorterThan32Bytes(t *testing.T) {
	for _, s := range []string{"", "\n", "0123456789abcdef0123456789abcde\n"} {
		_, err := LoadSecret(writeSecret(t, s, 0o600))
		if err == nil || !strings.Contains(err.Error(), "want at least 32") {
			t.Errorf("LoadSecret(%q) = %v, want a refusal of its length", s, err)
		}
	}
}

func TestLoadSecretRefusesAFileOthersCanReach(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows file modes do not say who may read a file")
	}
	const s = "0123456789abcdef0123456789abcdef\n"
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if _, err := LoadSecret(writeSecret(t, s, mode)); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620} {
		_, err := LoadSecret(writeSecret(t, s, mode))
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: LoadSecret = %v, want a refusal", mode, err)
		}
	}
}

func TestLoadSecretReportsAMissingFile(t *testing.T) {
	_, err := LoadSecret(filepath.Join(t.TempDir(), "absent.key"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSecret = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadSecretRefusesAFileTooLongToBeASecret(t *testing.T) {
	_, err := LoadSecret(writeSecret(t, strings.Repeat("x", maxSecretFile+1), 0o600))
	if err == nil || !strings.Contains(err.Error(), "right file") {
		t.Errorf("LoadSecret = %v, want a refusal of its length", err)
	}
}
