package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// demoLockFile, in the demo directory, is locked for as long as a demo
// runs there, and holds its gateway's address once it listens: a second
// demo on the directory would rewrite the running one's sluice.yaml
// (pointing at departments it does not run) and then fail on the state
// lock, so it stops before writing anything and says where the running
// one is.
const demoLockFile = "demo.lock"

// errDemoRunning is what lockDemo returns when the directory is another
// running demo's.
var errDemoRunning = errors.New("a demo is already running")

// demoLock is a held demo.lock.
type demoLock struct{ f *os.File }

// lockDemo takes dir's demo lock, or fails naming the running demo's
// gateway.
func lockDemo(dir string) (*demoLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, demoLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo lock: %w", err)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("demo lock %s: %w", f.Name(), err)
	}
	if !ok {
		b, _ := io.ReadAll(io.LimitReader(f, 1<<10))
		f.Close()
		addr := strings.TrimSpace(string(b))
		if addr == "" {
			return nil, fmt.Errorf("demo: %w in %s, still starting: stop it first, or give another --dir", errDemoRunning, dir)
		}
		return nil, fmt.Errorf("demo: %w in %s, its gateway at %s: stop it first, or give another --dir", errDemoRunning, dir, addr)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("demo lock: %w", err)
	}
	return &demoLock{f: f}, nil
}

// listening records the running gateway's address for a second demo to
// name.
func (l *demoLock) listening(addr string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(addr+"\n"), 0)
	return err
}

// release forgets the address and lets the directory go.
func (l *demoLock) release() {
	l.f.Truncate(0)
	l.f.Close()
}
