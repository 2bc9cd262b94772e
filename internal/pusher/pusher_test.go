package pusher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

func TestMain(m *testing.M) { os.Exit(pubsubtest.RunMain(m)) }

// forEachBackend runs f against pstest and against the real emulator.
func forEachBackend(t *testing.T, f func(t *testing.T, c *pubsub.Client)) {
	t.Run("pstest", func(t *testing.T) {
		t.Parallel()
		c, _ := pubsubtest.Pstest(t)
		f(t, c)
	})
	t.Run("emulator", func(t *testing.T) {
		t.Parallel()
		host := pubsubtest.Emulator(t)
		f(t, pubsubtest.NewClient(t, host, "pusher-project"))
	})
}

// setup creates a topic and a pull subscription and returns their full names.
func setup(t *testing.T, c *pubsub.Client) (topic, sub string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic = pubsubtest.TopicName(c.Project(), pubsubtest.UniqueID("topic"))
	sub = pubsubtest.SubscriptionName(c.Project(), pubsubtest.UniqueID("sub"))
	if err := pubsubtest.CreateTopic(ctx, c, c.Project(), topic); err != nil {
		t.Fatal(err)
	}
	if err := pubsubtest.CreatePullSubscription(ctx, c, c.Project(), sub, topic, ""); err != nil {
		t.Fatal(err)
	}
	return topic, sub
}

// publish publishes the messages and returns their ids, in order.
func publish(t *testing.T, c *pubsub.Client, topic string, msgs ...*pubsub.Message) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub := c.Publisher(topic)
	defer pub.Stop()
	var rs []*pubsub.PublishResult
	for _, m := range msgs {
		rs = append(rs, pub.Publish(ctx, m))
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		id, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// start runs a Pusher until the test ends.
func start(t *testing.T, cfg Config) *Pusher {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return p
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type request struct {
	path   string
	header http.Header
	body   []byte
}

// capture returns a server that records requests and answers 204.
func capture(t *testing.T) (*httptest.Server, chan request) {
	ch := make(chan request, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- request{r.URL.Path, r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func receive(t *testing.T, ch chan request) request {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no request within 30 s")
	}
	return request{}
}

type wireBody struct {
	Subscription string `json:"subscription"`
	Message      struct {
		Data         string            `json:"data"`
		Attributes   map[string]string `json:"attributes"`
		MessageID    string            `json:"messageId"`
		MessageID2   string            `json:"message_id"`
		PublishTime  time.Time         `json:"publishTime"`
		PublishTime2 time.Time         `json:"publish_time"`
	} `json:"message"`
}

func checkBody(t *testing.T, raw []byte, sub, id, data string, attrs map[string]string) wireBody {
	t.Helper()
	var b wireBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("body %s: %v", raw, err)
	}
	got, _ := base64.StdEncoding.DecodeString(b.Message.Data)
	if b.Subscription != sub || b.Message.MessageID != id || b.Message.MessageID2 != id || string(got) != data ||
		fmt.Sprint(b.Message.Attributes) != fmt.Sprint(attrs) || time.Since(b.Message.PublishTime) > time.Minute ||
		!b.Message.PublishTime.Equal(b.Message.PublishTime2) {
		t.Errorf("body = %s\nwant subscription %s, id %s, data %q, attributes %v", raw, sub, id, data, attrs)
	}
	return b
}

func TestPushBodyMode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *pubsub.Client) {
		topic, sub := setup(t, c)
		srv, reqs := capture(t)
		start(t, Config{Client: c, Subscription: sub, Topic: topic, Target: srv.URL, Mode: PushBody, Concurrency: 4})
		ids := publish(t, c, topic,
			&pubsub.Message{Data: []byte(`{"requestId":"r1"}`), Attributes: map[string]string{"a": "1"}},
			&pubsub.Message{Data: []byte("plain")})
		got := map[string]request{}
		for range ids {
			r := receive(t, reqs)
			var b wireBody
			_ = json.Unmarshal(r.body, &b)
			got[b.Message.MessageID] = r
		}
		r := got[ids[0]]
		if r.path != "/"+topic {
			t.Errorf("path = %q, want /%s", r.path, topic)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		for k := range r.header {
			if len(k) > 3 && (k[:3] == "Ce-" || k[:3] == "ce-") {
				t.Errorf("push body mode sent header %s", k)
			}
		}
		checkBody(t, r.body, sub, ids[0], `{"requestId":"r1"}`, map[string]string{"a": "1"})
		checkBody(t, got[ids[1]].body, sub, ids[1], "plain", map[string]string{})
	})
}

func TestCloudEventBinaryMode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *pubsub.Client) {
		topic, sub := setup(t, c)
		srv, reqs := capture(t)
		// Topic left empty: Run looks it up from the subscription.
		start(t, Config{Client: c, Subscription: sub, Target: srv.URL + "/", Mode: CloudEventBinary, Concurrency: 4})
		ids := publish(t, c, topic, &pubsub.Message{Data: []byte("ce"), Attributes: map[string]string{"k": "v"}})
		r := receive(t, reqs)
		if r.path != "/" {
			t.Errorf("path = %q, want / (CloudEvent mode keeps the target's path)", r.path)
		}
		b := checkBody(t, r.body, sub, ids[0], "ce", map[string]string{"k": "v"})
		want := map[string]string{
			"Content-Type":   "application/json",
			"Ce-Specversion": "1.0",
			"Ce-Type":        "google.cloud.pubsub.topic.v1.messagePublished",
			"Ce-Source":      "//pubsub.googleapis.com/" + topic,
			"Ce-Id":          ids[0],
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		ceTime, err := time.Parse(time.RFC3339Nano, r.header.Get("Ce-Time"))
		if err != nil || !ceTime.Equal(b.Message.PublishTime) {
			t.Errorf("Ce-Time = %q (%v), want the publish time %v", r.header.Get("Ce-Time"), err, b.Message.PublishTime)
		}
	})
}

// TestRetries fails the first attempt of some messages with 500, answers one
// first attempt with 202 (not an ack), and checks that every message is acked
// exactly once, after the right number of attempts.
func TestRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *pubsub.Client) {
		topic, sub := setup(t, c)
		var mu sync.Mutex
		hits := map[string]int{}     // requests per message id
		kinds := map[string]string{} // message id -> "ok", "500", "202"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b wireBody
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, &b); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			hits[b.Message.MessageID]++
			n := hits[b.Message.MessageID]
			mu.Unlock()
			switch kind := b.Message.Attributes["kind"]; {
			case kind == "500" && n == 1:
				w.WriteHeader(http.StatusInternalServerError)
			case kind == "202" && n == 1:
				w.WriteHeader(http.StatusAccepted)
			case kind == "ok" || n > 1:
				w.WriteHeader([]int{200, 201, 204}[n%3])
			}
		}))
		t.Cleanup(srv.Close)

		var dmu sync.Mutex
		var deliveries []Delivery
		p := start(t, Config{
			Client: c, Subscription: sub, Topic: topic, Target: srv.URL, Concurrency: 8,
			Backoff: func(int) time.Duration { return 20 * time.Millisecond },
			OnDelivery: func(d Delivery) {
				dmu.Lock()
				deliveries = append(deliveries, d)
				dmu.Unlock()
			},
		})
		var msgs []*pubsub.Message
		want := map[int]string{0: "500", 3: "500", 7: "500", 5: "202"}
		const n = 12
		for i := 0; i < n; i++ {
			k := want[i]
			if k == "" {
				k = "ok"
			}
			msgs = append(msgs, &pubsub.Message{Data: []byte(fmt.Sprint(i)), Attributes: map[string]string{"kind": k}})
		}
		ids := publish(t, c, topic, msgs...)
		for i, id := range ids {
			kinds[id] = msgs[i].Attributes["kind"]
		}
		waitFor(t, "all messages acked", 60*time.Second, func() bool { return p.Stats().Acked >= n })
		time.Sleep(time.Second) // would-be redeliveries of acked messages

		mu.Lock()
		defer mu.Unlock()
		dmu.Lock()
		defer dmu.Unlock()
		ackedAt := map[string][]int{}
		for _, d := range deliveries {
			if d.Acked {
				ackedAt[d.MessageID] = append(ackedAt[d.MessageID], d.Attempt)
			} else if kinds[d.MessageID] == "ok" || d.Attempt != 1 || (d.Status != 500 && d.Status != 202) {
				t.Errorf("unexpected failed delivery %+v (kind %s)", d, kinds[d.MessageID])
			}
		}
		for _, id := range ids {
			wantAttempts := 1
			if kinds[id] != "ok" {
				wantAttempts = 2
			}
			if hits[id] != wantAttempts || len(ackedAt[id]) != 1 || ackedAt[id][0] != wantAttempts {
				t.Errorf("message %s (%s): %d requests, acked at attempts %v; want %d requests, acked once at attempt %d",
					id, kinds[id], hits[id], ackedAt[id], wantAttempts, wantAttempts)
			}
		}
		st := p.Stats()
		if st.Acked != n || st.Failed != 4 || st.Delivered != n+4 || st.InFlight != 0 {
			t.Errorf("Stats = %+v, want Acked %d, Failed 4, Delivered %d, InFlight 0", st, n, n+4)
		}
	})
}

// TestConcurrency checks that Concurrency 8 really means 8 requests at once
// (the emulator's own push never exceeds 2), and never more.
func TestConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *pubsub.Client) {
		const conc, n = 8, 24
		topic, sub := setup(t, c)
		var cur, peak atomic.Int64
		var timedOut atomic.Bool
		gate := make(chan struct{})
		var once sync.Once
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			v := cur.Add(1)
			for {
				p := peak.Load()
				if v <= p || peak.CompareAndSwap(p, v) {
					break
				}
			}
			if v >= conc {
				once.Do(func() { close(gate) })
			}
			select {
			case <-gate:
			case <-time.After(15 * time.Second):
				timedOut.Store(true)
			}
			cur.Add(-1)
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(srv.Close)
		p := start(t, Config{Client: c, Subscription: sub, Topic: topic, Target: srv.URL, Mode: CloudEventBinary, Concurrency: conc})
		msgs := make([]*pubsub.Message, n)
		for i := range msgs {
			msgs[i] = &pubsub.Message{Data: []byte(fmt.Sprint(i))}
		}
		publish(t, c, topic, msgs...)
		waitFor(t, "all messages acked", 60*time.Second, func() bool { return p.Stats().Acked >= n })
		if timedOut.Load() {
			t.Errorf("%d concurrent requests never arrived (peak %d)", conc, peak.Load())
		}
		if got := peak.Load(); got != conc {
			t.Errorf("server saw at most %d concurrent requests, want exactly %d", got, conc)
		}
		if st := p.Stats(); st.PeakInFlight != conc || st.Acked != n || st.Failed != 0 {
			t.Errorf("Stats = %+v, want PeakInFlight %d, Acked %d", st, conc, n)
		}
	})
}

func TestNewValidates(t *testing.T) {
	c, _ := pubsubtest.Pstest(t)
	for _, cfg := range []Config{
		{Subscription: "s", Target: "http://x/"},
		{Client: c, Target: "http://x/"},
		{Client: c, Subscription: "s", Target: "x/y"},
		{Client: c, Subscription: "s", Target: "http://x/", Mode: 7},
		{Client: c, Subscription: "s", Target: "http://x/", Concurrency: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
	p, err := New(Config{Client: c, Subscription: "s", Target: "http://x/"})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Concurrency != DefaultConcurrency || p.subscription != "projects/test-project/subscriptions/s" {
		t.Errorf("defaults: %+v, subscription %s", p.cfg, p.subscription)
	}
	tr := p.client.Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost < DefaultConcurrency || tr.DisableKeepAlives {
		t.Errorf("transport: MaxIdleConnsPerHost %d, DisableKeepAlives %v", tr.MaxIdleConnsPerHost, tr.DisableKeepAlives)
	}
}

func TestDefaultBackoff(t *testing.T) {
	for a := 0; a < 40; a++ {
		d := DefaultBackoff(a)
		lo, hi := 50*time.Millisecond, 10*time.Second
		if d < lo || d > hi {
			t.Errorf("DefaultBackoff(%d) = %v, want within [%v, %v]", a, d, lo, hi)
		}
	}
	if d := DefaultBackoff(1); d > 100*time.Millisecond {
		t.Errorf("DefaultBackoff(1) = %v, want ≤ 100ms", d)
	}
	if d := DefaultBackoff(30); d < 5*time.Second {
		t.Errorf("DefaultBackoff(30) = %v, want ≥ 5s", d)
	}
}

func TestAttemptsBounded(t *testing.T) {
	p := &Pusher{attempts: map[string]int{}}
	for i := 0; i < MaxTrackedMessages+10; i++ {
		p.nextAttempt(fmt.Sprint(i))
	}
	if len(p.attempts) > MaxTrackedMessages {
		t.Errorf("%d attempt counters kept, want ≤ %d", len(p.attempts), MaxTrackedMessages)
	}
	if p.nextAttempt("x") != 1 || p.nextAttempt("x") != 2 {
		t.Error("attempts do not count")
	}
	p.forget("x")
	if p.nextAttempt("x") != 1 {
		t.Error("forget did not reset")
	}
}

func TestRunMissingSubscription(t *testing.T) {
	c, _ := pubsubtest.Pstest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic := pubsubtest.TopicName(c.Project(), pubsubtest.UniqueID("t"))
	err := Run(ctx, Config{Client: c, Subscription: "missing", Topic: topic, Target: "http://127.0.0.1:1/"})
	if err == nil || ctx.Err() != nil {
		t.Errorf("Run on a missing subscription = %v (ctx %v), want an error before the deadline", err, ctx.Err())
	}
	p, err := New(Config{Client: c, Subscription: "missing", Target: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err == nil { // topic lookup fails
		t.Error("Run without Topic on a missing subscription = nil")
	}
}
