//go:build unix

package emuproc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// gone reports whether pid (or the process group -pid) has no live process:
// none at all, or on Linux only zombies (a PID 1 that does not reap leaves
// the orphaned child as one).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	if pid < 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// TestStopGroup starts the helper, which forks a child into its process
// group, and checks that Stop leaves nothing behind: the port closed, the
// process and its child dead, the data directory removed.
func TestStopGroup(t *testing.T) {
	argv := helperArgv(t, "serve")
	pidFile := filepath.Join(t.TempDir(), "child")
	t.Setenv(envPidFile, pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, argv)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if !answers(p.Host()) {
		t.Fatalf("%s does not answer", p.Host())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(string(b))
	if pgid, err := syscall.Getpgid(child); err != nil || pgid != p.Pid() {
		t.Fatalf("child %d in group %d (%v), want %d", child, pgid, err, p.Pid())
	}
	if p.dataDir == "" {
		t.Fatal("no data directory for {DIR}")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if answers(p.Host()) {
		t.Errorf("%s still answers after Stop", p.Host())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(gone(p.Pid()) && gone(child)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !gone(p.Pid()) || !gone(child) {
		t.Errorf("after Stop: process %d gone %v, its child %d gone %v", p.Pid(), gone(p.Pid()), child, gone(child))
	}
	if _, err := os.Stat(p.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s: %v, want it removed", p.dataDir, err)
	}
}
