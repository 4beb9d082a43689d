package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Witness keeps the latest checkpoint of a trail somewhere its writer's
// disk cannot rewrite: a file on another volume, the state backend. Someone
// who cuts the trail and its checkpoints.jsonl together leaves a witness
// that is ahead of both, which [Verify] and [Open] report.
//
// Put is called with checkpoints in order; an implementation should refuse
// one that does not extend what it holds (a lower N, or the same N with
// other contents), so that the witness only moves forward. Latest returns
// false when the witness holds nothing yet. Implementations must be safe
// for concurrent use; one witness serves one trail.
type Witness interface {
	Put(ctx context.Context, c Checkpoint) error
	Latest(ctx context.Context) (Checkpoint, bool, error)
}

// FileWitness is a [Witness] kept in one file, replaced atomically on every
// Put. Keep it off the trail's directory, ideally on another volume or
// host.
type FileWitness struct {
	path string
	mu   sync.Mutex
}

var _ Witness = (*FileWitness)(nil)

// NewFileWitness returns a witness kept in the file at path; the file and
// its directory are created by the first Put.
func NewFileWitness(path string) *FileWitness { return &FileWitness{path: path} }

// Latest returns the checkpoint held, or false when the file does not exist.
func (w *FileWitness) Latest(ctx context.Context) (Checkpoint, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest()
}

func (w *FileWitness) latest() (Checkpoint, bool, error) {
	b, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: witness: %w", err)
	}
	c, err := parseCheckpoint(b)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: witness %s: %w", w.path, err)
	}
	return c, true, nil
}

// Put replaces the held checkpoint with c when c extends it: a higher N
// and seq, and, when c directly follows it, c.Prev its hash. Putting the
// held checkpoint again is a no-op. The new file is durable when Put
// returns nil.
func (w *FileWitness) Put(ctx context.Context, c Checkpoint) error {
	if err := c.checkForm(); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	held, ok, err := w.latest()
	if err != nil {
		return err
	}
	if ok {
		switch {
		case c.N == held.N && c.Hash() == held.Hash() && c.Sig == held.Sig:
			return nil
		case c.N <= held.N || c.Seq < held.Seq:
			return fmt.Errorf("audit: witness %s holds checkpoint %d (seq %d); refusing checkpoint %d (seq %d), which does not extend it",
				w.path, held.N, held.Seq, c.N, c.Seq)
		case c.N == held.N+1 && c.Prev != held.Hash():
			return fmt.Errorf("audit: witness %s: checkpoint %d does not chain onto the held checkpoint %d", w.path, c.N, held.N)
		}
	}
	return writeFileAtomic(w.path, c.line())
}

// writeFileAtomic replaces path with b durably: a synced temporary file
// renamed over it, then the directory synced.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("audit: witness: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: witness: sync %s: %w", dir, err)
	}
	return nil
}
