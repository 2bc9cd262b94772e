package pubsubtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/internal/emuproc"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

type pushRequest struct {
	method, path string
	header       http.Header
	body         []byte
	at           time.Time
}

// recorder is an httptest handler that records push requests and answers
// with the codes in answers (then 204).
type recorder struct {
	mu      sync.Mutex
	reqs    []pushRequest
	answers []int
	got     chan struct{}
}

func newRecorder(answers ...int) *recorder {
	return &recorder{answers: answers, got: make(chan struct{}, 100)}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, pushRequest{req.Method, req.URL.Path, req.Header.Clone(), body, time.Now()})
	code := http.StatusNoContent
	if n := len(r.reqs); n <= len(r.answers) {
		code = r.answers[n-1]
	}
	r.mu.Unlock()
	w.WriteHeader(code)
	r.got <- struct{}{}
}

func (r *recorder) requests() []pushRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pushRequest(nil), r.reqs...)
}

func (r *recorder) wait(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("got %d push requests within %v, want %d", len(r.requests()), timeout, n)
		}
	}
}

// TestEmulatorPush documents the emulator's push format. Observed with the
// emulator 0.8.20 (Java 17), for a message with attributes:
//
//	POST /projects/P/topics/T HTTP/1.1
//	Content-Type: application/json
//	User-Agent: Java/17.0.15
//	Accept: text/html, image/gif, image/jpeg, */*; q=0.2
//	Connection: keep-alive
//	Content-Length: 257
//
//	{"subscription":"projects\/P\/subscriptions\/S","message":{"publishTime":"2026-11-28T22:06:10.284Z",
//	 "data":"eyJoZWxsbyI6IndvcmxkIn0=","publish_time":"2026-11-28T22:06:10.284Z","messageId":"1",
//	 "attributes":{"k":"v"},"message_id":"1"}}
//
// That is: both camelCase and snake_case ids and times (like real Pub/Sub),
// '/' escaped as '\/', publish time in UTC with milliseconds, messageId a
// decimal counter, no ce-* headers, no Authorization (no OIDC token), no
// deliveryAttempt without a dead-letter policy. A message without attributes
// is pushed with "attributes":{}. A 202 answer is not an ack: the
// same body is pushed again about 1 s later.
func TestEmulatorPush(t *testing.T) {
	host := Emulator(t)
	const project = "push-project"
	c := NewClient(t, host, project)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	topic, sub := UniqueID("topic"), UniqueID("sub")
	rec := newRecorder(http.StatusAccepted) // 202 first: must not count as an ack
	srv := httptest.NewServer(rec)
	defer srv.Close()
	if err := CreateTopic(ctx, c, project, topic); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopic(ctx, c, project, topic); err != nil { // idempotent
		t.Fatalf("second CreateTopic: %v", err)
	}
	endpoint := srv.URL + "/" + TopicName(project, topic)
	if err := CreatePushSubscription(ctx, c, project, sub, topic, endpoint); err != nil {
		t.Fatal(err)
	}
	// Push subscriptions need a moment before they deliver; publish once set up.
	pub := c.Publisher(topic)
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(`{"hello":"world"}`), Attributes: map[string]string{"k": "v"}}).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rec.wait(t, 2, 45*time.Second) // the 202, then the redelivery answered 204
	reqs := rec.requests()
	for i, r := range reqs {
		t.Logf("push %d at +%v: %s %s\nheaders: %v\nbody: %s", i, r.at.Sub(reqs[0].at).Round(time.Millisecond), r.method, r.path, r.header, r.body)
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/"+TopicName(project, topic) {
		t.Errorf("request = %s %s, want POST /%s", r.method, r.path, TopicName(project, topic))
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Subscription string `json:"subscription"`
		Message      struct {
			Data        string            `json:"data"`
			Attributes  map[string]string `json:"attributes"`
			MessageID   string            `json:"messageId"`
			PublishTime time.Time         `json:"publishTime"`
		} `json:"message"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	data, _ := base64.StdEncoding.DecodeString(body.Message.Data)
	if string(data) != `{"hello":"world"}` || body.Message.Attributes["k"] != "v" || body.Message.MessageID != id ||
		body.Subscription != SubscriptionName(project, sub) || time.Since(body.Message.PublishTime) > time.Minute {
		t.Errorf("push body = %s (message id %s)", r.body, id)
	}
	if string(reqs[1].body) != string(r.body) {
		t.Errorf("redelivery body differs:\n%s\n%s", reqs[1].body, r.body)
	}
	// After the 204 nothing more arrives.
	time.Sleep(2 * time.Second)
	if n := len(rec.requests()); n != 2 {
		t.Fatalf("%d push requests after the 204, want 2", n)
	}

	// A message without attributes.
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("x")}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1, 30*time.Second)
	last := rec.requests()[2]
	t.Logf("push without attributes: %s", last.body)
	var raw struct {
		Message map[string]json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(last.body, &raw); err != nil {
		t.Fatal(err)
	}
	if a := string(raw.Message["attributes"]); a != "{}" {
		t.Errorf("attributes of a message without any = %q, want {}", a)
	}
}

func TestEmulatorShared(t *testing.T) {
	h1 := Emulator(t)
	h2 := Emulator(t)
	if h1 != h2 {
		t.Errorf("Emulator returned %s then %s, want one shared emulator", h1, h2)
	}
}

func TestPstestPull(t *testing.T) {
	c, srv := Pstest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic, sub := UniqueID("t"), UniqueID("s")
	if err := CreateTopic(ctx, c, c.Project(), topic); err != nil {
		t.Fatal(err)
	}
	if err := CreatePullSubscription(ctx, c, c.Project(), sub, topic, `attributes.keep = "yes"`); err != nil {
		t.Fatal(err)
	}
	srv.Publish(TopicName(c.Project(), topic), []byte("drop"), map[string]string{"keep": "no"})
	srv.Publish(TopicName(c.Project(), topic), []byte("keep"), map[string]string{"keep": "yes"})
	got := make(chan string, 2)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(time.Second)
		rcancel()
	}()
	err := c.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		got <- string(m.Data)
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	close(got)
	var all []string
	for s := range got {
		all = append(all, s)
	}
	if len(all) != 1 || all[0] != "keep" {
		t.Errorf("received %q, want [keep]", all)
	}
}

func TestUniqueID(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)
	seen := map[string]bool{}
	for _, p := range []string{"", "topic", "TestX/sub test", "9lives"} {
		for i := 0; i < 50; i++ {
			id := UniqueID(p)
			if !valid.MatchString(id) || seen[id] {
				t.Fatalf("UniqueID(%q) = %q: invalid or repeated", p, id)
			}
			seen[id] = true
		}
	}
}

func TestStartEmulatorStops(t *testing.T) {
	if os.Getenv(EnvEmulatorHost) != "" {
		t.Skip("PUBSUB_EMULATOR_HOST is set: StartEmulator does not start one")
	}
	if testing.Short() {
		t.Skip("starts a second emulator")
	}
	start := time.Now()
	host, stop, err := StartEmulator(context.Background())
	if err != nil {
		if strings.Contains(err.Error(), ErrEmulatorNotFound.Error()) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Logf("emulator on %s ready after %v", host, time.Since(start).Round(time.Millisecond))
	if err := emuproc.DialCheck(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := emuproc.DialCheck(context.Background(), host); err == nil {
		t.Errorf("emulator at %s still answers after stop", host)
	}
}
