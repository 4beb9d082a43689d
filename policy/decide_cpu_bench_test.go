//go:build linux

package policy

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU is the CPU time of the calling OS thread (the caller locks its
// goroutine to the thread). On a machine shared with other work,
// wall-clock percentiles mostly measure the scheduler; CPU time measures
// what a decision costs, its own GC assists included.
func threadCPU() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
