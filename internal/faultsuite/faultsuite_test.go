package faultsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
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

// Request kinds of the generated load and the outcomes each may end in.
type kind int

const (
	kindRemove    kind = iota // a real membership: removed (or not_member after a redelivery)
	kindProtected             // a protected member's membership: refused
	kindDryRun                // a bystander's membership, dry run: dry_run
	kindNotMember             // a user who is not in that space: not_member
	kindInvalid               // a hostile name: invalid
)

var allowed = map[kind][]contract.Outcome{
	kindRemove:    {contract.Removed, contract.NotMember},
	kindProtected: {contract.Refused},
	kindDryRun:    {contract.DryRun},
	kindNotMember: {contract.NotMember},
	kindInvalid:   {contract.Invalid},
}

type spec struct {
	id    string
	kind  kind
	space string // spaces/S
	user  string // user id
	data  string
}

type result struct {
	ceID, membership, requestID string
	outcome                     contract.Outcome
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// workspace generates n requests' worth of memberships: spaces of 25 people
// plus the admin (manager everywhere, so no removal meets the only-manager
// rule) and the protected people, and returns the workspace, the protected
// user ids and the requests.
func workspace(n int, rng *rand.Rand) (emulator.Workspace, []string, []spec) {
	const perSpace = 25
	nRemove := n * 92 / 100
	nProt := max(1, n*2/100)
	nDry := max(1, n*2/100)
	nNot := max(1, n*2/100)
	nInv := n - nRemove - nProt - nDry - nNot
	users := max(300, n/4)
	spaces := (nRemove+nDry)*3/(2*perSpace) + 2
	ws := emulator.Workspace{Customer: emulator.DefaultCustomer, Admins: []string{"users/1"}}
	ws.Users = append(ws.Users, emulator.User{ID: "1", Email: "admin@example.com"})
	for i := 0; i < users; i++ {
		id := strconv.Itoa(1000 + i)
		ws.Users = append(ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
	}
	protected := []string{"1000", "1001", "1002"}
	type ms struct{ space, user string }
	var pool, protPool []ms
	members := map[string]map[string]bool{}
	for s := 0; s < spaces; s++ {
		name := fmt.Sprintf("spaces/FS%05d", s)
		sp := emulator.Space{Name: name, SpaceType: emulator.SpaceTypeSpace,
			Members: []emulator.Member{{User: "users/1", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
		in := map[string]bool{}
		for _, p := range protected {
			if rng.IntN(2) == 0 {
				in[p] = true
				sp.Members = append(sp.Members, emulator.Member{User: "users/" + p, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
				protPool = append(protPool, ms{name, p})
			}
		}
		for len(in) < perSpace {
			id := strconv.Itoa(1000 + 3 + rng.IntN(users-3))
			if in[id] {
				continue
			}
			in[id] = true
			role := emulator.RoleMember
			if rng.IntN(10) == 0 {
				role = emulator.RoleManager
			}
			sp.Members = append(sp.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: role})
			pool = append(pool, ms{name, id})
		}
		members[name] = in
		ws.Spaces = append(ws.Spaces, sp)
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	rng.Shuffle(len(protPool), func(i, j int) { protPool[i], protPool[j] = protPool[j], protPool[i] })

	var reqs []spec
	add := func(k kind, space, user string, body map[string]any) {
		id := fmt.Sprintf("fs-%05d", len(reqs))
		body["requestId"] = id
		body["reason"] = "faultsuite"
		b, _ := json.Marshal(body)
		reqs = append(reqs, spec{id: id, kind: k, space: space, user: user, data: string(b)})
	}
	target := func(space, user string, i int) map[string]any {
		switch i % 4 {
		case 0:
			return map[string]any{"membership": space + "/members/" + user}
		case 1:
			return map[string]any{"space": space, "member": "users/" + user}
		case 2:
			return map[string]any{"space": space, "member": "u" + user + "@example.com"}
		}
		return map[string]any{"space": space, "member": "users/u" + user + "@example.com"}
	}
	for i := 0; i < nRemove; i++ {
		m := pool[i]
		add(kindRemove, m.space, m.user, target(m.space, m.user, i))
	}
	for i := 0; i < nDry; i++ {
		m := pool[nRemove+i] // bystanders: never removed
		b := target(m.space, m.user, i)
		b["dryRun"] = true
		add(kindDryRun, m.space, m.user, b)
	}
	for i := 0; i < nProt; i++ {
		m := protPool[i%len(protPool)]
		add(kindProtected, m.space, m.user, target(m.space, m.user, i))
	}
	for i := 0; len(reqs) < nRemove+nDry+nProt+nNot; i++ {
		space := ws.Spaces[rng.IntN(len(ws.Spaces))].Name
		user := strconv.Itoa(1000 + 3 + rng.IntN(users-3))
		if members[space][user] {
			continue
		}
		add(kindNotMember, space, user, target(space, user, i))
	}
	hostile := []string{
		"x/../../spaces/FS00000/members/1003", "1003?useAdminAccess=true", "1003#x", "%2e%2e", "u1003@example.com/..",
		"users/1003/../1", "\u0430dmin@example.com", "adm\u200bin@example.com", "..", "1003 ",
	}
	for i := 0; i < nInv; i++ {
		add(kindInvalid, "", "", map[string]any{"space": ws.Spaces[i%len(ws.Spaces)].Name, "member": hostile[i%len(hostile)]})
	}
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return ws, protected, reqs
}

// fnProcess is the cmd/function binary, killed and restarted on one port.
type fnProcess struct {
	t       *testing.T
	bin     string
	port    string
	env     []string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	kills   int
}

func (p *fnProcess) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p.port, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("function did not listen on %s: %v", p.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no graceful shutdown, requests in flight are lost.
func (p *fnProcess) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.t.Errorf("function process %d did not exit after SIGKILL", p.cmd.Process.Pid)
		}
		p.cmd = nil
		p.kills++
	}
}

// tcpProxy forwards the function's Pub/Sub connections to the emulator; cut
// closes them all and turns new ones away until heal.
type tcpProxy struct {
	ln      net.Listener
	target  string
	broken  atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.broken.Load() {
				p.refused.Add(1)
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *tcpProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) cut()  { p.broken.Store(true); p.closeAll() }
func (p *tcpProxy) heal() { p.broken.Store(false) }

func buildFunction(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "function")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/chat-offboard/chat-offboard/cmd/function")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/function: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func snapshotRoles(ws emulator.Workspace) map[string]string {
	m := map[string]string{}
	for _, s := range ws.Spaces {
		for _, mem := range s.Members {
			m[s.Name+"/members/"+strings.TrimPrefix(mem.User, "users/")] = mem.Role
		}
	}
	return m
}

// TestFaults: every request ends with at least one terminal result, every
// requested membership is gone, nothing else was touched, no protected
// member was removed, duplicate results share a ce-id; under Chat faults,
// process kills, Secret Manager, token endpoint and Pub/Sub outages.
func TestFaults(t *testing.T) {
	n := envInt("FAULTSUITE_N", 300)
	outage := time.Duration(min(20, max(3, 20*n/5000))) * time.Second
	if v, err := time.ParseDuration(os.Getenv("FAULTSUITE_OUTAGE")); err == nil && v > 0 {
		outage = v
	}
	const invocation = 8 // CLOUD_RUN_TIMEOUT_SECONDS of the function
	publishCut := invocation*time.Second + 3*time.Second
	host := pubsubtest.Emulator(t)
	bin := buildFunction(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+n/50)*time.Minute)
	defer cancel()

	rng := rand.New(rand.NewPCG(8, uint64(n)))
	ws, protected, reqs := workspace(n, rng)
	stack, err := emulator.StartAll(ws, emulator.ChatOptions{WritesPerWindow: 100, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	before := snapshotRoles(stack.Chat.Snapshot())

	ps := pubsubtest.NewClient(t, host, project)
	reqTopic, resTopic := pubsubtest.UniqueID("fs-requests"), pubsubtest.UniqueID("fs-results")
	reqSub, resSub := pubsubtest.UniqueID("fs-requests-pull"), pubsubtest.UniqueID("fs-results-pull")
	for _, id := range []string{reqTopic, resTopic} {
		if err := pubsubtest.CreateTopic(ctx, ps, project, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := pubsubtest.CreatePullSubscription(ctx, ps, project, reqSub, reqTopic, "", pubsubtest.WithAckDeadline(60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := pubsubtest.CreatePullSubscription(ctx, ps, project, resSub, resTopic, ""); err != nil {
		t.Fatal(err)
	}

	// Results, as a consumer sees them.
	var (
		resMu   sync.Mutex
		results = map[string][]result{}
		nres    atomic.Int64
	)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go ps.Subscriber(resSub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		var r contract.Result
		_ = json.Unmarshal(m.Data, &r)
		resMu.Lock()
		results[r.RequestID] = append(results[r.RequestID], result{ceID: m.Attributes["ce-id"], outcome: r.Outcome, membership: r.Membership, requestID: r.RequestID})
		resMu.Unlock()
		nres.Add(1)
		m.Ack()
	})
	done := func() int {
		resMu.Lock()
		defer resMu.Unlock()
		return len(results)
	}

	proxy := newTCPProxy(t, host)
	var protList []string
	for _, p := range protected {
		protList = append(protList, "users/"+p)
	}
	fn := &fnProcess{t: t, bin: bin, port: freePort(t), logPath: filepath.Join(t.TempDir(), "function.log"), env: []string{
		"LOCAL_ONLY=true",
		"GOOGLE_CLOUD_PROJECT=" + project,
		firestoretest.EnvEmulatorHost + "=" + firestoretest.Emulator(t),
		"TOKEN_SECRET=" + stack.SecretName,
		"RESULT_TOPIC=" + resTopic,
		"PUBSUB_EMULATOR_HOST=" + proxy.ln.Addr().String(),
		"CHAT_ENDPOINT=" + stack.Chat.URL(),
		"DIRECTORY_ENDPOINT=" + stack.Directory.URL(),
		"SECRET_MANAGER_ENDPOINT=" + stack.Secrets.Addr(),
		"OAUTH_TOKEN_URL=" + stack.OAuth.TokenURL(),
		"PROTECTED_MEMBERS=" + strings.Join(protList, ","),
		"CHAT_WRITES_PER_MINUTE=1000000",
		"CHAT_READS_PER_MINUTE=1000000",
		"CLOUD_RUN_TIMEOUT_SECONDS=" + strconv.Itoa(invocation),
	}}
	fn.env = append(fn.env, "PORT="+fn.port)
	fn.start()
	defer func() {
		fn.kill()
		if t.Failed() {
			b, _ := os.ReadFile(fn.logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("function log (tail):\n%s", b)
		}
	}()

	// Chat faults for the whole run.
	for _, f := range []emulator.Fault{
		{Status: 503, Rate: 0.05}, {Status: 500, Rate: 0.05},
		{Status: 429, RetryAfter: time.Second, Rate: 0.05},
		{Drop: true, Rate: 0.02},
		{Latency: 50 * time.Millisecond, Rate: 0.2},
	} {
		stack.Chat.InjectFault(f)
	}

	// Two pushers on one subscription: the push body (as the emulator's push
	// subscription POSTs it) and a binary CloudEvent (as Eventarc does).
	target := "http://127.0.0.1:" + fn.port
	var pushers []*pusher.Pusher
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for _, mode := range []pusher.Mode{pusher.PushBody, pusher.CloudEventBinary} {
		tgt := target
		if mode == pusher.CloudEventBinary {
			tgt += "/"
		}
		p, err := pusher.New(pusher.Config{Client: ps, Subscription: reqSub, Topic: reqTopic, Target: tgt, Mode: mode,
			Concurrency: 40, RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		pushers = append(pushers, p)
		pwg.Add(1)
		go func() { defer pwg.Done(); _ = p.Run(pctx) }()
	}
	defer func() { pcancel(); pwg.Wait() }()

	pub := ps.Publisher(reqTopic)
	defer pub.Stop()
	published := 0
	publish := func(upto int) {
		t.Helper()
		var rs []*pubsub.PublishResult
		for ; published < upto; published++ {
			rs = append(rs, pub.Publish(ctx, &pubsub.Message{Data: []byte(reqs[published].data),
				// Attributes that try to override the request: ignored.
				Attributes: map[string]string{"member": "users/1", "space": "spaces/FS00000", "requestId": "override"}}))
		}
		for _, r := range rs {
			if _, err := r.Get(ctx); err != nil {
				t.Fatalf("publish request: %v", err)
			}
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s: %d of %d requests have results", what, done(), published)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	phase := func(format string, args ...any) {
		t.Logf("%6.1fs  %s (results for %d/%d requests)", time.Since(start).Seconds(), fmt.Sprintf(format, args...), done(), published)
	}
	batch := func(i int) int { return n * i / 5 }

	publish(batch(1))
	waitFor("the first results", func() bool { return done() >= batch(1)/2 })

	phase("SIGKILL; Secret Manager down for %v; restart", outage)
	publish(batch(2))
	stack.Secrets.InjectFault(emulator.Fault{Method: "secrets.access", Status: 503})
	fn.kill()
	fn.start()
	time.Sleep(outage)
	stack.Secrets.ClearFaults()
	waitFor("recovery from the Secret Manager outage", func() bool { return done() >= batch(1)+batch(1)/2 })

	phase("token endpoint down for %v, every access token revoked", outage)
	publish(batch(3))
	stack.OAuth.InjectFault(emulator.Fault{Method: "token", Status: 503})
	stack.OAuth.ExpireAccessTokens()
	time.Sleep(outage)
	stack.OAuth.ClearFaults()
	waitFor("recovery from the token outage", func() bool { return done() >= batch(2)+batch(1)/2 })

	phase("connection to Pub/Sub cut for %v: result publishes fail", publishCut)
	publish(batch(4))
	time.Sleep(200 * time.Millisecond)
	proxy.cut()
	time.Sleep(publishCut)
	proxy.heal()
	waitFor("recovery from the Pub/Sub outage", func() bool { return done() >= batch(3)+batch(1)/2 })

	phase("SIGKILL under load; restart")
	publish(n)
	time.Sleep(300 * time.Millisecond)
	fn.kill()
	fn.start()

	waitFor("every request", func() bool { return done() >= n })
	phase("every request has a result; draining duplicates")
	time.Sleep(3 * time.Second)
	elapsed := time.Since(start)
	pcancel()
	pwg.Wait()
	kills := fn.kills
	fn.kill()

	// --- assertions ---------------------------------------------------------
	after := snapshotRoles(stack.Chat.Snapshot())
	resMu.Lock()
	defer resMu.Unlock()
	byCE := map[string]result{}
	outcomes := map[contract.Outcome]int{}
	total, dups, mixed, lost, roleLost := 0, 0, 0, 0, 0
	for _, r := range reqs {
		rs := results[r.id]
		if len(rs) == 0 {
			lost++
			t.Errorf("request %s (%v) has no result", r.id, r.kind)
			continue
		}
		seen := map[contract.Outcome]bool{}
		for _, x := range rs {
			total++
			if !contains(allowed[r.kind], x.outcome) {
				t.Errorf("request %s (%v, %s): outcome %q, want one of %v", r.id, r.kind, r.data, x.outcome, allowed[r.kind])
			}
			if want := contract.EventID(x.requestID, x.membership, x.outcome); x.ceID != want {
				t.Errorf("request %s: ce-id %s, want %s", r.id, x.ceID, want)
			}
			if prev, ok := byCE[x.ceID]; ok {
				dups++
				if prev != x {
					t.Errorf("ce-id %s names two decisions: %+v and %+v", x.ceID, prev, x)
				}
			}
			byCE[x.ceID] = x
			seen[x.outcome] = true
		}
		if len(seen) > 1 {
			mixed++
		}
		if r.kind == kindRemove && !seen[contract.Removed] {
			// Removed by an attempt whose result never got out (killed,
			// publish failed): the redelivery found it gone.
			roleLost++
		}
		for o := range seen {
			outcomes[o]++
		}
	}
	if extra := int(nres.Load()) - total; extra != 0 {
		t.Errorf("%d results for requests that were never made", extra)
	}
	requested := map[string]bool{}
	for _, r := range reqs {
		if r.kind == kindRemove {
			requested[r.space+"/members/"+r.user] = true
		}
	}
	protRemoved, touched := 0, 0
	for name, role := range before {
		got, ok := after[name]
		switch {
		case requested[name]:
			if ok {
				t.Errorf("requested membership %s is still there", name)
			}
		case !ok:
			touched++
			t.Errorf("membership %s was removed but never requested", name)
			for _, p := range protected {
				if strings.HasSuffix(name, "/members/"+p) {
					protRemoved++
				}
			}
		case got != role:
			touched++
			t.Errorf("membership %s changed role %s → %s", name, role, got)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			touched++
			t.Errorf("membership %s appeared", name)
		}
	}

	// No secret in the function's logs (all processes, faults included).
	logs, _ := os.ReadFile(fn.logPath)
	secrets := append([]string{stack.ClientSecret, stack.RefreshToken}, stack.OAuth.IssuedTokens()...)
	for _, s := range secrets {
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("a secret (%.8s…) appears in the function's logs", s)
		}
	}

	cs := stack.Chat.Stats()
	var chatCalls int64
	for _, c := range cs.Calls {
		chatCalls += c
	}
	var ps0, ps1 = pushers[0].Stats(), pushers[1].Stats()
	var outs []string
	for o, c := range outcomes {
		outs = append(outs, fmt.Sprintf("%s=%d", o, c))
	}
	sort.Strings(outs)
	statuses := []string{}
	for s, c := range cs.ByStatus {
		statuses = append(statuses, fmt.Sprintf("%d:%d", s, c))
	}
	sort.Strings(statuses)
	t.Logf("FAULTSUITE figures (N=%d, outage %v, publish cut %v):", n, outage, publishCut)
	t.Logf("  requests %d (remove %d), memberships before %d, after %d; spaces %d", len(reqs), len(requested), len(before), len(after), len(ws.Spaces))
	t.Logf("  deliveries: %d (acked %d, failed %d, peak in flight %d+%d)", ps0.Delivered+ps1.Delivered, ps0.Acked+ps1.Acked, ps0.Failed+ps1.Failed, ps0.PeakInFlight, ps1.PeakInFlight)
	t.Logf("  chat calls %d: faulted %d, throttled by quota %d, 401 %d, by status %v", chatCalls, cs.Faulted, cs.Throttled, cs.Unauthorized, statuses)
	t.Logf("  secret manager: accesses %d, faulted %d; token endpoint: refreshes %d, faulted %d, tokens issued %d; pub/sub connections refused during the cut %d; SIGKILLs %d",
		stack.Secrets.Stats().Accesses, stack.Secrets.Stats().Faulted, stack.OAuth.Stats().Refreshes, stack.OAuth.Stats().Faulted, len(stack.OAuth.IssuedTokens()), proxy.refused.Load(), kills)
	t.Logf("  results %d for %d requests: duplicates (same ce-id) %d, requests with two outcomes (removed then not_member) %d; outcomes by request %v",
		total, len(reqs)-lost, dups, mixed, strings.Join(outs, " "))
	t.Logf("  removal requests answered only not_member (the removed result, with the role, never got out) %d", roleLost)
	t.Logf("  lost %d, untouched-violations %d, protected removed %d; time %v", lost, touched, protRemoved, elapsed.Round(100*time.Millisecond))
}

func contains(l []contract.Outcome, s contract.Outcome) bool { return slices.Contains(l, s) }

func (k kind) String() string {
	return [...]string{"remove", "protected", "dry-run", "not-member", "invalid"}[k]
}
