package faultsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
)

func TestMain(m *testing.M) {
	unpin := firestoretest.Pin()
	code := pubsubtest.RunMain(m)
	unpin()
	os.Exit(code)
}

// project is the run's project on the emulators: the topics' and the
// ledger's (Firestore), new each run so that no earlier run's decisions are
// found.
var project = pubsubtest.UniqueID("faultsuite")

// result is one published result event, as a consumer sees it.
type result struct {
	ceID, membership, requestID string
	wantCEID                    string // contract.Result.EventID of the data
	outcome                     contract.Outcome
	role, processedAt, detail   string
}

// decision is what must be the same in every copy of one decision.
func (r result) decision() string {
	return strings.Join([]string{r.ceID, r.membership, string(r.outcome), r.role}, "|")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// run is the state of one TestFaults run shared by its phases and checks.
type run struct {
	t          *testing.T
	n          int
	outage     time.Duration // Secret Manager and token endpoint outages
	publishCut time.Duration // the Pub/Sub cut
	fsCut      time.Duration // the Firestore cut
	start      time.Time
	ctx        context.Context

	ws        emulator.Workspace
	protected []string
	reqs      []spec
	copies    map[int][]int
	nCopies   int
	stack     *emulator.Stack
	before    map[string]string

	ps        *pubsub.Client
	pub       *pubsub.Publisher
	published int
	fn        *fnProcess
	front     *chatFront
	psProxy   *tcpProxy
	fsProxy   *tcpProxy
	fsHost    string
	deletes   *deletes
	pushers   []*pusher.Pusher
	fired     []string // memberships whose delete an armed kill interrupted: before, after

	resMu   sync.Mutex
	results map[key][]result // by request id and normalised membership
	tops    map[string]bool  // top-level requests with a result
	nres    atomic.Int64
}

// TestFaults: every request ends in exactly the decisions it asks for, each
// decided once (one ce-id, one outcome, however many copies are published),
// every requested membership deleted exactly once and reported removed with
// its role, nothing else touched, no protected member removed, no Chat write
// without its intent in the ledger; under duplicate deliveries of every kind
// of message, Chat faults, SIGKILLs (at random, between intent and delete,
// between delete and decision), Secret Manager, token endpoint, Firestore
// and Pub/Sub outages.
func TestFaults(t *testing.T) {
	n := envInt("FAULTSUITE_N", 300)
	r := &run{t: t, n: n, results: map[key][]result{}, tops: map[string]bool{}}
	r.outage = time.Duration(min(20, max(3, 20*n/5000))) * time.Second
	if v, err := time.ParseDuration(os.Getenv("FAULTSUITE_OUTAGE")); err == nil && v > 0 {
		r.outage = v
	}
	r.fsCut = max(5*time.Second, r.outage/2)
	if v, err := time.ParseDuration(os.Getenv("FAULTSUITE_FIRESTORE_OUTAGE")); err == nil && v > 0 {
		r.fsCut = v
	}
	const invocation = 8 // CLOUD_RUN_TIMEOUT_SECONDS of the function
	r.publishCut = invocation*time.Second + 3*time.Second
	host := pubsubtest.Emulator(t)
	r.fsHost = firestoretest.Emulator(t)
	bin := buildFunction(t)
	r.start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+n/50)*time.Minute)
	defer cancel()
	r.ctx = ctx

	rng := rand.New(rand.NewPCG(8, uint64(n)))
	r.ws, r.protected, r.reqs = workspace(n, rng)
	r.copies = copies(r.reqs, rng)
	stack, err := emulator.StartAll(r.ws, emulator.ChatOptions{WritesPerWindow: 100, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	r.stack = stack
	r.before = snapshotRoles(stack.Chat.Snapshot())
	r.deletes = newDeletes(stack.Chat)

	r.ps = pubsubtest.NewClient(t, host, project)
	reqTopic, resTopic := pubsubtest.UniqueID("fs-requests"), pubsubtest.UniqueID("fs-results")
	reqSub, dupSub, resSub := pubsubtest.UniqueID("fs-requests-pull"), pubsubtest.UniqueID("fs-requests-pull2"), pubsubtest.UniqueID("fs-results-pull")
	for _, id := range []string{reqTopic, resTopic} {
		if err := pubsubtest.CreateTopic(ctx, r.ps, project, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := pubsubtest.CreatePullSubscription(ctx, r.ps, project, reqSub, reqTopic, "", pubsubtest.WithAckDeadline(60*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A second subscription on the requests topic, with a pusher of its
	// own: every message, children included, is delivered through both.
	if err := pubsubtest.CreatePullSubscription(ctx, r.ps, project, dupSub, reqTopic, "", pubsubtest.WithAckDeadline(60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := pubsubtest.CreatePullSubscription(ctx, r.ps, project, resSub, resTopic, ""); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go r.ps.Subscriber(resSub).Receive(rctx, func(_ context.Context, m *pubsub.Message) { r.receive(m) })

	r.psProxy = newTCPProxy(t, host)
	r.fsProxy = newTCPProxy(t, r.fsHost)
	var protList []string
	for _, p := range r.protected {
		protList = append(protList, "users/"+p)
	}
	r.fn = &fnProcess{t: t, bin: bin, port: freePort(t), logPath: filepath.Join(t.TempDir(), "function.log")}
	r.front = newChatFront(t, stack.Chat.URL(), r.fn.kill)
	r.fn.env = []string{
		"LOCAL_ONLY=true",
		"GOOGLE_CLOUD_PROJECT=" + project,
		firestoretest.EnvEmulatorHost + "=" + r.fsProxy.ln.Addr().String(),
		"TOKEN_SECRET=" + stack.SecretName,
		"RESULT_TOPIC=" + resTopic,
		"REQUEST_TOPIC=" + reqTopic,
		"PUBSUB_EMULATOR_HOST=" + r.psProxy.ln.Addr().String(),
		"CHAT_ENDPOINT=" + r.front.srv.URL + "/",
		"DIRECTORY_ENDPOINT=" + stack.Directory.URL(),
		"SECRET_MANAGER_ENDPOINT=" + stack.Secrets.Addr(),
		"OAUTH_TOKEN_URL=" + stack.OAuth.TokenURL(),
		"PROTECTED_MEMBERS=" + strings.Join(protList, ","),
		"CHAT_WRITES_PER_MINUTE=1000000",
		"CHAT_READS_PER_MINUTE=1000000",
		"CLOUD_RUN_TIMEOUT_SECONDS=" + strconv.Itoa(invocation),
		"PORT=" + r.fn.port,
	}
	r.fn.start()
	defer func() {
		r.fn.kill()
		if p := os.Getenv("FAULTSUITE_KEEP_LOG"); p != "" {
			if b, err := os.ReadFile(r.fn.logPath); err == nil {
				_ = os.WriteFile(p, b, 0o644)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(r.fn.logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("function log (tail):\n%s", b)
		}
	}()

	// Chat faults for the whole run: first the writes that apply and
	// then lose their answer (issue 20), then faults that answer instead
	// of the call.
	var faults []emulator.Fault
	for _, m := range []string{"members.delete", "members.create", "members.patch"} {
		faults = append(faults,
			emulator.Fault{Method: m, AfterApply: true, Drop: true, Rate: 0.02},
			emulator.Fault{Method: m, AfterApply: true, Status: 500, Rate: 0.02},
			emulator.Fault{Method: m, AfterApply: true, Status: 503, Rate: 0.02})
	}
	for _, f := range append(faults, []emulator.Fault{
		{Status: 503, Rate: 0.05}, {Status: 500, Rate: 0.05},
		{Status: 429, RetryAfter: time.Second, Rate: 0.05},
		{Drop: true, Rate: 0.02},
		{Latency: 50 * time.Millisecond, Rate: 0.2},
	}...) {
		stack.Chat.InjectFault(f)
	}

	// Two pushers on the requests subscription: the push body (as the
	// emulator's push subscription POSTs it) and a binary CloudEvent (as
	// Eventarc does); a third on the second subscription.
	target := "http://127.0.0.1:" + r.fn.port
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for _, c := range []struct {
		sub  string
		mode pusher.Mode
		conc int
	}{{reqSub, pusher.PushBody, 40}, {reqSub, pusher.CloudEventBinary, 40}, {dupSub, pusher.PushBody, 10}} {
		tgt := target
		if c.mode == pusher.CloudEventBinary {
			tgt += "/"
		}
		p, err := pusher.New(pusher.Config{Client: r.ps, Subscription: c.sub, Topic: reqTopic, Target: tgt, Mode: c.mode,
			Concurrency: c.conc, RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r.pushers = append(r.pushers, p)
		pwg.Add(1)
		go func() { defer pwg.Done(); _ = p.Run(pctx) }()
	}
	defer func() { pcancel(); pwg.Wait() }()

	r.pub = r.ps.Publisher(reqTopic)
	defer r.pub.Stop()

	r.phases()
	elapsed := time.Since(r.start)
	pcancel()
	pwg.Wait()
	kills := r.fn.killCount()
	r.fn.kill()
	r.check(elapsed, kills)
}

// receive records one result event.
func (r *run) receive(m *pubsub.Message) {
	var x contract.Result
	_ = json.Unmarshal(m.Data, &x)
	res := result{ceID: m.Attributes["ce-id"], wantCEID: x.EventID(), outcome: x.Outcome, membership: x.Membership, requestID: x.RequestID,
		role: x.Role, processedAt: x.ProcessedAt.Format(time.RFC3339Nano), detail: x.Detail}
	r.resMu.Lock()
	k := key{x.RequestID, norm(x.Membership)}
	r.results[k] = append(r.results[k], res)
	if !strings.Contains(x.RequestID, "/") {
		r.tops[x.RequestID] = true
	}
	r.resMu.Unlock()
	r.nres.Add(1)
	m.Ack()
}

// done is the number of top-level requests with at least one result.
func (r *run) done() int {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	return len(r.tops)
}

// complete reports whether every decision of every request has arrived.
func (r *run) complete() bool {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	for _, s := range r.reqs {
		for k := range s.want {
			if len(r.results[k]) == 0 && !(s.kind == kindInvalid && r.tops[s.id]) {
				return false
			}
		}
	}
	return true
}

// publish publishes the requests up to index upto, each followed by the
// copies chosen to follow it.
func (r *run) publish(upto int) {
	r.t.Helper()
	var rs []*pubsub.PublishResult
	one := func(i int) {
		rs = append(rs, r.pub.Publish(r.ctx, &pubsub.Message{Data: []byte(r.reqs[i].data),
			// Attributes that try to override the request: ignored.
			Attributes: map[string]string{"member": "users/1", "space": "spaces/FS00000", "requestId": "override"}}))
	}
	for ; r.published < upto; r.published++ {
		one(r.published)
		for _, c := range r.copies[r.published] {
			one(c)
			r.nCopies++
		}
	}
	for _, x := range rs {
		if _, err := x.Get(r.ctx); err != nil {
			r.t.Fatalf("publish request: %v", err)
		}
	}
}

func (r *run) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for !cond() {
		if r.ctx.Err() != nil {
			r.t.Fatalf("timed out waiting for %s: %d of %d requests have results", what, r.done(), r.published)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *run) phase(format string, args ...any) {
	r.t.Logf("%6.1fs  %s (results for %d/%d requests)", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...), r.done(), r.published)
}

// armedKill kills the function at the next members.delete (before it
// reaches Chat, or after Chat answered 200) and restarts it.
func (r *run) armedKill(mode int32) {
	r.t.Helper()
	r.front.arm.Store(mode)
	select {
	case m := <-r.front.fired:
		r.fired = append(r.fired, m)
		r.phase("  killed at the delete of %s; restart", m)
	case <-time.After(90 * time.Second):
		r.front.arm.Store(armNone)
		r.t.Errorf("no members.delete within 90 s of arming a kill")
		r.fn.kill()
	}
	r.fn.start()
}

// phases publishes the requests in six batches, one fault per batch. After
// each fault it waits only for progress (half a batch of new results), not
// for the requests the fault interrupted: a request whose delivery was
// killed stays owned by it (open) until INVOCATION_TIMEOUT + 30 s have
// passed, and is taken over and finished in the background while the next
// faults run.
func (r *run) phases() {
	total := len(r.reqs)
	batch := func(i int) int { return total * i / 6 }
	size := max(1, batch(1))
	progress := func(what string) {
		r.t.Helper()
		base := r.done()
		r.waitFor(what, func() bool { return r.done() >= min(r.published, base+size/2) })
	}

	r.publish(batch(1))
	r.waitFor("the first results", func() bool { return r.done() >= size/2 })

	r.phase("SIGKILL; Secret Manager down for %v; restart", r.outage)
	r.publish(batch(2))
	r.stack.Secrets.InjectFault(emulator.Fault{Method: "secrets.access", Status: 503})
	r.fn.kill()
	r.fn.start()
	time.Sleep(r.outage)
	r.stack.Secrets.ClearFaults()
	progress("recovery from the Secret Manager outage")

	r.phase("SIGKILL between a delete and its decision; then token endpoint down for %v, every access token revoked", r.outage)
	r.publish(batch(3))
	r.armedKill(armAfterDelete)
	r.stack.OAuth.InjectFault(emulator.Fault{Method: "token", Status: 503})
	r.stack.OAuth.ExpireAccessTokens()
	time.Sleep(r.outage)
	r.stack.OAuth.ClearFaults()
	progress("recovery from the token outage")

	r.phase("connection to Firestore (the ledger) cut for %v", r.fsCut)
	r.publish(batch(4))
	time.Sleep(300 * time.Millisecond)
	r.deletes.fsCut.Store(true)
	r.fsProxy.cut()
	time.Sleep(r.fsCut)
	r.fsProxy.heal()
	r.deletes.fsCut.Store(false)
	progress("recovery from the Firestore outage")

	r.phase("SIGKILL between an intent and its delete; then the connection to Pub/Sub cut for %v: result publishes fail", r.publishCut)
	r.publish(batch(5))
	r.armedKill(armBeforeDelete)
	time.Sleep(200 * time.Millisecond)
	r.psProxy.cut()
	time.Sleep(r.publishCut)
	r.psProxy.heal()
	progress("recovery from the Pub/Sub outage")

	r.phase("SIGKILL under load (and copies of requests already decided); restart")
	r.publish(total)
	time.Sleep(300 * time.Millisecond)
	r.fn.kill()
	r.fn.start()

	r.waitFor("every decision", r.complete)
	r.phase("every decision has a result; draining duplicates")
	time.Sleep(3 * time.Second)
}
