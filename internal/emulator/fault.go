package emulator

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fault describes a failure that an emulation injects into the calls it
// matches. A Fault is a plain value; it is copied by InjectFault.
//
// A matching call first waits Latency (if any). Then, if Drop is set, the
// connection is closed without an answer (the Secret Manager emulation
// answers codes.Unavailable instead); else if Status is non-zero the call is
// answered with that status in the service's error format, with a
// Retry-After header when RetryAfter is set. A Fault with only Latency set
// delays the call, which then proceeds normally. Calls answered by a fault
// (Drop or Status) do not change any state, unless AfterApply is set.
//
// With AfterApply the call is served first, as it would be without the
// fault, so that a write applies (a membership is deleted, created or
// patched; a secret version is added; a token is issued), and only then is
// its answer lost: the connection is dropped (Drop) or the answer is
// replaced with Status (e.g. 500 or 503). This is the failure that leaves a
// client unsure whether its write happened. The Chat emulation, Secret
// Manager's writes and the token and revocation endpoints serve AfterApply
// faults that way; the Directory and Reports emulations serve reads only,
// for which an AfterApply fault is the same as a plain one (nothing to
// apply).
//
// Note that Go's HTTP transport transparently retries a GET (but not a
// DELETE, PATCH or POST) once when a reused connection is closed before any
// answer, so a Drop with Times: 1 may be invisible to a GET caller.
type Fault struct {
	// Method selects the calls: "members.delete", "members.get",
	// "members.list", "members.create", "members.patch", "spaces.search",
	// "users.get", "users.list", "groups.list", "activities.list", "token",
	// "revoke", "secrets.access", "secrets.add", "secrets.create",
	// "secrets.get", "secrets.disable", "secrets.enable",
	// "secrets.getVersion"; "" matches any call of the emulation.
	Method string
	// Status is the HTTP status to answer, e.g. 503, 429, 500. The Secret
	// Manager emulation maps it to a gRPC code (see SecretManager.InjectFault).
	Status int
	// RetryAfter sets the Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
	// Drop closes the connection without answering.
	Drop bool
	// Latency is added before answering.
	Latency time.Duration
	// Times is how many matching calls the fault applies to; 0 means until
	// ClearFaults.
	Times int
	// Rate is the probability (0..1) that a matching call is affected; 0
	// means always. Calls left unaffected by Rate do not consume Times.
	Rate float64
	// AfterApply serves the call before the fault: the write applies, and
	// then its answer is dropped (Drop) or replaced with Status. It needs
	// Drop or Status.
	AfterApply bool
}

type faultEntry struct {
	f    Fault
	left int // remaining applications when f.Times > 0
}

// faultSet is a concurrency-safe list of injected faults. Its fast path (no
// faults) is a single atomic load.
type faultSet struct {
	n  atomic.Int32
	mu sync.Mutex
	l  []*faultEntry
}

func (s *faultSet) add(f Fault) {
	s.mu.Lock()
	s.l = append(s.l, &faultEntry{f: f, left: f.Times})
	s.n.Store(int32(len(s.l)))
	s.mu.Unlock()
}

func (s *faultSet) clear() {
	s.mu.Lock()
	s.l = nil
	s.n.Store(0)
	s.mu.Unlock()
}

// match returns the first fault that applies to a call of method, consuming
// one of its Times.
func (s *faultSet) match(method string) (Fault, bool) {
	if s.n.Load() == 0 {
		return Fault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.l {
		if e.f.Method != "" && e.f.Method != method {
			continue
		}
		if e.f.Rate > 0 && e.f.Rate < 1 && rand.Float64() >= e.f.Rate {
			continue
		}
		f := e.f
		if f.Times > 0 {
			e.left--
			if e.left <= 0 {
				s.l = append(s.l[:i:i], s.l[i+1:]...)
				s.n.Store(int32(len(s.l)))
			}
		}
		return f, true
	}
	return Fault{}, false
}

// sleepCtx waits d or until ctx is done; it reports whether the full
// duration elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(d), 10))
	}
}

// dropConn hijacks the connection of w and closes it without answering. It
// reports whether that was possible.
func dropConn(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}
