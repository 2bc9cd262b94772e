package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/cloudevents/sdk-go/v2/event"
)

type requestIDKey struct{}

// tagRequests puts each request's ce-id into its context, so that a handler
// can tell whose context it was given.
func tagRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, r.Header.Get("ce-id"))))
	})
}

func postEvent(ctx context.Context, c *http.Client, url, id string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"message":{"data":"e30=","messageId":"`+id+`"}}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", contract.PublishedEventType)
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/p/topics/t")
	req.Header.Set("ce-id", id)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestEventHandlerOwnContextAndNoStrandedRequest sends bursts of concurrent
// events, a quarter of them from clients that give up after a few
// milliseconds. Every event must run under its own request's context, and
// every request whose client waits must be answered (the framework's
// CloudEvent wrapper fails both: cloudevents/sdk-go#1224).
func TestEventHandlerOwnContextAndNoStrandedRequest(t *testing.T) {
	var wrongCtx, cancelledUnderUs atomic.Int64
	h := EventHandler(func(ctx context.Context, e event.Event) error {
		if got, _ := ctx.Value(requestIDKey{}).(string); got != e.ID() {
			wrongCtx.Add(1)
		}
		if strings.HasPrefix(e.ID(), "slow-") {
			time.Sleep(20 * time.Millisecond)
			if ctx.Err() != nil {
				cancelledUnderUs.Add(1)
			}
		}
		return nil
	})
	srv := httptest.NewServer(tagRequests(h))
	defer func() {
		// Close waits for the handlers: a stranded request never ends.
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Error("a request was still stranded in the handler 30 s after its client left")
		}
	}()

	// Separate transports: a dial that a leaving client abandons must not
	// fail a waiting client's request (a client-side effect, not the server's).
	waiting := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	leaving := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer waiting.CloseIdleConnections()
	var unanswered atomic.Int64
	for round := range 100 {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("fast-%d-%d", round, i)
				switch i % 4 {
				case 0: // a client that gives up
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%5)*time.Millisecond)
					defer cancel()
					_, _ = postEvent(ctx, leaving, srv.URL, "gone-"+id)
					return
				case 1:
					id = "slow-" + id
				}
				// Generous: every event is answered in milliseconds.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if st, err := postEvent(ctx, waiting, srv.URL, id); err != nil || st != http.StatusOK {
					unanswered.Add(1)
					t.Logf("%s: status %d, %v", id, st, err)
				}
			}()
		}
		wg.Wait()
		if unanswered.Load() > 0 {
			break
		}
	}
	if n := wrongCtx.Load(); n > 0 {
		t.Errorf("%d events ran under another request's context", n)
	}
	if n := cancelledUnderUs.Load(); n > 0 {
		t.Errorf("%d events saw their context cancelled although their client waited", n)
	}
	if n := unanswered.Load(); n > 0 {
		t.Errorf("%d requests whose client waited were not answered 200", n)
	}
}

// TestEventHandlerForms checks the answers: binary and structured
// CloudEvents and a raw push body reach the function, its error is a 500,
// anything else a 400 or 405.
func TestEventHandlerForms(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	h := EventHandler(func(ctx context.Context, e event.Event) error {
		m, err := DecodeEvent(e)
		if err != nil {
			return err
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		if m.ID == "fail" {
			return fmt.Errorf("transient")
		}
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	push := `{"message":{"data":"e30=","messageId":"%s","publishTime":"2026-11-28T10:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
	do := func(method, path, ctype string, hdr map[string]string, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	binary := map[string]string{"ce-specversion": "1.0", "ce-type": contract.PublishedEventType, "ce-source": "//pubsub.googleapis.com/projects/p/topics/t", "ce-id": "b1"}
	if st := do("POST", "/", "application/json", binary, fmt.Sprintf(push, "b1")); st != http.StatusOK {
		t.Errorf("binary: %d", st)
	}
	structured := `{"specversion":"1.0","type":"` + contract.PublishedEventType + `","source":"s","id":"s1","datacontenttype":"application/json","data":` + fmt.Sprintf(push, "s1") + `}`
	if st := do("POST", "/", "application/cloudevents+json", nil, structured); st != http.StatusOK {
		t.Errorf("structured: %d", st)
	}
	if st := do("POST", "/projects/p/topics/t", "application/json", nil, fmt.Sprintf(push, "p1")); st != http.StatusOK {
		t.Errorf("push body: %d", st)
	}
	if st := do("POST", "/projects/p/topics/t", "application/json", nil, fmt.Sprintf(push, "fail")); st != http.StatusInternalServerError {
		t.Errorf("function error: %d, want 500", st)
	}
	if st := do("POST", "/", "application/json", nil, `{"x":1}`); st != http.StatusBadRequest {
		t.Errorf("not an event: %d, want 400", st)
	}
	if st := do("GET", "/", "", nil, ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", st)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
		if string(m.Data) != "{}" || m.PublishTime.IsZero() && m.ID != "b1" && m.ID != "s1" {
			t.Errorf("%s: data %q, publish time %v", m.ID, m.Data, m.PublishTime)
		}
	}
	if strings.Join(ids, ",") != "b1,s1,p1,fail" {
		t.Errorf("events reaching the function: %v", ids)
	}
}
