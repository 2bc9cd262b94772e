// Package offboard is chat-offboard's Cloud Run function: it takes people out
// of Google Chat spaces when an HR or directory system publishes a removal
// request, and publishes one result event per decision.
//
// The function RemoveMembership is registered with the functions framework in
// init() and receives Pub/Sub messages as CloudEvents
// (google.cloud.pubsub.topic.v1.messagePublished), read by EventHandler in
// the request's own goroutine. docs/design.md holds the
// contract: configuration, request and result schemas, and the outcome table
// that Handle applies.
package offboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/chat/v1"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/request"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// FunctionName is the entry point registered with the functions framework.
const FunctionName = "RemoveMembership"

// init registers RemoveMembership behind EventHandler, as an HTTP function:
// the framework's own CloudEvent wrapper can leave a request unanswered until
// another one arrives and run an event under another request's context
// (EventHandler says why).
func init() {
	functions.HTTP(FunctionName, EventHandler(RemoveMembership).ServeHTTP)
}

// instance is this process's Function, built at the first event from the
// environment with context.Background(), and shared by every event after.
var instance struct {
	once sync.Once
	f    *Function
	err  error
}

// RemoveMembership is the CloudEvent function. It may run concurrently for
// many events; they share one Function. Bad configuration is logged once, as
// one line naming the variable, and every event is then answered with an
// error so that nothing is acknowledged (and lost) until it is fixed.
func RemoveMembership(ctx context.Context, e event.Event) error {
	instance.once.Do(func() {
		cfg, err := LoadConfig(os.Getenv)
		if err != nil {
			instance.err = err
			NewLogger(os.Stderr, slog.LevelInfo).Log(ctx, LevelCritical, "the function is misconfigured; no event will be processed until it is fixed", "error", err.Error())
			return
		}
		instance.f, instance.err = New(context.Background(), cfg)
		if instance.err != nil {
			NewLogger(os.Stderr, slog.LevelInfo).Log(ctx, LevelCritical, "the function could not start", "error", instance.err.Error())
		}
	})
	if instance.err != nil {
		return instance.err
	}
	return instance.f.Handle(ctx, e)
}

// Function holds the long-lived clients of one instance. Handle may be called
// from any number of goroutines at once; build one Function per process.
type Function struct {
	cfg        Config
	log        *slog.Logger
	tokens     *tokens.Source
	chat       *chat.Service
	dir        *admin.Service
	ps         *pubsub.Client
	ownPS      bool
	results    publisher
	requests   *pubsub.Publisher // fan-out children; nil without REQUEST_TOPIC
	protection protection
	reads      *budget
	writes     *budget
	pending    pendingRemovals
	now        func() time.Time
	onChat     func(time.Duration)

	retries atomic.Int64
}

// Option adjusts how New builds a Function (tests, the sandbox, tools).
type Option func(*options)

type options struct {
	logger    *slog.Logger
	ps        *pubsub.Client
	transport http.RoundTripper
	now       func() time.Time
	onChat    func(time.Duration)
	tokenOpts []option.ClientOption
}

// WithLogger sets the logger (default: Cloud Logging JSON on stdout at
// Config.LogLevel).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithPubSubClient makes the Function publish through c, which it will not
// close (default: a client of its own for Config.Project).
func WithPubSubClient(c *pubsub.Client) Option { return func(o *options) { o.ps = c } }

// WithTransport sets the base HTTP transport of Chat API calls.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithClock replaces time.Now for event ages and timestamps.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithChatObserver is called after every Chat API attempt with its duration
// (load measurements). It must be safe for concurrent use.
func WithChatObserver(fn func(time.Duration)) Option { return func(o *options) { o.onChat = fn } }

// WithSecretManagerOptions adds client options for Secret Manager.
func WithSecretManagerOptions(opts ...option.ClientOption) Option {
	return func(o *options) { o.tokenOpts = append(o.tokenOpts, opts...) }
}

// New builds a Function: the token source, the Chat API client and the
// result publisher. It makes no network call. Call it once per instance with
// context.Background().
func New(ctx context.Context, cfg Config, opts ...Option) (*Function, error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	f := &Function{cfg: cfg, log: o.logger, now: o.now, onChat: o.onChat}
	if f.log == nil {
		f.log = NewLogger(os.Stdout, cfg.LogLevel)
	}
	if f.now == nil {
		f.now = time.Now
	}
	src, err := tokens.New(ctx, tokens.Config{
		Secret:                cfg.TokenSecret,
		SecretManagerEndpoint: cfg.SecretManagerEndpoint,
		TokenURL:              cfg.OAuthTokenURL,
		Logger:                f.log,
		ClientOptions:         o.tokenOpts,
	})
	if err != nil {
		return nil, &ConfigError{Var: "SECRET_MANAGER_ENDPOINT or TOKEN_SECRET", Reason: err.Error()}
	}
	f.tokens = src
	base := o.transport
	if base == nil {
		base = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
	}
	chatOpts := []option.ClientOption{option.WithHTTPClient(&http.Client{
		Transport: &tokens.Transport{Source: src, Base: base},
		Timeout:   60 * time.Second,
	})}
	if cfg.ChatEndpoint != "" {
		chatOpts = append(chatOpts, option.WithEndpoint(cfg.ChatEndpoint))
	}
	if f.chat, err = chat.NewService(ctx, chatOpts...); err != nil {
		return nil, fmt.Errorf("chat client: %w", err)
	}
	dirOpts := []option.ClientOption{option.WithHTTPClient(&http.Client{
		Transport: &tokens.Transport{Source: src, Base: base},
		Timeout:   60 * time.Second,
	})}
	if cfg.DirectoryEndpoint != "" {
		dirOpts = append(dirOpts, option.WithEndpoint(cfg.DirectoryEndpoint))
	}
	if f.dir, err = admin.NewService(ctx, dirOpts...); err != nil {
		return nil, fmt.Errorf("directory client: %w", err)
	}
	f.ps = o.ps
	if f.ps == nil {
		if f.ps, err = pubsub.NewClient(ctx, cfg.Project); err != nil {
			return nil, fmt.Errorf("pubsub client: %w", err)
		}
		f.ownPS = true
	}
	f.results = &directPublisher{c: f.ps, topic: cfg.ResultTopic}
	if cfg.RequestTopic != "" {
		// Children are published many at a time by one event: batched.
		f.requests = f.ps.Publisher(cfg.RequestTopic)
		f.requests.PublishSettings.DelayThreshold = time.Millisecond
		f.requests.PublishSettings.Timeout = 20 * time.Second
	}
	f.protection.entries = cfg.Protected
	f.writes = newBudget(cfg.WritesPerMinute)
	f.reads = newBudget(cfg.ReadsPerMinute)
	return f, nil
}

// Close flushes and stops the publishers and closes the clients.
func (f *Function) Close() error {
	if f.requests != nil {
		f.requests.Stop()
	}
	var errs []error
	if f.ownPS {
		errs = append(errs, f.ps.Close())
	}
	errs = append(errs, f.tokens.Close())
	return errors.Join(errs...)
}

// TokenStats reports the token source's secret reads and refreshes.
func (f *Function) TokenStats() tokens.Stats { return f.tokens.Stats() }

// Retries reports how many Chat API calls were retried within invocations.
func (f *Function) Retries() int64 { return f.retries.Load() }

func (f *Function) observeChat(d time.Duration) {
	if f.onChat != nil {
		f.onChat(d)
	}
}

// Handle processes one messagePublished CloudEvent: it decodes and validates
// the request, acts on the Chat API, and publishes the result. It returns nil
// once the decision is published (permanent outcomes included), and an error
// when Pub/Sub should deliver the event again (docs/design.md, "Outcomes and
// retries"). The context's deadline bounds all work, retries included.
func (f *Function) Handle(ctx context.Context, e event.Event) error {
	ctx, cancel := f.withDeadline(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	log := f.log.With("eventId", e.ID())

	if e.Type() == ResultEventType {
		log.WarnContext(ctx, "a result event was delivered as a request; acknowledged without an answer (is a subscription of RESULT_TOPIC pushing to this function?)")
		return nil
	}
	msg, err := DecodeEvent(e)
	if err != nil {
		r := f.result(Message{ID: e.ID()}, nil, e.ID())
		f.reject(r, &request.Error{Reason: err.Error()})
		return f.report(ctx, log, r)
	}
	if msg.Attributes["ce-type"] == ResultEventType {
		log.WarnContext(ctx, "a result message arrived on the requests topic; acknowledged without an answer (results must not be published to REQUEST_TOPIC)", "messageId", msg.ID)
		return nil
	}
	v, err := request.Parse(msg.Data, msg.ID)
	if err != nil {
		r := f.result(msg, nil, looseRequestID(msg.Data, msg.ID))
		f.reject(r, err)
		return f.report(ctx, log.With("requestId", r.RequestID), r)
	}
	log = log.With("requestId", v.RequestID)
	if v.Name != "" {
		log = log.With("membership", v.Name)
	}
	r := f.result(msg, v, v.RequestID)
	r.Membership = v.Name
	if f.expired(msg) {
		info := &ErrorInfo{Message: fmt.Sprintf("event published at %s is older than MAX_EVENT_AGE (%s); not acted on", msg.PublishTime.UTC().Format(time.RFC3339), f.cfg.MaxEventAge)}
		if v.Kind == request.KindSpaceMembers {
			return f.expireSpaceMembers(ctx, log, msg, v, v.People, info)
		}
		r.Outcome, r.Error = OutcomeExpired, info
		return f.report(ctx, log, r)
	}
	sc := &scope{log: log, deadline: deadline.Add(-publishReserve)}
	if !msg.PublishTime.IsZero() {
		sc.expiry = msg.PublishTime.Add(f.cfg.MaxEventAge)
	}
	switch v.Kind {
	case request.KindBulk:
		err = f.planBulk(ctx, v, r)
	case request.KindSweep:
		err = f.sweepPage(ctx, sc, msg, v, r)
	case request.KindSpaceMembers:
		sc.log = log.With("space", v.SpaceNames[0])
		if err := f.sweepSpace(ctx, sc, msg, v); err != nil {
			return f.transient(ctx, sc.log, msg, r, err)
		}
		return nil
	default:
		err = f.removeOne(ctx, sc, v, r)
	}
	var fe *fanOutError
	if errors.As(err, &fe) {
		f.reject(r, fe.err)
		r.Detail = "the request cannot fan out: nothing was published and nothing was removed"
		return f.report(ctx, log, r)
	}
	if err != nil {
		return f.transient(ctx, log, msg, r, err)
	}
	return f.report(ctx, log, r)
}

// withDeadline gives ctx a deadline when it has none.
func (f *Function) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.cfg.EventTimeout)
}

// expired reports whether the message is older than MAX_EVENT_AGE.
func (f *Function) expired(m Message) bool {
	return !m.PublishTime.IsZero() && f.now().Sub(m.PublishTime) > f.cfg.MaxEventAge
}

// transient decides what to do with an error that Pub/Sub could retry: past
// MAX_EVENT_AGE (or when a Chat call gave up because the event would pass
// it) the event is answered expired with that error; otherwise a WARNING
// (CRITICAL when an operator must act) is logged and the error is returned
// for redelivery.
func (f *Function) transient(ctx context.Context, log *slog.Logger, m Message, r *Result, err error) error {
	if f.expired(m) || errors.Is(err, errEventExpired) {
		r.Outcome = OutcomeExpired
		r.Error = errorInfo(err)
		return f.report(ctx, log, r)
	}
	level := slog.LevelWarn
	var ua *unauthorizedError
	var pe *protectionError
	if tokens.IsPermanent(err) || errors.As(err, &ua) || errors.As(err, &pe) {
		level = LevelCritical
	}
	log.Log(ctx, level, "transient failure; the event will be redelivered", "error", err.Error(), "attempts", r.Attempts)
	return err
}

// result starts a Result with what every outcome carries.
func (f *Function) result(m Message, v *request.Valid, requestID string) *Result {
	r := &Result{RequestID: requestID, SourceMessageID: m.ID}
	if v != nil {
		r.ParentRequestID = v.ParentRequestID
		r.AdminAccess = v.AdminAccess
		r.DryRun = v.DryRun
		r.Reason = v.Reason
		r.RequestedBy = v.RequestedBy
	}
	return r
}

func (f *Function) reject(r *Result, err error) {
	r.Outcome = OutcomeInvalid
	r.Error = &ErrorInfo{Code: http.StatusBadRequest, Status: "INVALID_ARGUMENT", Message: err.Error()}
}

// looseRequestID finds the requestId of a request that failed validation, so
// that the invalid result reaches whoever filters on it.
func looseRequestID(data []byte, fallback string) string {
	var x struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(data, &x) != nil || x.RequestID == "" || len(x.RequestID) > 512 {
		return fallback
	}
	for _, c := range x.RequestID {
		if c < 0x20 || c == 0x7f {
			return fallback
		}
	}
	return x.RequestID
}

// report publishes r and returns nil once Pub/Sub has acknowledged it, or the
// publish error (so that the event is redelivered and nothing is lost).
func (f *Function) report(ctx context.Context, log *slog.Logger, r *Result) error {
	if r.Outcome == OutcomeNotMember {
		if earlier, ok := f.pending.get(r); ok {
			// This delivery's 404 is an earlier delivery's removal.
			earlier.Detail = "removed by an earlier delivery of this request, whose result could not be published then"
			r = &earlier
		}
	}
	r.ProcessedAt = f.now().UTC()
	msg, err := resultMessage(r)
	if err != nil {
		return err
	}
	if err := f.results.publish(ctx, msg); err != nil {
		if r.Outcome == OutcomeRemoved {
			f.pending.put(r)
		}
		log.Warn("result not published; the event will be redelivered", "outcome", r.Outcome, "error", err.Error())
		return fmt.Errorf("publishing the %s result: %w", r.Outcome, err)
	}
	if r.Outcome == OutcomeRemoved {
		f.pending.remove(r)
	}
	level := slog.LevelInfo
	if r.Outcome == OutcomeFailed || r.Outcome == OutcomeExpired {
		level = slog.LevelWarn
	}
	attrs := []any{"outcome", r.Outcome}
	if r.Error != nil {
		attrs = append(attrs, "error", r.Error.Message)
	}
	log.Log(ctx, level, "decision published", attrs...)
	return nil
}
