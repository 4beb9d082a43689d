//go:build !linux

package audit

import "os"

// datasync makes f's data durable; elsewhere than Linux it is fsync.
func datasync(f *os.File) error { return f.Sync() }
