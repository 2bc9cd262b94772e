package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"

	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/internal/workspaces"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
)

// loadRun is one run of the load mode: what it started, and what it
// measured.
type loadRun struct {
	fl     flags
	scale  float64 // scaled minutes: a minute / the window
	budget int     // writes a minute of each instance
	ctx    context.Context
	done   cleanups

	host      string // the Pub/Sub emulator
	psStartup time.Duration
	ps        *pubsub.Client
	reqTopic  string
	resTopic  string
	sub       string
	resHost   string // where results are published
	stack     *emulator.Stack

	c         counters
	pubRPC    durations
	instances []*instance
	pushers   []*pusher.Pusher
	pushersWG sync.WaitGroup
	stopPush  context.CancelFunc

	firstWrite, lastWrite atomic.Int64 // UnixNano of the first and last removal
	started               time.Time    // the first request published
	published, drain      time.Duration

	// meter counts the ledger's Firestore RPCs and writes, and charges their
	// time to the event whose context made them (nil without Firestore).
	meter        *firestoretest.Meter
	ledgerWarmUp time.Duration // the first ledger read, before the load
}

func load(fl flags) error {
	if fl.n < 1 || fl.quota < 1 || fl.window <= 0 || fl.instances < 1 || fl.concurrency < 1 {
		return errors.New("-n, -quota, -window, -instances and -concurrency must be positive")
	}
	r := &loadRun{fl: fl, scale: float64(time.Minute) / float64(fl.window), budget: fl.budget}
	if r.budget == 0 {
		r.budget = int(float64(fl.quota) * r.scale / float64(fl.instances))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	r.done.add(cancel)
	defer r.done.run()
	for _, step := range []func() error{r.startPubSub, r.startEmulations, r.startResults, r.startInstances, r.startPushers} {
		if err := step(); err != nil {
			return err
		}
	}
	if err := r.publishAndDrain(); err != nil {
		return err
	}
	r.stopPush()
	r.pushersWG.Wait()
	return print(r.figures(), fl.jsonOut)
}

// startPubSub starts the Pub/Sub emulator and creates the topics and the
// pull subscription the pushers read.
func (r *loadRun) startPubSub() error {
	start := time.Now()
	host, stop, err := pubsubtest.StartEmulator(r.ctx)
	if err != nil {
		return fmt.Errorf("Pub/Sub emulator: %w", err)
	}
	r.done.addErr(stop)
	r.host, r.resHost, r.psStartup = host, host, time.Since(start)
	if r.ps, err = pubsub.NewClient(r.ctx, project, pubsubtest.ClientOptions(host)...); err != nil {
		return err
	}
	r.done.addErr(r.ps.Close)
	r.reqTopic, r.resTopic, r.sub = pubsubtest.UniqueID("requests"), pubsubtest.UniqueID("results"), pubsubtest.UniqueID("requests-pull")
	for _, t := range []string{r.reqTopic, r.resTopic} {
		if err := pubsubtest.CreateTopic(r.ctx, r.ps, project, t); err != nil {
			return err
		}
	}
	return pubsubtest.CreatePullSubscription(r.ctx, r.ps, project, r.sub, r.reqTopic, "", pubsubtest.WithAckDeadline(600*time.Second))
}

// startEmulations starts the Chat API (with the quota and latency asked
// for), Directory, Secret Manager and OAuth emulations, and counts the
// removals.
func (r *loadRun) startEmulations() error {
	stack, err := emulator.StartAll(workspaces.Crowd(space, r.fl.n), emulator.ChatOptions{
		WritesPerWindow: r.fl.quota, ReadsPerWindow: r.fl.quota * 10, Window: r.fl.window, Latency: r.fl.latency,
	})
	if err != nil {
		return err
	}
	r.stack = stack
	r.done.add(stack.Close)
	stack.Chat.OnCall(func(ci emulator.CallInfo) {
		if ci.Method != "members.delete" || ci.Status != http.StatusOK {
			return
		}
		now := time.Now().UnixNano()
		r.firstWrite.CompareAndSwap(0, now)
		r.lastWrite.Store(now)
	})
	return nil
}

// startResults points the results at pstest when -results pstest says so.
func (r *loadRun) startResults() error {
	switch r.fl.results {
	case "emulator":
		return nil
	case "pstest":
	default:
		return fmt.Errorf("-results %q: want emulator or pstest", r.fl.results)
	}
	srv := pstest.NewServer()
	r.done.addErr(srv.Close)
	r.resHost = srv.Addr
	rc, err := pubsub.NewClient(r.ctx, project, pubsubtest.ClientOptions(r.resHost)...)
	if err != nil {
		return err
	}
	r.done.addErr(rc.Close)
	return pubsubtest.CreateTopic(r.ctx, rc, project, r.resTopic)
}

// startInstances builds and serves the function instances, each with its
// own clients, as separate processes would have.
func (r *loadRun) startInstances() error {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	r.done.addErr(devnull.Close)
	cfg := engine.Config{
		Project:               project,
		TokenSecret:           r.stack.SecretName + "/versions/latest",
		ResultTopic:           pubsubtest.TopicName(project, r.resTopic),
		MaxEventAge:           time.Hour,
		WritesPerMinute:       r.budget,
		ReadsPerMinute:        r.budget * 10,
		ChatEndpoint:          r.stack.Chat.URL(),
		DirectoryEndpoint:     r.stack.Directory.URL(),
		SecretManagerEndpoint: r.stack.Secrets.Addr(),
		EventTimeout:          9 * time.Minute,
		LogLevel:              slog.LevelInfo,
	}
	for range r.fl.instances {
		fps, err := pubsub.NewClient(r.ctx, project, append(pubsubtest.ClientOptions(r.resHost),
			option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(publishTimer(&r.pubRPC))))...)
		if err != nil {
			return err
		}
		r.done.addErr(fps.Close)
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = 256
		store, err := r.loadLedger(cfg.Project)
		if err != nil {
			return err
		}
		f, err := engine.New(context.Background(), cfg,
			engine.WithPubSubClient(fps),
			engine.WithLogger(logging.New(devnull, slog.LevelInfo)),
			engine.WithTransport(timingTransport{base}),
			engine.WithLedger(store))
		if err != nil {
			return err
		}
		r.done.addErr(f.Close)
		s := &instance{f: f, c: &r.c}
		if err := s.serve(); err != nil {
			return err
		}
		r.done.addErr(s.srv.Close)
		r.instances = append(r.instances, s)
	}
	return nil
}

// startPushers starts one pusher per instance, pulling from the same
// subscription, as Pub/Sub spreads deliveries over instances.
func (r *loadRun) startPushers() error {
	pctx, stop := context.WithCancel(r.ctx)
	r.stopPush = stop
	r.done.add(stop)
	for _, s := range r.instances {
		p, err := pusher.New(pusher.Config{
			Client: r.ps, Subscription: r.sub, Topic: r.reqTopic, Target: s.url + "/",
			Mode: pusher.CloudEventBinary, Concurrency: r.fl.concurrency, RequestTimeout: 9 * time.Minute,
		})
		if err != nil {
			return err
		}
		r.pushers = append(r.pushers, p)
		r.pushersWG.Add(1)
		go func() { defer r.pushersWG.Done(); _ = p.Run(pctx) }()
	}
	return nil
}

// publishAndDrain publishes the N requests and waits until every event is
// acknowledged, or progress stalls.
func (r *loadRun) publishAndDrain() error {
	pub := r.ps.Publisher(r.reqTopic)
	pub.PublishSettings.CountThreshold = 1000
	start := time.Now()
	r.started = start
	var results []*pubsub.PublishResult
	for i := range r.fl.n {
		results = append(results, pub.Publish(r.ctx, &pubsub.Message{Data: request(i)}))
	}
	for _, res := range results {
		if _, err := res.Get(r.ctx); err != nil {
			return fmt.Errorf("publishing requests: %w", err)
		}
	}
	pub.Stop()
	r.published = time.Since(start)
	lastProgress, lastN := time.Now(), int64(0)
	for r.c.acked.Load() < int64(r.fl.n) {
		time.Sleep(5 * time.Millisecond)
		if n := r.c.acked.Load(); n != lastN {
			lastProgress, lastN = time.Now(), n
		} else if time.Since(lastProgress) > 3*r.fl.window+time.Minute {
			return fmt.Errorf("stalled at %d of %d events acknowledged", n, r.fl.n)
		}
	}
	r.drain = time.Since(start)
	return nil
}

// loadLedger is an instance's ledger: the Firestore emulator when
// FIRESTORE_EMULATOR_HOST names one (so that the figures include the
// ledger's round trips, each charged to its event by the run's meter), in a
// project of this run's own; else in-process.
func (r *loadRun) loadLedger(project string) (ledger.Store, error) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		return ledger.NewMemory(), nil
	}
	if r.meter == nil {
		r.meter = &firestoretest.Meter{Observe: chargeLedger}
	}
	opts, closeConn, err := r.meter.ClientOptions(os.Getenv("FIRESTORE_EMULATOR_HOST"))
	if err != nil {
		return nil, err
	}
	r.done.addErr(closeConn)
	store, err := ledger.NewFirestore(context.Background(), fmt.Sprintf("%s-%d", project, time.Now().UnixNano()), ledger.DefaultDatabase, opts...)
	if err != nil {
		return nil, err
	}
	// One read before the load, as a deployed database and a warm
	// instance's connection would be: the emulator creates a project's
	// database on its first request, which production never waits for.
	start := time.Now()
	if _, err := store.Request(context.Background(), "warm-up"); !errors.Is(err, ledger.ErrNotFound) {
		store.Close()
		return nil, fmt.Errorf("warming up the ledger: %v", err)
	}
	r.ledgerWarmUp = time.Since(start)
	return store, nil
}
