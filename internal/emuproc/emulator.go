package emuproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Emulator is one kind of emulator and the instance of it that [Emulator.Get]
// shares between the tests of a binary. Set the fields before first use and
// don't copy it; a package keeps one in a variable.
type Emulator struct {
	Name         string                   // prefixes messages, such as "pubsubtest"
	HostEnv      string                   // names a running emulator, such as PUBSUB_EMULATOR_HOST
	Find         func() ([]string, error) // the argv for [Start]; an error means not found
	NotFound     error                    // wraps errors of Find
	Hint         string                   // how to install it; follows errors of Find
	StartTimeout time.Duration            // caps start-up

	mu       sync.Mutex
	host     string
	stop     func() error
	refs     int   // tests currently using it
	pinned   bool  // Pin is active: keep it until unpinned
	notFound error // sticky: don't look again in this binary
}

// Start returns the host:port of an emulator and a function that stops it.
//
// If the variable HostEnv is set, that emulator is used: Start only checks
// that it accepts TCP connections, and stop does nothing. Otherwise it starts
// the argv of Find with [Start], bounded by ctx and StartTimeout; stop kills
// its process group and waits for it, and is idempotent and safe to call
// from any goroutine. Each call that does not use HostEnv starts its own
// emulator.
func (e *Emulator) Start(ctx context.Context) (host string, stop func() error, err error) {
	if h := os.Getenv(e.HostEnv); h != "" {
		if err := DialCheck(ctx, h); err != nil {
			return "", nil, fmt.Errorf("%s: %s=%s is not reachable: %w", e.Name, e.HostEnv, h, err)
		}
		return h, func() error { return nil }, nil
	}
	argv, err := e.Find()
	if err != nil {
		return "", nil, fmt.Errorf("%w (%v); %s", e.NotFound, err, e.Hint)
	}
	ctx, cancel := context.WithTimeout(ctx, e.StartTimeout)
	defer cancel()
	p, err := Start(ctx, argv)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", e.Name, err)
	}
	return p.Host(), func() error {
		if err := p.Stop(); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		return nil
	}, nil
}

// Get returns the host:port of a running emulator for tb.
//
// With HostEnv set it returns that address after a short TCP dial, failing
// tb if nothing listens there. Otherwise it starts one emulator (see
// [Emulator.Start]) that is shared by all tests of the binary that use it at
// the same time: it is reference-counted and stopped, process group and all,
// by the tb.Cleanup of its last user, unless pinned (see [Emulator.Pin]).
//
// If no emulator can be found, Get skips tb, or fails it when the
// environment variable CI is "true". Get may be called from parallel tests; a
// start-up in progress blocks other callers until it is done.
func (e *Emulator) Get(tb testing.TB) string {
	tb.Helper()
	if h := os.Getenv(e.HostEnv); h != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := DialCheck(ctx, h); err != nil {
			tb.Fatalf("%s: %s=%s is set but not reachable: %v", e.Name, e.HostEnv, h, err)
		}
		return h
	}
	host, err := e.acquire()
	if err != nil {
		if errors.Is(err, e.NotFound) && os.Getenv("CI") != "true" {
			tb.Skipf("skipping: %v", err)
		}
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(e.release)
	return host
}

func (e *Emulator) acquire() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notFound != nil {
		return "", e.notFound
	}
	if e.host == "" {
		h, stop, err := e.Start(context.Background())
		if err != nil {
			if errors.Is(err, e.NotFound) {
				e.notFound = err
			}
			return "", err
		}
		e.host, e.stop = h, stop
	}
	e.refs++
	return e.host, nil
}

func (e *Emulator) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs--
	if e.refs == 0 && !e.pinned {
		e.stopLocked()
	}
}

func (e *Emulator) stopLocked() {
	if e.stop != nil {
		if err := e.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	e.host, e.stop = "", nil
}

// Pin keeps an emulator that [Emulator.Get] starts alive between tests until
// the returned function is called, which stops it (process group and all)
// unless a test still uses it. It does not start one by itself.
func (e *Emulator) Pin() (unpin func()) {
	e.mu.Lock()
	e.pinned = true
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.pinned = false
		if e.refs == 0 {
			e.stopLocked()
		}
	}
}

// RunMain runs m with the emulator pinned (see [Emulator.Pin]) and returns
// its exit code, for TestMain.
func (e *Emulator) RunMain(m *testing.M) int {
	defer e.Pin()()
	return m.Run()
}
