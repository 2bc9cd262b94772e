package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/request"
)

func TestResultFilter(t *testing.T) {
	if got, want := resultFilter([]string{"hr-1", "hr-2"}),
		`hasPrefix(attributes.requestId, "hr-1") OR hasPrefix(attributes.requestId, "hr-2")`; got != want {
		t.Errorf("two ids: %s, want %s", got, want)
	}
	b := newBatch(time.Now())
	var ids []string
	for i := 2; i < 502; i++ {
		ids = append(ids, b.id(i))
	}
	if got, want := resultFilter(ids), fmt.Sprintf("hasPrefix(attributes.requestId, %q)", b.prefix); got != want {
		t.Errorf("a batch: %s, want %s", got, want)
	}
	var unrelated []string
	for i := 0; i < 20; i++ {
		unrelated = append(unrelated, fmt.Sprintf("%c-workday-termination-%d", 'a'+i, i))
	}
	if got := resultFilter(unrelated); got != "" {
		t.Errorf("ids without a common prefix: %s, want none", got)
	}
	if got := resultFilter([]string{`say "hi"`}); got != "" {
		t.Errorf("a quote in an id: %s, want none", got)
	}
	for _, f := range []string{resultFilter(ids), resultFilter([]string{"hr-1", "hr-2"})} {
		if len(f) > maxFilterLen {
			t.Errorf("filter of %d bytes", len(f))
		}
	}
}

func res(id, parent string, outcome contract.Outcome, children int) *contract.Result {
	r := &contract.Result{RequestID: id, ParentRequestID: parent, Outcome: outcome, Membership: "spaces/X/members/1"}
	if outcome == contract.Planned {
		r.Membership = ""
		r.Children = &children
	}
	return r
}

func TestTrackerCountsChildren(t *testing.T) {
	items := []*item{{req: request.Request{RequestID: "bulk"}}, {req: request.Request{RequestID: "sweep"}}, {req: request.Request{RequestID: "one"}}}
	tr := newTracker(items)
	add := func(eventID string, r *contract.Result) bool { _, ok := tr.add(eventID, r); return ok }

	// A child can report before its parent's planned result.
	add("e1", res("bulk/spaces/A", "bulk", contract.Removed, 0))
	add("e2", res("bulk", "", contract.Planned, 2))
	if tr.completed() != 0 {
		t.Fatal("bulk complete with one child of two")
	}
	if add("e1", res("bulk/spaces/A", "bulk", contract.Removed, 0)) {
		t.Error("a duplicate event was counted")
	}
	if add("x", res("someone-else", "", contract.Failed, 0)) || add("y", res("bulky", "", contract.Failed, 0)) {
		t.Error("a result of another request was counted")
	}
	add("e3", res("bulk/spaces/B", "bulk", contract.NotMember, 0))
	if tr.completed() != 1 {
		t.Fatalf("bulk not complete: %d", tr.completed())
	}

	// A sweep: page 1 plans 2 children and a continuation page, which plans 1.
	add("s1", res("sweep", "", contract.Planned, 3))
	add("s2", res("sweep/spaces/A", "sweep", contract.Removed, 0))
	add("s3", res("sweep/page-2", "sweep", contract.Planned, 1))
	add("s4", res("sweep/spaces/B", "sweep", contract.NotMember, 0))
	if tr.completed() != 1 {
		t.Fatal("sweep complete before its second page's child")
	}
	add("s5", res("sweep/page-2/spaces/C", "sweep/page-2", contract.Failed, 0))
	if tr.completed() != 2 || tr.nFailed != 1 {
		t.Fatalf("completed %d, failed %d", tr.completed(), tr.nFailed)
	}
	select {
	case <-tr.done:
		t.Fatal("done before the last request")
	default:
	}
	add("o1", res("one", "", contract.DryRun, 0))
	select {
	case <-tr.done:
	default:
		t.Fatal("not done")
	}
	var b strings.Builder
	tr.table(&b)
	for _, want := range []string{"sweep/page-2/spaces/C", "planned", "children: 3", "not_member"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// fakeFunction answers requests published on env's request topic as the
// function would, through pstest: a bulk request fans out (children's
// results first, then planned, and one duplicate), anything else is
// removed; it also publishes results of requests that are not this run's.
func fakeFunction(ctx context.Context, t *testing.T, ps *pubsub.Client) {
	if err := pubsubtest.CreatePullSubscription(ctx, ps, ps.Project(), "fake-fn", "requests", ""); err != nil {
		t.Fatal(err)
	}
	pub := ps.Publisher("results")
	send := func(r *contract.Result) {
		r.ProcessedAt = time.Now().UTC()
		data, _ := json.Marshal(r)
		pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: r.Attributes()})
	}
	go func() {
		defer pub.Stop()
		_ = ps.Subscriber("fake-fn").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			v, err := request.Parse(m.Data, m.ID)
			if err != nil {
				t.Errorf("fake function got an invalid request: %v", err)
				return
			}
			send(res("unrelated-"+v.RequestID, "", contract.Failed, 0))
			if v.Kind != request.KindBulk {
				r := res(v.RequestID, "", contract.Removed, 0)
				r.Membership = v.Name
				send(r)
				return
			}
			for _, s := range v.SpaceNames {
				r := res(v.RequestID+"/"+s, v.RequestID, contract.Removed, 0)
				r.Membership = s + "/members/" + v.People[0]
				send(r)
				send(r) // a redelivery
			}
			send(res(v.RequestID, "", contract.Planned, len(v.SpaceNames)))
		})
	}()
}

func TestWaitFollowsFannedOutRequests(t *testing.T) {
	env, ps, _ := pstestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakeFunction(ctx, t, ps)
	csv := "spaces,member\nspaces/A;spaces/B;spaces/C,alice@example.com\n\nspaces/D,users/7\n"
	inv := runCLI(t, ctx, env, "", "--from", writeFile(t, "bulk.csv", csv), "--wait", "--timeout", "20s", "--output", "json")
	if inv.code != exitOK {
		t.Fatalf("exit %d", inv.code)
	}
	lines := strings.Split(strings.TrimSpace(inv.stdout), "\n")
	if len(lines) != 6 { // 3 + 1 children, 2 planned; no duplicates, nothing unrelated
		t.Errorf("%d JSON lines, want 6:\n%s", len(lines), inv.stdout)
	}
	for _, l := range lines {
		var r contract.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil || strings.HasPrefix(r.RequestID, "unrelated") {
			t.Errorf("line %s: %v", l, err)
		}
	}
	if !strings.Contains(inv.stderr, "2 of 2 requests complete") {
		t.Errorf("no summary")
	}
	if subs := subscriptionsOf(t, ps, "projects/test-project/topics/results"); len(subs) != 0 {
		t.Errorf("subscriptions left on the result topic: %v", subs)
	}
}

func TestWaitTimesOutAndCleansUp(t *testing.T) {
	env, ps, published := pstestEnv(t)
	start := time.Now()
	inv := runCLI(t, context.Background(), env, "", "--space", "spaces/A", "--member", "1", "--request-id", "lonely", "--wait", "--timeout", "1s")
	if inv.code != exitUsage || !strings.Contains(inv.stderr, "timed out after 1s") {
		t.Errorf("exit %d; want 2 and a timeout message", inv.code)
	}
	if !strings.Contains(inv.stdout, "lonely") || !strings.Contains(inv.stdout, "pending") {
		t.Errorf("table lacks the pending request:\n%s", inv.stdout)
	}
	if len(published()) != 1 {
		t.Errorf("not published")
	}
	if subs := subscriptionsOf(t, ps, "projects/test-project/topics/results"); len(subs) != 0 {
		t.Errorf("temporary subscription left behind: %v", subs)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestTrackerCountsExpectedResults follows a sweep as the function reports
// it: every page is a planned result with expectedResults (and continued
// when another page follows); every child names the sweep as its parent and
// reports one result per person.
func TestTrackerCountsExpectedResults(t *testing.T) {
	tr := newTracker([]*item{{req: request.Request{RequestID: "sw"}}})
	n := 0
	add := func(r *contract.Result) {
		n++
		tr.add(fmt.Sprint("e", n), r)
	}
	page := func(id, parent string, expected int, continued bool) *contract.Result {
		r := res(id, parent, contract.Planned, 2)
		r.ExpectedResults, r.Continued = &expected, continued
		return r
	}
	decision := func(space, member string, outcome contract.Outcome) *contract.Result {
		r := res("sw/"+space, "sw", outcome, 0)
		r.Membership = space + "/members/" + member
		return r
	}
	add(page("sw", "", 4, true)) // 2 spaces x 2 people
	add(decision("spaces/A", "1", contract.Removed))
	add(decision("spaces/A", "2", contract.NotMember))
	add(decision("spaces/B", "1", contract.NotMember))
	add(decision("spaces/B", "2", contract.Removed))
	add(decision("spaces/B", "2", contract.NotMember)) // a redelivery decided again: one decision
	if tr.completed() != 0 {
		t.Fatal("complete before the continued page reported")
	}
	add(page("sw/page-abc", "sw", 2, false))
	add(decision("spaces/C", "1", contract.Removed))
	if tr.completed() != 0 {
		t.Fatal("complete with one of two decisions of the last page")
	}
	add(decision("spaces/C", "2", contract.Removed))
	if tr.completed() != 1 || tr.nFailed != 0 {
		t.Fatalf("completed %d, failed %d", tr.completed(), tr.nFailed)
	}
}
