package engine

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/chat-offboard/chat-offboard/contract"
)

// Table-driven tests of the pure helpers: retry timing and error
// classification (retry.go), the API error to decision rule (decide.go), the
// requestId of a rejected request (handle.go) and the clip of the text an
// event's error quotes (event.go).

// googleErr is the error the Chat and Directory clients return for an HTTP
// answer: code, message, and optionally the raw body and headers.
func googleErr(code int, body string, header http.Header) *googleapi.Error {
	return &googleapi.Error{Code: code, Message: fmt.Sprintf("message of %d", code), Body: body, Header: header}
}

// statusBody is a Google JSON error body carrying a canonical status.
func statusBody(code int, status string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":"message of %d","status":%q}}`, code, code, status)
}

// errTransport stands for a call that got no answer.
var errTransport = &url.Error{Op: "Post", URL: "https://chat.googleapis.com/v1/spaces/A/members/1", Err: errors.New("connection reset by peer")}

func TestBackoff(t *testing.T) {
	// The ceiling doubles from backoffBase (200 ms) up to backoffMax (10 s);
	// the wait is drawn from [ceiling/2, ceiling]. A Retry-After longer than
	// the draw is honoured, plus up to a tenth of it.
	ceilings := []time.Duration{
		200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
		3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second,
	}
	type bounds struct{ lo, hi time.Duration }
	cases := []struct {
		name  string
		n     int
		after time.Duration
		want  bounds
	}{
		{"retry 1, Retry-After 150 ms inside the draw", 1, 150 * time.Millisecond, bounds{150 * time.Millisecond, 200 * time.Millisecond}},
		{"retry 1, Retry-After 1 s", 1, time.Second, bounds{time.Second, 1100 * time.Millisecond}},
		{"retry 4, Retry-After 0", 4, 0, bounds{800 * time.Millisecond, 1600 * time.Millisecond}},
		{"retry 12, Retry-After 30 s past backoffMax", 12, 30 * time.Second, bounds{30 * time.Second, 33 * time.Second}},
		{"retry 7, Retry-After 7 s inside the draw", 7, 7 * time.Second, bounds{7 * time.Second, 10 * time.Second}},
		{"retry 100 stays at backoffMax", 100, 0, bounds{backoffMax / 2, backoffMax}},
	}
	for i, ceil := range ceilings {
		n := i + 1
		cases = append(cases, struct {
			name  string
			n     int
			after time.Duration
			want  bounds
		}{fmt.Sprintf("retry %d", n), n, 0, bounds{ceil / 2, ceil}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want.hi > max(backoffMax, c.after+c.after/10) {
				t.Fatalf("bad case: upper bound %v above backoffMax plus its jitter", c.want.hi)
			}
			seen := map[time.Duration]bool{}
			for range 500 {
				d := backoff(c.n, c.after)
				if d < c.want.lo || d > c.want.hi {
					t.Fatalf("backoff(%d, %v) = %v, want within [%v, %v]", c.n, c.after, d, c.want.lo, c.want.hi)
				}
				if d < c.after {
					t.Fatalf("backoff(%d, %v) = %v, shorter than Retry-After", c.n, c.after, d)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Errorf("backoff(%d, %v) has no jitter: always %v", c.n, c.after, seen)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	header := func(v string) http.Header { return http.Header{"Retry-After": []string{v}} }
	cases := []struct {
		name   string
		err    error
		lo, hi time.Duration
	}{
		{"seconds", googleErr(429, "", header("5")), 5 * time.Second, 5 * time.Second},
		{"zero seconds", googleErr(503, "", header("0")), 0, 0},
		{"wrapped", fmt.Errorf("members.delete: %w", googleErr(429, "", header("3"))), 3 * time.Second, 3 * time.Second},
		// An HTTP date has whole seconds: 30 s ahead reads as 29 to 30 s.
		{"HTTP date", googleErr(503, "", header(time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))), 28 * time.Second, 30 * time.Second},
		{"garbage", googleErr(429, "", header("soon")), 0, 0},
		{"negative seconds", googleErr(429, "", header("-3")), 0, 0},
		{"empty header", googleErr(429, "", header("")), 0, 0},
		{"no Retry-After", googleErr(429, "", http.Header{"Content-Type": []string{"application/json"}}), 0, 0},
		{"no headers", googleErr(429, "", nil), 0, 0},
		{"not a Google error", errors.New("Retry-After: 5"), 0, 0},
		{"transport error", errTransport, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retryAfter(c.err); got < c.lo || got > c.hi {
				t.Errorf("retryAfter = %v, want within [%v, %v]", got, c.lo, c.hi)
			}
		})
	}
	// A date already past is no wait at all.
	if got := retryAfter(googleErr(503, "", header(time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)))); got > 0 {
		t.Errorf("retryAfter of a past date = %v, want none", got)
	}
}

func TestErrorClassification(t *testing.T) {
	// Each status class, as an error the client returns: whether it is
	// retried, its status code, and what a result says of it.
	cases := []struct {
		name      string
		err       error
		retryable bool
		code      int
		info      *contract.ErrorInfo
	}{
		{"400 with a body status", googleErr(400, statusBody(400, "FAILED_PRECONDITION"), nil), false, 400,
			&contract.ErrorInfo{Code: 400, Status: "FAILED_PRECONDITION", Message: "message of 400"}},
		{"400 without a body", googleErr(400, "", nil), false, 400,
			&contract.ErrorInfo{Code: 400, Status: "INVALID_ARGUMENT", Message: "message of 400"}},
		{"401", googleErr(401, "", nil), false, 401,
			&contract.ErrorInfo{Code: 401, Status: "UNAUTHENTICATED", Message: "message of 401"}},
		{"403 with a body status", googleErr(403, statusBody(403, "PERMISSION_DENIED"), nil), false, 403,
			&contract.ErrorInfo{Code: 403, Status: "PERMISSION_DENIED", Message: "message of 403"}},
		{"404 without a body", googleErr(404, "", nil), false, 404,
			&contract.ErrorInfo{Code: 404, Status: "NOT_FOUND", Message: "message of 404"}},
		{"409", googleErr(409, "", nil), false, 409,
			&contract.ErrorInfo{Code: 409, Status: "ALREADY_EXISTS", Message: "message of 409"}},
		{"418, a code without a canonical status", googleErr(418, "", nil), false, 418,
			&contract.ErrorInfo{Code: 418, Message: "message of 418"}},
		{"429", googleErr(429, statusBody(429, "RESOURCE_EXHAUSTED"), nil), true, 429,
			&contract.ErrorInfo{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "message of 429"}},
		{"500", googleErr(500, "", nil), true, 500,
			&contract.ErrorInfo{Code: 500, Status: "INTERNAL", Message: "message of 500"}},
		{"502", googleErr(502, "", nil), true, 502,
			&contract.ErrorInfo{Code: 502, Message: "message of 502"}},
		{"503 with a body status", googleErr(503, statusBody(503, "UNAVAILABLE"), nil), true, 503,
			&contract.ErrorInfo{Code: 503, Status: "UNAVAILABLE", Message: "message of 503"}},
		{"504", googleErr(504, "", nil), true, 504,
			&contract.ErrorInfo{Code: 504, Status: "DEADLINE_EXCEEDED", Message: "message of 504"}},
		{"body without a status falls back to the code", googleErr(403, `{"error":{"code":403}}`, nil), false, 403,
			&contract.ErrorInfo{Code: 403, Status: "PERMISSION_DENIED", Message: "message of 403"}},
		{"body that is not JSON falls back to the code", googleErr(503, "<html>Service Unavailable</html>", nil), true, 503,
			&contract.ErrorInfo{Code: 503, Status: "UNAVAILABLE", Message: "message of 503"}},
		{"wrapped in a TransientError", &TransientError{Op: "members.delete", Err: googleErr(503, "", nil)}, true, 503,
			&contract.ErrorInfo{Code: 503, Status: "UNAVAILABLE", Message: "message of 503"}},
		{"transport error", errTransport, true, 0,
			&contract.ErrorInfo{Message: errTransport.Error()}},
		{"context deadline", fmt.Errorf("members.list: %w", errors.New("context deadline exceeded")), true, 0,
			&contract.ErrorInfo{Message: "members.list: context deadline exceeded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retryable(c.err); got != c.retryable {
				t.Errorf("retryable = %v, want %v", got, c.retryable)
			}
			if got := statusCode(c.err); got != c.code {
				t.Errorf("statusCode = %d, want %d", got, c.code)
			}
			if diff := cmp.Diff(c.info, errorInfo(c.err)); diff != "" {
				t.Errorf("errorInfo (-want +got):\n%s", diff)
			}
		})
	}
	if info := errorInfo(nil); info != nil {
		t.Errorf("errorInfo(nil) = %+v, want nil", info)
	}
}

func TestStatusFromCode(t *testing.T) {
	cases := map[int]string{
		400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
		// No canonical status for these: the body's, if any, is used.
		0: "", 200: "", 412: "", 418: "", 501: "", 502: "",
	}
	for code, want := range cases {
		if got := statusFromCode(code); got != want {
			t.Errorf("statusFromCode(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestAPIDecision(t *testing.T) {
	in := contract.Result{RequestID: "hr-1", Membership: "spaces/A/members/1", Outcome: "", AdminAccess: true}
	with := func(f func(*contract.Result)) contract.Result {
		r := in
		f(&r)
		return r
	}
	transient := &TransientError{Op: "members.delete", Err: googleErr(503, "", nil)}
	cases := []struct {
		name     string
		err      error
		deleting bool
		want     contract.Result
		wantErr  error // nil: a decision
	}{
		{"404 on delete is not_member", googleErr(404, statusBody(404, "NOT_FOUND"), nil), true,
			with(func(r *contract.Result) { r.Outcome, r.MembershipState = contract.NotMember, "NOT_A_MEMBER" }), nil},
		{"404 on read is failed", googleErr(404, statusBody(404, "NOT_FOUND"), nil), false,
			with(func(r *contract.Result) {
				r.Outcome, r.Error = contract.Failed, &contract.ErrorInfo{Code: 404, Status: "NOT_FOUND", Message: "message of 404"}
			}), nil},
		// No fix is read from an error: the flows know the only owner
		// from members.list (issue 22).
		{"400 FAILED_PRECONDITION is failed, with no fix inferred", googleErr(400, statusBody(400, "FAILED_PRECONDITION"), nil), true,
			with(func(r *contract.Result) {
				r.Outcome, r.Error = contract.Failed, &contract.ErrorInfo{Code: 400, Status: "FAILED_PRECONDITION", Message: "message of 400"}
			}), nil},
		{"400 without a body is failed without a fix", googleErr(400, "", nil), true,
			with(func(r *contract.Result) {
				r.Outcome, r.Error = contract.Failed, &contract.ErrorInfo{Code: 400, Status: "INVALID_ARGUMENT", Message: "message of 400"}
			}), nil},
		{"403 is failed", googleErr(403, statusBody(403, "PERMISSION_DENIED"), nil), true,
			with(func(r *contract.Result) {
				r.Outcome, r.Error = contract.Failed, &contract.ErrorInfo{Code: 403, Status: "PERMISSION_DENIED", Message: "message of 403"}
			}), nil},
		{"TransientError passed through", transient, true, in, transient},
		{"wrapped TransientError passed through", fmt.Errorf("removal: %w", transient), false, in, transient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := apiDecision(in, c.err, c.deleting)
			if c.wantErr == nil && err != nil {
				t.Fatalf("apiDecision error = %v, want a decision", err)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("apiDecision error = %v, want %v passed through", err, c.wantErr)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
	// An error that is not Google's (no answer) is handed back to Pub/Sub.
	got, err := apiDecision(in, errTransport, true)
	var te *TransientError
	if !errors.As(err, &te) {
		t.Fatalf("transport error: apiDecision error = %#v, want a *TransientError", err)
	}
	if te.Op != "chat" || !errors.Is(err, errTransport) {
		t.Errorf("transport error: apiDecision error = %#v, want a *TransientError of op chat wrapping it", err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("transport error: result changed (-want +got):\n%s", diff)
	}
}

func TestLooseRequestID(t *testing.T) {
	const fallback = "msg-1"
	cases := []struct {
		name, data, want string
	}{
		{"found", `{"requestId":"hr-1","space":1}`, "hr-1"},
		{"multi-byte", `{"requestId":"équipe-€"}`, "équipe-€"},
		{"512 bytes", `{"requestId":"` + strings.Repeat("r", 512) + `"}`, strings.Repeat("r", 512)},
		{"513 bytes", `{"requestId":"` + strings.Repeat("r", 513) + `"}`, fallback},
		{"missing", `{"space":"spaces/A"}`, fallback},
		{"empty", `{"requestId":""}`, fallback},
		{"not a string", `{"requestId":42}`, fallback},
		{"not JSON", `requestId=hr-1`, fallback},
		{"empty data", ``, fallback},
		{"control character", `{"requestId":"hr\u0001"}`, fallback},
		{"newline", `{"requestId":"hr\n1"}`, fallback},
		{"DEL", `{"requestId":"hr\u007f"}`, fallback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := looseRequestID([]byte(c.data), fallback); got != c.want {
				t.Errorf("looseRequestID(%.60q) = %.60q, want %.60q", c.data, got, c.want)
			}
		})
	}
}

// TestDecodeEventClipsWhatItQuotes: the text DecodeEvent quotes from an
// event (its type, its publishTime) is clipped to 80 bytes at a rune
// boundary (request.Clip): a multi-byte rune at the cut stays whole, and
// the error is valid UTF-8.
func TestDecodeEventClipsWhatItQuotes(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name, in, want string
	}{
		{"short", "com.example.other", "com.example.other"},
		{"80 bytes", a(80), a(80)},
		{"81 bytes", a(81), a(80) + "…"},
		{"80 bytes ending in a 2-byte rune", a(78) + "é", a(78) + "é"},
		// The cut at byte 80 falls inside the rune: it is left out whole.
		{"2-byte rune across the cut", a(79) + "é" + "bbb", a(79) + "…"},
		{"3-byte rune across the cut", a(78) + "€" + "bbb", a(78) + "…"},
		{"4-byte rune across the cut", a(77) + "😀" + "bbb", a(77) + "…"},
		{"rune ending at the cut", a(78) + "é" + "bbb", a(78) + "é" + "…"},
		{"rune starting at the cut", a(80) + "€", a(80) + "…"},
		{"all multi-byte", strings.Repeat("€", 40), strings.Repeat("€", 26) + "…"},
	}
	check := func(t *testing.T, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatal("DecodeEvent accepted the event")
		}
		msg := err.Error()
		if !utf8.ValidString(msg) {
			t.Errorf("error %q is not valid UTF-8", msg)
		}
		if quoted := fmt.Sprintf("%q", want); !strings.Contains(msg, quoted) {
			t.Errorf("error %q does not quote %s", msg, quoted)
		}
	}
	for _, c := range cases {
		t.Run("type "+c.name, func(t *testing.T) {
			e := event.New()
			e.SetID("x")
			e.SetSource("s")
			e.SetType(c.in)
			_, err := DecodeEvent(e)
			check(t, err, c.want)
		})
		t.Run("publishTime "+c.name, func(t *testing.T) {
			e := event.New()
			e.SetID("x")
			e.SetSource("s")
			e.SetType(contract.PublishedEventType)
			if err := e.SetData("application/json", map[string]any{"message": map[string]any{"messageId": "1", "publishTime": c.in}}); err != nil {
				t.Fatal(err)
			}
			_, err := DecodeEvent(e)
			check(t, err, c.want)
		})
	}
}
