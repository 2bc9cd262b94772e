package engine

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// writes counts the membership writes the Chat emulation answered.
func (e *env) writes() map[string]int64 {
	c := e.stack.Chat.Stats().Calls
	return map[string]int64{"members.create": c["members.create"], "members.patch": c["members.patch"], "members.delete": c["members.delete"]}
}

// of returns the results of request root and of its children, in order
// (drain delivers every request message again, which publishes earlier
// requests' decisions again).
func (e *env) of(t testing.TB, root string) []published {
	t.Helper()
	var out []published
	for _, r := range e.results(t) {
		if r.RequestID == root || r.ParentRequestID == root {
			out = append(out, r)
		}
	}
	return out
}

// byMembership indexes non-planned results by membership.
func byMembership(rs []published) map[string]published {
	out := map[string]published{}
	for _, r := range rs {
		if r.Outcome != contract.Planned {
			out[r.Membership] = r
		}
	}
	return out
}

// TestRestoreSweep: a sweep of alice with a hand-off, then its restore:
// the planned result first, alice back in every space with the role she
// had (owner of ENG and SOLO, member of SALES), bob still the owner he was
// made in SOLO and the result saying so; the same restore delivered again
// and a second restore request write nothing.
func TestRestoreSweep(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"hr-7","allSpaces":true,"member":"alice@example.com","successor":"bob@example.com","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	for _, s := range []string{"spaces/ENG", "spaces/SALES", "spaces/SOLO"} {
		if _, ok := e.stack.Chat.IsMember(s, "101"); ok {
			t.Fatalf("the sweep left alice in %s", s)
		}
	}
	e.stack.Chat.ResetStats()
	undo := pubsubEvent(`{"requestId":"hr-7-undo","restore":"hr-7","reason":"rehired","requestedBy":"hr"}`, time.Now())
	if err := e.f.Handle(t.Context(), undo); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	rs := e.of(t, "hr-7-undo")
	if len(rs) == 0 || rs[0].Outcome != contract.Planned || rs[0].RequestID != "hr-7-undo" || *rs[0].ExpectedResults != 3 || *rs[0].Children != 3 || rs[0].Continued {
		t.Fatalf("first result %+v, want planned with 3 children and 3 expected results", rs[0].Result)
	}
	if !strings.Contains(rs[0].Detail, "1 hand-offs are not reverted") {
		t.Errorf("planned detail %q does not say the hand-off stays", rs[0].Detail)
	}
	got := byMembership(rs[1:])
	for name, role := range map[string]string{"spaces/ENG/members/101": "ROLE_MANAGER", "spaces/SALES/members/101": "ROLE_MEMBER", "spaces/SOLO/members/101": "ROLE_MANAGER"} {
		r := got[name]
		want := contract.Result{
			RequestID: "hr-7-undo/" + name[:strings.Index(name, "/members")], ParentRequestID: "hr-7-undo", Membership: name,
			Outcome: contract.Restored, MembershipState: "JOINED", Role: role, Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
			AdminAccess: true, Reason: "rehired", RequestedBy: "hr",
			SpaceDisplayName: map[string]string{"spaces/ENG": "Engineering", "spaces/SALES": "Sales", "spaces/SOLO": "Alice's project"}[name[:strings.Index(name, "/members")]],
		}
		if diff := resultDiff(want, r.Result, []string{"Attempts", "Detail"}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		if space := want.RequestID[len("hr-7-undo/"):]; true {
			if got, ok := e.stack.Chat.IsMember(space, "101"); !ok || got != role {
				t.Errorf("alice in %s: %q %v, want %s", space, got, ok, role)
			}
		}
	}
	if d := got["spaces/SOLO/members/101"].Detail; !strings.Contains(d, "users/102 keeps the owner role") {
		t.Errorf("SOLO detail %q does not say the successor keeps the owner role", d)
	}
	if role, _ := e.stack.Chat.IsMember("spaces/SOLO", "102"); role != "ROLE_MANAGER" {
		t.Errorf("bob's role in SOLO %q, want ROLE_MANAGER (hand-offs are not reverted)", role)
	}
	want := map[string]int64{"members.create": 3, "members.patch": 2, "members.delete": 0}
	if diff := cmp.Diff(want, e.writes()); diff != "" {
		t.Errorf("restore writes (-want +got):\n%s", diff)
	}

	// The same message again, and its children again: nothing written.
	e.stack.Chat.ResetStats()
	n := len(e.of(t, "hr-7-undo"))
	if err := e.f.Handle(t.Context(), undo); err != nil {
		t.Fatal(err)
	}
	for _, m := range e.psrv.Messages() {
		if m.Topic == e.cfg.RequestTopic && strings.HasPrefix(m.Attributes["requestId"], "hr-7-undo/") {
			if err := e.f.Handle(t.Context(), e.delivery(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := e.stack.Chat.Stats().Calls; len(c) != 0 {
		t.Errorf("a restore delivered twice called Chat: %v", c)
	}
	if again := e.of(t, "hr-7-undo")[n:]; len(again) != 4 {
		t.Errorf("delivered again: %d results, want the 4 recorded ones", len(again))
	}
	for _, r := range e.of(t, "hr-7-undo")[n:] {
		if r.Outcome != contract.Planned && r.Outcome != contract.Restored {
			t.Errorf("again: %+v", r.Result)
		}
	}

	// A second restore request finds alice back: already_member, no write.
	if err := e.send(t, `{"requestId":"hr-7-undo-2","restore":"hr-7"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	outcomes := map[contract.Outcome]int{}
	for _, r := range e.of(t, "hr-7-undo-2") {
		outcomes[r.Outcome]++
	}
	if diff := cmp.Diff(map[contract.Outcome]int{contract.Planned: 1, contract.AlreadyMember: 3}, outcomes); diff != "" {
		t.Errorf("second restore (-want +got):\n%s", diff)
	}
	if w := e.writes(); w["members.create"]+w["members.patch"]+w["members.delete"] != 0 {
		t.Errorf("second restore wrote: %v", w)
	}
}

// TestRestoreInvalid: a restore of a request the ledger does not know, of
// one that removed nobody (a dry run), and of a restore are invalid, with
// the reason, and call nothing.
func TestRestoreInvalid(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"dry","space":"spaces/ENG","member":"users/101","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, `{"requestId":"gone","space":"spaces/HR","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	e.stack.Chat.ResetStats()
	for _, c := range []struct{ restore, reason string }{
		{"hr-unknown", `the ledger holds no request "hr-unknown"`},
		{"dry", `request "dry" removed nobody: nothing to restore (it was a dry run)`},
		{"gone", `request "gone" removed nobody`},
	} {
		if err := e.send(t, fmt.Sprintf(`{"requestId":"undo-%s","restore":%q}`, c.restore, c.restore)); err != nil {
			t.Fatal(err)
		}
		rs := e.of(t, "undo-"+c.restore)
		if len(rs) != 1 || rs[0].Outcome != contract.Invalid || rs[0].Error == nil || !strings.Contains(rs[0].Error.Message, c.reason) {
			t.Errorf("restore of %s: %+v, want invalid saying %q", c.restore, rs, c.reason)
		}
	}
	if c := e.stack.Chat.Stats().Calls; len(c) != 0 {
		t.Errorf("invalid restores called Chat: %v", c)
	}
}

// TestRestoreInvitedOutsiderAndDryRun: a person named by email and removed
// without admin access comes back without it, INVITED when their
// auto-accept is off; a person outside the organisation, removed with admin
// access, cannot be added back with it (failed, Google's error); a dry run
// writes nothing and says what it would do.
func TestRestoreInvitedOutsiderAndDryRun(t *testing.T) {
	ws := emulator.Default()
	for i := range ws.Users {
		if ws.Users[i].ID == "106" {
			// Active again (a suspended person is not restored:
			// TestRestoreRefusals).
			ws.Users[i].AutoAcceptOff, ws.Users[i].Suspended = true, false
		}
	}
	for i := range ws.Spaces {
		if ws.Spaces[i].Name == "spaces/HR" {
			ws.Spaces[i].Members = append(ws.Spaces[i].Members, emulator.Member{User: "users/999", Type: emulator.MemberTypeHuman})
		}
	}
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	for _, req := range []string{
		`{"requestId":"frank","space":"spaces/HR","member":"frank@example.com"}`,
		`{"requestId":"guest","space":"spaces/HR","member":"users/999","adminAccess":true}`,
	} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
	}
	e.stack.Chat.ResetStats()
	for _, id := range []string{"frank", "guest"} {
		if err := e.send(t, fmt.Sprintf(`{"requestId":"dry-%s","restore":%q,"dryRun":true}`, id, id)); err != nil {
			t.Fatal(err)
		}
	}
	e.drain(t, 2)
	dry := byMembership(append(e.of(t, "dry-frank"), e.of(t, "dry-guest")...))
	for _, name := range []string{"spaces/HR/members/frank@example.com", "spaces/HR/members/999"} {
		r := dry[name]
		if r.Outcome != contract.DryRun || r.WouldRestore == nil || !*r.WouldRestore || !strings.Contains(r.Detail, "would add") {
			t.Errorf("dry run of %s: %+v", name, r.Result)
		}
	}
	if w := e.writes(); w["members.create"]+w["members.patch"] != 0 {
		t.Fatalf("a dry run wrote: %v", w)
	}
	for _, id := range []string{"frank", "guest"} {
		if err := e.send(t, fmt.Sprintf(`{"requestId":"undo-%s","restore":%q}`, id, id)); err != nil {
			t.Fatal(err)
		}
	}
	e.drain(t, 2)
	got := byMembership(append(e.of(t, "undo-frank"), e.of(t, "undo-guest")...))
	frank := contract.Result{
		RequestID: "undo-frank/spaces/HR", ParentRequestID: "undo-frank", Membership: "spaces/HR/members/frank@example.com",
		Outcome: contract.Restored, MembershipState: "INVITED", Role: "ROLE_MEMBER", Member: &contract.Member{Name: "users/106", Type: "HUMAN"},
	}
	if diff := resultDiff(frank, got[frank.Membership].Result, []string{"Attempts"}); diff != "" {
		t.Errorf("frank (-want +got):\n%s", diff)
	}
	if s := e.stack.Chat.MembershipState("spaces/HR", "106"); s != "INVITED" {
		t.Errorf("frank in HR: %s, want INVITED", s)
	}
	guest := got["spaces/HR/members/999"]
	if guest.Outcome != contract.Failed || guest.Error == nil || guest.Error.Code != 400 || !strings.Contains(guest.Error.Message, "outside") || !guest.AdminAccess {
		t.Errorf("guest: %+v %+v, want failed with Google's 400 (outside the organisation), with admin access", guest.Result, guest.Error)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/HR", "999"); ok {
		t.Error("the guest was added back with admin access")
	}
}

// departures is the workspace, without spaces, of the big sweeps: the admin
// (100), the successor bob (102), three departing people dana, eli and fay
// (201, 202, 203) and two bystanders (301, 302).
func departures() emulator.Workspace {
	return emulator.Workspace{
		Customer: emulator.DefaultCustomer,
		Admins:   []string{"users/100"},
		Users: []emulator.User{
			{ID: "100", Email: "admin@example.com"}, {ID: "102", Email: "bob@example.com"},
			{ID: "201", Email: "dana@example.com"}, {ID: "202", Email: "eli@example.com"}, {ID: "203", Email: "fay@example.com"},
			{ID: "301", Email: "x1@example.com"}, {ID: "302", Email: "x2@example.com"},
		},
	}
}

// offboardWorkspace has n spaces and three departing people with every
// role: dana (201) in every even space, the only owner of every 10th
// (ROLE_MANAGER; the admin owns the others), a manager
// (ROLE_ASSISTANT_MANAGER) where i%4 == 2, a member elsewhere; eli (202) in
// every 3rd, an owner where i%9 == 0, else a member; fay (203) where i%7 ==
// 1, a manager in odd spaces, else a member. Two bystanders and a bot are
// in every space; bob (102) is the successor, in none.
func offboardWorkspace(n int) (emulator.Workspace, map[[2]string]string) {
	ws := departures()
	roles := map[[2]string]string{} // (space, user id) -> role of a departing person
	h := func(id, role string) emulator.Member {
		return emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: role}
	}
	for i := range n {
		name := fmt.Sprintf("spaces/R%04d", i)
		var ms []emulator.Member
		if i%10 != 0 {
			ms = append(ms, h("100", emulator.RoleManager))
		}
		add := func(id, role string) {
			ms = append(ms, h(id, role))
			roles[[2]string{name, id}] = role
		}
		switch {
		case i%10 == 0:
			add("201", emulator.RoleManager)
		case i%4 == 2:
			add("201", emulator.RoleAssistantManager)
		case i%2 == 0:
			add("201", emulator.RoleMember)
		}
		switch {
		case i%9 == 0:
			add("202", emulator.RoleManager)
		case i%3 == 0:
			add("202", emulator.RoleMember)
		}
		switch {
		case i%7 == 1 && i%2 == 1:
			add("203", emulator.RoleAssistantManager)
		case i%7 == 1:
			add("203", emulator.RoleMember)
		}
		ms = append(ms, h("301", emulator.RoleMember), h("302", emulator.RoleMember),
			emulator.Member{User: emulator.AppUser, Type: emulator.MemberTypeBot, Role: emulator.RoleMember})
		ws.Spaces = append(ws.Spaces, emulator.Space{Name: name, DisplayName: "Room " + name[len("spaces/R"):], SpaceType: emulator.SpaceTypeSpace, Members: ms})
	}
	return ws, roles
}

func TestRestoreOfTwoThousandSpaces(t *testing.T) { restoreOfSpaces(t, 2000) }

// TestRestoreOfSpacesOnFirestore is the same on the Firestore emulator's
// ledger: 50 spaces, or 2,000 with RESTORE_FULL_SIZE=1 (about 3 minutes).
func TestRestoreOfSpacesOnFirestore(t *testing.T) {
	onFirestore(t)
	n := 50
	if os.Getenv("RESTORE_FULL_SIZE") == "1" {
		n = 2000
	}
	restoreOfSpaces(t, n)
}

// restoreOfSpaces is issue 14's done-when: a sweep of n spaces with
// hand-offs, then its restore: every removed membership back with its
// role, the successors untouched, exactly one create per membership and
// one patch per role that is not ROLE_MEMBER, one planned page per 1,000
// spaces; a second restore writes nothing.
func restoreOfSpaces(t *testing.T, spaces int) {
	ws, roles := offboardWorkspace(spaces)
	affected := map[string]bool{}
	for k := range roles {
		affected[k[0]] = true
	}
	pages := (len(affected) + restorePageSpaces - 1) / restorePageSpaces
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	start := time.Now()
	if err := e.send(t, `{"requestId":"hr-7","allSpaces":true,"members":["dana@example.com","eli@example.com","users/203"],"successor":"bob@example.com","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)
	sweepTook := time.Since(start)
	handOffs := 0
	for _, r := range e.of(t, "hr-7") {
		if r.HandOff != nil {
			handOffs++
		}
	}
	byRole := map[string]int{}
	for k, role := range roles {
		if _, ok := e.stack.Chat.IsMember(k[0], k[1]); ok {
			t.Fatalf("the sweep left users/%s in %s", k[1], k[0])
		}
		byRole[role]++
	}
	successors := map[string]string{}
	for i := range spaces {
		s := fmt.Sprintf("spaces/R%04d", i)
		if role, ok := e.stack.Chat.IsMember(s, "102"); ok {
			successors[s] = role
		}
	}
	if handOffs == 0 || len(successors) != handOffs {
		t.Fatalf("%d hand-offs, bob in %d spaces: want some, and equal", handOffs, len(successors))
	}

	// drain delivers every message the topic ever had: forget the sweep's
	// (and then the restore's), which the ledger would answer again.
	e.psrv.ClearMessages()
	e.stack.Chat.ResetStats()
	start = time.Now()
	if err := e.send(t, `{"requestId":"hr-7-undo","restore":"hr-7"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)
	restoreTook := time.Since(start)
	calls := e.stack.Chat.Stats().Calls

	for k, role := range roles {
		if got, ok := e.stack.Chat.IsMember(k[0], k[1]); !ok || got != role {
			t.Errorf("users/%s in %s: %q %v, want %s", k[1], k[0], got, ok, role)
		}
	}
	for s, role := range successors {
		if got, ok := e.stack.Chat.IsMember(s, "102"); !ok || got != role {
			t.Errorf("the successor in %s: %q %v, want %s untouched", s, got, ok, role)
		}
	}
	patches := int64(len(roles) - byRole[emulator.RoleMember])
	want := map[string]int64{"members.create": int64(len(roles)), "members.patch": patches, "members.delete": 0}
	if r := e.of(t, "hr-7-undo"); len(r) < 2 || r[1].SpaceDisplayName == "" {
		t.Errorf("a restore result lacks the space's display name: %+v", r[1].Result)
	}
	if diff := cmp.Diff(want, e.writes()); diff != "" {
		t.Errorf("restore writes (-want +got):\n%s", diff)
	}
	var planned, continued, expected, restored int
	for _, r := range e.of(t, "hr-7-undo") {
		switch r.Outcome {
		case contract.Planned:
			planned++
			expected += *r.ExpectedResults
			if r.Continued {
				continued++
			}
		case contract.Restored:
			restored++
		default:
			t.Errorf("unexpected result: %+v", r.Result)
		}
	}
	if planned != pages || continued != pages-1 || expected != len(roles) || restored != len(roles) {
		t.Errorf("%d planned pages (%d continued), %d expected, %d restored; want %d (%d), %d, %d", planned, continued, expected, restored, pages, pages-1, len(roles), len(roles))
	}

	// A second restore request: already_member everywhere, no write.
	e.psrv.ClearMessages()
	e.stack.Chat.ResetStats()
	if err := e.send(t, `{"requestId":"hr-7-undo-2","restore":"hr-7"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)
	already := 0
	for _, r := range e.of(t, "hr-7-undo-2") {
		if r.Outcome == contract.AlreadyMember {
			already++
		}
	}
	if w := e.writes(); w["members.create"]+w["members.patch"]+w["members.delete"] != 0 || already != len(roles) {
		t.Errorf("second restore: writes %v, %d already_member; want none and %d", w, already, len(roles))
	}
	t.Logf("sweep of %d spaces (%d memberships in %d spaces: %d owners, %d managers, %d members; %d hand-offs) in %v; restore (%d pages) in %v: %d restored, calls %v; second restore: %d already_member, calls %v",
		spaces, len(roles), len(affected), byRole[emulator.RoleManager], byRole[emulator.RoleAssistantManager], byRole[emulator.RoleMember], handOffs,
		sweepTook.Round(time.Millisecond), pages, restoreTook.Round(time.Millisecond), restored, calls, already, e.stack.Chat.Stats().Calls)
}

// TestRestoreRecoversAnInterruptedDelivery: a restore whose delivery stops
// between the create and the patch (503s until its deadline) is redelivered;
// while its intent is fresh nothing is written; once it is older than any
// invocation runs, the redelivery finds the membership, patches the role,
// and answers restored: one create in all.
func TestRestoreRecoversAnInterruptedDelivery(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventTimeout = 3 * time.Second })
	if err := e.send(t, `{"requestId":"r1","space":"spaces/ENG","member":"users/101","adminAccess":true}`); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, `{"requestId":"u1","restore":"r1"}`); err != nil {
		t.Fatal(err)
	}
	var child event.Event
	for _, m := range e.psrv.Messages() {
		if m.Attributes["requestId"] == "u1/spaces/ENG" {
			child = e.delivery(m)
		}
	}
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.patch", Status: 503})
	if err := e.f.Handle(t.Context(), child); err == nil {
		t.Fatal("the child succeeded although every patch failed")
	}
	if role, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); !ok || role != "ROLE_MEMBER" {
		t.Fatalf("after the interrupted delivery alice is %q %v, want a member (created, not patched)", role, ok)
	}
	e.stack.Chat.ClearFaults()
	if err := e.f.Handle(t.Context(), child); err == nil {
		t.Fatal("a redelivery went on while the intent was fresh")
	}
	e.skew.Store(int64(40 * time.Second))
	if err := e.f.Handle(t.Context(), child); err != nil {
		t.Fatal(err)
	}
	rs := e.of(t, "u1")
	last := rs[len(rs)-1]
	if last.Outcome != contract.Restored || last.Role != "ROLE_MANAGER" {
		t.Errorf("result %+v, want restored as ROLE_MANAGER", last.Result)
	}
	if role, _ := e.stack.Chat.IsMember("spaces/ENG", "101"); role != "ROLE_MANAGER" {
		t.Errorf("alice's role %q, want ROLE_MANAGER", role)
	}
	if n := e.stack.Chat.Stats().Calls["members.create"]; n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

// TestRestoreWaitsForRunningRemoval: a restore of a sweep whose children
// have not all run (and of a removal with an intended write not yet
// decided) writes nothing, publishes nothing and is delivered again; once
// the sweep is complete the same message restores, and its planned result
// says that it waited.
func TestRestoreWaitsForRunningRemoval(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"hr-7","allSpaces":true,"member":"alice@example.com"}`); err != nil {
		t.Fatal(err)
	}
	var children []event.Event
	for _, m := range e.psrv.Messages() {
		if m.Topic == e.cfg.RequestTopic && strings.HasPrefix(m.Attributes["requestId"], "hr-7/") {
			children = append(children, e.delivery(m))
		}
	}
	if len(children) < 2 {
		t.Fatalf("the sweep published %d children, want several", len(children))
	}
	undo := pubsubEvent(`{"requestId":"hr-7-undo","restore":"hr-7"}`, time.Now())
	wait := func(stage string) {
		t.Helper()
		e.stack.Chat.ResetStats()
		err := e.f.Handle(t.Context(), undo)
		if err == nil || !strings.Contains(err.Error(), "still running") {
			t.Fatalf("%s: Handle = %v, want an error saying the removal is still running (redelivery)", stage, err)
		}
		if rs := e.of(t, "hr-7-undo"); len(rs) != 0 {
			t.Errorf("%s: the waiting restore published %+v", stage, rs)
		}
		if c := e.stack.Chat.Stats().Calls; len(c) != 0 {
			t.Errorf("%s: the waiting restore called Chat: %v", stage, c)
		}
	}
	wait("no child has run")
	if err := e.f.Handle(t.Context(), children[0]); err != nil {
		t.Fatal(err)
	}
	wait("one child has run")
	for _, c := range children[1:] {
		if err := e.f.Handle(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.f.Handle(t.Context(), undo); err != nil {
		t.Fatalf("the restore of a complete sweep: %v", err)
	}
	e.drain(t, 2)
	rs := e.of(t, "hr-7-undo")
	if len(rs) == 0 || rs[0].Outcome != contract.Planned || !strings.Contains(rs[0].Detail, "it waited for request hr-7 to finish first") {
		t.Fatalf("first result %+v, want planned saying it waited", rs)
	}
	for _, s := range []string{"spaces/ENG", "spaces/SALES", "spaces/SOLO"} {
		if _, ok := e.stack.Chat.IsMember(s, "101"); !ok {
			t.Errorf("alice is not back in %s", s)
		}
	}

	// A removal with an intended write and no decision (a delivery at
	// work) is waited for too.
	if err := e.send(t, `{"requestId":"r1","space":"spaces/HR","member":"users/105"}`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Intend(t.Context(), ledger.Intent{RequestID: "r1", Membership: "spaces/HR/members/other", Member: "users/104", Role: "ROLE_MEMBER", Action: ledger.ActionDelete}); err != nil {
		t.Fatal(err)
	}
	err := e.send(t, `{"requestId":"u1","restore":"r1"}`)
	if err == nil || !strings.Contains(err.Error(), "1 intended writes have no decision yet") {
		t.Errorf("restore of a removal with a pending intent: %v, want a wait", err)
	}
}

// TestRestoreRefusals: a restore does not add back, per membership,
// someone the Directory shows suspended, archived or deleted, nor someone a
// later request removed from the space again: refused with the reason, no
// write; with "force": true it does; the later removal itself restores.
func TestRestoreRefusals(t *testing.T) {
	ws := emulator.Default()
	ws.Users = append(ws.Users, emulator.User{ID: "150", Email: "gone@example.com", Deleted: true},
		emulator.User{ID: "151", Email: "arch@example.com", Archived: true})
	for i := range ws.Spaces {
		if ws.Spaces[i].Name == "spaces/HR" {
			for _, id := range []string{"150", "151"} {
				ws.Spaces[i].Members = append(ws.Spaces[i].Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
			}
		}
	}
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	for _, req := range []string{
		`{"requestId":"r-hr","space":"spaces/HR","members":["users/106","users/150","users/151","users/105"]}`,
		`{"requestId":"r1","space":"spaces/ENG","member":"users/101"}`,
	} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
	}
	// alice comes back to ENG (u1), and a later request removes her again.
	for _, req := range []string{`{"requestId":"u1","restore":"r1"}`, `{"requestId":"r2","space":"spaces/ENG","member":"alice@example.com"}`} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
		e.drain(t, 2)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Fatal("r2 did not remove alice again")
	}
	e.stack.Chat.ResetStats()
	for _, req := range []string{`{"requestId":"u-hr","restore":"r-hr"}`, `{"requestId":"u1-again","restore":"r1"}`} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
		e.drain(t, 2)
	}
	got := byMembership(append(e.of(t, "u-hr"), e.of(t, "u1-again")...))
	for name, why := range map[string]string{
		"spaces/HR/members/106":  "the Directory shows users/106 suspended",
		"spaces/HR/members/151":  "the Directory shows users/151 archived",
		"spaces/HR/members/150":  "the Directory shows users/150 deleted",
		"spaces/ENG/members/101": "users/101 was removed from spaces/ENG again, by request r2",
	} {
		r := got[name]
		if r.Outcome != contract.Refused || r.Error == nil || r.Error.Status != "FAILED_PRECONDITION" || !strings.HasPrefix(r.Error.Message, why) || !strings.Contains(r.Detail, `"force": true`) {
			t.Errorf("%s: %+v %+v, want refused saying %q", name, r.Result, r.Error, why)
		}
	}
	if r := got["spaces/HR/members/105"]; r.Outcome != contract.Restored {
		t.Errorf("erin, active and removed by no later request: %+v, want restored", r.Result)
	}
	if w := e.writes(); w["members.create"] != 1 {
		t.Errorf("writes %v, want the one create of erin", w)
	}
	// The later removal restores; a forced restore adds back the
	// suspended person (and the deleted one fails at Chat, which knows
	// them no more).
	for _, req := range []string{`{"requestId":"u2","restore":"r2"}`, `{"requestId":"u-hr-force","restore":"r-hr","force":true}`} {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
		e.drain(t, 2)
	}
	got = byMembership(append(e.of(t, "u2"), e.of(t, "u-hr-force")...))
	for name, want := range map[string]contract.Outcome{
		"spaces/ENG/members/alice@example.com": contract.Restored, "spaces/HR/members/106": contract.Restored,
		"spaces/HR/members/151": contract.Restored, "spaces/HR/members/150": contract.Failed, "spaces/HR/members/105": contract.AlreadyMember,
	} {
		if r := got[name]; r.Outcome != want {
			t.Errorf("%s: %+v %+v, want %s", name, r.Result, r.Error, want)
		}
	}
	if _, ok := e.stack.Chat.IsMember("spaces/HR", "106"); !ok {
		t.Error("the forced restore did not add frank back")
	}
}

// TestRestoreChecksWhatItReadsBack: removal records whose names or role a
// request could not carry (an unknown role, a member that is not the
// membership's, a name with a path in it) make no call: failed, with an
// ERROR log naming the record.
func TestRestoreChecksWhatItReadsBack(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, _, err := e.store.CreateRequest(ctx, ledger.Request{ID: "forged", Kind: "space+members", State: ledger.StateDone}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []struct{ name, member, role string }{
		{"spaces/ENG/members/104", "users/104", "ROLE_OWNER"},
		{"spaces/SALES/members/102", "users/999", "ROLE_MANAGER"},
		{"spaces/HR/members/x", "users/x/../../spaces/ENG/members/104", "ROLE_MANAGER"},
	} {
		res := fmt.Sprintf(`{"requestId":"forged","membership":%q,"outcome":"removed","role":%q,"member":{"name":%q,"type":"HUMAN"}}`, rec.name, rec.role, rec.member)
		if err := e.store.Decide(ctx, "forged", rec.name, ledger.Decision{Member: rec.member, Outcome: "removed", Role: rec.role, Result: []byte(res)}); err != nil {
			t.Fatal(err)
		}
	}
	e.stack.Chat.ResetStats()
	if err := e.send(t, `{"requestId":"undo-forged","restore":"forged"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	failed := 0
	for _, r := range e.of(t, "undo-forged") {
		switch {
		case r.Outcome == contract.Failed && r.Error != nil && strings.Contains(r.Error.Message, "fails its check"):
			failed++
		case r.Outcome != contract.Planned:
			t.Errorf("unexpected result %+v", r.Result)
		}
	}
	if failed != 3 {
		t.Errorf("%d failed results, want 3", failed)
	}
	if c := e.stack.Chat.Stats().Calls; len(c) != 0 {
		t.Errorf("records that fail their check led to Chat calls: %v", c)
	}
	if n := strings.Count(e.logs.String(), `"severity":"ERROR"`); n != 3 {
		t.Errorf("%d ERROR log lines, want one per record:\n%s", n, e.logs.String())
	}
}
