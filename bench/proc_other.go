//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent is a no-op where the kernel offers no parent-death signal;
// the harness needs Linux's /proc anyway.
func dieWithParent(cmd *exec.Cmd) {}

// signalGroup signals cmd's process alone.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return cmd.Process.Signal(sig)
}
