package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/logging"
)

// Exit codes.
const (
	exitOK          = 0
	exitUnexpected  = 1 // a request did not end as its sample expects
	exitSetup       = 2 // usage, input or start-up error
	exitInterrupted = 130
)

// Defaults of the flags.
const (
	defaultProject     = "chat-offboard-sandbox"
	defaultTopic       = "offboard-requests"
	defaultResultTopic = "offboard-results"
	defaultTimeout     = 30 * time.Second
	// invocationTimeout bounds one invocation of the function
	// (CLOUD_RUN_TIMEOUT_SECONDS): shorter than production's so that a
	// request that keeps failing is soon handed back for redelivery.
	invocationTimeout = 20
)

// options are the parsed flags.
type options struct {
	workspace   string
	requests    string
	faults      bool
	serve       bool
	json        bool
	verbose     bool
	emulator    string
	project     string
	topic       string
	resultTopic string
	protected   string
	protectedOK bool // --protected was given
	port        int
	timeout     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./cmd/sandbox [flags]

Runs chat-offboard's whole pipeline on this machine: emulated Chat API,
Directory, Secret Manager and OAuth endpoint; Pub/Sub (the emulator named by
PUBSUB_EMULATOR_HOST, else in-process); the real function behind the
functions framework. Publishes sample requests that end in every outcome and
prints the results and the memberships before and after. Exit status: 0 every
request ended as expected, 1 one did not, 2 usage or start-up error.

flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nSee docs/sandbox.md.\n")
	}
	fs.StringVar(&o.workspace, "workspace", "", "seed the Chat workspace from this JSON `file` (default: the embedded one, see docs/sandbox.md)")
	fs.StringVar(&o.requests, "requests", "", "publish the requests of this JSON-lines `file` instead of the embedded samples")
	fs.BoolVar(&o.faults, "faults", true, "inject the Chat API faults (429, 503) that the samples ask for")
	fs.BoolVar(&o.serve, "serve", false, "keep running after the samples and print how to publish more requests")
	fs.BoolVar(&o.json, "json", false, "print the result events as JSON lines (structured CloudEvents) instead of the tables")
	fs.BoolVar(&o.verbose, "v", false, "print the function's log lines (JSON) on standard error")
	fs.StringVar(&o.emulator, "emulator", os.Getenv(pubsubtest.EnvEmulatorHost), "`host:port` of a Pub/Sub emulator; empty: in-process Pub/Sub (default $PUBSUB_EMULATOR_HOST)")
	fs.StringVar(&o.project, "project", defaultProject, "Google Cloud `project` of the topics")
	fs.StringVar(&o.topic, "topic", defaultTopic, "request topic `id`")
	fs.StringVar(&o.resultTopic, "result-topic", defaultResultTopic, "result topic `id`")
	fs.StringVar(&o.protected, "protected", "", "PROTECTED_MEMBERS `list` of the function (default: the workspace's first admin and app)")
	fs.IntVar(&o.port, "port", 0, "loopback `port` of the function (default: a free one)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "give up waiting for the samples' results after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitSetup, false
	}
	fs.Visit(func(f *flag.Flag) { o.protectedOK = o.protectedOK || f.Name == "protected" })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox: unexpected argument %q (see -h)\n", fs.Arg(0))
		return o, exitSetup, false
	}
	for _, t := range []struct{ flag, v string }{{"project", o.project}, {"topic", o.topic}, {"result-topic", o.resultTopic}} {
		if t.v == "" || strings.ContainsAny(t.v, "/ ") {
			fmt.Fprintf(stderr, "sandbox: --%s %q: give an id, without '/' or spaces\n", t.flag, t.v)
			return o, exitSetup, false
		}
	}
	if o.topic == o.resultTopic {
		fmt.Fprintln(stderr, "sandbox: --topic and --result-topic must differ")
		return o, exitSetup, false
	}
	if o.port < 0 || o.port > 65535 || o.timeout <= 0 {
		fmt.Fprintln(stderr, "sandbox: --port must be 0..65535 and --timeout positive")
		return o, exitSetup, false
	}
	return o, exitOK, true
}

// run is the whole program; main calls it with the process's arguments and
// standard streams, tests call it in-process. Cancelling ctx (Ctrl-C) stops
// everything cleanly. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	ws, err := loadWorkspace(o.workspace)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitSetup
	}
	samples, err := loadSamples(o.requests)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitSetup
	}
	s := newSandbox(o, ws, samples, stdout, stderr)
	defer s.close()
	if err := s.start(ctx); err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		fmt.Fprintf(s.errw, "sandbox: %v\n", err)
		return exitSetup
	}
	code = s.runSamples(ctx)
	if o.serve && ctx.Err() == nil {
		s.serve(ctx)
		if code == exitInterrupted { // Ctrl-C is how --serve ends
			code = exitOK
		}
	}
	return code
}

// loadWorkspace returns the embedded default workspace, or the one in file,
// decoded strictly and validated.
func loadWorkspace(file string) (emulator.Workspace, error) {
	if file == "" {
		return emulator.Default(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return emulator.Workspace{}, fmt.Errorf("--workspace: %w", err)
	}
	var ws emulator.Workspace
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ws); err != nil {
		return ws, fmt.Errorf("--workspace %s: %w", file, err)
	}
	if dec.More() {
		return ws, fmt.Errorf("--workspace %s: more than one JSON value", file)
	}
	if err := ws.Validate(); err != nil {
		return ws, fmt.Errorf("--workspace %s: %w", file, err)
	}
	if len(ws.Admins) == 0 {
		return ws, fmt.Errorf("--workspace %s: needs at least one admin (the delegated user whose token the function uses)", file)
	}
	return ws, nil
}

// loadSamples returns the embedded samples, or the requests in file.
func loadSamples(file string) ([]sample, error) {
	if file == "" {
		return parseSamples(bytes.NewReader(defaultSamples))
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--requests: %w", err)
	}
	defer f.Close()
	s, err := parseSamples(f)
	if err != nil {
		return nil, fmt.Errorf("--requests %s: %w", file, err)
	}
	return s, nil
}

// entry is one message published by the sandbox and what became of it.
type entry struct {
	sample *sample
	id     string // Pub/Sub message id
	sent   time.Time
	done   chan struct{} // closed when result is set
	result *contract.Result
	at     time.Time // when the result arrived
}

// sandbox is one run: the emulations, Pub/Sub, the function and the
// bookkeeping of what was published and what came back.
type sandbox struct {
	o       options
	ws      emulator.Workspace
	samples []sample
	out     *lockedWriter // standard output
	errw    *lockedWriter // standard error
	logs    *logRing      // the function's log lines, unless -v

	stack       *emulator.Stack
	pst         *pstest.Server
	ps          *pubsub.Client
	psHost      string // host:port of the emulator or of pstest
	reqTopic    string // full names
	resTopic    string
	reqSub      string // subscriptions created by this run
	resSub      string
	publisher   *pubsub.Publisher
	fn          *engine.Engine
	fnURL       string
	detach      func()
	env         []envVar
	before      emulator.Workspace
	started     time.Time
	cancelBG    context.CancelFunc
	bg          sync.WaitGroup
	bgErr       chan error
	published   atomic.Int64
	received    atomic.Int64
	redelivered atomic.Int64

	mu         sync.Mutex
	entries    map[string]*entry           // by message id
	orphans    map[string]*contract.Result // results whose publish had not returned yet
	arrived    map[string]time.Time        // arrival of the orphans
	deliveries map[string]int              // deliveries to the function, by message id
	live       bool                        // print results of others as they arrive
}

// envVar is one variable of the function's configuration.
type envVar struct{ k, v string }

func newSandbox(o options, ws emulator.Workspace, samples []sample, stdout, stderr io.Writer) *sandbox {
	s := &sandbox{
		o: o, ws: ws, samples: samples,
		out:        &lockedWriter{w: stdout},
		errw:       &lockedWriter{w: stderr},
		logs:       &logRing{max: 200},
		entries:    map[string]*entry{},
		orphans:    map[string]*contract.Result{},
		arrived:    map[string]time.Time{},
		deliveries: map[string]int{},
		bgErr:      make(chan error, 2),
	}
	s.out.mu = &sync.Mutex{}
	s.errw.mu = s.out.mu // one lock: lines of both streams never interleave
	return s
}

// start brings everything up: emulations, Pub/Sub, the function and the
// deliveries to it, and the reader of the results.
func (s *sandbox) start(ctx context.Context) error {
	s.started = time.Now()
	var err error
	if s.stack, err = emulator.StartAll(s.ws, emulator.ChatOptions{}); err != nil {
		return fmt.Errorf("starting the emulations: %w", err)
	}
	s.before = s.stack.Chat.Snapshot()

	// Pub/Sub.
	if s.o.emulator != "" {
		s.psHost = s.o.emulator
	} else {
		s.pst = pstest.NewServerWithAddress("127.0.0.1:0")
		s.psHost = s.pst.Addr
	}
	if s.ps, err = pubsub.NewClient(context.Background(), s.o.project, pubsubtest.ClientOptions(s.psHost)...); err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	s.reqTopic = pubsubtest.TopicName(s.o.project, s.o.topic)
	s.resTopic = pubsubtest.TopicName(s.o.project, s.o.resultTopic)
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, t := range []string{s.reqTopic, s.resTopic} {
		if err := pubsubtest.CreateTopic(sctx, s.ps, s.o.project, t); err != nil {
			if s.o.emulator != "" {
				return fmt.Errorf("the Pub/Sub emulator at %s (--emulator, default $PUBSUB_EMULATOR_HOST) does not answer: %w; "+
					"start it, or run with --emulator= for the in-process Pub/Sub", s.psHost, err)
			}
			return err
		}
	}
	s.resSub = pubsubtest.SubscriptionName(s.o.project, pubsubtest.UniqueID("sandbox-results"))
	if err := pubsubtest.CreatePullSubscription(sctx, s.ps, s.o.project, s.resSub, s.resTopic, ""); err != nil {
		return err
	}

	// The function, configured exactly as in production: from its
	// environment variables (here a map, printed by --serve).
	protected := s.o.protected
	if !s.o.protectedOK {
		protected = s.ws.Admins[0] + ",app"
	}
	level := "info"
	if s.o.verbose {
		level = "debug"
	}
	s.env = []envVar{
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
	}
	cfg, err := engine.LoadConfig(s.getenv)
	if err != nil {
		return err
	}
	var logw io.Writer = s.logs
	if s.o.verbose {
		logw = s.errw
	}
	if s.fn, err = engine.New(context.Background(), cfg,
		engine.WithPubSubClient(s.ps), engine.WithLogger(logging.New(logw, cfg.LogLevel))); err != nil {
		return fmt.Errorf("building the function: %w", err)
	}
	if s.fnURL, s.detach, err = serveFunction(ctx, s.o.port, s.handle); err != nil {
		return err
	}

	// Deliveries and results, until close.
	bctx, bcancel := context.WithCancel(context.Background())
	s.cancelBG = bcancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		err := s.ps.Subscriber(s.resSub).Receive(bctx, s.onResult)
		if err != nil && bctx.Err() == nil {
			s.bgErr <- fmt.Errorf("reading results: %w", err)
		}
	}()
	s.reqSub = pubsubtest.SubscriptionName(s.o.project, pubsubtest.UniqueID("sandbox-requests"))
	if s.pst == nil {
		// As in production: a push subscription; the functions framework
		// turns the push body into the messagePublished CloudEvent.
		push := s.fnURL + "/" + s.reqTopic
		if err := pubsubtest.CreatePushSubscription(sctx, s.ps, s.o.project, s.reqSub, s.reqTopic, push,
			pubsubtest.WithAckDeadline(invocationTimeout*time.Second+10*time.Second),
			pubsubtest.WithRetryPolicy(100*time.Millisecond, 2*time.Second)); err != nil {
			return err
		}
	} else {
		// pstest has no push: the pusher pulls and POSTs the binary-mode
		// CloudEvent that Eventarc sends, nacking (so redelivering) what
		// the function answers with an error.
		if err := pubsubtest.CreatePullSubscription(sctx, s.ps, s.o.project, s.reqSub, s.reqTopic, "",
			pubsubtest.WithAckDeadline(invocationTimeout*time.Second+10*time.Second)); err != nil {
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
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := p.Run(bctx); err != nil {
				s.bgErr <- err
			}
		}()
	}
	s.publisher = s.ps.Publisher(s.reqTopic)
	s.publisher.PublishSettings.DelayThreshold = time.Millisecond
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

// handle is the CloudEvent function served by the framework: the real
// Function's Handle, counting deliveries per message on the way.
func (s *sandbox) handle(ctx context.Context, e event.Event) error {
	id := e.ID()
	if m, err := engine.DecodeEvent(e); err == nil && m.ID != "" {
		id = m.ID
	}
	s.mu.Lock()
	s.deliveries[id]++
	n := s.deliveries[id]
	s.mu.Unlock()
	if n > 1 {
		s.redelivered.Add(1)
	}
	return s.fn.Handle(ctx, e)
}

// onResult receives one result event.
func (s *sandbox) onResult(_ context.Context, m *pubsub.Message) {
	m.Ack()
	if m.Attributes["ce-type"] != contract.ResultEventType {
		return
	}
	var r contract.Result
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return
	}
	now := time.Now()
	if s.o.json {
		s.printEvent(m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[r.SourceMessageID]; e != nil {
		if e.result == nil { // later ones are duplicates of a redelivery
			e.result, e.at = &r, now
			close(e.done)
			s.received.Add(1)
		}
		return
	}
	if s.live {
		if !s.o.json {
			s.out.printf("%s  %-24s %-34s %-10s %s\n", now.Format("15:04:05"), r.RequestID, dash(r.Membership), r.Outcome, note(&r))
		}
		return
	}
	if len(s.orphans) < 10000 {
		s.orphans[r.SourceMessageID] = &r
		s.arrived[r.SourceMessageID] = now
	}
}

// publish publishes the samples given, all at once, and registers them.
func (s *sandbox) publish(ctx context.Context, samples []*sample) ([]*entry, error) {
	type pending struct {
		e *entry
		r *pubsub.PublishResult
	}
	ps := make([]pending, len(samples))
	for i, smp := range samples {
		e := &entry{sample: smp, sent: time.Now(), done: make(chan struct{})}
		ps[i] = pending{e, s.publisher.Publish(ctx, &pubsub.Message{Data: smp.data})}
	}
	out := make([]*entry, 0, len(samples))
	for _, p := range ps {
		id, err := p.r.Get(ctx)
		if err != nil {
			return out, fmt.Errorf("publishing line %d: %w", p.e.sample.line, err)
		}
		s.published.Add(1)
		p.e.id = id
		s.mu.Lock()
		s.entries[id] = p.e
		if r := s.orphans[id]; r != nil {
			p.e.result, p.e.at = r, s.arrived[id]
			delete(s.orphans, id)
			delete(s.arrived, id)
			close(p.e.done)
			s.received.Add(1)
		}
		s.mu.Unlock()
		out = append(out, p.e)
	}
	return out, nil
}

// wait waits for the results of es until deadline. It returns ctx's error
// if ctx ends first, or a background error.
func (s *sandbox) wait(ctx context.Context, es []*entry, deadline <-chan time.Time) error {
	for _, e := range es {
		select {
		case <-e.done:
		case <-deadline:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.bgErr:
			return err
		}
	}
	return nil
}

// runSamples publishes the samples (those without faults all at once, then
// those with faults one at a time, each after its faults are injected),
// waits for their results and prints the report.
func (s *sandbox) runSamples(ctx context.Context) int {
	var plain, faulty []*sample
	for i := range s.samples {
		if len(s.samples[i].meta.Faults) > 0 {
			faulty = append(faulty, &s.samples[i])
		} else {
			plain = append(plain, &s.samples[i])
		}
	}
	stopProgress := s.progress()
	timer := time.NewTimer(s.o.timeout)
	defer timer.Stop()
	var all []*entry
	err := func() error {
		es, err := s.publish(ctx, plain)
		all = append(all, es...)
		if err != nil {
			return err
		}
		if err := s.wait(ctx, es, timer.C); err != nil {
			return err
		}
		for _, smp := range faulty {
			if s.o.faults {
				for _, f := range smp.meta.Faults {
					ef, _ := f.fault() // checked when parsed
					s.stack.Chat.InjectFault(ef)
				}
			}
			es, err := s.publish(ctx, []*sample{smp})
			all = append(all, es...)
			if err != nil {
				return err
			}
			err = s.wait(ctx, es, timer.C)
			s.stack.Chat.ClearFaults()
			if err != nil {
				return err
			}
		}
		return nil
	}()
	stopProgress()
	elapsed := time.Since(s.started)
	if err != nil && ctx.Err() != nil {
		s.errw.printf("sandbox: interrupted\n")
		return exitInterrupted
	}
	ok := s.report(all, elapsed)
	if err != nil {
		s.errw.printf("sandbox: %v\n", err)
		return exitSetup
	}
	if !ok {
		if !s.o.verbose {
			s.logs.dump(s.errw, 50)
		}
		return exitUnexpected
	}
	return exitOK
}

// progress shows a single updating status line on a terminal; the returned
// function stops and erases it.
func (s *sandbox) progress() func() {
	// JSON lines on a terminal are progress enough (and would be garbled).
	if s.o.verbose || !isTerminal(s.errw.w) || (s.o.json && isTerminal(s.out.w)) {
		return func() {}
	}
	total := len(s.samples)
	line := func() string {
		return fmt.Sprintf("\r\x1b[Ksandbox: published %d/%d · results %d/%d · retries %d",
			s.published.Load(), total, s.received.Load(), total, s.fn.Retries()+s.redelivered.Load())
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.errw.printf("%s", line())
			select {
			case <-t.C:
			case <-done:
				s.errw.printf("\r\x1b[K")
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// serve keeps everything running until ctx ends, printing how to publish
// more requests and, as they arrive, their results.
func (s *sandbox) serve(ctx context.Context) {
	s.mu.Lock()
	s.live = true
	s.mu.Unlock()
	w := s.out
	if s.o.json {
		w = s.errw
	}
	w.printf("%s", s.instructions())
	select {
	case <-ctx.Done():
	case err := <-s.bgErr:
		s.errw.printf("sandbox: %v\n", err)
	}
	s.mu.Lock()
	s.live = false
	s.mu.Unlock()
	w.printf("\nMemberships at the start and now:\n")
	s.printMemberships(w, s.before, s.stack.Chat.Snapshot())
}

// close stops everything that start started, in order. It is safe after a
// failed or partial start.
func (s *sandbox) close() {
	if s.cancelBG != nil {
		s.cancelBG()
		s.bg.Wait()
	}
	if s.detach != nil {
		s.detach()
	}
	if s.publisher != nil {
		s.publisher.Stop()
	}
	if s.fn != nil {
		_ = s.fn.Close()
	}
	if s.ps != nil {
		if s.pst == nil { // the emulator outlives the sandbox: tidy up
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for _, sub := range []string{s.reqSub, s.resSub} {
				if sub != "" {
					_ = s.ps.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: sub})
				}
			}
			cancel()
		}
		_ = s.ps.Close()
	}
	if s.pst != nil {
		_ = s.pst.Close()
	}
	if s.stack != nil {
		s.stack.Close()
	}
}
