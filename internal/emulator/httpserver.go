package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loopbackServer is an HTTP server on 127.0.0.1 with an ephemeral port.
type loopbackServer struct {
	srv       *http.Server
	base      string // "http://127.0.0.1:PORT"
	closeOnce sync.Once
}

// startLoopback starts serving h on 127.0.0.1:0. Like httptest.NewServer it
// panics when no loopback port can be had, which only happens on a broken
// machine.
func startLoopback(h http.Handler) *loopbackServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("emulator: listen on loopback: %v", err))
	}
	s := &loopbackServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
		base: "http://" + l.Addr().String(),
	}
	go func() { _ = s.srv.Serve(l) }()
	return s
}

func (s *loopbackServer) close() {
	s.closeOnce.Do(func() { _ = s.srv.Close() })
}

// googleStatus maps an HTTP status to the canonical google.rpc.Code name
// used in the "status" field of Google's JSON errors.
func googleStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ALREADY_EXISTS"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 500:
		return "INTERNAL"
	case 501:
		return "UNIMPLEMENTED"
	case 502, 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	default:
		return "UNKNOWN"
	}
}

// googleReason is the legacy "errors[].reason" for a canonical status.
func googleReason(status string) string {
	switch status {
	case "INVALID_ARGUMENT", "OUT_OF_RANGE":
		return "badRequest"
	case "FAILED_PRECONDITION":
		return "failedPrecondition"
	case "UNAUTHENTICATED":
		return "authError"
	case "PERMISSION_DENIED":
		return "forbidden"
	case "NOT_FOUND":
		return "notFound"
	case "ALREADY_EXISTS", "ABORTED":
		return "conflict"
	case "RESOURCE_EXHAUSTED":
		return "rateLimitExceeded"
	case "UNAVAILABLE":
		return "backendError"
	default:
		return "backendError"
	}
}

// apiError is an error answer of a Google REST API.
type apiError struct {
	code       int    // HTTP status
	status     string // canonical status; "" = derived from code
	msg        string
	retryAfter time.Duration
}

func errf(code int, status, format string, args ...any) *apiError {
	return &apiError{code: code, status: status, msg: fmt.Sprintf(format, args...)}
}

type googleErrorItem struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

type googleErrorBody struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Errors  []googleErrorItem `json:"errors"`
}

// write answers e in Google's JSON error format, which googleapi.Error
// parses.
func (e *apiError) write(w http.ResponseWriter) {
	st := e.status
	if st == "" {
		st = googleStatus(e.code)
	}
	body, _ := json.Marshal(struct {
		Error googleErrorBody `json:"error"`
	}{googleErrorBody{
		Code:    e.code,
		Message: e.msg,
		Status:  st,
		Errors:  []googleErrorItem{{Message: e.msg, Domain: "global", Reason: googleReason(st)}},
	}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	setRetryAfter(w, e.retryAfter)
	if e.code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	}
	w.WriteHeader(e.code)
	_, _ = w.Write(body)
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		e := errf(500, "", "emulator: encoding response: %v", err)
		e.write(w)
		return e.code
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// applyHTTPFault applies a matched fault to an HTTP call. It reports
// whether the call was answered (or dropped) by the fault; a latency-only
// fault waits and reports false. counter is incremented before the client
// can see the answer, so that a test reading the stats after its call sees
// the fault counted.
func applyHTTPFault(w http.ResponseWriter, r *http.Request, f Fault, counter *atomic.Int64) (status int, answered bool) {
	if !sleepCtx(r.Context(), f.Latency) {
		counter.Add(1)
		return 499, true
	}
	if f.Drop {
		counter.Add(1)
		if dropConn(w) {
			return 0, true
		}
		// Not hijackable (e.g. HTTP/2): the closest is an abrupt 503.
		f.Status = http.StatusServiceUnavailable
	} else if f.Status != 0 {
		counter.Add(1)
	}
	if f.Status == 0 {
		return 0, false
	}
	e := &apiError{code: f.Status, msg: "injected fault", retryAfter: f.RetryAfter}
	e.write(w)
	return f.Status, true
}

// requestPath returns the path of r as the client sent it (escapes intact,
// as Google's servers match them), without the query.
func requestPath(r *http.Request) string {
	raw := r.RequestURI
	if !strings.HasPrefix(raw, "/") {
		raw = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !equalFoldASCII(h[:len(p)], p) {
		return "", false
	}
	return h[len(p):], true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func hasScope(scopes []string, want ...string) bool {
	for _, s := range scopes {
		for _, w := range want {
			if s == w {
				return true
			}
		}
	}
	return false
}

// faultOrBearer is the preamble of an emulated Admin SDK call once routed:
// a Fault matched for op is applied (counted in faulted); otherwise the
// bearer token is verified, and a call without a valid one is answered 401
// "Login Required." (counted in unauthorized). It returns the token's
// grant, and false when the call is already answered.
func faultOrBearer(w http.ResponseWriter, r *http.Request, faults *faultSet, op string, faulted, unauthorized *atomic.Int64, auth *OAuth) (Grant, bool) {
	if f, ok := faults.match(op); ok {
		if _, answered := applyHTTPFault(w, r, f, faulted); answered {
			return Grant{}, false
		}
	}
	g, ok := auth.verifyBearer(r)
	if !ok {
		unauthorized.Add(1)
		errf(401, "", "Login Required.").write(w)
		return Grant{}, false
	}
	return g, true
}
