//go:build !unix

package audit

import (
	"fmt"
	"os"
)

const oNoFollow = 0

// lockDir opens dir. Without flock, nothing stops a second log from sharing
// the trail; the platforms Sluice runs on are all unix.
func lockDir(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	return d, nil
}
