//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// oNoFollow keeps a symlink planted in place of a segment from redirecting
// the trail.
const oNoFollow = syscall.O_NOFOLLOW

// lockDir opens dir and takes an exclusive advisory lock on it, so that two
// logs never interleave records in one trail. The lock lasts until the
// returned file is closed; the file is also used to fsync the directory.
func lockDir(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit: trail %s is in use by another log", dir)
		}
		return nil, fmt.Errorf("audit: lock %s: %w", dir, err)
	}
	return d, nil
}
