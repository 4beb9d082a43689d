package policy

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a policy directory must stay quiet after a
// change before it is reloaded: an editor's save or a `cp -r` is many
// events, and one reload should see all of them.
const DefaultDebounce = 200 * time.Millisecond

// WatchOptions tune Watch.
type WatchOptions struct {
	// Debounce is the quiet period before a reload (DefaultDebounce when
	// zero).
	Debounce time.Duration
	// Logger receives one line per change put in force or refused.
	Logger *slog.Logger
}

// Watch keeps the engine in step with dir until ctx ends: whenever a file
// under dir changes (fsnotify; debounced), dir is read, compiled and its
// Rego tests run, and the result is swapped in only if both succeed, as
// ReloadDir does. A refused change leaves the set in force, is logged,
// counted in Stats().Rejections and shown by Status().
//
// Watch returns nil when ctx ends, or an error when dir cannot be watched
// at all. It reloads once after the watch is set up, so a change made
// between loading dir and calling Watch is not missed.
func (e *Engine) Watch(ctx context.Context, dir string, opts WatchOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	debounce := opts.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policies %s: %w", dir, err)
	}
	defer w.Close()
	if err := addTree(w, dir); err != nil {
		return fmt.Errorf("watch policies %s: %w", dir, err)
	}
	e.ReloadDir(ctx, dir, log)

	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Has(fsnotify.Create) {
				// A new subdirectory is watched too (fsnotify is not
				// recursive); hidden ones are not policy, as in Load.
				if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() && !hidden(filepath.Base(ev.Name)) {
					if err := addTree(w, ev.Name); err != nil {
						log.Warn("watch policies: new directory", "dir", ev.Name, "error", err)
					}
				}
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: reload to be safe.
			log.Warn("watch policies", "dir", dir, "error", err)
			timer.Reset(debounce)
		case <-timer.C:
			e.ReloadDir(ctx, dir, log)
		}
	}
}

// addTree watches root and every directory below it that Load reads: not
// hidden, not reached through a symlink.
func addTree(w *fsnotify.Watcher, root string) error {
	if err := w.Add(root); err != nil {
		return err
	}
	// root itself may be a symlink (a release directory, a mount).
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: Load will say so
		}
		if !d.IsDir() || path == real {
			return nil
		}
		if hidden(d.Name()) {
			return filepath.SkipDir
		}
		return w.Add(path)
	})
}
