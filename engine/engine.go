package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/chat/v1"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// Engine holds the long-lived clients of one instance. Handle may be called
// from any number of goroutines at once; build one Engine per process.
type Engine struct {
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
	ledger     ledger.Store
	ownLedger  bool
	reads      *budget
	writes     *budget
	now        func() time.Time
	onChat     func(time.Duration)

	retries atomic.Int64
}

// Option adjusts how New builds an Engine (tests, the sandbox, tools).
type Option func(*options)

type options struct {
	logger    *slog.Logger
	ps        *pubsub.Client
	transport http.RoundTripper
	now       func() time.Time
	onChat    func(time.Duration)
	tokenOpts []option.ClientOption
	ledger    ledger.Store
}

// WithLedger makes the Engine record its decisions in s, which it will not
// close (default: Firestore, Config.FirestoreDatabase of Config.Project).
// The sandbox's embedded default uses ledger.NewMemory.
func WithLedger(s ledger.Store) Option { return func(o *options) { o.ledger = s } }

// WithLogger sets the logger (default: Cloud Logging JSON on stdout at
// Config.LogLevel).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithPubSubClient makes the Engine publish through c, which it will not
// close (default: a client of its own for Config.Project).
func WithPubSubClient(c *pubsub.Client) Option { return func(o *options) { o.ps = c } }

// WithTransport sets the base HTTP transport of Chat and Directory calls.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithClock replaces time.Now for event ages, MAX_EVENT_AGE, timestamps and
// the ledger's ages of intents. It must be safe for concurrent use. The
// budgets keep wall time: they pace calls against the invocation's deadline.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithChatObserver is called after every API attempt with its duration
// (load measurements). It must be safe for concurrent use.
func WithChatObserver(fn func(time.Duration)) Option { return func(o *options) { o.onChat = fn } }

// WithSecretManagerOptions adds client options for Secret Manager.
func WithSecretManagerOptions(opts ...option.ClientOption) Option {
	return func(o *options) { o.tokenOpts = append(o.tokenOpts, opts...) }
}

// New builds an Engine: the token source, the Chat and Directory clients,
// the ledger and the publishers. It makes no network call. Call it once per instance with
// context.Background().
func New(ctx context.Context, cfg Config, opts ...Option) (*Engine, error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	f := &Engine{cfg: cfg, log: o.logger, now: o.now, onChat: o.onChat}
	if f.log == nil {
		f.log = logging.New(os.Stdout, cfg.LogLevel)
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
	// One HTTP client for both Google APIs: the same token source, the same
	// connection pool; no redirect to another host (it would carry the token).
	hc := tokens.NewHTTPClient(src, baseTransport(o.transport), 60*time.Second)
	if f.chat, err = chat.NewService(ctx, serviceOptions(hc, cfg.ChatEndpoint)...); err != nil {
		return nil, fmt.Errorf("chat client: %w", err)
	}
	if f.dir, err = admin.NewService(ctx, serviceOptions(hc, cfg.DirectoryEndpoint)...); err != nil {
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
	f.ledger = o.ledger
	if f.ledger == nil {
		lc := ledger.Config{Retention: cfg.LedgerRetention, Now: f.now}
		if f.ledger, err = ledger.NewFirestoreWithConfig(ctx, cfg.Project, cfg.FirestoreDatabase, lc); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		f.ownLedger = true
	}
	f.protection.entries = cfg.Protected
	// The budgets pace real calls against real deadlines: wall time, not
	// the clock of WithClock (which ages events).
	f.writes = newBudget(cfg.WritesPerMinute, time.Now)
	f.reads = newBudget(cfg.ReadsPerMinute, time.Now)
	return f, nil
}

// baseTransport is rt, or a pooled transport sized for many concurrent
// events.
func baseTransport(rt http.RoundTripper) http.RoundTripper {
	if rt != nil {
		return rt
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// serviceOptions are the client options of a Google API service: hc, and
// endpoint when one is configured (an emulator).
func serviceOptions(hc *http.Client, endpoint string) []option.ClientOption {
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	return opts
}

// Close flushes and stops the publishers and closes the clients.
func (f *Engine) Close() error {
	if f.requests != nil {
		f.requests.Stop()
	}
	var errs []error
	if f.ownPS {
		errs = append(errs, f.ps.Close())
	}
	if f.ownLedger {
		errs = append(errs, f.ledger.Close())
	}
	errs = append(errs, f.tokens.Close())
	return errors.Join(errs...)
}

// TokenStats reports the token source's secret reads and refreshes.
func (f *Engine) TokenStats() tokens.Stats { return f.tokens.Stats() }

// Retries reports how many API calls were retried within invocations.
func (f *Engine) Retries() int64 { return f.retries.Load() }

func (f *Engine) observeChat(d time.Duration) {
	if f.onChat != nil {
		f.onChat(d)
	}
}
