//go:build unix

package firestoretest

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestStartStop starts an emulator of its own and checks that stop leaves
// nothing behind: the port is closed and the process group is gone.
func TestStartStop(t *testing.T) {
	t.Setenv(EnvEmulatorHost, "")
	if _, err := findEmulator(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	argv, _ := findEmulator()
	p, err := startProcess(ctx, argv)
	if err != nil {
		t.Fatal(err)
	}
	pgid := p.cmd.Process.Pid
	if err := dialCheck(ctx, p.host); err != nil {
		t.Fatalf("emulator not listening: %v", err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.host, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after stop", p.host)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still exists after stop (kill -0: %v)", pgid, err)
	}
}
