package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// TestHeldCommand: offboard held lists the ledger's held requests (and
// only those), with why, and exits 1 while something is held.
func TestHeldCommand(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", firestoretest.Emulator(t))
	project := firestoretest.Project("offboard-held")
	ctx := context.Background()
	store, err := ledger.NewFirestore(ctx, project, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": project}
	if inv := offboard(t, ctx, env, "held"); inv.code != exitOK || !strings.Contains(inv.stdout, "nothing is held") {
		t.Fatalf("empty ledger: exit %d\n%s", inv.code, inv.stdout)
	}
	due := time.Date(2026, 12, 11, 9, 0, 0, 0, time.UTC)
	for _, h := range []ledger.Hold{
		{RequestID: "workspace-1-2", Kind: "sweep", Target: "users/101 from every space", Why: ledger.HeldGrace, DueAt: due},
		{RequestID: "workspace-3-4", Kind: "sweep", Target: "users/104 from every space", Why: ledger.HeldBrake},
		{RequestID: "done", Kind: "sweep", Why: ledger.HeldBrake},
	} {
		if _, _, err := store.CreateHold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.ChangeHold(ctx, "done", ledger.HoldHeld, ledger.HoldChange{State: ledger.HoldReleased, ReleaseID: "ap"}); err != nil {
		t.Fatal(err)
	}
	inv := offboard(t, ctx, env, "held")
	if inv.code != exitAttention || strings.Contains(inv.stdout, "done") ||
		!regexp.MustCompile(`workspace-1-2 +grace +\S+ +2026-12-11T09:00:00Z +users/101 from every space`).MatchString(inv.stdout) ||
		!regexp.MustCompile(`workspace-3-4 +brake +\S+ +on approval +users/104`).MatchString(inv.stdout) {
		t.Fatalf("held: exit %d, want 1 and the two held requests:\n%s", inv.code, inv.stdout)
	}
	inv = offboard(t, ctx, env, "held", "--json")
	if n := strings.Count(inv.stdout, `"requestId"`); n != 2 || !strings.Contains(inv.stdout, `"dueAt":"2026-12-11T09:00:00Z"`) {
		t.Fatalf("held --json:\n%s", inv.stdout)
	}
}

// TestApproveRejectCancelPublish: the three commands publish, to
// APPROVAL_TOPIC only, a request the function's validator takes, naming
// who; without who or a request id they publish nothing.
func TestApproveRejectCancelPublish(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	project := "offboard-approve"
	ps := pubsubtest.NewClient(t, host, project)
	topic := pubsubtest.UniqueID("approvals")
	if err := pubsubtest.CreateTopic(ctx, ps, project, topic); err != nil {
		t.Fatal(err)
	}
	sub := pubsubtest.UniqueID("approvals-log")
	if err := pubsubtest.CreatePullSubscription(ctx, ps, project, sub, topic, ""); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PUBSUB_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": project, "APPROVAL_TOPIC": topic, "USER": "ops"}
	for _, args := range [][]string{{"approve", "held"}, {"reject", "--by", "cio@example.com", "workspace-3-4"}, {"cancel", "--reason", "wrong person", "hr-7"}} {
		if inv := offboard(t, ctx, env, args...); inv.code != exitOK || !strings.Contains(inv.stdout, "published "+args[0]) {
			t.Fatalf("%v: exit %d\n%s", args, inv.code, inv.stdout)
		}
	}
	for _, args := range [][]string{{"approve"}, {"cancel", "held"}, {"approve", "--by", "", "x"}} {
		if inv := offboard(t, ctx, env, args...); inv.code != exitUsage {
			t.Fatalf("%v: exit %d, want 2", args, inv.code)
		}
	}
	got := map[request.Kind]*request.Valid{}
	var mu sync.Mutex
	rctx, stop := context.WithCancel(ctx)
	err := ps.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		v, err := request.Parse(m.Data, m.ID)
		if err != nil {
			t.Errorf("published %s: %v", m.Data, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		got[v.Kind] = v
		if len(got) == 3 {
			stop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := got[request.KindApprove]; a == nil || a.Approve != "held" || a.RequestedBy != "ops" {
		t.Errorf("approve: %+v", a)
	}
	if r := got[request.KindReject]; r == nil || r.Reject != "workspace-3-4" || r.RequestedBy != "cio@example.com" {
		t.Errorf("reject: %+v", r)
	}
	if c := got[request.KindCancel]; c == nil || c.Cancel != "hr-7" || c.Reason != "wrong person" {
		t.Errorf("cancel: %+v", c)
	}
}
