package offboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chat-offboard/chat-offboard/tokens"
	"golang.org/x/time/rate"
	"google.golang.org/api/googleapi"
)

// Backoff bounds for 429 and 5xx retries within one invocation.
const (
	backoffBase = 200 * time.Millisecond
	backoffMax  = 10 * time.Second
	// publishReserve is kept back from an invocation's deadline so that a
	// result can still be published after the last Chat attempt.
	publishReserve = 2 * time.Second
)

// TransientError is a failure that Pub/Sub should redeliver: the Chat API
// answered 429 or 5xx, or did not answer, or a budget or token could not be
// had in time. Test with errors.As.
type TransientError struct {
	Op  string // e.g. "members.delete"
	Err error
}

// Error describes the failed operation and its cause.
func (e *TransientError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TransientError) Unwrap() error { return e.Err }

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
	target rate.Limit // the configured rate, less budgetHeadroom
	full   atomic.Bool

	mu         sync.Mutex
	lim        *rate.Limiter // replaced by throttled; guarded by mu
	pauseUntil time.Time     // no call goes out before it
	epoch      uint64        // counts pauses: reservations of an older epoch are void
	lastChange time.Time     // of the rate
}

func newBudget(perMinute int) *budget {
	target := rate.Limit(float64(perMinute) * (1 - budgetHeadroom) / 60)
	b := &budget{lim: rate.NewLimiter(target, 1), target: target}
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
		now := time.Now()
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
				r.CancelAt(maxTime(time.Now(), at))
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
	now := time.Now()
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
	now := time.Now()
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

// callKind says which budget a call spends.
type callKind int

const (
	read callKind = iota
	write
)

// apiError extracts Google's error from err.
func apiError(err error) (*googleapi.Error, bool) {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge, true
	}
	return nil, false
}

// errorInfo describes err for a result, without any secret: Google's
// code, status and message, or the error's text.
func errorInfo(err error) *ErrorInfo {
	if err == nil {
		return nil
	}
	if ge, ok := apiError(err); ok {
		info := &ErrorInfo{Code: ge.Code, Message: ge.Message}
		if ge.Details != nil || ge.Body != "" {
			info.Status = statusOf(ge)
		}
		if info.Status == "" {
			info.Status = statusFromCode(ge.Code)
		}
		return info
	}
	return &ErrorInfo{Message: err.Error()}
}

// statusOf returns the canonical status string of a Google error body.
func statusOf(ge *googleapi.Error) string {
	// googleapi.Error keeps the status only in the raw body; parse it.
	var body struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(ge.Body), &body); err == nil {
		return body.Error.Status
	}
	return ""
}

func statusFromCode(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ALREADY_EXISTS"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return ""
}

// retryable reports whether a Chat API error may succeed if tried again
// soon: 429, 5xx, or no answer at all.
func retryable(err error) bool {
	if ge, ok := apiError(err); ok {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	return true // transport error, timeout, dropped connection
}

// retryAfter reads the Retry-After header (seconds or HTTP date).
func retryAfter(err error) time.Duration {
	ge, ok := apiError(err)
	if !ok || ge.Header == nil {
		return 0
	}
	v := ge.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// backoff is the wait before retry number n (1-based): full jitter over an
// exponential ceiling, never shorter than the server's Retry-After.
func backoff(n int, after time.Duration) time.Duration {
	ceil := backoffBase << min(n-1, 10)
	if ceil > backoffMax {
		ceil = backoffMax
	}
	d := ceil/2 + rand.N(ceil/2+1)
	if after > d {
		d = after + rand.N(after/10+1)
	}
	return d
}

// unauthorizedError marks a Chat API 401 that survived a token refresh.
type unauthorizedError struct{ err error }

func (e *unauthorizedError) Error() string {
	return "Chat API rejected a freshly refreshed access token (401): treat as invalid_grant: " + e.err.Error()
}
func (e *unauthorizedError) Unwrap() error { return e.err }

// scope is what every Chat call of one event needs besides its context:
// the event's logger and the two times that bound its calls. One scope is
// made per event by Handle and only read after that.
type scope struct {
	log *slog.Logger
	// deadline is the invocation's deadline less publishReserve: no call
	// runs past it.
	deadline time.Time
	// expiry is when the event passes MAX_EVENT_AGE (zero: never): no call
	// starts after it, and no retry waits past it.
	expiry time.Time
}

// errEventExpired ends the Chat calls of an event older than MAX_EVENT_AGE.
var errEventExpired = errors.New("the event is older than MAX_EVENT_AGE: no further Chat call is made for it")

// expiredBy reports whether the event's MAX_EVENT_AGE has passed at t.
func (sc *scope) expiredBy(t time.Time) bool { return !sc.expiry.IsZero() && t.After(sc.expiry) }

// call runs one Chat API call with the instance's budget, 401 handling, and
// jittered exponential backoff for 429 and 5xx, never past the scope's
// deadline and never starting an attempt after its expiry. It returns the
// number of attempts made. A permanent error (400, 403, 404, 409) is
// returned as is; a transient one wrapped in *TransientError, which wraps
// errEventExpired (and the last error met) when the event expired.
func (f *Function) call(ctx context.Context, sc *scope, op string, kind callKind, fn func(context.Context) error) (int, error) {
	b := f.reads
	if kind == write {
		b = f.writes
	}
	refreshed := false
	var last error
	expired := func(attempt int) (int, error) {
		if last == nil {
			return attempt, &TransientError{Op: op, Err: errEventExpired}
		}
		return attempt, &TransientError{Op: op, Err: fmt.Errorf("%w; last error after %d attempts: %w", errEventExpired, attempt, last)}
	}
	for attempt := 1; ; attempt++ {
		if sc.expiredBy(f.now()) {
			return expired(attempt - 1)
		}
		if err := b.wait(ctx, sc.deadline); err != nil {
			return attempt - 1, &TransientError{Op: op, Err: err}
		}
		if sc.expiredBy(f.now()) {
			return expired(attempt - 1)
		}
		start := time.Now()
		cctx, cancel := context.WithDeadline(ctx, sc.deadline)
		err := fn(cctx)
		cancel()
		f.observeChat(time.Since(start))
		if err == nil {
			b.succeeded()
			return attempt, nil
		}
		last = err
		if ge, ok := apiError(err); ok && ge.Code == http.StatusUnauthorized {
			if refreshed {
				return attempt, &TransientError{Op: op, Err: &unauthorizedError{err}}
			}
			refreshed = true
			f.tokens.InvalidateIssuedBefore(start)
			sc.log.Debug("API call answered 401; refreshing the access token and trying again", "operation", op, "status", http.StatusUnauthorized, "attempt", attempt)
			attempt--
			continue
		}
		if tokens.IsPermanent(err) {
			return attempt, &TransientError{Op: op, Err: err}
		}
		if !retryable(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return attempt, &TransientError{Op: op, Err: err}
			}
			return attempt, err
		}
		after := retryAfter(err)
		if ge, ok := apiError(err); ok && ge.Code == http.StatusTooManyRequests {
			b.throttled(max(after, time.Second))
		}
		wait := backoff(attempt, after)
		if time.Now().Add(wait).After(sc.deadline) {
			return attempt, &TransientError{Op: op, Err: fmt.Errorf("giving up before the invocation's deadline after %d attempts: %w", attempt, err)}
		}
		if sc.expiredBy(f.now().Add(wait)) {
			return expired(attempt)
		}
		f.retries.Add(1)
		sc.log.Debug("API call failed; retrying", "operation", op, "status", statusCode(err), "attempt", attempt, "wait", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return attempt, &TransientError{Op: op, Err: err}
		}
	}
}

// statusCode is the HTTP status of a Google API error, 0 when there was no
// answer (a transport error or a timeout).
func statusCode(err error) int {
	if ge, ok := apiError(err); ok {
		return ge.Code
	}
	return 0
}
