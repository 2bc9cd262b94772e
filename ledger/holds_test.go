package ledger_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

func TestMemoryHolds(t *testing.T) { t.Parallel(); holdsConformance(t, memoryStore) }

func TestFirestoreHolds(t *testing.T) {
	t.Parallel()
	firestoretest.Emulator(t)
	holdsConformance(t, firestoreStore)
}

// holdIDs collects the request ids an iteration of holds yields.
func holdIDs(t *testing.T, seq func(func(ledger.Hold, error) bool)) []string {
	t.Helper()
	var out []string
	for h, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.RequestID)
	}
	return out
}

// holdsConformance checks the holds of a store: created once, moved on by
// exactly one of many concurrent callers, listed by state and by release,
// cancelled held or running, and the brake's rolling window exact under
// concurrency.
func holdsConformance(t *testing.T, mk newStore) {
	cases := []struct {
		name string
		run  func(t *testing.T, s ledger.Store, clk *clock)
	}{
		{"CreateOnceAndRelease", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			due := t0.Add(72 * time.Hour)
			h, created := must2[ledger.Hold](t)(s.CreateHold(ctx, ledger.Hold{RequestID: "w/1", Kind: "sweep", Why: ledger.HeldGrace,
				Message: []byte(`{"x":1}`), Result: []byte(`{"outcome":"held"}`), DueAt: due}))
			if !created || h.State != ledger.HoldHeld || !h.HeldAt.Equal(t0) || !h.DueAt.Equal(due) {
				t.Fatalf("create = %+v, %v", h, created)
			}
			clk.Add(time.Minute)
			again, created := must2[ledger.Hold](t)(s.CreateHold(ctx, ledger.Hold{RequestID: "w/1", Why: ledger.HeldBrake}))
			if created || again.Why != ledger.HeldGrace || string(again.Message) != `{"x":1}` || !again.HeldAt.Equal(t0) {
				t.Fatalf("second create = %+v, %v, want the first", again, created)
			}
			if _, err := s.Hold(ctx, "w/none"); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("Hold of nothing: %v", err)
			}
			// Ten callers release it at once: exactly one moves it on.
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					_, changed, err := s.ChangeHold(ctx, "w/1", ledger.HoldHeld, ledger.HoldChange{
						State: ledger.HoldReleased, ReleaseID: "approve-1", DecidedBy: "ops" + string(rune('0'+i))})
					if err != nil {
						t.Error(err)
					}
					if changed {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			got, err := s.Hold(ctx, "w/1")
			if err != nil || wins.Load() != 1 || got.State != ledger.HoldReleased || got.ReleaseID != "approve-1" ||
				!got.DecidedAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("after ten releases (%d won): %+v, %v", wins.Load(), got, err)
			}
			got, changed, err := s.ChangeHold(ctx, "w/1", ledger.HoldReleased, ledger.HoldChange{State: ledger.HoldDispatched})
			if err != nil || !changed || got.State != ledger.HoldDispatched || got.ReleaseID != "approve-1" || string(got.Result) != `{"outcome":"held"}` {
				t.Fatalf("dispatched: %+v, %v, %v", got, changed, err)
			}
			if _, _, err := s.ChangeHold(ctx, "w/none", ledger.HoldHeld, ledger.HoldChange{State: ledger.HoldReleased}); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("ChangeHold of nothing: %v", err)
			}
		}},
		{"ListByStateAndRelease", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			for _, id := range []string{"a", "b", "c"} {
				must2[ledger.Hold](t)(s.CreateHold(ctx, ledger.Hold{RequestID: id, Why: ledger.HeldBrake}))
			}
			if _, err := s.Admit(ctx, "workspace", "a", 5, time.Hour); err != nil { // a brake record is no hold
				t.Fatal(err)
			}
			if _, _, err := s.ChangeHold(ctx, "b", ledger.HoldHeld, ledger.HoldChange{State: ledger.HoldRejected, ReleaseID: "rel"}); err != nil {
				t.Fatal(err)
			}
			held := holdIDs(t, s.HoldsInState(ctx, ledger.HoldHeld))
			if len(held) != 2 {
				t.Fatalf("held = %v, want a and c", held)
			}
			if rel := holdIDs(t, s.HoldsOfRelease(ctx, "rel")); len(rel) != 1 || rel[0] != "b" {
				t.Fatalf("of release = %v, want b", rel)
			}
		}},
		{"Cancel", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			must2[ledger.Hold](t)(s.CreateHold(ctx, ledger.Hold{RequestID: "held", Why: ledger.HeldApproval}))
			h, err := s.CancelRequest(ctx, "held", ledger.Cancel{ID: "c1", By: "ops", Result: []byte(`{"outcome":"refused"}`)})
			if err != nil || h.State != ledger.HoldCancelled || h.ReleaseID != "c1" || string(h.Result) != `{"outcome":"refused"}` || !h.Cancelled() {
				t.Fatalf("cancel of a held request: %+v, %v", h, err)
			}
			clk.Add(time.Second)
			running, err := s.CancelRequest(ctx, "running", ledger.Cancel{ID: "c2", By: "ops"})
			if err != nil || running.State != ledger.HoldCancelled || !running.CancelledAt.Equal(t0.Add(time.Second)) || running.CancelledBy != "ops" {
				t.Fatalf("cancel of a request never held: %+v, %v", running, err)
			}
			// A released request that runs keeps its state and is marked.
			must2[ledger.Hold](t)(s.CreateHold(ctx, ledger.Hold{RequestID: "rel", Why: ledger.HeldGrace}))
			if _, _, err := s.ChangeHold(ctx, "rel", ledger.HoldHeld, ledger.HoldChange{State: ledger.HoldReleased, ReleaseID: "due"}); err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Second)
			r, err := s.CancelRequest(ctx, "rel", ledger.Cancel{ID: "c3", By: "ops"})
			if err != nil || r.State != ledger.HoldReleased || r.ReleaseID != "due" || !r.Cancelled() {
				t.Fatalf("cancel of a released request: %+v, %v", r, err)
			}
			// A second cancel keeps the first's time.
			clk.Add(time.Second)
			r, err = s.CancelRequest(ctx, "rel", ledger.Cancel{ID: "c4", By: "other"})
			if err != nil || !r.CancelledAt.Equal(t0.Add(2*time.Second)) || r.CancelledBy != "ops" {
				t.Fatalf("second cancel: %+v, %v", r, err)
			}
		}},
		{"BrakeRollingWindow", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			var admitted atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					ok, err := s.Admit(ctx, "workspace", "r"+string(rune('0'+i)), 3, time.Hour)
					if err != nil {
						t.Error(err)
					}
					if ok {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			if admitted.Load() != 3 {
				t.Fatalf("8 starts at once with a brake of 3: %d admitted", admitted.Load())
			}
			var first string
			for i := range 8 {
				if ok, _ := s.Admit(ctx, "workspace", "r"+string(rune('0'+i)), 3, time.Hour); ok && first == "" {
					first = "r" + string(rune('0'+i))
				}
			}
			if first == "" {
				t.Fatal("an admitted start is not admitted again")
			}
			if ok, _ := s.Admit(ctx, "workspace", "late", 3, time.Hour); ok {
				t.Fatal("a fourth start within the hour was admitted")
			}
			clk.Add(time.Hour)
			if ok, _ := s.Admit(ctx, "workspace", "late", 3, time.Hour); !ok {
				t.Fatal("a start an hour later was not admitted")
			}
			if ok, _ := s.Admit(ctx, "other", "x", 1, time.Hour); !ok {
				t.Fatal("another key shares the brake")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{t: t0}
			s := mk(t, ledger.Config{Retention: 30 * 24 * time.Hour, Now: clk.Now})
			c.run(t, s, clk)
		})
	}
}
