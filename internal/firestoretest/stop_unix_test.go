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

	"github.com/chat-offboard/chat-offboard/internal/emuproc"
)

// TestStartStop starts an emulator of its own and checks that stop leaves
// nothing behind: the port is closed and the process group is gone.
func TestStartStop(t *testing.T) {
	t.Setenv(EnvEmulatorHost, "")
	argv, err := sdk.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), emulator.StartTimeout)
	defer cancel()
	p, err := emuproc.Start(ctx, argv)
	if err != nil {
		t.Fatal(err)
	}
	pgid := p.Pid()
	if err := emuproc.DialCheck(ctx, p.Host()); err != nil {
		t.Fatalf("emulator not listening: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.Host(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after stop", p.Host())
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still exists after stop (kill -0: %v)", pgid, err)
	}
}
