package engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// TestEndpointsAreCheckedAtStart: every endpoint override is parsed as a
// URL when the configuration loads, and a value that could send the admin's
// token anywhere but Google or this machine is a configuration error naming
// the variable. CHAT_ENDPOINT and DIRECTORY_ENDPOINT were not checked at
// all: "http://127.0.0.1:1@evil.example/" (user info; the host is
// evil.example) sent the bearer token there in plaintext.
func TestEndpointsAreCheckedAtStart(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_SECRET": "s", "RESULT_TOPIC": "results"}
	load := func(k, v string) error {
		_, err := LoadConfig(func(name string) string {
			if name == k {
				return v
			}
			return base[name]
		})
		return err
	}
	for _, c := range []struct{ name, value string }{
		{"CHAT_ENDPOINT", "http://127.0.0.1:1@evil.example/"},
		{"DIRECTORY_ENDPOINT", "http://127.0.0.1:1@evil.example/"},
		{"CHAT_ENDPOINT", "https://chat.example.com/"},
		{"DIRECTORY_ENDPOINT", "http://admin.googleapis.com/"},
		{"OAUTH_TOKEN_URL", "http://127.0.0.1:1@evil.example/token"},
		{"SECRET_MANAGER_ENDPOINT", "127.0.0.1:1@evil.example"},
		{"SECRET_MANAGER_ENDPOINT", "10.1.2.3:443"},
	} {
		err := load(c.name, c.value)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != c.name {
			t.Errorf("%s=%q: %v, want a configuration error naming %s", c.name, c.value, err, c.name)
		}
	}
	for _, c := range []struct{ name, value string }{
		{"CHAT_ENDPOINT", "https://chat.googleapis.com/"},
		{"DIRECTORY_ENDPOINT", "http://127.0.0.1:8080/"},
		{"OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"},
		{"SECRET_MANAGER_ENDPOINT", "127.0.0.1:9000"},
	} {
		if err := load(c.name, c.value); err != nil && strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q refused: %v", c.name, c.value, err)
		}
	}
}

// hugeBody is a Pub/Sub push body of n bytes, made as it is read, that
// counts what was read of it.
type hugeBody struct {
	n, off int64
	read   *atomic.Int64
}

func newHugeBody(n int64, read *atomic.Int64) *hugeBody { return &hugeBody{n: n, read: read} }

func (h *hugeBody) Read(p []byte) (int, error) {
	const head = `{"message":{"messageId":"big2","data":"`
	if h.off >= h.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && h.off < h.n {
		switch {
		case h.off < int64(len(head)):
			p[k] = head[h.off]
		default:
			p[k] = 'A' // base64 of zero bytes, never closed: the end is never reached
		}
		k++
		h.off++
	}
	h.read.Add(int64(k))
	return k, nil
}

func (h *hugeBody) Close() error { return nil }

// TestOversizeBodyIsInvalidUnread: a 10 MB body (Pub/Sub's largest message)
// is read no further than 1 MiB, in binary CloudEvent mode and as a raw push
// body, and the request is decided invalid with its message id, answered
// 200 so that Pub/Sub does not deliver it again. Before, the whole body was
// read into memory (10 MB per request, 800 MB at concurrency 80 on a 512 Mi
// instance).
func TestOversizeBodyIsInvalidUnread(t *testing.T) {
	e := newEnv(t)
	h := EventHandler(e.f.Handle)
	for _, c := range []struct {
		name, id string
		binary   bool
	}{{"binary", "big1", true}, {"push", "unknown", false}} {
		var read atomic.Int64
		req := httptest.NewRequest(http.MethodPost, "/projects/p/topics/requests", nil)
		req.Body = newHugeBody(10<<20, &read)
		req.ContentLength = 10 << 20
		req.Header.Set("Content-Type", "application/json")
		if c.binary {
			req.Header.Set("ce-specversion", "1.0")
			req.Header.Set("ce-type", contract.PublishedEventType)
			req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/p/topics/requests")
			req.Header.Set("ce-id", c.id)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Errorf("%s: answered %d %s, want 200 (decided, not redelivered)", c.name, w.Code, w.Body)
		}
		if n := read.Load(); n > MaxBodyBytes+1 {
			t.Errorf("%s: %d bytes of the body read, want at most %d", c.name, n, MaxBodyBytes+1)
		}
		var found bool
		for _, r := range e.results(t) {
			if r.RequestID == c.id && r.Outcome == contract.Invalid && r.Error != nil && strings.Contains(r.Error.Message, "1 MiB") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no invalid result for %s naming the 1 MiB limit: %+v", c.name, c.id, e.results(t))
		}
	}
	if e.chatCalls() != 0 {
		t.Errorf("%d Chat calls for oversize bodies", e.chatCalls())
	}
}

// BenchmarkOversizeBodies measures the memory of 80 concurrent 10 MB
// bodies (concurrency 80, Pub/Sub's largest message) through EventHandler:
// peak-heap-MiB is the largest heap in use seen while they are read.
// go test -run '^$' -bench BenchmarkOversizeBodies -benchtime 3x ./engine/
func BenchmarkOversizeBodies(b *testing.B) {
	h := EventHandler(func(context.Context, event.Event) error { return nil })
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for range 80 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var read atomic.Int64
				req := httptest.NewRequest(http.MethodPost, "/projects/p/topics/requests", nil)
				req.Body = newHugeBody(10<<20, &read)
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
		}
		wg.Wait()
	}
	close(stop)
	sampler.Wait()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// TestLongFanOutIDIsInvalidUpFront: a sweep or a restore whose requestId
// leaves no room for its children's (ROOT/spaces/{space}, 512 bytes at
// most) is invalid before anything is read. Before, a sweep id near 512
// bytes resolved its person in the Directory and searched the spaces, and
// only then failed to fan out.
func TestLongFanOutIDIsInvalidUpFront(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", request.MaxFanOutID+1)
	for _, req := range []string{
		`{"requestId":"` + long + `","allSpaces":true,"member":"alice@example.com"}`,
		`{"requestId":"` + long + `","restore":"hr-earlier"}`,
	} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
	}
	rs := e.results(t)
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2 invalid: %+v", len(rs), rs)
	}
	for _, r := range rs {
		if r.Outcome != contract.Invalid || r.Error == nil || !strings.Contains(r.Error.Message, "requestId") || !strings.Contains(r.Error.Message, "fans out") {
			t.Errorf("result %+v, want invalid naming requestId", r.Result)
		}
	}
	if n := e.stack.Directory.Stats().Calls; n != 0 || e.chatCalls() != 0 {
		t.Errorf("%d Directory and %d Chat calls before invalid, want none", n, e.chatCalls())
	}
	ok := strings.Repeat("y", request.MaxFanOutID)
	if err := e.send(t, `{"requestId":"`+ok+`","allSpaces":true,"member":"alice@example.com"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	removed := 0
	for _, r := range e.results(t) {
		if r.ParentRequestID == ok && r.Outcome == contract.Removed {
			removed++
		}
	}
	if removed == 0 {
		t.Errorf("a sweep with a %d-byte id removed nothing: %+v", len(ok), e.results(t))
	}
}
