package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// errBudget is returned when the budget cannot be had before the deadline.
var errBudget = errors.New("client-side Chat API budget exhausted until after this invocation's deadline")

// budgetHeadroom is the share of a budget held back. Calls are spaced evenly
// at the budget's rate, but each reaches Google's quota counter a little
// sooner or later than planned (scheduling, network); without slack, one late
// call is enough to put a quota window one call over. 2 % of a minute is
// 1.2 s of such jitter absorbed, for 2 % of the throughput.
const budgetHeadroom = 0.02

// budget is an adaptive client-side rate limit shared by every concurrent
// event of an instance: a token bucket of the budget's rate (less
// budgetHeadroom) and a burst of one, so that calls are evenly spaced and no
// window of a minute ever holds more than perMinute of them, even after an
// idle spell. A 429 halves the rate and pauses every caller until the
// server's Retry-After; callers already waiting then queue again behind the
// pause, spaced at the new rate, instead of all going out the instant it
// ends. Successes restore the rate step by step. All methods are safe for
// concurrent use.
type budget struct {
	target rate.Limit       // the configured rate, less budgetHeadroom
	now    func() time.Time // the Engine's clock
	full   atomic.Bool

	mu         sync.Mutex
	lim        *rate.Limiter // replaced by throttled; guarded by mu
	pauseUntil time.Time     // no call goes out before it
	epoch      uint64        // counts pauses: reservations of an older epoch are void
	lastChange time.Time     // of the rate
}

// newBudget is a budget of perMinute calls a minute on the clock now.
func newBudget(perMinute int, now func() time.Time) *budget {
	target := rate.Limit(float64(perMinute) * (1 - budgetHeadroom) / 60)
	b := &budget{lim: rate.NewLimiter(target, 1), target: target, now: now}
	b.full.Store(true)
	return b
}

// limit returns the current rate.
func (b *budget) limit() rate.Limit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lim.Limit()
}

// wait blocks until a call may go out, or returns errBudget at once when the
// wait would end after deadline. ctx cancels the wait.
func (b *budget) wait(ctx context.Context, deadline time.Time) error {
	for {
		b.mu.Lock()
		// now is read under the lock, so that reservations are made at
		// non-decreasing times: an older time would move the limiter's
		// clock back and credit the same interval twice.
		now := b.now()
		at := now
		if b.pauseUntil.After(at) {
			at = b.pauseUntil
		}
		// Reservations are made at non-decreasing times (at only grows), so
		// the limiter never credits tokens for time spent paused.
		r := b.lim.ReserveN(at, 1)
		epoch := b.epoch
		b.mu.Unlock()
		delay := r.DelayFrom(now)
		if !r.OK() || now.Add(delay).After(deadline) {
			r.CancelAt(at)
			return errBudget
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.CancelAt(maxTime(b.now(), at))
				return ctx.Err()
			}
		}
		b.mu.Lock()
		void := b.epoch != epoch
		b.mu.Unlock()
		if !void {
			return nil
		}
		// A 429 paused the budget after this reservation was made: queue
		// again behind the pause.
	}
}

// throttled slows the instance down after a 429: no call goes out for
// retryAfter, waiting callers queue again behind the pause, and the rate is
// halved (once per second at most, so that one burst of 429s halves it
// once; never below a twentieth of the target).
func (b *budget) throttled(retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	l := b.lim.Limit()
	if now.Sub(b.lastChange) >= time.Second {
		l = max(l/2, b.target/20)
		b.lastChange = now
		b.full.Store(false)
	}
	until := now.Add(retryAfter)
	if !until.After(b.pauseUntil) {
		if l != b.lim.Limit() {
			b.lim.SetLimitAt(maxTime(now, b.pauseUntil), l)
		}
		return
	}
	// A new limiter forgets the reservations of the callers now waiting:
	// they queue again (epoch) behind the pause.
	b.pauseUntil = until
	b.epoch++
	b.lim = rate.NewLimiter(l, 1)
}

// succeeded lets the rate recover towards the target, 25 % a second at most.
func (b *budget) succeeded() {
	if b.full.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.lastChange) < time.Second {
		return
	}
	l := min(b.lim.Limit()*1.25, b.target)
	if l >= b.target {
		l = b.target
		b.full.Store(true)
	}
	b.lim.SetLimitAt(maxTime(now, b.pauseUntil), l)
	b.lastChange = now
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
