package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/request"
)

// These tests run on the real Pub/Sub emulator (push subscriptions of the
// requests topic and of APPROVAL_TOPIC) and the real Firestore emulator
// (the ledger); the clock is injected, nothing waits out a grace period.

// writesTo records the Chat writes (deletes, creates, patches) made, with
// the time each was answered.
type writesTo struct {
	mu    sync.Mutex
	calls []emulator.CallInfo
	at    []time.Time
}

func recordWrites(stack *emulator.Stack) *writesTo {
	w := &writesTo{}
	stack.Chat.OnCall(func(c emulator.CallInfo) {
		if strings.HasSuffix(c.Method, ".delete") || strings.HasSuffix(c.Method, ".create") || strings.HasSuffix(c.Method, ".patch") {
			w.mu.Lock()
			w.calls, w.at = append(w.calls, c), append(w.at, time.Now())
			w.mu.Unlock()
		}
	})
	return w
}

// of counts the writes whose name contains s.
func (w *writesTo) of(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		if strings.Contains(c.Name, s) {
			n++
		}
	}
	return n
}

func (g *triggerRig) publishTo(t *testing.T, p *pubsub.Publisher, data string) {
	t.Helper()
	if _, err := p.Publish(context.Background(), &pubsub.Message{Data: []byte(data)}).Get(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// outcomes are the outcomes of the results with request id id, in order.
func (g *triggerRig) outcomes(id string) []contract.Outcome {
	var out []contract.Outcome
	for _, r := range g.of(id) {
		if r.RequestID == id {
			out = append(out, r.Outcome)
		}
	}
	return out
}

// TestGracePeriodOnEmulators: Workspace suspensions are held for
// AUTO_OFFBOARD_DELAY with no Chat call; a due tick before then releases
// nothing; after it, duplicate ticks sweep the person still suspended once,
// and refuse the one whose suspension was undone meanwhile with no write.
func TestGracePeriodOnEmulators(t *testing.T) {
	onFirestore(t)
	g := startTriggerRig(t, triggerWorkspace(), AutoOffboard{Domains: []string{"example.com"}, Successor: "erin@example.com"},
		func(c *Config) { c.Oversight.Delay, c.MaxEventAge = 72*time.Hour, 1000*time.Hour })
	writes := recordWrites(g.stack)
	alice, aliceData := auditEntry("suspendUser", "alice@example.com", 11)
	frank, frankData := auditEntry("suspendUser", "frank@example.com", 12)
	start := time.Now()
	g.publish(t, aliceData)
	g.publish(t, frankData)
	g.publish(t, aliceData) // a duplicate entry: the same request
	for _, ev := range []*request.AuditEvent{alice, frank} {
		g.wait(t, "the held result of "+ev.Email, func() bool { return g.count(ev.RequestID()) >= 1 })
		r := g.of(ev.RequestID())[0]
		if r.Outcome != contract.Held || r.DueAt == nil || r.DueAt.Sub(start) < 72*time.Hour || r.DueAt.Sub(start) > 73*time.Hour ||
			!strings.Contains(r.Detail, "grace period") {
			t.Fatalf("%s: %+v, want held until 72h from now", ev.Email, r)
		}
	}
	g.wait(t, "the duplicate's held result", func() bool { return g.count(alice.RequestID()) == 2 })
	if n := len(g.stack.Chat.Stats().Calls); n != 0 {
		t.Fatalf("Chat calls while held: %v", g.stack.Chat.Stats().Calls)
	}

	// A tick before the delay is over releases nothing.
	g.publish(t, []byte(`{"requestId":"tick-early","due":true}`))
	g.wait(t, "the early tick", func() bool { return strings.Contains(g.logs.String(), "due tick: 0 held requests released") })
	// Frank is unsuspended meanwhile; then the delay is over.
	if err := g.stack.Directory.SetSuspended("frank@example.com", false); err != nil {
		t.Fatal(err)
	}
	g.skew.Add(int64(73 * time.Hour))
	for _, tick := range []string{`{"requestId":"tick-1","due":true}`, `{"requestId":"tick-2","due":true}`, `{"requestId":"tick-1","due":true}`} {
		g.publish(t, []byte(tick))
	}
	g.wait(t, "alice swept", func() bool { return sweepDone(g.of(alice.RequestID()), alice.RequestID()) })
	g.wait(t, "frank refused", func() bool { return len(g.outcomes(frank.RequestID())) == 2 })
	g.wait(t, "three ticks", func() bool { return strings.Count(g.logs.String(), "due tick: ") == 4 })
	if o := g.outcomes(alice.RequestID()); len(o) != 3 || o[2] != contract.Planned {
		t.Fatalf("alice's request answered %v, want held, held, planned (one sweep)", o)
	}
	r := g.of(frank.RequestID())[1]
	if r.Outcome != contract.Refused || !strings.Contains(r.Detail, "active again") {
		t.Fatalf("frank after his suspension was undone: %+v", r)
	}
	if n := writes.of("/members/106"); n != 0 {
		t.Fatalf("%d Chat writes for frank, want 0", n)
	}
	removed := 0
	for _, r := range g.of(alice.RequestID()) {
		if r.ParentRequestID == alice.RequestID() && r.Outcome == contract.Removed {
			removed++
		}
	}
	if removed == 0 || writes.of("/members/101") != removed {
		t.Fatalf("alice: %d removed, %d deletes: want one delete per removal", removed, writes.of("/members/101"))
	}
	if _, ok := g.stack.Chat.IsMember("spaces/HR", "106"); !ok {
		t.Fatal("frank was removed from spaces/HR")
	}
}

// TestBrakeAndApprovalsOnEmulators: with the brake at 2, four suspensions
// give two sweeps and two held (CRITICAL); an approval published to the
// requests topic does nothing, the same from APPROVAL_TOPIC releases one,
// and a rejection refuses the other, naming who rejected it.
func TestBrakeAndApprovalsOnEmulators(t *testing.T) {
	onFirestore(t)
	g := startTriggerRig(t, triggerWorkspace(), AutoOffboard{Domains: []string{"example.com"}, Successor: "erin@example.com"},
		rigApprovals, func(c *Config) { c.Oversight.MaxPerHour = 2 })
	writes := recordWrites(g.stack)
	var events []*request.AuditEvent
	for i, who := range []string{"alice", "carol", "dave", "frank"} {
		method := map[string]string{"alice": "suspendUser", "carol": "archiveUser", "dave": "deleteUser", "frank": "suspendUser"}[who]
		ev, data := auditEntry(method, who+"@example.com", int64(20+i))
		events = append(events, ev)
		g.publish(t, data)
	}
	var held, swept []*request.AuditEvent
	g.wait(t, "four answers", func() bool {
		held, swept = nil, nil
		for _, ev := range events {
			switch o := g.outcomes(ev.RequestID()); {
			case len(o) == 0:
				return false
			case o[0] == contract.Held:
				held = append(held, ev)
			default:
				swept = append(swept, ev)
			}
		}
		return true
	})
	if len(held) != 2 || len(swept) != 2 {
		t.Fatalf("%d held and %d swept, want 2 and 2", len(held), len(swept))
	}
	for _, ev := range swept {
		g.wait(t, "the sweep of "+ev.Email, func() bool { return sweepDone(g.of(ev.RequestID()), ev.RequestID()) })
	}
	if n := strings.Count(g.logs.String(), `"severity":"CRITICAL","message":"the brake is engaged`); n != 2 {
		t.Fatalf("%d CRITICAL brake lines, want 2", n)
	}
	if r := g.of(held[0].RequestID())[0]; r.DueAt != nil || !strings.Contains(r.Detail, "AUTO_OFFBOARD_MAX_PER_HOUR") {
		t.Fatalf("held by the brake: %+v", r)
	}
	before := writes.of("/members/")

	approve := fmt.Sprintf(`{"requestId":"ap-1","approve":%q,"requestedBy":"ops@example.com"}`, held[0].RequestID())
	g.publish(t, []byte(approve)) // the requests topic
	g.wait(t, "the approval on the requests topic refused", func() bool { return g.count("ap-1") == 1 })
	if r := g.of("ap-1")[0]; r.Outcome != contract.Refused || r.Error == nil || r.Error.Status != "PERMISSION_DENIED" {
		t.Fatalf("approval on the requests topic: %+v", r)
	}
	g.publishTo(t, g.approvals, approve)
	g.wait(t, "the released sweep", func() bool { return sweepDone(g.of(held[0].RequestID()), held[0].RequestID()) })
	if o := g.outcomes("ap-1"); len(o) != 2 || o[1] != contract.Planned {
		t.Fatalf("approval answered %v, want refused then planned", o)
	}
	g.publish(t, []byte(approve)) // the requests topic again: nothing more
	g.wait(t, "the second refusal", func() bool { return g.count("ap-1") == 3 })

	g.publishTo(t, g.approvals, fmt.Sprintf(`{"requestId":"rj-1","reject":%q,"requestedBy":"cio@example.com"}`, held[1].RequestID()))
	g.wait(t, "the rejected request refused", func() bool { return len(g.outcomes(held[1].RequestID())) == 2 })
	r := g.of(held[1].RequestID())[1]
	if r.Outcome != contract.Refused || r.Error == nil || r.Error.Message != "rejected by cio@example.com" {
		t.Fatalf("rejected request: %+v", r)
	}
	if o := g.outcomes(held[0].RequestID()); len(o) != 2 || o[0] != contract.Held || o[1] != contract.Planned {
		t.Fatalf("approved request answered %v, want held then one planned", o)
	}
	id := map[string]string{"alice": "101", "carol": "103", "dave": "104", "frank": "106"}
	if n := writes.of("/members/" + id[strings.TrimSuffix(held[1].Email, "@example.com")]); n != 0 {
		t.Fatalf("%d Chat writes for the rejected person", n)
	}
	if writes.of("/members/") == before {
		t.Fatal("the approved sweep wrote nothing")
	}
}

// cancelWorkspace is the default workspace with alice a member of 60 more
// spaces.
func cancelWorkspace() emulator.Workspace {
	ws := emulator.Default()
	for i := range 60 {
		ws.Spaces = append(ws.Spaces, emulator.Space{Name: fmt.Sprintf("spaces/C%02d", i), DisplayName: fmt.Sprintf("C%02d", i), SpaceType: emulator.SpaceTypeSpace,
			Members: []emulator.Member{{User: "users/100", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager},
				{User: "users/101", Type: emulator.MemberTypeHuman, Role: emulator.RoleMember}}})
	}
	return ws
}

// TestCancelMidSweepOnEmulators: a cancel from APPROVAL_TOPIC stops a
// running sweep: every membership is answered once, those decided before
// the cancel stay, the others are refused (cancelled), and no write was
// intended after the cancel was recorded.
func TestCancelMidSweepOnEmulators(t *testing.T) {
	onFirestore(t)
	g := startTriggerRig(t, cancelWorkspace(), AutoOffboard{}, rigApprovals)
	writes := recordWrites(g.stack)
	g.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Latency: 80 * time.Millisecond})
	g.publish(t, []byte(`{"requestId":"sw-1","allSpaces":true,"member":"users/101","successor":"bob@example.com"}`))
	removedSoFar := func() int {
		n := 0
		for _, r := range g.of("sw-1") {
			if r.Outcome == contract.Removed {
				n++
			}
		}
		return n
	}
	g.wait(t, "five removals", func() bool { return removedSoFar() >= 5 })
	g.publishTo(t, g.approvals, `{"requestId":"cx-1","cancel":"sw-1","requestedBy":"ops@example.com"}`)
	g.wait(t, "the cancel recorded", func() bool { return g.count("cx-1") == 1 })
	if r := g.of("cx-1")[0]; r.Outcome != contract.Planned || !strings.Contains(r.Detail, "cancel of sw-1 recorded") {
		t.Fatalf("cancel: %+v", r)
	}
	g.wait(t, "the sweep's report complete", func() bool { return sweepDone(g.of("sw-1"), "sw-1") })

	// Every membership once, with one outcome.
	seen := map[string]contract.Outcome{}
	removed, cancelled := 0, 0
	for _, r := range g.of("sw-1") {
		if r.ParentRequestID != "sw-1" || r.Membership == "" {
			continue
		}
		key := r.RequestID + " " + r.Membership
		if o, ok := seen[key]; ok && o != r.Outcome {
			t.Fatalf("%s answered %s and %s", key, o, r.Outcome)
		}
		if _, ok := seen[key]; ok {
			continue
		}
		seen[key] = r.Outcome
		switch {
		case r.Outcome == contract.Removed:
			removed++
		case r.Outcome == contract.Refused && r.Error != nil && r.Error.Message == "cancelled":
			cancelled++
		}
	}
	if removed < 5 || cancelled == 0 {
		t.Fatalf("%d removed and %d cancelled, want both", removed, cancelled)
	}
	if n := writes.of("/members/101"); n != removed {
		t.Fatalf("%d deletes for %d removals", n, removed)
	}
	// No write was intended after the cancel was recorded: the ledger's
	// removals were all intended before it.
	store := ledgerFor(t)
	h, err := store.Hold(context.Background(), "sw-1")
	if err != nil || !h.Cancelled() || h.CancelledBy != "ops@example.com" {
		t.Fatalf("hold of sw-1: %+v, %v", h, err)
	}
	n := 0
	for m, err := range store.Memberships(context.Background(), "sw-1") {
		if err != nil {
			t.Fatal(err)
		}
		if m.Outcome == string(contract.Removed) {
			n++
			if !m.IntendedAt.Before(h.CancelledAt) {
				t.Errorf("%s removed with an intent at %s, after the cancel at %s", m.Name, m.IntendedAt, h.CancelledAt)
			}
		}
	}
	if n != removed {
		t.Fatalf("ledger: %d removals, results: %d", n, removed)
	}
}
