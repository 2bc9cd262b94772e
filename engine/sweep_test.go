package engine

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/request"
)

// drain delivers every message published to the requests topic (fan-out
// children and sweep continuations) to the Engine, with concurrency,
// until none is left, as Pub/Sub push would. A child that returns an error
// is delivered again, at most 5 times.
func (e *env) drain(t testing.TB, workers int) {
	t.Helper()
	done := map[string]int{}
	for {
		var todo []event.Event
		for _, m := range e.psrv.Messages() {
			if m.Topic != e.cfg.RequestTopic || done[m.ID] < 0 {
				continue
			}
			todo = append(todo, e.delivery(m))
		}
		if len(todo) == 0 {
			return
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ch := make(chan event.Event)
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ev := range ch {
					err := e.f.Handle(context.Background(), ev)
					mu.Lock()
					if err == nil {
						done[ev.ID()] = -1
					} else if done[ev.ID()]++; done[ev.ID()] >= 5 {
						t.Errorf("child %s failed 5 times: %v", ev.ID(), err)
						done[ev.ID()] = -1
					}
					mu.Unlock()
				}
			}()
		}
		for _, ev := range todo {
			ch <- ev
		}
		close(ch)
		wg.Wait()
	}
}

func TestBulkWithPartialFailures(t *testing.T) {
	e := newEnv(t)
	// alice (users/101): ENG removed, SALES removed, SOLO only manager
	// (failed), HR not a member, SECRET forbidden without admin access.
	if err := e.send(t, `{"requestId":"bulk-1","spaces":["spaces/ENG","spaces/SALES","spaces/SOLO","spaces/HR","spaces/SECRET"],"member":"alice@example.com"}`); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if len(rs) != 1 {
		t.Fatalf("%d results before the children ran, want the parent's: %+v", len(rs), rs)
	}
	parent := contract.Result{
		RequestID: "bulk-1", Outcome: contract.Planned, Children: ptr(5), ExpectedResults: ptr(5),
		Detail: `bulk: 5 child requests, one per space, each answered by one result with parentRequestId "bulk-1"`,
	}
	if diff := resultDiff(parent, rs[0].Result, []string{"Attempts"}); diff != "" {
		t.Fatalf("parent (-want +got):\n%s", diff)
	}
	e.drain(t, 4)
	got := map[string]contract.Outcome{}
	for _, r := range e.results(t)[1:] {
		if r.ParentRequestID != "bulk-1" || !strings.HasPrefix(r.RequestID, "bulk-1/spaces/") {
			t.Errorf("child ids: %+v", r.Result)
		}
		got[strings.TrimPrefix(r.RequestID, "bulk-1/")] = r.Outcome
	}
	want := map[string]contract.Outcome{
		"spaces/ENG": contract.Removed, "spaces/SALES": contract.Removed, "spaces/SOLO": contract.Failed,
		"spaces/HR": contract.NotMember, "spaces/SECRET": contract.Failed,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("children = %v, want %v", got, want)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/SOLO", "101"); !ok {
		t.Error("the only manager of SOLO was removed")
	}
}

func TestBulkNeedsRequestTopic(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequestTopic = "" })
	err := e.send(t, `{"spaces":["spaces/ENG"],"member":"users/101"}`)
	if err == nil || !strings.Contains(err.Error(), "REQUEST_TOPIC") {
		t.Fatalf("Handle = %v, want an error naming REQUEST_TOPIC (the request is kept)", err)
	}
}

func TestSingleHandOff(t *testing.T) {
	e := newEnv(t)
	// bob is a member of SOLO: promoted, then alice removed.
	if err := e.send(t, `{"space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"bob@example.com"}`); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	want := contract.Result{
		Membership: "spaces/SOLO/members/101", Outcome: contract.Removed, MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER",
		Member: &contract.Member{Name: "users/101", Type: "HUMAN"}, AdminAccess: true,
		HandOff: &contract.HandOffLog{Successor: "bob@example.com", Promoted: true},
	}
	if diff := resultDiff(want, r.Result, []string{"RequestID", "Attempts"}); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if role, ok := e.stack.Chat.IsMember("spaces/SOLO", "102"); !ok || role != "ROLE_MANAGER" {
		t.Errorf("bob in SOLO: %q %v", role, ok)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/SOLO", "101"); ok {
		t.Error("alice still in SOLO")
	}
}

func TestSingleHandOffNeedsAddSuccessor(t *testing.T) {
	e := newEnv(t)
	// dave is not in SOLO: without addSuccessor nothing changes.
	if err := e.send(t, `{"space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/104"}`); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	failed := contract.Result{
		Membership: "spaces/SOLO/members/101", Outcome: contract.Failed, AdminAccess: true,
		Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
		Error:   &contract.ErrorInfo{Code: 400, Status: "FAILED_PRECONDITION"},
		HandOff: &contract.HandOffLog{Successor: "users/104"},
		Detail:  "the member is the only owner of the space and the hand-off to the successor failed; nothing was removed",
	}
	if diff := resultDiff(failed, r.Result, []string{"RequestID", "Attempts"}, ignoreErrorMessage); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.Error.Message, "addSuccessor") {
		t.Fatalf("error %q does not name addSuccessor", r.Error.Message)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/SOLO", "101"); !ok {
		t.Error("alice removed although the hand-off failed")
	}
	// With addSuccessor, dave is added, promoted, and alice removed.
	if err := e.send(t, `{"space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/104","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	r = e.results(t)[1]
	want := contract.Result{
		Membership: "spaces/SOLO/members/101", Outcome: contract.Removed, MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER",
		Member: &contract.Member{Name: "users/101", Type: "HUMAN"}, AdminAccess: true,
		HandOff: &contract.HandOffLog{Successor: "users/104", Added: true, Promoted: true},
	}
	if diff := resultDiff(want, r.Result, []string{"RequestID", "Attempts"}); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if role, _ := e.stack.Chat.IsMember("spaces/SOLO", "104"); role != "ROLE_MANAGER" {
		t.Errorf("dave's role in SOLO: %q", role)
	}
}

// bigWorkspace has n spaces; three departing people (201, 202, 203, with
// emails) are members of every 50th, 70th and 90th space, 201 as the only
// manager in every 200th. Each space also has the admin as manager (except
// the only-manager ones), two bystanders and a bot.
func bigWorkspace(n int) (emulator.Workspace, map[string][]string, int) {
	ws := departures()
	in := map[string][]string{} // user id → spaces it is a member of
	onlyManager := 0
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("spaces/S%04d", i)
		h := func(id, role string) emulator.Member {
			return emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: role}
		}
		var ms []emulator.Member
		if i%200 == 0 {
			ms = append(ms, h("201", emulator.RoleManager))
			in["201"] = append(in["201"], name)
			onlyManager++
		} else {
			ms = append(ms, h("100", emulator.RoleManager))
		}
		for _, p := range []struct {
			id    string
			every int
		}{{"201", 50}, {"202", 70}, {"203", 90}} {
			if i%p.every == 1 || (p.id != "201" && i%200 == 0) {
				ms = append(ms, h(p.id, emulator.RoleMember))
				in[p.id] = append(in[p.id], name)
			}
		}
		ms = append(ms, h("301", emulator.RoleMember), h("302", emulator.RoleMember),
			emulator.Member{User: emulator.AppUser, Type: emulator.MemberTypeBot, Role: emulator.RoleMember})
		ws.Spaces = append(ws.Spaces, emulator.Space{Name: name, SpaceType: emulator.SpaceTypeSpace, Members: ms})
	}
	// Out of reach of admin search: a DM with one of them.
	ws.Spaces = append(ws.Spaces, emulator.Space{Name: "spaces/DM1", SpaceType: emulator.SpaceTypeDirectMessage,
		Members: []emulator.Member{{User: "users/201", Type: emulator.MemberTypeHuman}, {User: "users/302", Type: emulator.MemberTypeHuman}}})
	return ws, in, onlyManager
}

func TestSweepOfTwoThousandSpaces(t *testing.T) {
	const spaces = 2000
	ws, in, onlyManager := bigWorkspace(spaces)
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	memberships := len(in["201"]) + len(in["202"]) + len(in["203"])
	if err := e.send(t, `{"requestId":"sweep-1","allSpaces":true,"members":["dana@example.com","eli@example.com","users/203","ghost@example.com"],"successor":"bob@example.com","addSuccessor":true,"reason":"offboarding"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)

	// Every real membership is gone; bystanders, bots and the DM untouched.
	for id, names := range in {
		for _, s := range names {
			if _, ok := e.stack.Chat.IsMember(s, id); ok {
				t.Errorf("users/%s still in %s", id, s)
			}
		}
	}
	for i := 0; i < spaces; i += 97 {
		s := fmt.Sprintf("spaces/S%04d", i)
		for _, id := range []string{"301", "302", "app"} {
			if _, ok := e.stack.Chat.IsMember(s, id); !ok {
				t.Errorf("bystander %s removed from %s", id, s)
			}
		}
	}
	if _, ok := e.stack.Chat.IsMember("spaces/DM1", "201"); !ok {
		t.Error("a direct message was touched")
	}
	// Only-manager spaces were handed off to bob (added, then promoted).
	for i := 0; i < spaces; i += 200 {
		if role, _ := e.stack.Chat.IsMember(fmt.Sprintf("spaces/S%04d", i), "102"); role != "ROLE_MANAGER" {
			t.Errorf("S%04d: bob's role %q", i, role)
		}
	}

	// Results are complete by count: planned pages announce how many.
	var planned, terminal, removed, handed int
	expected := 0
	continued := 0
	for _, r := range e.results(t) {
		switch r.Outcome {
		case contract.Planned:
			planned++
			expected += *r.ExpectedResults
			if r.Continued {
				continued++
			}
			if !strings.Contains(r.Detail, "direct messages") {
				t.Errorf("planned result does not say what is out of reach: %q", r.Detail)
			}
		default:
			terminal++
			if r.ParentRequestID != "sweep-1" || r.Reason != "offboarding" {
				t.Errorf("child result lacks its parent or reason: %+v", r.Result)
			}
		}
		if r.Outcome == contract.Removed {
			removed++
			if r.HandOff != nil {
				handed++
			}
		}
		if r.Outcome == contract.Failed && !strings.Contains(r.Error.Message, "ghost@example.com") {
			t.Errorf("unexpected failure: %+v %+v", r.Result, r.Error)
		}
	}
	if planned != 2 || continued != 1 {
		t.Errorf("%d planned pages (%d continued), want 2 (1)", planned, continued)
	}
	if want := spaces*3 + 1; expected != want || terminal != want {
		t.Errorf("expected %d results, got %d terminal, want %d (one per space and person, plus the unknown person)", expected, terminal, want)
	}
	if removed != memberships || handed != onlyManager {
		t.Errorf("removed %d (handed off %d), want %d (%d)", removed, handed, memberships, onlyManager)
	}

	// The cost bound: one directory read per person named by email, about
	// one Chat read per space, one write per membership (plus hand-offs).
	calls := e.stack.Chat.Stats().Calls
	if n := e.stack.Directory.Stats().Calls; n != 4 { // dana, eli, ghost, and the successor bob
		t.Errorf("directory reads = %d, want 4", n)
	}
	if calls["spaces.search"] != 2 || calls["members.list"] != spaces {
		t.Errorf("reads: search %d, list %d; want 2 and %d", calls["spaces.search"], calls["members.list"], spaces)
	}
	if calls["members.get"] != 0 {
		t.Errorf("members.get = %d, want 0", calls["members.get"])
	}
	writes := map[string]int64{"members.delete": calls["members.delete"], "members.create": calls["members.create"], "members.patch": calls["members.patch"]}
	wantWrites := map[string]int64{"members.delete": int64(memberships), "members.create": int64(onlyManager), "members.patch": int64(onlyManager)}
	if diff := cmp.Diff(wantWrites, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	t.Logf("sweep of %d spaces for 3 people: %d memberships; calls %v; directory %d", spaces, memberships, calls, e.stack.Directory.Stats().Calls)
}

func TestSweepWithoutSuccessorFailsOnlyManager(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"sw","allSpaces":true,"member":"alice@example.com","dryRun":false}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	got := map[string]contract.Outcome{}
	names := map[string]string{"spaces/ENG/members/101": "Engineering", "spaces/SALES/members/101": "Sales"}
	for _, r := range e.results(t) {
		if want, ok := names[r.Membership]; ok && r.SpaceDisplayName != want {
			t.Errorf("%s: spaceDisplayName %q, want %q (from spaces.search)", r.Membership, r.SpaceDisplayName, want)
		}
		if r.Outcome != contract.Planned {
			got[r.Membership] = r.Outcome
			if r.Outcome == contract.Failed && !strings.Contains(r.Detail, "successor") {
				t.Errorf("failure does not name the fix: %+v", r.Result)
			}
		}
	}
	want := map[string]contract.Outcome{
		"spaces/ENG/members/101": contract.Removed, "spaces/SALES/members/101": contract.Removed,
		"spaces/HR/members/101": contract.NotMember, "spaces/OPS/members/101": contract.NotMember,
		"spaces/SOLO/members/101": contract.Failed, "spaces/SECRET/members/101": contract.NotMember,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results = %v\nwant %v", got, want)
	}
	// GROUP and DM are out of reach of admin search.
	for _, s := range []string{"spaces/GROUP", "spaces/DM", "spaces/SOLO"} {
		if _, ok := e.stack.Chat.IsMember(s, "101"); !ok {
			t.Errorf("alice removed from %s", s)
		}
	}
}

// TestSweepReadsSearchResults: a sweep finds its spaces in
// SearchSpacesResponse.results, and in the deprecated spaces where results
// is empty: the same decisions whichever field the emulation fills.
func TestSweepReadsSearchResults(t *testing.T) {
	for _, c := range []struct {
		name string
		mode emulator.SearchFields
	}{
		{"results only", emulator.SearchResultsOnly},
		{"deprecated spaces only", emulator.SearchSpacesOnly},
		{"both", emulator.SearchBoth},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, emulator.Default(), emulator.ChatOptions{Search: c.mode})
			if err := e.send(t, `{"requestId":"sw","allSpaces":true,"member":"alice@example.com","dryRun":true}`); err != nil {
				t.Fatal(err)
			}
			e.drain(t, 2)
			got := map[string]string{}
			for _, r := range e.results(t) {
				if r.Outcome == contract.Planned {
					if *r.Children != 6 || *r.ExpectedResults != 6 {
						t.Errorf("planned: %d children, %d expected results; want 6 and 6", *r.Children, *r.ExpectedResults)
					}
					continue
				}
				got[r.Membership] = string(r.Outcome) + " " + r.SpaceDisplayName
			}
			want := map[string]string{
				"spaces/ENG/members/101": "dry_run Engineering", "spaces/SALES/members/101": "dry_run Sales",
				"spaces/HR/members/101": "not_member People", "spaces/OPS/members/101": "not_member Operations",
				"spaces/SOLO/members/101": "dry_run Alice's project", "spaces/SECRET/members/101": "not_member Board",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSweepDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"allSpaces":true,"member":"alice@example.com","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	st := e.stack.Chat.Stats().Calls
	if st["members.delete"]+st["members.create"]+st["members.patch"] != 0 {
		t.Errorf("a dry run wrote: %v", st)
	}
	n := 0
	for _, r := range e.results(t) {
		if r.Outcome == contract.DryRun {
			n++
		}
	}
	if n != 3 { // ENG, SALES, SOLO
		t.Errorf("%d dry_run results, want 3", n)
	}
}

func TestSweepFailedPageStillCounts(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"sw","allSpaces":true,"members":["ghost@example.com","users/101"],"successor":"nobody@example.com"}`); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if len(rs) != 2 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	unknown := contract.Result{
		RequestID: "sw/ghost@example.com", ParentRequestID: "sw", Outcome: contract.Failed, AdminAccess: true,
		Member: &contract.Member{Name: "users/ghost@example.com"},
		Error:  &contract.ErrorInfo{Code: 404, Status: "NOT_FOUND"},
		Detail: "person not found in the directory: nothing was swept for them",
	}
	if diff := resultDiff(unknown, rs[0].Result, []string{"Attempts"}, ignoreErrorMessage); diff != "" {
		t.Errorf("unknown person (-want +got):\n%s", diff)
	}
	if rs[0].Error == nil || !strings.Contains(rs[0].Error.Message, "ghost@example.com") {
		t.Errorf("unknown person: error %+v does not name ghost@example.com", rs[0].Error)
	}
	page := contract.Result{
		RequestID: "sw", Outcome: contract.Failed, Children: ptr(0), ExpectedResults: ptr(1), AdminAccess: true,
		Error: &contract.ErrorInfo{Code: 404, Status: "NOT_FOUND"},
	}
	if diff := resultDiff(page, rs[1].Result, []string{"Attempts"}, ignoreErrorMessage); diff != "" {
		t.Errorf("page (-want +got):\n%s", diff)
	}
	if rs[1].Error == nil || !strings.Contains(rs[1].Error.Message, "nobody@example.com") {
		t.Errorf("page: error %+v does not name nobody@example.com", rs[1].Error)
	}
	if n := e.stack.Chat.Stats().Calls["spaces.search"]; n != 0 {
		t.Errorf("%d searches after the successor was found unknown", n)
	}
}

// delivery is the CloudEvent that Eventarc delivers for m, published to the
// requests topic.
func (e *env) delivery(m *pstest.Message) event.Event {
	ev := event.New()
	ev.SetID(m.ID)
	ev.SetType(contract.PublishedEventType)
	ev.SetSource("//pubsub.googleapis.com/" + e.cfg.RequestTopic)
	ev.SetTime(m.PublishTime)
	_ = ev.SetData("application/json", map[string]any{"message": map[string]any{
		"data": base64.StdEncoding.EncodeToString(m.Data), "attributes": m.Attributes,
		"messageId": m.ID, "publishTime": m.PublishTime.UTC().Format(time.RFC3339Nano),
	}})
	return ev
}

func TestDisplayNameFitsAChildRequest(t *testing.T) {
	long := strings.Repeat("é", request.MaxSpaceDisplayName+5)
	for in, want := range map[string]string{
		"Sales":                 "Sales",
		"tab\tand\nnewline\x7f": "tab and newline ",
		long:                    strings.Repeat("é", request.MaxSpaceDisplayName),
	} {
		got := displayName(in)
		if got != want {
			t.Errorf("displayName(%q) = %q, want %q", in, got, want)
		}
		if _, err := request.Validate(request.Request{RequestID: "r", Space: "spaces/A", Members: []string{"users/1"}, SpaceDisplayName: got}); err != nil {
			t.Errorf("a child with spaceDisplayName %q is refused: %v", got, err)
		}
	}
}
