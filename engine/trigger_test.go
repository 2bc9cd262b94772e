package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
	"github.com/chat-offboard/chat-offboard/request"
)

// auditEntry is the LogEntry a sink publishes when an admin ran method on
// email; seq makes the activity (and so the request id) unique.
func auditEntry(method, email string, seq int64) (*request.AuditEvent, []byte) {
	ev := &request.AuditEvent{
		InsertID: "ins" + string(rune('a'+seq)), Organization: "506102632746",
		Method: "google.admin.AdminService." + method, Email: email, Actor: "admin@example.com",
		Time: time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC(), UniqueQualifier: -8299540676987354000 - seq, HasActivityID: true,
	}
	ev.EventName = request.AuditMethods[ev.Method]
	return ev, ev.LogEntry()
}

// triggerWorkspace is the default workspace with alice suspended (her
// manager is bob), carol archived, dave deleted (his manager carol is
// archived: the default successor frank takes over) and erin active again.
func triggerWorkspace() emulator.Workspace {
	ws := emulator.Default()
	ws.Users[1].Suspended = true
	ws.Users[1].OrgUnitPath = "/Staff"
	ws.Users[1].Relations = []emulator.Relation{{Type: "friend", Value: "erin@example.com"}, {Type: "manager", Value: "bob@example.com"}}
	ws.Users[3].Archived = true
	ws.Users[4].Deleted = true
	ws.Users[4].Relations = []emulator.Relation{{Type: "manager", Value: "carol@example.com"}}
	return ws
}

// triggerRig is an Engine behind a push subscription of the Pub/Sub
// emulator's requests topic, with its results read back from the results
// topic.
type triggerRig struct {
	stack *emulator.Stack
	pub   *pubsub.Publisher
	logs  *syncBuffer
	cfg   Config
	// approvals publishes to APPROVAL_TOPIC (with rigApprovals), pushed
	// to the function at the topic's path as the functions framework
	// reads a push body's source.
	approvals *pubsub.Publisher
	skew      atomic.Int64 // added to time.Now by the Engine's clock
	mu        sync.Mutex
	results   []contract.Result
}

// rigOption adjusts a triggerRig's configuration before its Engine is
// built.
type rigOption func(*Config)

// rigApprovals gives the rig an APPROVAL_TOPIC.
func rigApprovals(c *Config) { c.Oversight.ApprovalTopic = "approvals" }

func startTriggerRig(t *testing.T, ws emulator.Workspace, auto AutoOffboard, opts ...rigOption) *triggerRig {
	t.Helper()
	host := pubsubtest.Emulator(t)
	ctx := context.Background()
	stack, err := emulator.StartAll(ws, emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	pl := pubsubtest.NewPipeline(ctx, t, host, "trigger")
	ps, project := pl.Client, pl.Project
	rig := &triggerRig{stack: stack, logs: &syncBuffer{}}
	cfg := Config{
		Project: project, TokenSecret: stack.SecretName + "/versions/latest",
		ResultTopic: pubsubtest.TopicName(project, pl.Results), RequestTopic: pubsubtest.TopicName(project, pl.Requests),
		MaxEventAge: time.Hour, WritesPerMinute: 60000, ReadsPerMinute: 60000,
		ChatEndpoint: stack.Chat.URL(), DirectoryEndpoint: stack.Directory.URL(), SecretManagerEndpoint: stack.Secrets.Addr(),
		EventTimeout: 30 * time.Second, LogLevel: -4, AutoOffboard: auto,
	}
	for _, o := range opts {
		o(&cfg)
	}
	approvals := cfg.Oversight.ApprovalTopic
	if approvals != "" {
		approvals = pubsubtest.UniqueID("approvals")
		if err := pubsubtest.CreateTopic(ctx, ps, project, approvals); err != nil {
			t.Fatal(err)
		}
		cfg.Oversight.ApprovalTopic = pubsubtest.TopicName(project, approvals)
	}
	rig.cfg = cfg
	store := ledgerFor(t)
	if store == nil {
		store = ledger.NewMemory()
	}
	clock := func() time.Time { return time.Now().Add(time.Duration(rig.skew.Load())) }
	f, err := New(ctx, cfg, WithPubSubClient(ps), WithLogger(logging.New(rig.logs, cfg.LogLevel)), WithLedger(store), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(EventHandler(f.Handle))
	t.Cleanup(func() { srv.Close(); f.Close() })
	if approvals != "" {
		if err := pubsubtest.CreatePushSubscription(ctx, ps, project, pubsubtest.UniqueID("approvals-push"), approvals,
			srv.URL+"/"+cfg.Oversight.ApprovalTopic, pubsubtest.WithRetryPolicy(100*time.Millisecond, time.Second)); err != nil {
			t.Fatal(err)
		}
		rig.approvals = ps.Publisher(approvals)
		t.Cleanup(rig.approvals.Stop)
	}
	if err := pubsubtest.CreatePushSubscription(ctx, ps, project, pubsubtest.UniqueID("requests-push"), pl.Requests,
		srv.URL+"/", pubsubtest.WithRetryPolicy(100*time.Millisecond, time.Second)); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go ps.Subscriber(pl.ResultsSub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		var r contract.Result
		if json.Unmarshal(m.Data, &r) == nil {
			rig.mu.Lock()
			rig.results = append(rig.results, r)
			rig.mu.Unlock()
		}
		m.Ack()
	})
	rig.pub = ps.Publisher(pl.Requests)
	t.Cleanup(rig.pub.Stop)
	return rig
}

func (g *triggerRig) publish(t *testing.T, data []byte) {
	t.Helper()
	if _, err := g.pub.Publish(context.Background(), &pubsub.Message{Data: data}).Get(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// of returns the results of a request and of its children.
func (g *triggerRig) of(root string) []contract.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []contract.Result
	for _, r := range g.results {
		if r.RequestID == root || r.ParentRequestID == root {
			out = append(out, r)
		}
	}
	return out
}

// wait waits until cond holds of the results so far.
func (g *triggerRig) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			g.mu.Lock()
			defer g.mu.Unlock()
			t.Fatalf("timed out waiting for %s; results: %+v\nlogs:\n%s", what, g.results, g.logs)
		}
	}
}

// sweepDone reports whether a sweep's page said how many results to expect
// and that many child results arrived.
func sweepDone(rs []contract.Result, root string) bool {
	want, got := -1, 0
	for _, r := range rs {
		switch {
		case r.RequestID == root && r.ExpectedResults != nil:
			want = *r.ExpectedResults
		case r.ParentRequestID == root:
			got++
		}
	}
	return want >= 0 && got >= want
}

// TestAuditEntriesThroughPubSub publishes Admin audit LogEntries as an
// organization sink would, through the Pub/Sub emulator: a suspension, an
// archive and a deletion each sweep their person once (the same entry
// delivered twice included), hand-offs go to the manager or the default
// successor; an undone suspension is refused, another domain's person and a
// malformed entry make no Chat call.
func TestAuditEntriesThroughPubSub(t *testing.T) {
	g := startTriggerRig(t, triggerWorkspace(), AutoOffboard{Domains: []string{"example.com"}, Successor: "frank@example.com"})

	// First what must make no Chat call at all.
	undone, undoneData := auditEntry("suspendUser", "erin@example.com", 1)
	_, foreign := auditEntry("deleteUser", "zed@other.example", 2)
	bad := strings.Replace(string(undoneData), `"USER_EMAIL"`, `"GROUP_EMAIL"`, 1)
	for _, d := range [][]byte{undoneData, foreign, []byte(bad)} {
		g.publish(t, d)
	}
	g.wait(t, "the refused and the invalid result, and the foreign entry acknowledged", func() bool {
		return len(g.of(undone.RequestID())) == 1 && strings.Contains(g.logs.String(), "outside AUTO_OFFBOARD_DOMAINS") &&
			len(g.resultsWith(contract.Invalid)) == 1
	})
	if r := g.of(undone.RequestID())[0]; r.Outcome != contract.Refused || r.Member == nil || r.Member.Name != "users/105" || !strings.Contains(r.Detail, "active again") {
		t.Fatalf("undone suspension: %+v", r)
	}
	if r := g.resultsWith(contract.Invalid)[0]; r.Error == nil || !strings.Contains(r.Error.Message, "no event has a USER_EMAIL parameter") {
		t.Fatalf("malformed entry: %+v", r)
	}
	if st := g.stack.Chat.Stats(); len(st.Calls) != 0 {
		t.Fatalf("Chat calls for a refused, a foreign and a malformed entry: %v", st.Calls)
	}

	suspend, suspendData := auditEntry("suspendUser", "alice@example.com", 3)
	archive, archiveData := auditEntry("archiveUser", "carol@example.com", 4)
	deleted, deleteData := auditEntry("deleteUser", "dave@example.com", 5)
	for _, d := range [][]byte{suspendData, suspendData, archiveData, deleteData} {
		g.publish(t, d)
	}
	for _, ev := range []*request.AuditEvent{suspend, archive, deleted} {
		g.wait(t, "the sweep of "+ev.Email, func() bool { return sweepDone(g.of(ev.RequestID()), ev.RequestID()) })
	}
	// The duplicate entry is the same request: answered from the ledger.
	g.wait(t, "the duplicate's page result", func() bool { return g.count(suspend.RequestID()) == 2 })

	for _, c := range []struct {
		id, user string
		removed  []string
	}{
		{"101", "alice", []string{"spaces/ENG", "spaces/SALES", "spaces/SOLO"}},
		{"103", "carol", []string{"spaces/ENG", "spaces/OPS", "spaces/SOLO"}},
		{"104", "dave", []string{"spaces/SALES", "spaces/OPS", "spaces/SECRET"}},
	} {
		for _, s := range c.removed {
			if _, ok := g.stack.Chat.IsMember(s, c.id); ok {
				t.Errorf("%s still in %s", c.user, s)
			}
		}
	}
	// Only owners handed over: SOLO to alice's manager bob, SECRET (dave's
	// manager is archived) to the default successor frank.
	for space, who := range map[string]string{"spaces/SOLO": "102", "spaces/SECRET": "106"} {
		if role, ok := g.stack.Chat.IsMember(space, who); !ok || role != emulator.RoleManager {
			t.Errorf("%s: users/%s is %q, %v; want the owner", space, who, role, ok)
		}
	}
	st := g.stack.Chat.Stats()
	if st.Calls["spaces.search"] != 3 {
		t.Errorf("spaces.search calls = %d, want 3 (one sweep per person)", st.Calls["spaces.search"])
	}
	if st.Calls["members.delete"] != 9 {
		t.Errorf("members.delete calls = %d, want 9", st.Calls["members.delete"])
	}
	for _, r := range g.of(suspend.RequestID()) {
		if r.RequestID == suspend.RequestID() && (r.Outcome != contract.Planned || !strings.Contains(r.Reason, "SUSPEND_USER")) {
			t.Errorf("suspension's page: %+v", r)
		}
	}
}

// resultsWith returns the results with outcome o.
func (g *triggerRig) resultsWith(o contract.Outcome) []contract.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []contract.Result
	for _, r := range g.results {
		if r.Outcome == o {
			out = append(out, r)
		}
	}
	return out
}

// count is the number of results with request id id.
func (g *triggerRig) count(id string) int {
	n := 0
	for _, r := range g.of(id) {
		if r.RequestID == id {
			n++
		}
	}
	return n
}

func withAuto(a AutoOffboard) envOption { return func(c *Config) { c.AutoOffboard = a } }

// TestAuditEntryScope: with the trigger off, or a person outside
// AUTO_OFFBOARD_ORG_UNITS, an entry is acknowledged with a log line and
// nothing else; a protected person is swept as any sweep names them
// (refused in each of their spaces); a person the directory does not know
// at all fails with the fix.
func TestAuditEntryScope(t *testing.T) {
	ws := triggerWorkspace()
	ws.Users[2].Suspended = true // bob, in /, protected below
	ws.Users[2].OrgUnitPath = "/Staff/Eng"

	off := newEnvWith(t, ws, emulator.ChatOptions{})
	_, data := auditEntry("suspendUser", "alice@example.com", 10)
	if err := off.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	if rs := off.results(t); len(rs) != 0 || off.stack.Directory.Stats().Calls != 0 || off.chatCalls() != 0 {
		t.Fatalf("trigger off: %d results, %+v Directory calls, %d Chat calls", len(rs), off.stack.Directory.Stats(), off.chatCalls())
	}
	if !strings.Contains(off.logs.String(), `"severity":"WARNING"`) || !strings.Contains(off.logs.String(), "AUTO_OFFBOARD_DOMAINS is not set") {
		t.Fatalf("trigger off, no WARNING:\n%s", off.logs)
	}

	e := newEnvWith(t, ws, emulator.ChatOptions{}, withAuto(AutoOffboard{Domains: []string{"example.com"}, OrgUnits: []string{"/Staff"}}),
		func(c *Config) { c.Protected = []string{"bob@example.com"} })
	_, data = auditEntry("archiveUser", "carol@example.com", 11) // in "/": outside /Staff
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	if rs := e.results(t); len(rs) != 0 || e.chatCalls() != 0 || !strings.Contains(e.logs.String(), "outside AUTO_OFFBOARD_ORG_UNITS") {
		t.Fatalf("outside the org units: %d results, %d Chat calls\n%s", len(rs), e.chatCalls(), e.logs)
	}
	// The same entry again: the recorded decision (no sweep), even now.
	if err := e.send(t, string(data)); err != nil || len(e.results(t)) != 0 {
		t.Fatalf("again: %v, %+v", err, e.results(t))
	}

	bob, data := auditEntry("suspendUser", "bob@example.com", 12) // in /Staff/Eng, protected
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	refused := 0
	for _, r := range e.results(t) {
		if r.ParentRequestID == bob.RequestID() && r.Outcome == contract.Refused {
			refused++
		}
		if r.Outcome == contract.Removed {
			t.Errorf("a protected person was removed: %+v", r.Result)
		}
	}
	if refused != 3 { // bob is in ENG, OPS, SOLO (and GROUP, DM: not swept)
		t.Errorf("protected bob refused in %d spaces, want 3: %+v", refused, e.results(t))
	}

	// One activity reaching the topic twice under two insertIds (two
	// sinks): one request, one sweep, the same decision twice.
	alice, data := auditEntry("suspendUser", "alice@example.com", 14)
	searches := e.stack.Chat.Stats().Calls["spaces.search"]
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	alice.InsertID = "another-sink"
	if err := e.send(t, string(alice.LogEntry())); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	if n := e.stack.Chat.Stats().Calls["spaces.search"] - searches; n != 1 {
		t.Errorf("one activity, two entries: %d spaces.search calls, want 1", n)
	}
	ceIDs := map[string]int{}
	for _, r := range e.results(t) {
		if r.RequestID == alice.RequestID() {
			ceIDs[r.Attrs["ce-id"]]++
		}
	}
	if len(ceIDs) != 1 || ceIDs[contract.EventID(alice.RequestID(), "", contract.Planned)] != 2 {
		t.Errorf("one activity, two entries: page results by ce-id %v, want one planned decision twice", ceIDs)
	}

	_, data = auditEntry("deleteUser", "nobody@example.com", 13)
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if r := rs[len(rs)-1]; r.Outcome != contract.Failed || r.Error == nil || !strings.Contains(r.Error.Message, "not even among deleted users") {
		t.Fatalf("unknown person: %+v", r.Result)
	}
}

func TestLoadAutoOffboardConfig(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_SECRET": "s", "RESULT_TOPIC": "results"}
	load := func(extra map[string]string) (Config, error) {
		return LoadConfig(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
	}
	c, err := load(map[string]string{"AUTO_OFFBOARD_DOMAINS": " Example.com, example.org ", "AUTO_OFFBOARD_ORG_UNITS": "/Staff,/Contractors/EU",
		"AUTO_OFFBOARD_SUCCESSOR": "users/it@example.com", "AUTO_OFFBOARD_ADD_SUCCESSOR": "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := AutoOffboard{Domains: []string{"example.com", "example.org"}, OrgUnits: []string{"/Staff", "/Contractors/EU"}, Successor: "it@example.com", AddSuccessor: true}
	if diff := cmp.Diff(want, c.AutoOffboard); diff != "" {
		t.Fatalf("AutoOffboard (-want +got):\n%s", diff)
	}
	for _, u := range []struct {
		path string
		in   bool
	}{{"/Staff", true}, {"/Staff/Eng", true}, {"/Staffing", false}, {"/", false}, {"/Contractors", false}, {"/Contractors/EU/Paris", true}} {
		if got := c.AutoOffboard.inOrgUnit(u.path); got != u.in {
			t.Errorf("inOrgUnit(%q) = %v", u.path, got)
		}
	}
	if !c.AutoOffboard.inDomain("Alice@EXAMPLE.com") || c.AutoOffboard.inDomain("a@sub.example.com") || c.AutoOffboard.inDomain("a@example.com.evil") {
		t.Error("inDomain matches more or less than the exact domains")
	}
	if c, err := load(nil); err != nil || len(c.AutoOffboard.Domains) != 0 {
		t.Fatalf("unset: %+v, %v (the trigger is off)", c.AutoOffboard, err)
	}
	for k, v := range map[string]string{
		"AUTO_OFFBOARD_DOMAINS": "example.com,not a domain", "AUTO_OFFBOARD_ORG_UNITS": "Staff",
		"AUTO_OFFBOARD_SUCCESSOR": "app", "AUTO_OFFBOARD_ADD_SUCCESSOR": "yes",
	} {
		extra := map[string]string{"AUTO_OFFBOARD_DOMAINS": "example.com", k: v}
		_, err := load(extra)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != k {
			t.Errorf("%s=%q: error %v, want one naming %s", k, v, err, k)
		}
	}
	_, err = load(map[string]string{"AUTO_OFFBOARD_SUCCESSOR": "it@example.com"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Var != "AUTO_OFFBOARD_DOMAINS" {
		t.Errorf("a successor without domains: %v", err)
	}
}

// TestAuditEntryDecidesOnTheDirectory: the trigger checks
// AUTO_OFFBOARD_DOMAINS on the primary address the Directory returns, not on
// the address the entry names. A suspended person whose primary address is
// outside the domains is not swept through an alias inside them (before,
// they were); a person inside the domains is swept through their alias;
// the Directory's addresses must include the entry's.
func TestAuditEntryDecidesOnTheDirectory(t *testing.T) {
	ws := triggerWorkspace()
	ws.Users[1].Email = "alice@outside.example"      // alice (suspended) keeps her alias ali@example.com
	ws.Users[3].Aliases = []string{"cc@example.com"} // carol (archived)
	e := newEnvWith(t, ws, emulator.ChatOptions{}, withAuto(AutoOffboard{Domains: []string{"example.com"}}))

	_, data := auditEntry("suspendUser", "ali@example.com", 20)
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	if rs := e.results(t); len(rs) != 0 || e.chatCalls() != 0 || !strings.Contains(e.logs.String(), "primary address is outside AUTO_OFFBOARD_DOMAINS") {
		t.Fatalf("an alias inside the domains, the primary address outside: %d results, %d Chat calls\n%s", len(rs), e.chatCalls(), e.logs)
	}

	carol, data := auditEntry("archiveUser", "cc@example.com", 21)
	if err := e.send(t, string(data)); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	if !sweepDone(resultsOf(e.results(t)), carol.RequestID()) {
		t.Fatalf("carol through her alias inside the domains: not swept: %+v", e.results(t))
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "103"); ok {
		t.Error("carol is still in spaces/ENG")
	}

	p := directoryPerson{addresses: []string{"Alice@Example.com", "ali@example.com"}}
	if !p.hasAddress("alice@example.com") || !p.hasAddress("ALI@example.com") || p.hasAddress("bob@example.com") || (directoryPerson{}).hasAddress("") {
		t.Error("hasAddress matches more or less than the person's addresses")
	}
}

// resultsOf drops the attributes of published results.
func resultsOf(ps []published) []contract.Result {
	out := make([]contract.Result, len(ps))
	for i, p := range ps {
		out[i] = p.Result
	}
	return out
}
