// Package emuproc finds, starts and stops the Cloud SDK emulators that tests
// use (see internal/pubsubtest and internal/firestoretest): it locates an
// emulator's jar in a Cloud SDK (or gcloud to start it), runs it on a free
// 127.0.0.1 port in a process group of its own, waits until it answers, and
// stops the whole group (SIGTERM, then SIGKILL). [Emulator] shares one
// started emulator between the tests of a binary, reference-counted, with
// pinning for TestMain, and skips or fails tests where there is none.
//
// Nothing started here is meant to outlive the test binary or program.
package emuproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

const (
	termGrace   = 3 * time.Second  // between SIGTERM and SIGKILL
	stopTimeout = 10 * time.Second // after SIGKILL
)

// Process is one started emulator.
type Process struct {
	host    string
	cmd     *exec.Cmd
	out     *tailBuffer
	done    chan struct{} // closed when cmd.Wait returned
	waitErr error
	dataDir string

	stopOnce sync.Once
	stopErr  error
}

// Host is the 127.0.0.1:port the process was told to listen on.
func (p *Process) Host() string { return p.host }

// Pid is the process id of the started process, which is also the id of its
// process group where there are process groups.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// DialCheck makes sure something accepts TCP connections on host.
func DialCheck(ctx context.Context, host string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}

// Start runs argv on a free 127.0.0.1 port, in a process group of its own
// (on Linux also killed by the kernel if this process dies), and waits until
// GET http://127.0.0.1:port/ answers 200. In argv, "{HOST}" stands for
// 127.0.0.1, "{PORT}" for the port and "{DIR}" for a temporary data directory
// that is made only if some argument names it and removed by Stop. Since a
// free port can be taken between the probe and the bind, Start tries up to
// three ports. ctx bounds the start-up only; the process runs until Stop.
func Start(ctx context.Context, argv []string) (*Process, error) {
	var lastErr error
	for try := 0; try < 3; try++ {
		p, err := start(ctx, argv)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, tmpl []string) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("no free port: %w", err)
	}
	p := &Process{host: net.JoinHostPort("127.0.0.1", port), out: &tailBuffer{max: 32 << 10}, done: make(chan struct{})}
	if strings.Contains(strings.Join(tmpl, "\x00"), "{DIR}") {
		if p.dataDir, err = os.MkdirTemp("", "emulator-data-"); err != nil {
			return nil, err
		}
	}
	r := strings.NewReplacer("{HOST}", "127.0.0.1", "{PORT}", port, "{DIR}", p.dataDir)
	argv := make([]string, len(tmpl))
	for i, a := range tmpl {
		argv[i] = r.Replace(a)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.Env = os.Environ()
	p.cmd.WaitDelay = 2 * time.Second
	setProcessGroup(p.cmd)
	started := time.Now()
	if err := p.cmd.Start(); err != nil {
		p.removeDataDir()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("emulator %q did not become ready after %v: %w\n--- emulator output ---\n%s",
			strings.Join(argv, " "), time.Since(started).Round(time.Millisecond), err, p.out.String())
	}
	return p, nil
}

// waitReady polls GET http://host/ (the emulators answer 200 "Ok") until it
// answers, the process exits or ctx is done.
func (p *Process) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.host+"/", nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("process exited: %v", p.waitErr)
		case <-tick.C:
		}
	}
}

// Stop terminates the process group (SIGTERM, then SIGKILL after a grace
// period), waits for the process and removes its data directory. It is
// idempotent and safe to call from any goroutine.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		defer p.removeDataDir()
		select {
		case <-p.done:
			_ = signalGroup(p.cmd, true) // the leader is gone; its group may not be
			return
		default:
		}
		_ = signalGroup(p.cmd, false)
		select {
		case <-p.done:
		case <-time.After(termGrace):
			_ = signalGroup(p.cmd, true)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				p.stopErr = fmt.Errorf("emulator (pid %d) did not exit", p.cmd.Process.Pid)
				return
			}
		}
		// Make sure no member of the group (gcloud's java child) survives.
		_ = signalGroup(p.cmd, true)
	})
	return p.stopErr
}

func (p *Process) removeDataDir() {
	if p.dataDir != "" {
		_ = os.RemoveAll(p.dataDir)
	}
}

// tailBuffer keeps the last bytes written to it, up to about max.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > b.max {
		keep := b.buf.Bytes()[b.buf.Len()-b.max/2:]
		nb := append([]byte("…\n"), keep...)
		b.buf.Reset()
		b.buf.Write(nb)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
