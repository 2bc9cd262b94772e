package engine

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// The tests of this file hold issue 13's promises against the real
// Firestore emulator: every message delivered twice costs no second Chat
// write and no second read of a space, each (space, person) gets exactly one
// decision, a process that stopped between intent and decision loses
// nothing, and an unavailable ledger stops every write.

// drainTwice delivers every message published to the requests topic twice,
// the copies concurrently, until none is left, as an at-least-once push
// would at its worst. A delivery that returns an error is delivered again,
// at most 100 times.
func (e *env) drainTwice(t testing.TB) {
	t.Helper()
	done := map[string]bool{}
	for round := 0; ; round++ {
		var todo []event.Event
		for _, m := range e.psrv.Messages() {
			if m.Topic != e.cfg.RequestTopic || done[m.ID] {
				continue
			}
			done[m.ID] = true
			todo = append(todo, e.delivery(m))
		}
		if len(todo) == 0 {
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, ev := range todo {
			for range 2 {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					// The copy that finds the other at work is
					// redelivered until the other is done.
					for try := 0; try < 100; try++ {
						if e.f.Handle(context.Background(), ev) == nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
					t.Errorf("message %s failed 100 times", ev.ID())
				}()
			}
		}
		wg.Wait()
	}
}

// sendUntilAcked delivers a request until Handle acknowledges it, as Pub/Sub
// redelivers an event handed back (a transient error: the first request to
// a fresh emulator project can time out while the emulator is loaded), at
// most 5 times.
func (e *env) sendUntilAcked(t testing.TB, data string) {
	t.Helper()
	ev := pubsubEvent(data, time.Now())
	var err error
	for try := 0; try < 5; try++ {
		if err = e.f.Handle(context.Background(), ev); err == nil {
			return
		}
		t.Logf("delivery %d handed back: %v", try+1, err)
	}
	t.Fatalf("5 deliveries handed back; the last: %v", err)
}

// decisionsBy counts the distinct ce-ids of the results per (request,
// membership), and the results per ce-id.
func decisionsBy(rs []published) (perMembership map[string]map[string]bool) {
	perMembership = map[string]map[string]bool{}
	for _, r := range rs {
		if r.Membership == "" {
			continue
		}
		k := r.RequestID + " " + r.Membership
		if perMembership[k] == nil {
			perMembership[k] = map[string]bool{}
		}
		perMembership[k][r.Attrs["ce-id"]] = true
	}
	return perMembership
}

// TestSweepDeliveredTwiceDecidesOnce: a sweep of 1,100 spaces (two pages)
// whose every page and child is delivered twice, concurrently: one
// members.list per space, one spaces.search per page, one delete per
// membership, and one decision (one ce-id) per (space, person).
func TestSweepDeliveredTwiceDecidesOnce(t *testing.T) {
	onFirestore(t)
	ws, in, _ := bigWorkspace(1100)
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	req := `{"requestId":"twice","allSpaces":true,"members":["users/202","users/203"],"successor":"users/102","addSuccessor":true}`
	for range 2 {
		e.sendUntilAcked(t, req)
	}
	e.drainTwice(t)
	st := e.stack.Chat.Stats()
	if got := st.Calls["members.list"]; got != 1100 {
		t.Errorf("members.list calls = %d, want 1100 (one read per space)", got)
	}
	if got := st.Calls["spaces.search"]; got != 2 {
		t.Errorf("spaces.search calls = %d, want 2 (one per page)", got)
	}
	wantDeletes := int64(len(in["202"]) + len(in["203"]))
	if got := st.Calls["members.delete"]; got != wantDeletes {
		t.Errorf("members.delete calls = %d, want %d (one per membership)", got, wantDeletes)
	}
	per := decisionsBy(e.results(t))
	if len(per) != 2*1100 {
		t.Errorf("%d (space, person) pairs decided, want %d", len(per), 2*1100)
	}
	for k, ids := range per {
		if len(ids) != 1 {
			t.Errorf("%s: %d different decisions", k, len(ids))
		}
	}
	for _, id := range []string{"202", "203"} {
		for _, s := range in[id] {
			if _, ok := e.stack.Chat.IsMember(s, id); ok {
				t.Errorf("users/%s still in %s", id, s)
			}
		}
	}
}

// TestEveryKindDeliveredTwice: a single removal, a dry run, a bulk request
// and a space+members request, each delivered twice: the second delivery
// makes no Chat call and publishes the first decision again, with the same
// ce-id.
func TestEveryKindDeliveredTwice(t *testing.T) {
	onFirestore(t)
	e := newEnv(t)
	for _, d := range []string{
		`{"requestId":"one","space":"spaces/ENG","member":"alice@example.com"}`,
		`{"requestId":"dry","space":"spaces/OPS","member":"users/103","dryRun":true}`,
		`{"requestId":"several","space":"spaces/OPS","members":["users/104","users/106","users/105"],"adminAccess":true}`,
		`{"requestId":"bulk","spaces":["spaces/SALES","spaces/HR"],"member":"users/105"}`,
	} {
		ev := pubsubEvent(d, time.Now())
		if err := e.f.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		before := e.chatCalls()
		if err := e.f.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if n := e.chatCalls() - before; n != 0 {
			t.Errorf("%s: the second delivery made %d Chat calls", d, n)
		}
	}
	e.drainTwice(t)
	rs := e.results(t)
	byID := map[string]int{}
	for _, r := range rs {
		byID[r.Attrs["ce-id"]]++
	}
	for _, r := range rs {
		if r.Outcome == contract.Planned {
			continue
		}
		if n := byID[r.Attrs["ce-id"]]; n != 2 {
			t.Errorf("%s %s %s published %d times, want twice with one ce-id", r.RequestID, r.Membership, r.Outcome, n)
		}
	}
	for k, ids := range decisionsBy(rs) {
		if len(ids) != 1 {
			t.Errorf("%s: %d different decisions", k, len(ids))
		}
	}
	if got := e.stack.Chat.Stats().Calls["members.delete"]; got != 5 {
		t.Errorf("members.delete calls = %d, want 5 (alice in ENG; dave and frank in OPS; erin in SALES and HR)", got)
	}
}

// TestIntentWithoutDecisionIsRecovered: a delivery that stopped after
// recording its intent loses nothing. If it stopped before the delete, the
// redelivery deletes; if after, the redelivery finds the membership gone
// and reports removed with the role recorded before the write, without a
// second delete.
func TestIntentWithoutDecisionIsRecovered(t *testing.T) {
	onFirestore(t)
	e := newEnv(t, func(c *Config) { c.MaxEventAge = 24 * time.Hour })
	ctx := context.Background()
	for _, in := range []ledger.Intent{
		{RequestID: "died-before", Membership: "spaces/ENG/members/102", Member: "users/102", Role: "ROLE_MEMBER", Action: ledger.ActionDelete},
		{RequestID: "died-after", Membership: "spaces/ENG/members/101", Member: "users/101", Role: "ROLE_MANAGER", Action: ledger.ActionDelete},
	} {
		// A delivery records its request before any intent.
		if _, _, err := e.store.CreateRequest(ctx, ledger.Request{ID: in.RequestID, Kind: "membership"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.Intend(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// The second delivery stopped after its delete: the membership is gone.
	removeDirectly(t, e, "spaces/ENG", "101")
	// An hour later (longer than any invocation) the intents are stale.
	e.skew.Store(int64(time.Hour))

	if err := e.send(t, `{"requestId":"died-before","space":"spaces/ENG","member":"users/102"}`); err != nil {
		t.Fatal(err)
	}
	before := e.stack.Chat.Stats().Calls["members.delete"]
	if err := e.send(t, `{"requestId":"died-after","space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	if n := e.stack.Chat.Stats().Calls["members.delete"] - before; n != 0 {
		t.Errorf("the recovery of a removal already made sent %d deletes", n)
	}
	rs := e.results(t)
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	if rs[0].Outcome != contract.Removed || rs[0].Role != "ROLE_MEMBER" {
		t.Errorf("died before the delete: %s role %q", rs[0].Outcome, rs[0].Role)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "102"); ok {
		t.Error("died before the delete: bob is still in ENG")
	}
	want := contract.Result{
		RequestID: "died-after", Membership: "spaces/ENG/members/101", Outcome: contract.Removed,
		MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
	}
	if diff := resultDiff(want, rs[1].Result, []string{"Detail", "Attempts"}); diff != "" {
		t.Errorf("died after the delete (-want +got):\n%s", diff)
	}
}

// removeDirectly takes user out of space behind the function's back, as a
// delivery that died after its delete would have left it.
func removeDirectly(t *testing.T, e *env, space, user string) {
	t.Helper()
	ev := pubsubEvent(fmt.Sprintf(`{"requestId":"behind-the-back","space":%q,"member":"users/%s"}`, space, user), time.Now())
	if err := e.f.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.stack.Chat.IsMember(space, user); ok {
		t.Fatalf("%s still in %s", user, space)
	}
	e.psrv.ClearMessages()
}

// TestIntentInFlightWaits: an intent another delivery recorded a moment ago
// may still be writing: this delivery writes nothing and is redelivered.
func TestIntentInFlightWaits(t *testing.T) {
	onFirestore(t)
	e := newEnv(t)
	if _, _, err := e.store.Intend(context.Background(), ledger.Intent{
		RequestID: "busy", Membership: "spaces/ENG/members/102", Member: "users/102", Role: "ROLE_MEMBER", Action: ledger.ActionDelete,
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, `{"requestId":"busy","space":"spaces/ENG","member":"users/102"}`); err == nil {
		t.Fatal("Handle = nil with another delivery's intent in flight, want redelivery")
	}
	if n := e.stack.Chat.Stats().Calls["members.delete"]; n != 0 {
		t.Errorf("%d deletes while another delivery's intent was in flight", n)
	}
}

// TestLedgerUnavailableFailsClosed: with the ledger unreachable, an event is
// handed back for redelivery and no Chat write is made.
func TestLedgerUnavailableFailsClosed(t *testing.T) {
	down, err := ledger.NewFirestore(context.Background(), "down", ledger.DefaultDatabase, unreachableFirestore(t)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	ledgers.Store(t, ledger.Store(down))
	e := newEnv(t, func(c *Config) { c.EventTimeout = 5 * time.Second })
	for _, d := range []string{
		`{"space":"spaces/ENG","member":"users/102"}`,
		`{"space":"spaces/ENG","members":["users/102"],"adminAccess":true}`,
		`{"requestId":"b","spaces":["spaces/ENG"],"member":"users/102"}`,
		`{"requestId":"s","allSpaces":true,"member":"users/102"}`,
	} {
		if err := e.send(t, d); err == nil {
			t.Errorf("%s: Handle = nil with the ledger down, want redelivery", d)
		}
	}
	st := e.stack.Chat.Stats()
	for _, m := range []string{"members.delete", "members.create", "members.patch"} {
		if st.Calls[m] != 0 {
			t.Errorf("%d %s calls with the ledger down", st.Calls[m], m)
		}
	}
	if rs := e.results(t); len(rs) != 0 {
		t.Errorf("results published with the ledger down: %+v", rs)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "102"); !ok {
		t.Error("bob removed with the ledger down")
	}
}

// unreachableFirestore are client options for a Firestore that does not
// answer: a loopback port nobody listens on. The client library prefers
// FIRESTORE_EMULATOR_HOST to any endpoint option, so it points there too,
// for the test's duration (t must not be parallel).
func unreachableFirestore(t *testing.T) []option.ClientOption {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv(firestoretest.EnvEmulatorHost, addr)
	return firestoretest.ClientOptions(addr)
}
