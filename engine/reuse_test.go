package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	leaverreport "github.com/chat-offboard/chat-offboard/report"
)

// Issue 20, "a request id means one request": the tests of the fingerprint
// check, on the emulation with the in-process ledger, and on the real
// Firestore emulator (the OnFirestore variants).

// sendAt delivers one request published at the Engine's clock (skewed).
func (e *env) sendAt(t testing.TB, data string) error {
	t.Helper()
	now := time.Now().Add(time.Duration(e.skew.Load()))
	return e.f.Handle(context.Background(), pubsubEvent(data, now))
}

// buildReport is the leaver report of ids from the env's ledger.
func (e *env) buildReport(t testing.TB, ids ...string) *leaverreport.Report {
	t.Helper()
	rep, err := leaverreport.Build(context.Background(), e.store, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestDryRunThenRealRequestUnderOneID(t *testing.T) { dryRunThenReal(t) }

func TestDryRunThenRealRequestUnderOneIDOnFirestore(t *testing.T) {
	onFirestore(t)
	dryRunThenReal(t)
}

// dryRunThenReal: a dry run, then the real request under the same id, as
// docs/integrators.md suggests: the real one removes; both are in the
// leaver report, each complete, with nothing needing attention.
func dryRunThenReal(t *testing.T) {
	e := newEnv(t)
	const dry = `{"requestId":"hr-2026-12-01-alice","space":"spaces/ENG","member":"alice@example.com","dryRun":true}`
	const real = `{"requestId":"hr-2026-12-01-alice","space":"spaces/ENG","member":"alice@example.com"}`
	if err := e.send(t, dry); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, real); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Fatal("the real request after a dry run under the same id removed nobody")
	}
	rs := e.results(t)
	if len(rs) != 2 || rs[0].Outcome != contract.DryRun || rs[1].Outcome != contract.Removed {
		t.Fatalf("results %+v, want dry_run then removed", rs)
	}
	if rs[0].Attrs["ce-id"] == rs[1].Attrs["ce-id"] {
		t.Error("the dry run and the real request share a ce-id")
	}
	// Each delivered again: answered from its own records, no Chat call.
	calls := e.chatCalls()
	for _, data := range []string{dry, real} {
		if err := e.send(t, data); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.chatCalls() - calls; n != 0 {
		t.Errorf("%d Chat calls for the two requests delivered again", n)
	}
	if rs := e.results(t)[2:]; len(rs) != 2 || rs[0].Outcome != contract.DryRun || rs[1].Outcome != contract.Removed {
		t.Errorf("again: %+v, want dry_run then removed", rs)
	}
	rep := e.buildReport(t, "hr-2026-12-01-alice")
	if len(rep.Requests) != 2 || !rep.Complete || rep.NeedAttention != 0 {
		t.Fatalf("report: %d requests, complete %v, %d need attention: %+v", len(rep.Requests), rep.Complete, rep.NeedAttention, rep.Requests)
	}
	dryRuns := 0
	for _, r := range rep.Requests {
		if r.DryRun {
			dryRuns++
		}
	}
	if dryRuns != 1 || len(rep.People) != 1 || len(rep.People[0].Rows) != 2 {
		t.Errorf("report: %d dry runs, people %+v: want the dry run and the removal of alice", dryRuns, rep.People)
	}
}

func TestDifferentRequestUnderUsedID(t *testing.T) { differentRequestUnderUsedID(t) }

func TestDifferentRequestUnderUsedIDOnFirestore(t *testing.T) {
	onFirestore(t)
	differentRequestUnderUsedID(t)
}

// differentRequestUnderUsedID: a sweep of another person under an id a
// removal used makes no Chat call, changes nothing recorded, and is
// answered id_reused (409 ALREADY_EXISTS, the date, what differs), with a
// WARNING; the leaver report of the id counts it as needing attention.
func differentRequestUnderUsedID(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"term-1234","space":"spaces/ENG","member":"alice@example.com","reason":"left"}`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := e.store.Membership(ctx, "term-1234", "spaces/ENG/members/alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	calls := e.chatCalls()
	other := `{"requestId":"term-1234","allSpaces":true,"member":"bob@example.com","reason":"left"}`
	ev := pubsubEvent(other, time.Now())
	for range 2 { // and its redelivery
		if err := e.f.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.chatCalls() - calls; n != 0 {
		t.Errorf("%d Chat calls for a different request under a used id, want 0", n)
	}
	rs := e.results(t)
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(rs), rs)
	}
	got := rs[1]
	today := time.Now().UTC().Format(time.DateOnly)
	if got.Outcome != contract.IDReused || got.Membership != "" || got.Error == nil || got.Error.Code != 409 || got.Error.Status != "ALREADY_EXISTS" {
		t.Fatalf("answer %+v, want id_reused with 409 ALREADY_EXISTS", got.Result)
	}
	for _, want := range []string{"already used on " + today, "form: membership then, sweep now", "people: now also bob@example.com", "target: spaces/ENG/members/alice@example.com then, every space now"} {
		if !strings.Contains(got.Error.Message, want) {
			t.Errorf("the answer %q does not say %q", got.Error.Message, want)
		}
	}
	if rs[2].Attrs["ce-id"] != got.Attrs["ce-id"] {
		t.Error("the redelivered message's answer has another ce-id")
	}
	after, err := e.store.Membership(ctx, "term-1234", "spaces/ENG/members/alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if after.Outcome != before.Outcome || string(after.Result) != string(before.Result) || !after.DecidedAt.Equal(before.DecidedAt) {
		t.Errorf("the recorded decision changed: %+v, then %+v", before, after)
	}
	if rec, err := e.store.Request(ctx, "term-1234"); err != nil || rec.Kind != "space+member" || rec.State != ledger.StateOpen {
		t.Errorf("the recorded request changed: %+v, %v", rec, err)
	}
	warned := false
	for _, l := range logLines(t, e.logs) {
		if l["severity"] == "WARNING" && strings.Contains(l["message"].(string), "already used") {
			warned = true
		}
	}
	if !warned {
		t.Error("no WARNING for the reused id")
	}
	rep := e.buildReport(t, "term-1234")
	if rep.NeedAttention != 1 || len(rep.RequestResults) != 1 || rep.RequestResults[0].Outcome != string(contract.IDReused) || rep.Requests[0].Recorded != 1 {
		t.Errorf("report: %d need attention, request results %+v, requests %+v: want the id_reused answer counted, 1 decision recorded",
			rep.NeedAttention, rep.RequestResults, rep.Requests)
	}
	if rep.RequestResults[0].Fix == "" {
		t.Error("the report gives no fix for id_reused")
	}
}

// TestSameRequestAfterTheWindow: the same request under its id longer
// than REQUEST_REPLAY_WINDOW after the id's first use is answered id_reused
// ("a new departure needs a new requestId"), not replayed; within the
// window it is replayed.
func TestSameRequestAfterTheWindow(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReplayWindow = 48 * time.Hour })
	const req = `{"requestId":"term-77","space":"spaces/ENG","member":"users/101"}`
	if err := e.sendAt(t, req); err != nil {
		t.Fatal(err)
	}
	e.skew.Add(int64(47 * time.Hour))
	if err := e.sendAt(t, req); err != nil {
		t.Fatal(err)
	}
	e.skew.Add(int64(2 * time.Hour))
	calls := e.chatCalls()
	if err := e.sendAt(t, req); err != nil {
		t.Fatal(err)
	}
	if n := e.chatCalls() - calls; n != 0 {
		t.Errorf("%d Chat calls after the window, want 0", n)
	}
	rs := e.results(t)
	if len(rs) != 3 || rs[0].Outcome != contract.Removed || rs[1].Outcome != contract.Removed || rs[2].Outcome != contract.IDReused {
		t.Fatalf("results %+v, want removed, removed again, id_reused", rs)
	}
	if msg := rs[2].Error.Message; !strings.Contains(msg, "longer ago than REQUEST_REPLAY_WINDOW") || !strings.Contains(rs[2].Detail, "a new departure needs a new requestId") {
		t.Errorf("answer %q / %q does not say the window passed and a new id is needed", msg, rs[2].Detail)
	}
}

// TestChildRedeliveryIsNotAReuse: a sweep's child delivered again with what
// the sweep derives changed (the display name, group lists) is the same
// request; a child under another parent is not.
func TestChildRedeliveryIsNotAReuse(t *testing.T) {
	e := newEnv(t)
	child := `{"requestId":"sw-1/spaces/ENG","parentRequestId":"sw-1","space":"spaces/ENG","members":["101"],"adminAccess":true`
	if err := e.send(t, child+`,"spaceDisplayName":"Engineering"}`); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, child+`,"spaceDisplayName":"Engineering (renamed)","memberGroups":{"users/101":["groups/g1"]}}`); err != nil {
		t.Fatal(err)
	}
	forged := `{"requestId":"sw-1/spaces/ENG","parentRequestId":"sw-2","space":"spaces/ENG","members":["101"],"adminAccess":true}`
	if err := e.send(t, forged); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if len(rs) != 3 || rs[0].Outcome != contract.Removed || rs[1].Outcome != contract.Removed || rs[2].Outcome != contract.IDReused {
		t.Fatalf("results %+v, want removed, removed again, id_reused", rs)
	}
	if !strings.Contains(rs[2].Error.Message, "parent request: sw-1 then, sw-2 now") {
		t.Errorf("answer %q does not name the parents", rs[2].Error.Message)
	}
}

// TestDryRunSweepThenRealSweep: a dry-run sweep, then the real sweep under
// the same id: the children of both run (their ids are the same), the real
// one removes everywhere, and the report shows both requests complete.
func TestDryRunSweepThenRealSweep(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"sw-9","allSpaces":true,"member":"alice@example.com","successor":"bob@example.com","addSuccessor":true,"dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	if w := e.writes(); w["members.delete"] != 0 {
		t.Fatalf("the dry run wrote: %v", w)
	}
	if err := e.send(t, `{"requestId":"sw-9","allSpaces":true,"member":"alice@example.com","successor":"bob@example.com","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	for _, s := range []string{"spaces/ENG", "spaces/SALES", "spaces/SOLO"} {
		if _, ok := e.stack.Chat.IsMember(s, "101"); ok {
			t.Errorf("alice still in %s after the real sweep", s)
		}
	}
	rep := e.buildReport(t, "sw-9")
	if len(rep.Requests) != 2 || !rep.Complete {
		t.Fatalf("report: %+v, want the dry run and the sweep, complete", rep.Requests)
	}
	outcomes := map[string]int{}
	for _, p := range rep.People {
		for _, r := range p.Rows {
			outcomes[r.Outcome]++
		}
	}
	if outcomes[string(contract.DryRun)] != 3 || outcomes[string(contract.Removed)] != 3 {
		t.Errorf("report outcomes %v, want 3 dry_run and the removals", outcomes)
	}
}
