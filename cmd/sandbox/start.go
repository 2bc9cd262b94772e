package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
)

// start brings everything up: emulations, Pub/Sub, the function and the
// deliveries to it, and the reader of the results.
func (s *sandbox) start(ctx context.Context) error {
	s.started = time.Now()
	var err error
	if s.stack, err = emulator.StartAll(s.ws, emulator.ChatOptions{}); err != nil {
		return fmt.Errorf("starting the emulations: %w", err)
	}
	s.before = s.stack.Chat.Snapshot()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.startPubSub(sctx); err != nil {
		return err
	}
	if err := s.startFunction(ctx); err != nil {
		return err
	}
	// Deliveries and results, until close.
	bctx, bcancel := context.WithCancel(context.Background())
	s.cancelBG = bcancel
	s.background(func() error {
		if err := s.ps.Subscriber(s.resSub).Receive(bctx, s.onResult); err != nil && bctx.Err() == nil {
			return fmt.Errorf("reading results: %w", err)
		}
		return nil
	})
	if err := s.startDeliveries(sctx, bctx); err != nil {
		return err
	}
	s.publisher = s.ps.Publisher(s.reqTopic)
	s.publisher.PublishSettings.DelayThreshold = time.Millisecond
	return nil
}

// background runs f until close, reporting its error on s.bgErr.
func (s *sandbox) background(f func() error) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := f(); err != nil {
			s.bgErr <- err
		}
	}()
}

// startPubSub connects to the emulator (or starts pstest) and creates the
// topics and the subscription to the results.
func (s *sandbox) startPubSub(ctx context.Context) error {
	if s.o.emulator != "" {
		s.psHost = s.o.emulator
	} else {
		s.pst = pstest.NewServerWithAddress("127.0.0.1:0")
		s.psHost = s.pst.Addr
	}
	var err error
	if s.ps, err = pubsub.NewClient(context.Background(), s.o.project, pubsubtest.ClientOptions(s.psHost)...); err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	s.reqTopic = pubsubtest.TopicName(s.o.project, s.o.topic)
	s.resTopic = pubsubtest.TopicName(s.o.project, s.o.resultTopic)
	for _, t := range []string{s.reqTopic, s.resTopic} {
		if err := pubsubtest.CreateTopic(ctx, s.ps, s.o.project, t); err != nil {
			if s.o.emulator != "" {
				return fmt.Errorf("the Pub/Sub emulator at %s (--emulator, default $PUBSUB_EMULATOR_HOST) does not answer: %w; "+
					"start it, or run with --emulator= for the in-process Pub/Sub", s.psHost, err)
			}
			return err
		}
	}
	s.resSub = pubsubtest.SubscriptionName(s.o.project, pubsubtest.UniqueID("sandbox-results"))
	return pubsubtest.CreatePullSubscription(ctx, s.ps, s.o.project, s.resSub, s.resTopic, "")
}

// startFunction builds the function, configured exactly as in production
// (from its environment variables, here a list that --serve prints), and
// serves it as production does: engine.EventHandler behind the functions
// framework.
func (s *sandbox) startFunction(ctx context.Context) error {
	s.env = s.functionEnv()
	cfg, err := engine.LoadConfig(s.getenv)
	if err != nil {
		return err
	}
	var logw io.Writer = s.logs
	if s.o.verbose {
		logw = s.errw
	}
	store, ledgerProject, err := sandboxLedger(cfg.Project)
	if err != nil {
		return err
	}
	s.ledger, s.ledgerProject = store, ledgerProject
	if s.fn, err = engine.New(context.Background(), cfg,
		engine.WithPubSubClient(s.ps), engine.WithLogger(logging.New(logw, cfg.LogLevel)), engine.WithLedger(store)); err != nil {
		return fmt.Errorf("building the function: %w", err)
	}
	s.fnURL, s.detach, err = serveFunction(ctx, s.o.port, engine.EventHandler(s.handle))
	return err
}

// functionEnv is the function's environment.
func (s *sandbox) functionEnv() []envVar {
	protected := s.o.protected
	if !s.o.protectedOK {
		protected = s.ws.Admins[0] + ",app"
	}
	level := "info"
	if s.o.verbose {
		level = "debug"
	}
	return []envVar{
		{"GOOGLE_CLOUD_PROJECT", s.o.project},
		{"TOKEN_SECRET", s.stack.SecretName},
		{"RESULT_TOPIC", s.o.resultTopic},
		{"REQUEST_TOPIC", s.o.topic},
		{"PROTECTED_MEMBERS", protected},
		{"CHAT_ENDPOINT", s.stack.Chat.URL()},
		{"DIRECTORY_ENDPOINT", s.stack.Directory.URL()},
		{"SECRET_MANAGER_ENDPOINT", s.stack.Secrets.Addr()},
		{"PUBSUB_EMULATOR_HOST", s.psHost},
		{"CLOUD_RUN_TIMEOUT_SECONDS", fmt.Sprint(invocationTimeout)},
		{"LOG_LEVEL", level},
		// Suspensions, archives and deletions in the workspace's own
		// domain sweep their person (docs/design.md, "Offboarding that
		// starts itself").
		{"AUTO_OFFBOARD_DOMAINS", s.adminDomain()},
		// The sample run sweeps its suspension at once: no grace period
		// (a deployment's default is AUTO_OFFBOARD_DELAY 72h, held until a
		// due tick finds the person still suspended).
		{"AUTO_OFFBOARD_DELAY", "0"},
	}
}

// adminDomain is the email domain of the workspace's first admin.
func (s *sandbox) adminDomain() string {
	for _, u := range s.ws.Users {
		if "users/"+u.ID == s.ws.Admins[0] {
			_, domain, _ := strings.Cut(u.Email, "@")
			return strings.ToLower(domain)
		}
	}
	return ""
}

// startDeliveries delivers the requests to the function until bctx ends:
// with the emulator, by a push subscription as in production; with pstest,
// which has no push, by a pusher.
func (s *sandbox) startDeliveries(ctx, bctx context.Context) error {
	s.reqSub = pubsubtest.SubscriptionName(s.o.project, pubsubtest.UniqueID("sandbox-requests"))
	ackDeadline := pubsubtest.WithAckDeadline(invocationTimeout*time.Second + 10*time.Second)
	if s.pst == nil {
		// As in production: a push subscription; engine.EventHandler turns
		// the push body into the messagePublished CloudEvent.
		push := s.fnURL + "/" + s.reqTopic
		return pubsubtest.CreatePushSubscription(ctx, s.ps, s.o.project, s.reqSub, s.reqTopic, push,
			ackDeadline, pubsubtest.WithRetryPolicy(100*time.Millisecond, 2*time.Second))
	}
	// The pusher pulls and POSTs the binary-mode CloudEvent that Eventarc
	// sends, nacking (so redelivering) what the function answers with an
	// error.
	if err := pubsubtest.CreatePullSubscription(ctx, s.ps, s.o.project, s.reqSub, s.reqTopic, "", ackDeadline); err != nil {
		return err
	}
	p, err := pusher.New(pusher.Config{
		Client: s.ps, Subscription: s.reqSub, Topic: s.reqTopic,
		Target: s.fnURL + "/", Mode: pusher.CloudEventBinary,
		Concurrency: 16, RequestTimeout: invocationTimeout*time.Second + 5*time.Second,
	})
	if err != nil {
		return err
	}
	s.background(func() error { return p.Run(bctx) })
	return nil
}

func (s *sandbox) getenv(k string) string {
	for _, e := range s.env {
		if e.k == k {
			return e.v
		}
	}
	return ""
}

// sandboxLedger is the function's ledger: the real Firestore emulator when
// FIRESTORE_EMULATOR_HOST names one (in a project of this run's own, so that
// an earlier run's decisions are not published again), else an in-process
// ledger with the same behaviour, so that the embedded default needs no
// Java. It returns the emulator's project, or "" for the in-process ledger.
func sandboxLedger(project string) (ledger.Store, string, error) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		return ledger.NewMemory(), "", nil
	}
	run := fmt.Sprintf("%s-%d", project, time.Now().UnixNano())
	store, err := ledger.NewFirestore(context.Background(), run, ledger.DefaultDatabase)
	if err != nil {
		return nil, "", fmt.Errorf("the ledger on the Firestore emulator: %w", err)
	}
	return store, run, nil
}
