//go:build linux

package emuproc

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the process in a process group of its own, so that
// stopping it reaches every process it forked, and asks the kernel to kill it
// if the test binary dies without cleaning up (a panic, a test timeout).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends SIGTERM (or SIGKILL) to the emulator's process group.
func signalGroup(cmd *exec.Cmd, kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}
