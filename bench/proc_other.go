//go:build !linux

package main

import (
	"os/exec"
	"syscall"
	"time"
)

// dieWithParent is a no-op where the kernel offers no parent-death signal;
// the harness needs Linux's /proc anyway.
func dieWithParent(cmd *exec.Cmd) {}

// signalGroup signals cmd's process alone.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return cmd.Process.Signal(sig)
}

// threadCPU is unknown here.
func threadCPU() (time.Duration, bool) { return 0, false }
