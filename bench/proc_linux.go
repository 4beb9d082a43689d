package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the harness dies, so an
// interrupted run leaves no server behind, and puts it in a process group
// of its own, so that stopping it stops what it started (nginx's workers).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// signalGroup signals the process group cmd leads.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}
