package main

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/request"
)

// resultLog collects the results published to a results topic.
type resultLog struct {
	mu      sync.Mutex
	results []contract.Result
}

// of returns the results of the request root and of its children.
func (l *resultLog) of(root string) []contract.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []contract.Result
	for _, r := range l.results {
		if r.RequestID == root || r.ParentRequestID == root {
			out = append(out, r)
		}
	}
	return out
}

// swept reports whether the sweep root said how many child results to
// expect, that many arrived, and the root's own result came n times.
func (l *resultLog) swept(root string, n int) bool {
	want, children, roots := -1, 0, 0
	for _, r := range l.of(root) {
		switch {
		case r.RequestID == root:
			roots++
			if r.ExpectedResults != nil {
				want = *r.ExpectedResults
			}
		case r.ParentRequestID == root:
			children++
		}
	}
	return want >= 0 && children >= want && roots >= n
}

// collectResults reads the results topic of e through a pull subscription
// of its own until ctx is done.
func collectResults(ctx context.Context, t *testing.T, e *clitest.E2E) *resultLog {
	t.Helper()
	sub := pubsubtest.UniqueID("results-log")
	if err := pubsubtest.CreatePullSubscription(ctx, e.PS, e.Project, sub, e.ResTopic, ""); err != nil {
		t.Fatal(err)
	}
	l := &resultLog{}
	go e.PS.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		var r contract.Result
		if json.Unmarshal(m.Data, &r) == nil {
			l.mu.Lock()
			l.results = append(l.results, r)
			l.mu.Unlock()
		}
		m.Ack()
	})
	return l
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestReconcileEndToEnd: the function behind the Pub/Sub emulator with the
// Workspace trigger on. Alice's suspension arrives from the sink and she is
// swept; Bob's never arrives. offboard reconcile then publishes both from
// the Reports API: Bob is swept, and Alice's activity is the same request,
// which the ledger does not act on again (no second delete, no Chat call for
// her spaces).
func TestReconcileEndToEnd(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := clitest.NewE2E(ctx, t, host, "reconcile-e2e")
	ws := emulator.Default()
	ws.Users[1].Suspended = true // alice
	ws.Users[2].Suspended = true // bob
	f, stack := clitest.NewFunction(t, e.PS, e.Project, e.ReqTopic, e.ResTopic, ws,
		func(c *engine.Config) { c.AutoOffboard = engine.AutoOffboard{Domains: []string{"example.com"}} })
	results := collectResults(ctx, t, e)
	clitest.Serve(ctx, t, e.PS, e.Project, e.ReqTopic, e.ReqSub, f)

	reports := emulator.NewReports(ws, stack.OAuth)
	t.Cleanup(reports.Close)
	rt := stack.OAuth.IssueRefreshToken(stack.ClientID, "users/100",
		append(slices.Clone(emulator.StackScopes), emulator.ScopeAdminReportsAuditReadonly))
	stack.Secrets.AddVersion(stack.Project, "reports-token", emulator.AuthorizedUserJSON(stack.ClientID, stack.ClientSecret, rt, stack.OAuth.TokenURL()))
	// The LogEntry has the activity's time in microseconds, the Reports API
	// in milliseconds.
	aliceAt := time.Now().Add(-time.Hour).Truncate(time.Millisecond).Add(417 * time.Microsecond)
	aliceQ := reports.Add(emulator.AdminUserEvent("SUSPEND_USER", "alice@example.com", reportsAdmin, aliceAt))
	bobAt := time.Now().Add(-30 * time.Minute)
	bobQ := reports.Add(emulator.AdminUserEvent("SUSPEND_USER", "bob@example.com", reportsAdmin, bobAt))
	alice := &request.AuditEvent{InsertID: "sinkentry1", Organization: testOrg, Method: "google.admin.AdminService.suspendUser",
		EventName: "SUSPEND_USER", Email: "alice@example.com", Actor: reportsAdmin, Time: aliceAt, UniqueQualifier: aliceQ, HasActivityID: true}

	// The sink delivers Alice's entry.
	searches := stack.Chat.Stats().Calls["spaces.search"]
	if _, err := e.PS.Publisher(e.ReqTopic).Publish(ctx, &pubsub.Message{Data: alice.LogEntry()}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's sweep", func() bool { return results.swept(alice.RequestID(), 1) })
	for _, space := range []string{"spaces/ENG", "spaces/SALES"} {
		if _, ok := stack.Chat.IsMember(space, "101"); ok {
			t.Errorf("alice is still in %s after her sweep", space)
		}
	}
	deletes := stack.Chat.Stats().Calls["members.delete"]
	aliceSearches := stack.Chat.Stats().Calls["spaces.search"] - searches

	env := e.Env()
	env["REPORTS_ENDPOINT"] = reports.URL()
	env["SECRET_MANAGER_ENDPOINT"] = stack.Secrets.Addr()
	env["TOKEN_SECRET"] = "projects/" + stack.Project + "/secrets/reports-token"
	fx := &reconcileFixture{env: env}
	if r := fx.reconcile(t, "--organization", testOrg, "--since", "2h"); r.code != exitOK {
		t.Fatalf("reconcile: exit %d\n%s", r.code, r.stderr)
	}
	bobID := request.AuditRequestID(bobAt, bobQ)
	waitFor(t, "bob's sweep, and alice's request answered again", func() bool {
		return results.swept(bobID, 1) && results.swept(alice.RequestID(), 2)
	})
	bobRemoved := 0
	for _, r := range results.of(bobID) {
		if r.Outcome == contract.Removed {
			bobRemoved++
		}
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "102"); ok || bobRemoved == 0 {
		t.Errorf("bob not swept: still in spaces/ENG, %d removed", bobRemoved)
	}
	st := stack.Chat.Stats()
	if got := st.Calls["members.delete"]; got != deletes+int64(bobRemoved) {
		t.Errorf("members.delete calls: %d after alice's sweep, %d after the reconciliation, want only bob's %d more",
			deletes, got, bobRemoved)
	}
	// Alice's second delivery searched no space: only Bob's sweep did, as
	// many pages as Alice's.
	if got := st.Calls["spaces.search"] - searches; aliceSearches == 0 || got != 2*aliceSearches {
		t.Errorf("spaces.search calls: %d for alice's sweep, %d in all, want twice as many (bob's sweep only)", aliceSearches, got)
	}
}
