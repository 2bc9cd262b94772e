package engine

import (
	"context"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// The ledger's cost in Firestore writes (issue 13: at most 2 per removal
// and per sweep space beyond its decisions), counted on the wire by the
// meter of the ledger's client: every document a commit creates or updates.

// TestLedgerWritesPerRemoval: a single removal commits three documents, its
// request, its intent and its decision (two beyond the decision), in three
// round trips; a second delivery commits none.
func TestLedgerWritesPerRemoval(t *testing.T) {
	m := onMeteredFirestore(t)
	e := newEnv(t)
	ev := pubsubEvent(`{"requestId":"cost-one","space":"spaces/ENG","member":"bob@example.com"}`, time.Now())
	if err := e.f.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t); r.Outcome != contract.Removed {
		t.Fatalf("outcome %s, want removed", r.Outcome)
	}
	if got := m.Writes(); got != 3 {
		t.Errorf("a removal committed %d Firestore writes, want 3 (request, intent, decision)", got)
	}
	if got := m.RPCs(); got != 3 {
		t.Errorf("a removal made %d Firestore round trips, want 3 (its three commits; nothing to read in a request just created)", got)
	}
	before := m.Writes()
	if err := e.f.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got := m.Writes() - before; got != 0 {
		t.Errorf("the second delivery committed %d Firestore writes, want 0", got)
	}
	t.Logf("single removal: %d writes (1 decision), %d RPCs for two deliveries", before, m.RPCs())
}

// TestLedgerWritesPerSweepSpace: a sweep of 600 spaces and three people
// commits, beyond its decisions, one write per removal (its intent), one
// per space (the child request) and at most three per page (its request,
// claim and state); delivered twice, it commits nothing more.
func TestLedgerWritesPerSweepSpace(t *testing.T) {
	m := onMeteredFirestore(t)
	ws, in, _ := bigWorkspace(600)
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	if err := e.send(t, `{"requestId":"cost-sweep","allSpaces":true,"members":["users/201","users/202","users/203"],"successor":"users/102","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)
	writes := m.Writes()
	st := e.stack.Chat.Stats()
	removals := st.Calls["members.delete"]
	want := int64(len(in["201"]) + len(in["202"]) + len(in["203"]))
	if removals != want {
		t.Fatalf("members.delete calls = %d, want %d", removals, want)
	}
	decisions, pages := int64(0), int64(0)
	for _, r := range e.results(t) {
		switch {
		case r.Membership != "":
			decisions++
		case r.Outcome == contract.Planned:
			pages++
		}
	}
	spaces := int64(600)
	handOffs := st.Calls["members.patch"] + st.Calls["members.create"] // each hand-off write has its intent and decision
	extra := writes - decisions
	t.Logf("sweep: %d writes = %d decisions + %d (spaces %d, removals %d, hand-off writes %d, planned results %d): %.2f per space beyond its decisions and intents",
		writes, decisions, extra, spaces, removals, handOffs, pages, float64(extra-removals-2*handOffs)/float64(spaces))
	if limit := spaces + removals + 2*handOffs + 3*pages; extra > limit {
		t.Errorf("%d writes beyond the decisions, want at most %d (1 per space, 1 per removal, 2 per hand-off write, 3 per page)", extra, limit)
	}
	e.redeliverAll(t)
	if got := m.Writes() - writes; got != 0 {
		t.Errorf("delivering every message again committed %d writes, want 0", got)
	}
}

// redeliverAll delivers once more, one at a time, every message published
// to the requests topic so far.
func (e *env) redeliverAll(t *testing.T) {
	t.Helper()
	for _, m := range e.psrv.Messages() {
		if m.Topic != e.cfg.RequestTopic {
			continue
		}
		if err := e.f.Handle(context.Background(), e.delivery(m)); err != nil {
			t.Fatalf("redelivery of %s: %v", m.ID, err)
		}
	}
}
