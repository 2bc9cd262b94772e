//go:build !unix

package emuproc

import "os/exec"

// setProcessGroup does nothing where there are no process groups.
func setProcessGroup(*exec.Cmd) {}

// signalGroup kills the emulator process (only that one process).
func signalGroup(cmd *exec.Cmd, _ bool) error { return cmd.Process.Kill() }
