package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestASecondDemoOnADirectoryRefusesBeforeWritingAnything: while a demo
// runs, another on its directory fails at once naming the running
// gateway, and leaves its configuration and manifest as they were.
func TestASecondDemoOnADirectoryRefusesBeforeWritingAnything(t *testing.T) {
	dir := t.TempDir()
	first := startDemo(t, dir)
	files := []string{"sluice.yaml", "demo.json", upstreamFile + ".header"}
	before := map[string][]byte{}
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		before[name] = b
	}

	out, _, err := runCmd(t, "demo", "--addr", "127.0.0.1:0", "--dir", dir, "--policies", "../../policies")
	if !errors.Is(err, errDemoRunning) || exitCode(err) != 1 {
		t.Fatalf("second demo: %v (exit %d), want exit 1 saying a demo is running", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), first.manifest.Gateway) {
		t.Errorf("error %q does not name the running gateway %s", err, first.manifest.Gateway)
	}
	if out != "" {
		t.Errorf("second demo printed:\n%s", out)
	}
	for _, name := range files {
		after, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(after, before[name]) {
			t.Errorf("%s was rewritten (%v)", name, err)
		}
	}
	resp, err := http.Get(first.manifest.Gateway + "/readyz")
	if err != nil {
		t.Fatalf("the first demo stopped answering: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the first demo's /readyz: %d", resp.StatusCode)
	}

	// Once the first has stopped, the directory is free again.
	if err := first.stop(t); err != nil {
		t.Fatalf("first demo ended with %v", err)
	}
	startDemo(t, dir)
}
