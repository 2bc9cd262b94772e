package offboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
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

func (e *TransientError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TransientError) Unwrap() error { return e.Err }

// errBudget is returned when the budget cannot be had before the deadline.
var errBudget = errors.New("client-side Chat API budget exhausted until after this invocation's deadline")

// budget is an adaptive client-side rate limit shared by every concurrent
// event of an instance. A 429 halves the rate and pauses callers for the
// server's Retry-After; successes then restore it step by step. All methods
// are safe for concurrent use.
type budget struct {
	lim    *rate.Limiter
	target rate.Limit

	mu         sync.Mutex
	pauseUntil time.Time
	lastChange time.Time
}

func newBudget(perMinute int) *budget {
	target := rate.Limit(float64(perMinute) / 60)
	burst := perMinute / 60
	if burst < 1 {
		burst = 1
	}
	return &budget{lim: rate.NewLimiter(target, burst), target: target}
}

// wait blocks until a call may go out, or returns errBudget at once when the
// wait would end after deadline.
func (b *budget) wait(ctx context.Context, deadline time.Time) error {
	b.mu.Lock()
	pause := time.Until(b.pauseUntil)
	b.mu.Unlock()
	now := time.Now()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return errBudget
	}
	delay := r.DelayFrom(now)
	if pause > delay {
		delay = pause
	}
	if now.Add(delay).After(deadline) {
		r.CancelAt(now)
		return errBudget
	}
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// throttled slows the instance down after a 429.
func (b *budget) throttled(retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if until := now.Add(retryAfter); until.After(b.pauseUntil) {
		b.pauseUntil = until
	}
	if now.Sub(b.lastChange) < time.Second {
		return // one 429 burst halves once
	}
	l := b.lim.Limit() / 2
	if floor := b.target / 20; l < floor {
		l = floor
	}
	b.lim.SetLimitAt(now, l)
	b.lastChange = now
}

// succeeded lets the rate recover towards the target, 25 % a second at most.
func (b *budget) succeeded() {
	if b.lim.Limit() >= b.target {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.lastChange) < time.Second {
		return
	}
	l := b.lim.Limit() * 1.25
	if l > b.target {
		l = b.target
	}
	b.lim.SetLimitAt(now, l)
	b.lastChange = now
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

// call runs one Chat API call with the instance's budget, 401 handling, and
// jittered exponential backoff for 429 and 5xx, never past deadline. It
// returns the number of attempts made. A permanent error (400, 403, 404,
// 409) is returned as is; a transient one wrapped in *TransientError.
func (f *Function) call(ctx context.Context, op string, kind callKind, deadline time.Time, fn func(context.Context) error) (int, error) {
	b := f.reads
	if kind == write {
		b = f.writes
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if err := b.wait(ctx, deadline); err != nil {
			return attempt - 1, &TransientError{Op: op, Err: err}
		}
		start := time.Now()
		cctx, cancel := context.WithDeadline(ctx, deadline)
		err := fn(cctx)
		cancel()
		f.observeChat(time.Since(start))
		if err == nil {
			b.succeeded()
			return attempt, nil
		}
		if ge, ok := apiError(err); ok && ge.Code == http.StatusUnauthorized {
			if refreshed {
				return attempt, &TransientError{Op: op, Err: &unauthorizedError{err}}
			}
			refreshed = true
			f.tokens.InvalidateIssuedBefore(start)
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
		if time.Now().Add(wait).After(deadline) {
			return attempt, &TransientError{Op: op, Err: fmt.Errorf("giving up before the invocation's deadline after %d attempts: %w", attempt, err)}
		}
		f.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return attempt, &TransientError{Op: op, Err: err}
		}
	}
}
