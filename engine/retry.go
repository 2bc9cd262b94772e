package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/tokens"
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
func errorInfo(err error) *contract.ErrorInfo {
	if err == nil {
		return nil
	}
	if ge, ok := apiError(err); ok {
		info := &contract.ErrorInfo{Code: ge.Code, Message: ge.Message}
		if ge.Details != nil || ge.Body != "" {
			info.Status = statusOf(ge)
		}
		if info.Status == "" {
			info.Status = statusFromCode(ge.Code)
		}
		return info
	}
	return &contract.ErrorInfo{Message: err.Error()}
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

// errEventExpired ends the API calls of an event older than MAX_EVENT_AGE.
var errEventExpired = errors.New("the event is older than MAX_EVENT_AGE: no further API call is made for it")

// call runs one API call (Chat or Directory) with the instance's budget, 401
// handling, and jittered exponential backoff for 429 and 5xx, never past the
// job's deadline and never starting an attempt after its expiry. Every
// attempt is counted in the job. A permanent error (400, 403, 404, 409) is
// returned as is; a transient one wrapped in *TransientError, which wraps
// errEventExpired (and the last error met) when the event expired. Each
// retry is logged at DEBUG. When a write's attempt got no answer or a 5xx
// (the write may have applied) and the call then fails, the error wraps a
// *lostAnswerError: the caller settles the write by Google's state (see
// answerLost).
func (f *Engine) call(ctx context.Context, j *job, op string, kind callKind, fn func(context.Context) error) error {
	var lost error
	err := f.attempts(ctx, j, op, kind, func(ctx context.Context) error {
		if kind != write {
			return fn(ctx)
		}
		// Only a request written in full can have been applied: a
		// token, dial or write failure never reached Google.
		var sent atomic.Bool
		err := fn(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) {
			if w.Err == nil {
				sent.Store(true)
			}
		}}))
		if lost == nil && sent.Load() && mayHaveApplied(err) {
			lost = err
		}
		return err
	})
	if err == nil || lost == nil {
		return err
	}
	var te *TransientError
	if errors.As(err, &te) {
		return &TransientError{Op: te.Op, Err: &lostAnswerError{first: lost, err: te.Err}}
	}
	return &lostAnswerError{first: lost, err: err}
}

// mayHaveApplied reports whether a write that was sent and failed with err
// may still have been applied: it got no answer (the connection dropped, a
// timeout), or a 5xx, after which Google does not say whether the write
// happened. A 429 or another 4xx answers a write that was not made.
func mayHaveApplied(err error) bool {
	if err == nil {
		return false
	}
	if ge, ok := apiError(err); ok {
		return ge.Code >= 500
	}
	return true
}

// lostAnswerError is how a write's call failed after an earlier attempt's
// answer was lost (first: no answer, or a 5xx): that attempt may have made
// the write, so the final error (a 404 on a delete, a 409 on a create, or
// a transient error) is not the truth about the write. Test with
// answerLost; errors.As still finds the final error's *googleapi.Error.
type lostAnswerError struct{ first, err error }

func (e *lostAnswerError) Error() string {
	return e.err.Error() + " (after an attempt whose answer was lost, which may have made the write: " + e.first.Error() + ")"
}
func (e *lostAnswerError) Unwrap() error { return e.err }

// answerLost reports whether err is a write's failure after an attempt
// whose answer was lost (see lostAnswerError).
func answerLost(err error) bool {
	var le *lostAnswerError
	return errors.As(err, &le)
}

// attempts is call's loop, without the lost-answer bookkeeping.
func (f *Engine) attempts(ctx context.Context, j *job, op string, kind callKind, fn func(context.Context) error) error {
	b := f.reads
	if kind == write {
		b = f.writes
	}
	refreshed := false
	var last error
	expired := func(attempt int) error {
		if last == nil {
			return &TransientError{Op: op, Err: errEventExpired}
		}
		return &TransientError{Op: op, Err: fmt.Errorf("%w; last error after %d attempts: %w", errEventExpired, attempt, last)}
	}
	for attempt := 1; ; attempt++ {
		if j.expiredBy(f.now()) {
			return expired(attempt - 1)
		}
		waitStart := time.Now()
		err := b.wait(ctx, j.deadline)
		spentIn(ctx).waited(time.Since(waitStart))
		if err != nil {
			return &TransientError{Op: op, Err: err}
		}
		if j.expiredBy(f.now()) {
			return expired(attempt - 1)
		}
		*j.attempts++
		start := time.Now()
		cctx, cancel := context.WithDeadline(ctx, j.deadline)
		err = fn(cctx)
		cancel()
		f.observeChat(time.Since(start))
		spentIn(ctx).called(time.Since(start), statusCode(err))
		if err == nil {
			b.succeeded()
			return nil
		}
		last = err
		if ge, ok := apiError(err); ok && ge.Code == http.StatusUnauthorized {
			if refreshed {
				return &TransientError{Op: op, Err: &unauthorizedError{err}}
			}
			refreshed = true
			f.tokens.InvalidateIssuedBefore(start)
			j.log.Debug("API call answered 401; refreshing the access token and trying again", "operation", op, "status", http.StatusUnauthorized, "attempt", attempt)
			attempt-- // the refreshed try is not a retry: no backoff
			continue
		}
		if tokens.IsPermanent(err) {
			return &TransientError{Op: op, Err: err}
		}
		if !retryable(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return &TransientError{Op: op, Err: err}
			}
			return err
		}
		after := retryAfter(err)
		if ge, ok := apiError(err); ok && ge.Code == http.StatusTooManyRequests {
			b.throttled(max(after, time.Second))
		}
		wait := backoff(attempt, after)
		if time.Now().Add(wait).After(j.deadline) {
			return &TransientError{Op: op, Err: fmt.Errorf("giving up before the invocation's deadline after %d attempts: %w", attempt, err)}
		}
		if j.expiredBy(f.now().Add(wait)) {
			return expired(attempt)
		}
		f.retries.Add(1)
		j.log.Debug("API call failed; retrying", "operation", op, "status", statusCode(err), "attempt", attempt, "wait", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &TransientError{Op: op, Err: err}
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
