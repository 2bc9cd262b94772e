// Command loadtest measures chat-offboard under load, against the real
// Pub/Sub emulator and the emulated Chat API, Secret Manager and OAuth
// endpoint (internal/emulator). BENCHMARKS.md records its figures.
//
// Load mode (default): N removal requests are published to the Pub/Sub
// emulator (started here unless PUBSUB_EMULATOR_HOST is set); a pull
// subscription feeds internal/pusher, which POSTs each message as a
// binary-mode CloudEvent, as Eventarc does, with real concurrency (the
// emulator's own push sends at most 2 at a time) to --instances Function
// instances running in this process behind net/http servers. The Chat API
// answers after --latency and enforces --quota writes per --window for the
// whole project, all instances together; each instance has its own budget,
// --budget writes a minute (default: the quota, as a rate, divided by the
// instances). Windows may be scaled (--window 6s) so that runs are short.
//
// It reports the drain time against the ideal N/Q, the 429s received, Chat
// writes per removal, token refreshes and secret reads, per-event latency
// (time in Handle, time in Chat calls, time waiting before the first Chat
// call, which is mostly the budget, and the rest: the function's added
// latency), the peak concurrency and the process's RSS.
//
// Cold-start mode (--cold-start K): builds cmd/function, then K times starts
// it and measures the time from exec to the first event answered 2xx (and to
// its port listening); the median is reported. --rss-events M then sends M
// events to one more function process and reports its VmRSS.
//
// Examples:
//
//	go run ./cmd/loadtest -n 900 -quota 300 -window 6s -latency 50ms
//	go run ./cmd/loadtest -n 900 -quota 300 -window 6s -latency 50ms -instances 2
//	go run ./cmd/loadtest -n 2000 -quota 100000 -window 60s -latency 1s   # latency, budget not binding
//	go run ./cmd/loadtest -cold-start 7 -rss-events 10000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"google.golang.org/api/option"
	"google.golang.org/grpc"

	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/logging"
)

const project = "loadtest-project"

type flags struct {
	n, concurrency, quota, budget, instances int
	window, latency                          time.Duration
	coldStart, rssEvents                     int
	jsonOut                                  bool
	results                                  string
}

func main() {
	var f flags
	flag.IntVar(&f.n, "n", 900, "removal requests to send")
	flag.IntVar(&f.concurrency, "concurrency", pusher.DefaultConcurrency, "events in flight per instance (the pusher's concurrency)")
	flag.IntVar(&f.quota, "quota", 300, "Chat API writes per window for the whole project (the emulation's quota)")
	flag.DurationVar(&f.window, "window", time.Minute, "quota window; scale it (e.g. 6s) to shorten runs")
	flag.DurationVar(&f.latency, "latency", 50*time.Millisecond, "latency of every Chat API call")
	flag.IntVar(&f.budget, "budget", 0, "CHAT_WRITES_PER_MINUTE of each instance (in scaled minutes: window×60/…); 0 = quota rate / instances")
	flag.IntVar(&f.instances, "instances", 1, "Function instances sharing the project's quota")
	flag.IntVar(&f.coldStart, "cold-start", 0, "cold-start mode: start cmd/function this many times")
	flag.IntVar(&f.rssEvents, "rss-events", 10000, "with -cold-start: events to send before reading the function's RSS (0: skip)")
	flag.BoolVar(&f.jsonOut, "json", false, "print the figures as one JSON object")
	flag.StringVar(&f.results, "results", "emulator", `where results are published: "emulator" (the Pub/Sub emulator, like requests) or "pstest" (in-process, to take the emulator's publish latency out of the added latency)`)
	flag.Parse()
	log.SetFlags(0)
	var err error
	if f.coldStart > 0 {
		err = coldStart(f)
	} else {
		err = load(f)
	}
	if err != nil {
		log.Fatal("loadtest: ", err)
	}
}

// crowd is one SPACE, spaces/LOAD, managed by the admin users/100, with n
// more members users/1000… .
func crowd(n int) emulator.Workspace {
	ws := emulator.Workspace{
		Customer: emulator.DefaultCustomer,
		Admins:   []string{"users/100"},
		Users:    []emulator.User{{ID: "100", Email: "admin@example.com"}},
	}
	s := emulator.Space{Name: "spaces/LOAD", SpaceType: emulator.SpaceTypeSpace,
		Members: []emulator.Member{{User: "users/100", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
	for i := range n {
		id := strconv.Itoa(1000 + i)
		ws.Users = append(ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
		s.Members = append(s.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman})
	}
	ws.Spaces = []emulator.Space{s}
	return ws
}

func request(i int) []byte {
	return fmt.Appendf(nil, `{"requestId":"load-%d","membership":"spaces/LOAD/members/%d","reason":"loadtest"}`, i, 1000+i)
}

// eventStats collects what one event spent; it travels in the context of
// Handle, which the Chat client's requests inherit.
type eventStats struct {
	mu        sync.Mutex
	chat      time.Duration
	firstCall time.Time
	lastEnd   time.Time
}

type ctxKey struct{}

// timingTransport attributes each Chat API round trip to its event.
type timingTransport struct{ base http.RoundTripper }

func (t timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	if es, ok := r.Context().Value(ctxKey{}).(*eventStats); ok {
		d := time.Since(start)
		es.mu.Lock()
		es.chat += d
		es.lastEnd = start.Add(d)
		if es.firstCall.IsZero() {
			es.firstCall = start
		}
		es.mu.Unlock()
	}
	return resp, err
}

// durations collects the latencies of result Publish RPCs (which run in the
// publisher's own goroutines, so they cannot be charged to one event).
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func publishTimer(into *durations) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		if strings.HasSuffix(method, "/Publish") {
			d := time.Since(start)
			into.mu.Lock()
			into.d = append(into.d, d)
			into.mu.Unlock()
		}
		return err
	}
}

// sample is one event: time in Handle; in Chat round trips; before the
// first Chat call (decoding, token, and mostly the budget); after the last
// (result, publish until acknowledged, log line); added = handle − chat −
// before.
type sample struct{ handle, chat, before, after, added time.Duration }

// server is one instance: a Function behind an HTTP server that accepts
// binary-mode CloudEvents and answers 204 (ack) or 500 (redeliver).
type server struct {
	f        *engine.Engine
	srv      *http.Server
	url      string
	inFlight *atomic.Int64
	peak     *atomic.Int64
	acked    *atomic.Int64
	nacked   atomic.Int64

	mu      sync.Mutex
	samples []sample
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := s.inFlight.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	es := &eventStats{}
	ctx := context.WithValue(r.Context(), ctxKey{}, es)
	start := time.Now()
	err = s.f.Handle(ctx, *ev)
	handle := time.Since(start)
	s.inFlight.Add(-1)
	if err != nil {
		s.nacked.Add(1)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.acked.Add(1)
	w.WriteHeader(http.StatusNoContent)
	es.mu.Lock()
	sm := sample{handle: handle, chat: es.chat}
	if !es.firstCall.IsZero() {
		sm.before = es.firstCall.Sub(start)
		sm.after = start.Add(handle).Sub(es.lastEnd)
	}
	es.mu.Unlock()
	sm.added = handle - sm.chat - sm.before
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}

func listen() (net.Listener, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return l, "http://" + l.Addr().String(), nil
}

func load(fl flags) error {
	if fl.n < 1 || fl.quota < 1 || fl.window <= 0 || fl.instances < 1 || fl.concurrency < 1 {
		return errors.New("-n, -quota, -window, -instances and -concurrency must be positive")
	}
	scale := float64(time.Minute) / float64(fl.window) // scaled minutes
	budget := fl.budget
	if budget == 0 {
		budget = int(float64(fl.quota) * scale / float64(fl.instances))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startPS := time.Now()
	host, stopPS, err := pubsubtest.StartEmulator(ctx)
	if err != nil {
		return fmt.Errorf("Pub/Sub emulator: %w", err)
	}
	defer stopPS()
	psStartup := time.Since(startPS)
	ps, err := pubsub.NewClient(ctx, project, pubsubtest.ClientOptions(host)...)
	if err != nil {
		return err
	}
	defer ps.Close()
	reqTopic, resTopic, sub := pubsubtest.UniqueID("requests"), pubsubtest.UniqueID("results"), pubsubtest.UniqueID("requests-pull")
	for _, t := range []string{reqTopic, resTopic} {
		if err := pubsubtest.CreateTopic(ctx, ps, project, t); err != nil {
			return err
		}
	}
	if err := pubsubtest.CreatePullSubscription(ctx, ps, project, sub, reqTopic, "", pubsubtest.WithAckDeadline(600*time.Second)); err != nil {
		return err
	}

	stack, err := emulator.StartAll(crowd(fl.n), emulator.ChatOptions{
		WritesPerWindow: fl.quota, ReadsPerWindow: fl.quota * 10, Window: fl.window, Latency: fl.latency,
	})
	if err != nil {
		return err
	}
	defer stack.Close()

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	resHost := host
	switch fl.results {
	case "emulator":
	case "pstest":
		srv := pstest.NewServer()
		defer srv.Close()
		resHost = srv.Addr
		rc, err := pubsub.NewClient(ctx, project, pubsubtest.ClientOptions(resHost)...)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := pubsubtest.CreateTopic(ctx, rc, project, resTopic); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-results %q: want emulator or pstest", fl.results)
	}
	var inFlight, peak, acked atomic.Int64
	var pubRPC durations
	var servers []*server
	for i := 0; i < fl.instances; i++ {
		cfg := engine.Config{
			Project:               project,
			TokenSecret:           stack.SecretName + "/versions/latest",
			ResultTopic:           pubsubtest.TopicName(project, resTopic),
			MaxEventAge:           time.Hour,
			WritesPerMinute:       budget,
			ReadsPerMinute:        budget * 10,
			ChatEndpoint:          stack.Chat.URL(),
			DirectoryEndpoint:     stack.Directory.URL(),
			SecretManagerEndpoint: stack.Secrets.Addr(),
			EventTimeout:          9 * time.Minute,
			LogLevel:              slog.LevelInfo,
		}
		// Each instance has its own clients, as separate processes would.
		fps, err := pubsub.NewClient(ctx, project, append(pubsubtest.ClientOptions(resHost),
			option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(publishTimer(&pubRPC))))...)
		if err != nil {
			return err
		}
		defer fps.Close()
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = 256
		f, err := engine.New(context.Background(), cfg,
			engine.WithPubSubClient(fps),
			engine.WithLogger(logging.New(devnull, slog.LevelInfo)),
			engine.WithTransport(timingTransport{base}))
		if err != nil {
			return err
		}
		defer f.Close()
		l, url, err := listen()
		if err != nil {
			return err
		}
		s := &server{f: f, url: url, inFlight: &inFlight, peak: &peak, acked: &acked}
		s.srv = &http.Server{Handler: s}
		go s.srv.Serve(l)
		defer s.srv.Close()
		servers = append(servers, s)
	}

	// One pusher per instance, pulling from the same subscription, as Pub/Sub
	// spreads deliveries over instances.
	var pushers []*pusher.Pusher
	pctx, stopPushers := context.WithCancel(ctx)
	defer stopPushers()
	var pwg sync.WaitGroup
	for _, s := range servers {
		p, err := pusher.New(pusher.Config{
			Client: ps, Subscription: sub, Topic: reqTopic, Target: s.url + "/",
			Mode: pusher.CloudEventBinary, Concurrency: fl.concurrency, RequestTimeout: 9 * time.Minute,
		})
		if err != nil {
			return err
		}
		pushers = append(pushers, p)
		pwg.Add(1)
		go func() { defer pwg.Done(); _ = p.Run(pctx) }()
	}

	var firstWrite, lastWrite atomic.Int64
	stack.Chat.OnCall(func(ci emulator.CallInfo) {
		if ci.Method != "members.delete" || ci.Status != http.StatusOK {
			return
		}
		now := time.Now().UnixNano()
		firstWrite.CompareAndSwap(0, now)
		lastWrite.Store(now)
	})

	pub := ps.Publisher(reqTopic)
	pub.PublishSettings.CountThreshold = 1000
	start := time.Now()
	var results []*pubsub.PublishResult
	for i := range fl.n {
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: request(i)}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			return fmt.Errorf("publishing requests: %w", err)
		}
	}
	pub.Stop()
	published := time.Since(start)
	lastProgress, lastN := time.Now(), int64(0)
	for acked.Load() < int64(fl.n) {
		time.Sleep(5 * time.Millisecond)
		if n := acked.Load(); n != lastN {
			lastProgress, lastN = time.Now(), n
		} else if time.Since(lastProgress) > 3*fl.window+time.Minute {
			return fmt.Errorf("stalled at %d of %d events acknowledged", n, fl.n)
		}
	}
	drain := time.Since(start)
	stopPushers()
	pwg.Wait()

	// Figures.
	st := stack.Chat.Stats()
	removed := 0
	for i := range fl.n {
		if _, ok := stack.Chat.IsMember("spaces/LOAD", strconv.Itoa(1000+i)); !ok {
			removed++
		}
	}
	writes := st.Calls["members.delete"]
	ideal := time.Duration(float64(fl.n) / float64(fl.quota) * float64(fl.window))
	var all []sample
	var secretReads, refreshes, retries, nacked int64
	var perInstance []int
	for _, s := range servers {
		perInstance = append(perInstance, len(s.samples))
		all = append(all, s.samples...)
		ts := s.f.TokenStats()
		secretReads += ts.SecretReads
		refreshes += ts.Refreshes
		retries += s.f.Retries()
		nacked += s.nacked.Load()
	}
	var ppeak int64
	for _, p := range pushers {
		ppeak += p.Stats().PeakInFlight
	}
	writeSpan := time.Duration(lastWrite.Load() - firstWrite.Load())
	out := map[string]any{
		"results": fl.results, "n": fl.n, "instances": fl.instances, "concurrencyPerInstance": fl.concurrency,
		"quota": fmt.Sprintf("%d writes / %v", fl.quota, fl.window), "latency": fl.latency.String(),
		"budgetPerInstance":      fmt.Sprintf("%d writes a minute (%.2f/s, %.1f per window)", budget, float64(budget)/60, float64(budget)/scale),
		"pubsubEmulatorStartup":  psStartup.Round(time.Millisecond).String(),
		"publish":                published.Round(time.Millisecond).String(),
		"drain":                  drain.Round(time.Millisecond).String(),
		"idealNoverQ":            ideal.String(),
		"drainVsIdeal":           fmt.Sprintf("%+.1f%%", 100*(float64(drain)/float64(ideal)-1)),
		"firstToLastWrite":       writeSpan.Round(time.Millisecond).String(),
		"firstToLastVsIdeal":     fmt.Sprintf("%+.1f%% (ideal for N-1 gaps: %v)", 100*(float64(writeSpan)/(float64(ideal)*float64(fl.n-1)/float64(fl.n))-1), time.Duration(float64(ideal)*float64(fl.n-1)/float64(fl.n)).Round(time.Millisecond)),
		"removed":                removed,
		"chatWrites":             writes,
		"writesPerRemoval":       fmt.Sprintf("%.3f", float64(writes)/float64(max(removed, 1))),
		"429s":                   st.Throttled,
		"429sPercentOfWrites":    fmt.Sprintf("%.2f%%", 100*float64(st.Throttled)/float64(max(writes, 1))),
		"retriesInInvocation":    retries,
		"nacked":                 nacked,
		"tokenRefreshes":         refreshes,
		"tokenEndpointRefreshes": stack.OAuth.Stats().Refreshes,
		"secretReads":            secretReads,
		"secretManagerAccesses":  stack.Secrets.Stats().Accesses,
		"peakConcurrency":        peak.Load(),
		"eventsPerInstance":      perInstance,
		"pusherPeakInFlight":     ppeak,
		"rssMiB":                 fmt.Sprintf("%.1f (this process: Pub/Sub client, pusher, emulations and %d instance(s))", rssMiB(os.Getpid()), fl.instances),
	}
	pct := func(get func(sample) time.Duration) string {
		ds := make([]time.Duration, len(all))
		for i, s := range all {
			ds[i] = get(s)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		return fmt.Sprintf("p50 %v  p99 %v  max %v", q(.50).Round(time.Microsecond), q(.99).Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond))
	}
	if len(all) > 0 {
		out["latencyHandle"] = pct(func(s sample) time.Duration { return s.handle })
		out["latencyInChat"] = pct(func(s sample) time.Duration { return s.chat })
		out["latencyBeforeFirstChatCall"] = pct(func(s sample) time.Duration { return s.before })
		out["latencyAfterLastChatCall"] = pct(func(s sample) time.Duration { return s.after })
		out["latencyAdded"] = pct(func(s sample) time.Duration { return s.added })
		out["latencyHandleMinusChat"] = pct(func(s sample) time.Duration { return s.handle - s.chat })
	}
	pubRPC.mu.Lock()
	if len(pubRPC.d) > 0 {
		ds := pubRPC.d
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		out["resultPublishRPCs"] = fmt.Sprintf("%d RPCs for %d results; RPC latency p50 %v p99 %v", len(ds), len(all),
			ds[len(ds)/2].Round(time.Microsecond), ds[min(len(ds)-1, len(ds)*99/100)].Round(time.Microsecond))
	}
	pubRPC.mu.Unlock()
	return print(out, fl.jsonOut)
}

func print(out map[string]any, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%-28s %v\n", k, out[k])
	}
	return nil
}

// rssMiB reads VmRSS of a process from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// coldStart builds cmd/function and measures its start-up K times, then its
// RSS after M events.
func coldStart(fl flags) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "loadtest-function-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "function")
	build := exec.Command("go", "build", "-o", bin, "github.com/chat-offboard/chat-offboard/cmd/function")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building cmd/function: %w", err)
	}
	host, stopPS, err := pubsubtest.StartEmulator(ctx)
	if err != nil {
		return fmt.Errorf("Pub/Sub emulator: %w", err)
	}
	defer stopPS()
	ps, err := pubsub.NewClient(ctx, project, pubsubtest.ClientOptions(host)...)
	if err != nil {
		return err
	}
	defer ps.Close()
	resTopic := pubsubtest.UniqueID("results")
	if err := pubsubtest.CreateTopic(ctx, ps, project, resTopic); err != nil {
		return err
	}
	stack, err := emulator.StartAll(crowd(fl.coldStart+fl.rssEvents+1), emulator.ChatOptions{})
	if err != nil {
		return err
	}
	defer stack.Close()
	env := append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+project,
		"TOKEN_SECRET="+stack.SecretName+"/versions/latest",
		"RESULT_TOPIC="+pubsubtest.TopicName(project, resTopic),
		"CHAT_ENDPOINT="+stack.Chat.URL(),
		"DIRECTORY_ENDPOINT="+stack.Directory.URL(),
		"SECRET_MANAGER_ENDPOINT="+stack.Secrets.Addr(),
		"PUBSUB_EMULATOR_HOST="+host,
		"CHAT_WRITES_PER_MINUTE=100000000", "CHAT_READS_PER_MINUTE=100000000",
		"LOCAL_ONLY=true")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 2 * time.Minute}
	next := 0
	post := func(url string) (int, error) {
		i := next
		next++
		return postEvent(client, url, i)
	}
	start := func() (*exec.Cmd, string, time.Time, error) {
		l, _, err := listen()
		if err != nil {
			return nil, "", time.Time{}, err
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command(bin)
		cmd.Env = append(env, "PORT="+port)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, "", t0, err
		}
		return cmd, "http://127.0.0.1:" + port + "/", t0, nil
	}
	var ready, listening []time.Duration
	for k := 0; k < fl.coldStart; k++ {
		cmd, url, t0, err := start()
		if err != nil {
			return err
		}
		var listen time.Duration
		for {
			if listen == 0 {
				if c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")); err == nil {
					c.Close()
					listen = time.Since(t0)
				}
			}
			if listen != 0 {
				st, err := post(url)
				if err == nil && st/100 == 2 {
					break
				}
				if err == nil {
					cmd.Process.Kill()
					cmd.Wait()
					return fmt.Errorf("first event answered %d", st)
				}
			}
			if time.Since(t0) > 30*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				return errors.New("the function did not serve an event within 30 s")
			}
			time.Sleep(200 * time.Microsecond)
		}
		ready = append(ready, time.Since(t0))
		listening = append(listening, listen)
		cmd.Process.Kill()
		cmd.Wait()
	}
	out := map[string]any{
		"coldStartRuns":      fl.coldStart,
		"toListen":           summary(listening),
		"toFirstEventServed": summary(ready),
		"pubsub":             host,
	}
	if fl.rssEvents > 0 {
		cmd, url, _, err := start()
		if err != nil {
			return err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		for {
			if st, err := post(url); err == nil && st/100 == 2 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		afterOne := rssMiB(cmd.Process.Pid)
		sem := make(chan struct{}, 80)
		var failed atomic.Int64
		var wg sync.WaitGroup
		for i := 1; i < fl.rssEvents; i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				if st, err := postEvent(client, url, next+i); err != nil || st/100 != 2 {
					failed.Add(1)
				}
			}(i)
		}
		wg.Wait()
		out["rssAfterFirstEventMiB"] = fmt.Sprintf("%.1f", afterOne)
		out["rssAfterEventsMiB"] = fmt.Sprintf("%.1f after %d events (concurrency 80), %d failed", rssMiB(cmd.Process.Pid), fl.rssEvents, failed.Load())
		out["vmHWMMiB"] = fmt.Sprintf("%.1f", hwmMiB(cmd.Process.Pid))
	}
	return print(out, fl.jsonOut)
}

func hwmMiB(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// postEvent POSTs the binary-mode CloudEvent of removal request i, as
// Eventarc delivers a Pub/Sub message.
func postEvent(c *http.Client, url string, i int) (int, error) {
	now := time.Now().UTC()
	id := "cold-" + strconv.Itoa(i) + "-" + strconv.FormatInt(now.UnixNano(), 36)
	body, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": request(i), "messageId": id, "publishTime": now.Format(time.RFC3339Nano),
		},
		"subscription": "projects/" + project + "/subscriptions/requests",
	})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", pusher.CloudEventType)
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/"+project+"/topics/requests")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-time", now.Format(time.RFC3339Nano))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func summary(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(100 * time.Microsecond).String()
	}
	return fmt.Sprintf("median %v (runs: %s)", s[len(s)/2].Round(100*time.Microsecond), strings.Join(parts, ", "))
}
