// Package pusher delivers the messages of a Pub/Sub subscription to an HTTP
// endpoint the way Pub/Sub push or Eventarc would, but with real concurrency.
//
// The Pub/Sub emulator pushes at most 2 requests at a time per subscription,
// too few for load and concurrency tests. A [Pusher] pulls from a (pull)
// subscription instead, with the emulator or pstest alike, and POSTs each
// message, up to Config.Concurrency at a time, either as the raw push body
// of a push subscription (which the function's engine.EventHandler turns into
// the messagePublished CloudEvent), or as a binary-mode CloudEvent as Eventarc
// sends it. Like the emulator it acknowledges a message only when the
// endpoint answers 102, 200, 201, 203 or 204; anything else (202 included)
// and transport errors nack it after a backoff delay, so Pub/Sub redelivers it.
package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
)

// Mode is how a message is put on the wire. It is a plain value.
type Mode int

const (
	// PushBody POSTs the Pub/Sub push body
	// {"message":{"data","attributes","messageId","message_id","publishTime","publish_time"},"subscription"}
	// with Content-Type application/json, exactly as the emulator's push does.
	// engine.EventHandler turns it into the messagePublished CloudEvent, with
	// the URL path (by default /projects/P/topics/T) as its source.
	PushBody Mode = iota
	// CloudEventBinary POSTs a binary-mode CloudEvent as Eventarc does:
	// headers ce-specversion 1.0, ce-type google.cloud.pubsub.topic.v1.messagePublished,
	// ce-source //pubsub.googleapis.com/projects/P/topics/T, ce-id (the message
	// id), ce-time (the publish time), Content-Type application/json, and the
	// same body as PushBody.
	CloudEventBinary
)

// String returns "push-body" or "cloudevent-binary". Safe for concurrent use.
func (m Mode) String() string {
	switch m {
	case PushBody:
		return "push-body"
	case CloudEventBinary:
		return "cloudevent-binary"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// CloudEventType is the ce-type of a Pub/Sub message published event.
const CloudEventType = contract.PublishedEventType

// Defaults of Config, and the bound of the per-message attempt counters.
const (
	DefaultConcurrency    = 80
	DefaultRequestTimeout = 60 * time.Second
	// MaxTrackedMessages bounds the per-message attempt counters: past it,
	// the counter of an arbitrary other message is forgotten (that message's
	// next attempt then counts from 1 again).
	MaxTrackedMessages = 100_000
)

// Config configures a Pusher. Client, Subscription and Target are required.
// New copies it; the functions and clients in it are then used from many
// goroutines at once, so they must be safe for concurrent use.
type Config struct {
	// Client is the Pub/Sub client (pstest or emulator) to pull with.
	Client *pubsub.Client
	// Subscription is a pull subscription, id (in Client's project) or full name.
	Subscription string
	// Topic is the subscription's topic, id or full name, used for ce-source
	// and the default push path. If empty, Run looks it up.
	Topic string
	// Target is the URL to POST to. In PushBody mode, a Target whose path is
	// empty or "/" gets the path /projects/P/topics/T of Topic.
	Target string
	// Mode selects the wire format; default PushBody.
	Mode Mode
	// Concurrency is the most requests in flight at a time; default 80.
	Concurrency int
	// HTTPClient sends the requests, concurrently. Default: a client with
	// keep-alives and Concurrency idle connections per host (twice that in
	// all), and no overall timeout (RequestTimeout bounds each request).
	HTTPClient *http.Client
	// RequestTimeout bounds one request (like a push subscription's ack
	// deadline); default 60 s. (An addition to the original design.)
	RequestTimeout time.Duration
	// Backoff is the delay before a message that failed its attempt-th
	// delivery (1-based) is nacked and so redelivered. Default: exponential
	// from 100 ms to 10 s, with jitter. It is called concurrently.
	Backoff func(attempt int) time.Duration
	// OnDelivery, if set, is called after every delivery attempt: after the
	// ack for a success, before the backoff for a failure. It is called
	// concurrently from many goroutines and must not block for long.
	OnDelivery func(Delivery)
}

// Delivery describes one delivery attempt of one message. It is a plain
// value, passed to Config.OnDelivery.
type Delivery struct {
	MessageID string
	Attempt   int           // 1 for the first delivery of MessageID by this Pusher
	Status    int           // HTTP status, 0 if no response
	Err       error         // transport error, or nil
	Duration  time.Duration // of the HTTP exchange
	Acked     bool          // the message was acked (Status is an ack code)
}

// Stats is a snapshot of a Pusher's counters since New, a plain value. Delivered counts finished attempts (acked or
// not), so Delivered == Acked + Failed; InFlight is the number of requests
// under way now and PeakInFlight its maximum so far.
type Stats struct {
	Delivered, Acked, Failed, InFlight, PeakInFlight int64
}

// Pusher pulls messages from a subscription and POSTs them to a target.
// Its methods may be called concurrently, but Run may be active only once at
// a time.
type Pusher struct {
	cfg          Config
	target       *url.URL
	subscription string
	client       *http.Client
	sem          chan struct{}
	running      atomic.Bool

	delivered, acked, failed, inFlight, peak atomic.Int64

	mu       sync.Mutex
	attempts map[string]int
}

// New checks cfg, fills in the defaults and returns a Pusher. It makes no
// network call.
func New(cfg Config) (*Pusher, error) {
	if cfg.Client == nil {
		return nil, errors.New("pusher: Config.Client is nil")
	}
	if cfg.Subscription == "" {
		return nil, errors.New("pusher: Config.Subscription is empty")
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pusher: Config.Target %q is not an http(s) URL", cfg.Target)
	}
	if cfg.Mode != PushBody && cfg.Mode != CloudEventBinary {
		return nil, fmt.Errorf("pusher: unknown %v", cfg.Mode)
	}
	if cfg.Concurrency < 0 {
		return nil, fmt.Errorf("pusher: Config.Concurrency %d is negative", cfg.Concurrency)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	p := &Pusher{
		cfg:          cfg,
		target:       u,
		subscription: qualify(cfg.Client.Project(), "subscriptions", cfg.Subscription),
		client:       cfg.HTTPClient,
		sem:          make(chan struct{}, cfg.Concurrency),
		attempts:     make(map[string]int),
	}
	if cfg.Topic != "" {
		p.cfg.Topic = qualify(cfg.Client.Project(), "topics", cfg.Topic)
	}
	if p.client == nil {
		p.client = newHTTPClient(cfg.Concurrency)
	}
	return p, nil
}

func qualify(project, kind, nameOrID string) string {
	if strings.HasPrefix(nameOrID, "projects/") {
		return nameOrID
	}
	return "projects/" + project + "/" + kind + "/" + nameOrID
}

func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// DefaultBackoff is exponential from 100 ms (attempt 1) to 10 s, with
// "equal jitter" (between half and all of the exponential value). It is safe
// for concurrent use.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := 10 * time.Second
	if attempt <= 7 { // 100ms << 7 = 12.8 s
		d = min(100*time.Millisecond<<(attempt-1), d)
	}
	return d/2 + rand.N(d/2+1)
}

// Stats returns the counters; safe to call at any time from any goroutine.
func (p *Pusher) Stats() Stats {
	return Stats{
		Delivered:    p.delivered.Load(),
		Acked:        p.acked.Load(),
		Failed:       p.failed.Load(),
		InFlight:     p.inFlight.Load(),
		PeakInFlight: p.peak.Load(),
	}
}

// Run pulls and delivers messages until ctx is done, then waits for the
// deliveries under way (which ctx cancels: their messages are nacked) and
// returns nil. It returns an error if the subscription cannot be read (for
// example, it does not exist) or if Run is already active on p.
func (p *Pusher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pusher: Run is already active")
	}
	defer p.running.Store(false)

	topic := p.cfg.Topic
	if topic == "" {
		s, err := p.cfg.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: p.subscription})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pusher: looking up the topic of %s: %w", p.subscription, err)
		}
		topic = s.GetTopic()
	}
	target := *p.target
	if p.cfg.Mode == PushBody && (target.Path == "" || target.Path == "/") {
		target.Path = "/" + topic
		target.RawPath = ""
	}

	sub := p.cfg.Client.Subscriber(p.subscription)
	sub.ReceiveSettings.MaxOutstandingMessages = 2 * p.cfg.Concurrency // some may wait for their backoff
	sub.ReceiveSettings.MaxOutstandingBytes = -1
	sub.ReceiveSettings.NumGoroutines = numStreams(p.cfg.Concurrency)
	err := sub.Receive(ctx, func(mctx context.Context, m *pubsub.Message) {
		p.deliver(mctx, m, target.String(), topic)
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("pusher: receiving from %s: %w", p.subscription, err)
	}
	return nil
}

// Run is New(cfg) followed by (*Pusher).Run(ctx). Several Runs may be active
// at once, even on one subscription (they then share its messages).
func Run(ctx context.Context, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// isAck tells the answers that the emulator (and this pusher) take as an ack.
func isAck(status int) bool {
	switch status {
	case 102, 200, 201, 203, 204:
		return true
	}
	return false
}

func (p *Pusher) nextAttempt(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.attempts[id]
	if !ok && len(p.attempts) >= MaxTrackedMessages {
		for k := range p.attempts {
			delete(p.attempts, k)
			break
		}
	}
	n++
	p.attempts[id] = n
	return n
}

func (p *Pusher) forget(id string) {
	p.mu.Lock()
	delete(p.attempts, id)
	p.mu.Unlock()
}

func (p *Pusher) deliver(ctx context.Context, m *pubsub.Message, target, topic string) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		m.Nack()
		return
	}
	attempt := p.nextAttempt(m.ID)
	n := p.inFlight.Add(1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	start := time.Now()
	status, err := p.post(ctx, m, target, topic)
	d := Delivery{MessageID: m.ID, Attempt: attempt, Status: status, Err: err, Duration: time.Since(start)}
	p.inFlight.Add(-1)
	<-p.sem

	p.delivered.Add(1)
	if err == nil && isAck(status) {
		p.forget(m.ID)
		m.Ack()
		p.acked.Add(1)
		d.Acked = true
		if p.cfg.OnDelivery != nil {
			p.cfg.OnDelivery(d)
		}
		return
	}
	p.failed.Add(1)
	if p.cfg.OnDelivery != nil {
		p.cfg.OnDelivery(d)
	}
	t := time.NewTimer(p.cfg.Backoff(attempt))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	m.Nack()
}

// Body returns the push body of m for subscription (a full name) as Pub/Sub
// and its emulator push it: data in base64, attributes ({} when there are
// none), messageId/message_id, publishTime/publish_time (RFC 3339, UTC),
// orderingKey and deliveryAttempt when set. Safe for concurrent use.
func Body(m *pubsub.Message, subscription string) ([]byte, error) {
	attrs := m.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	t := m.PublishTime.UTC().Format(time.RFC3339Nano)
	return json.Marshal(engine.PushBody{
		Message: &engine.PushMessage{
			Data: m.Data, Attributes: attrs,
			MessageID: m.ID, MessageIDSnake: m.ID,
			PublishTime: t, PublishTimeSnake: t,
			OrderingKey: m.OrderingKey, DeliveryAttempt: m.DeliveryAttempt,
		},
		Subscription: subscription,
	})
}

// NewRequest returns the POST to target that delivers m, received on
// subscription (a full name) of topic (a full name), in mode: the push body
// of Body, with the ce- headers of a binary-mode CloudEvent in
// CloudEventBinary mode. Safe for concurrent use.
func NewRequest(ctx context.Context, mode Mode, target, topic, subscription string, m *pubsub.Message) (*http.Request, error) {
	body, err := Body(m, subscription)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if mode == CloudEventBinary {
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", CloudEventType)
		req.Header.Set("Ce-Source", "//pubsub.googleapis.com/"+topic)
		req.Header.Set("Ce-Id", m.ID)
		req.Header.Set("Ce-Time", m.PublishTime.UTC().Format(time.RFC3339Nano))
	}
	return req, nil
}

func (p *Pusher) post(ctx context.Context, m *pubsub.Message, target, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	req, err := NewRequest(ctx, p.cfg.Mode, target, topic, p.subscription, m)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain (a bounded amount) so that the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// numStreams is the number of StreamingPull streams for a concurrency: one
// per 10 requests in flight, 1 to 8. One stream is plenty for the emulator,
// but pstest hands out about one message per stream every 10 ms.
func numStreams(concurrency int) int {
	return max(1, min(concurrency/10, 8))
}
