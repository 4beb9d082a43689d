package audit

import (
	"os"
	"syscall"
)

// datasync makes f's data durable, and the metadata needed to read it back
// (its size); it skips the timestamps fsync would also write. On a segment
// whose blocks were written ahead (Options.Preallocate), that is a flush of
// the data alone, without a filesystem journal commit.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
		default:
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
	}
}
