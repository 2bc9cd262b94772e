package engine

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// decisionsByMembership returns the decisions (not planned) of the results
// so far by membership, failing on a membership decided twice with
// different event ids (a redelivery publishes the same decision again, with
// the same ce-id).
func decisionsByMembership(t *testing.T, e *env) map[string]published {
	t.Helper()
	out := map[string]published{}
	for _, r := range e.results(t) {
		if r.Outcome == contract.Planned {
			continue
		}
		if prev, ok := out[r.Membership]; ok && prev.Attrs["ce-id"] != r.Attrs["ce-id"] {
			t.Errorf("%s decided twice: %s then %s", r.Membership, prev.Outcome, r.Outcome)
		}
		out[r.Membership] = r
	}
	return out
}

// twoGroups adds Google Groups to bigWorkspace's ws and returns the
// (membership, groups) pairs through which a person is in a space only
// through a group: alpha holds dana (201) and eli (202); beta fay (203) and
// dana. None of them is a direct member of S0003, S0005, S0007 (alpha) or
// S1009, S1011 (beta, on the second page of spaces.search: its groups come
// from the continuation request): 6 + 4 = 10 pairs through a group. In
// S0001 all three are direct members and alpha is there too.
func twoGroups(t testing.TB, ws *emulator.Workspace) map[string][]string {
	t.Helper()
	ws.Groups = []emulator.Group{
		{ID: "g-alpha", Email: "alpha@example.com", Members: []string{"users/201", "users/202"}},
		{ID: "g-beta", Email: "beta@example.com", Members: []string{"users/203", "users/201"}},
		{ID: "g-other", Email: "other@example.com", Members: []string{"users/301"}},
	}
	wantVia := map[string][]string{}
	for i, g := range map[int]string{1: "g-alpha", 3: "g-alpha", 5: "g-alpha", 7: "g-alpha", 1009: "g-beta", 1011: "g-beta", 13: "g-other"} {
		ws.Spaces[i].Groups = []string{"groups/" + g}
		for _, m := range ws.Groups {
			if m.ID != g || i == 1 {
				continue
			}
			for _, u := range m.Members {
				if id := strings.TrimPrefix(u, "users/"); id >= "201" && id <= "203" {
					wantVia[fmt.Sprintf("spaces/S%04d/members/%s", i, id)] = []string{"groups/" + g}
				}
			}
		}
	}
	if len(wantVia) != 10 {
		t.Fatalf("fixture: %d pairs through groups, want 10", len(wantVia))
	}
	return wantVia
}

// TestSweepViaGroupsTwoThousandSpaces is issue 15's measure: a sweep of
// 2,000 spaces for 3 people, 10 of whose (space, person) pairs are only
// through two Google Groups. Every space of every person is decided exactly
// once, via_group names the right group in each of the 10, and the costs
// are those of a sweep without groups plus one Directory groups.list per
// person: no Chat call beyond the sweep's own members.list per space.
func TestSweepViaGroupsTwoThousandSpaces(t *testing.T) {
	const spaces = 2000
	ws, in, onlyManager := bigWorkspace(spaces)
	wantVia := twoGroups(t, &ws)
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	memberships := len(in["201"]) + len(in["202"]) + len(in["203"])
	if err := e.send(t, `{"requestId":"sweep-g","allSpaces":true,"members":["dana@example.com","eli@example.com","users/203"],"successor":"bob@example.com","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 8)

	got := decisionsByMembership(t, e)
	if len(got) != spaces*3 {
		t.Errorf("%d memberships decided, want %d (every space of every person)", len(got), spaces*3)
	}
	counts := map[contract.Outcome]int{}
	for name, r := range got {
		counts[r.Outcome]++
		want := wantVia[name]
		if strings.HasPrefix(name, "spaces/S0001/") {
			want = []string{"groups/g-alpha"}
			if id := strings.TrimPrefix(name, "spaces/S0001/members/"); id == "203" {
				want = nil // fay is not in alpha
			}
		}
		if !slices.Equal(r.ViaGroups, want) {
			t.Errorf("%s: %s viaGroups %v, want %v", name, r.Outcome, r.ViaGroups, want)
		}
		if (r.Outcome == contract.ViaGroup) != (wantVia[name] != nil) {
			t.Errorf("%s: outcome %s, want via_group: %v", name, r.Outcome, wantVia[name] != nil)
		}
		if r.Outcome == contract.ViaGroup && (r.Member == nil || !strings.HasSuffix(name, strings.TrimPrefix(r.Member.Name, "users/")) || !strings.Contains(r.Detail, r.ViaGroups[0])) {
			t.Errorf("%s: via_group result %+v", name, r.Result)
		}
	}
	want := map[contract.Outcome]int{contract.Removed: memberships, contract.ViaGroup: 10, contract.NotMember: spaces*3 - memberships - 10}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("outcomes %v, want %v", counts, want)
	}
	// The groups stay members of their spaces.
	snap := e.stack.Chat.Snapshot()
	for _, i := range []int{1, 3, 1009} {
		if len(snap.Spaces[i].Groups) != 1 {
			t.Errorf("S%04d lost its group: %v", i, snap.Spaces[i].Groups)
		}
	}
	for _, r := range e.results(t) {
		if r.Outcome == contract.Planned && !strings.Contains(r.Detail, "group access checked") {
			t.Errorf("planned result does not say group access was checked: %q", r.Detail)
		}
	}

	calls := e.stack.Chat.Stats().Calls
	dir := e.stack.Directory.Stats()
	if calls["spaces.search"] != 2 || calls["members.list"] != spaces || calls["members.get"] != 0 {
		t.Errorf("Chat reads: search %d, list %d, get %d; want 2, %d, 0", calls["spaces.search"], calls["members.list"], calls["members.get"], spaces)
	}
	if calls["members.delete"] != int64(memberships) || calls["members.create"] != int64(onlyManager) || calls["members.patch"] != int64(onlyManager) {
		t.Errorf("Chat writes %v, want %d deletes and %d hand-offs", calls, memberships, onlyManager)
	}
	if dir.GroupsList != 3 || dir.Calls != 3 { // groups: one per person; users.get: dana, eli, bob
		t.Errorf("Directory: groups.list %d, users.get %d; want 3 and 3", dir.GroupsList, dir.Calls)
	}
	t.Logf("sweep of %d spaces for 3 people, 10 pairs through 2 groups: %d decisions %v; Chat calls %v; Directory users.get %d, groups.list %d",
		spaces, len(got), counts, calls, dir.Calls, dir.GroupsList)
}

// groupEnv is the default workspace with groups: g-eng (alice, carol) is a
// member of ENG (where alice is a direct member too) and of HR (where she
// is not); g-ops (bob) of OPS (where bob is a direct member). alice is in
// 250 more groups, in no space: groups.list answers her in two pages.
func groupEnv(t *testing.T) *env {
	ws := emulator.Default()
	ws.Groups = []emulator.Group{
		{ID: "g-eng", Email: "eng-all@example.com", Members: []string{"users/101", "users/103"}},
		{ID: "g-ops", Email: "ops@example.com", Members: []string{"users/102"}},
	}
	for i := 0; i < 250; i++ {
		ws.Groups = append(ws.Groups, emulator.Group{ID: fmt.Sprintf("g%03d", i), Email: fmt.Sprintf("l%03d@example.com", i), Members: []string{"users/101"}})
	}
	for i, g := range map[int]string{0: "g-eng", 2: "g-eng", 3: "g-ops"} {
		ws.Spaces[i].Groups = []string{"groups/" + g}
	}
	return newEnvWith(t, ws, emulator.ChatOptions{})
}

func TestSweepViaGroupReplayedAndDryRun(t *testing.T) { sweepViaGroupReplayed(t) }

// TestSweepViaGroupOnFirestore is the same with the ledger in the real
// Firestore emulator.
func TestSweepViaGroupOnFirestore(t *testing.T) {
	onFirestore(t)
	sweepViaGroupReplayed(t)
}

// sweepViaGroupReplayed: via_group and viaGroups decided, recorded in the
// ledger, published again as they were on redelivery; a dry run alike.
func sweepViaGroupReplayed(t *testing.T) {
	e := groupEnv(t)
	if err := e.send(t, `{"requestId":"sg","allSpaces":true,"members":["alice@example.com","users/102"],"successor":"users/100"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	got := decisionsByMembership(t, e)
	via := got["spaces/HR/members/101"]
	if via.Outcome != contract.ViaGroup || !slices.Equal(via.ViaGroups, []string{"groups/g-eng"}) || via.Member == nil || via.Member.Name != "users/101" {
		t.Errorf("HR: %+v", via.Result)
	}
	eng := got["spaces/ENG/members/101"]
	if eng.Outcome != contract.Removed || !slices.Equal(eng.ViaGroups, []string{"groups/g-eng"}) || !strings.Contains(eng.Detail, "groups/g-eng") {
		t.Errorf("ENG: removed with viaGroups, got %+v", eng.Result)
	}
	if ops := got["spaces/OPS/members/102"]; ops.Outcome != contract.Removed || !slices.Equal(ops.ViaGroups, []string{"groups/g-ops"}) {
		t.Errorf("OPS: %+v", ops.Result)
	}
	if r := got["spaces/SALES/members/101"]; r.Outcome != contract.Removed || r.ViaGroups != nil {
		t.Errorf("SALES (no group): %+v", r.Result)
	}
	// Recorded in the ledger like every decision (the leaver report reads it).
	if m, err := e.store.Membership(t.Context(), "sg/spaces/HR", "spaces/HR/members/101"); err != nil || m.Outcome != string(contract.ViaGroup) || m.Member != "users/101" || !strings.Contains(string(m.Result), `"viaGroups":["groups/g-eng"]`) {
		t.Errorf("ledger record of HR: %+v, %v", m, err)
	}
	if n := e.stack.Directory.Stats().GroupsList; n != 3 { // alice: two pages; bob: one
		t.Errorf("groups.list = %d, want 3", n)
	}

	// Every request delivered again: the decisions come from the ledger,
	// with the same ids, and no Chat or Directory call is made.
	before, dirBefore := e.chatCalls(), e.stack.Directory.Stats()
	n := len(e.results(t))
	for _, m := range e.psrv.Messages() {
		if m.Topic == e.cfg.RequestTopic {
			if err := e.f.Handle(t.Context(), e.delivery(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if e.chatCalls() != before || e.stack.Directory.Stats() != dirBefore {
		t.Errorf("a redelivery called Chat (%d → %d) or the Directory", before, e.chatCalls())
	}
	again := decisionsByMembership(t, e)
	if len(e.results(t)) == n || !reflect.DeepEqual(again["spaces/HR/members/101"].Result, via.Result) {
		t.Errorf("replayed via_group differs: %+v", again["spaces/HR/members/101"].Result)
	}

	// A dry run decides via_group the same way and writes nothing.
	if err := e.send(t, `{"requestId":"sg-dry","allSpaces":true,"member":"carol@example.com","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	for _, r := range e.results(t) {
		if r.RequestID == "sg-dry/spaces/HR" && (r.Outcome != contract.ViaGroup || !slices.Equal(r.ViaGroups, []string{"groups/g-eng"})) {
			t.Errorf("dry run, HR: %+v", r.Result)
		}
		if r.RequestID == "sg-dry/spaces/ENG" && (r.Outcome != contract.DryRun || !slices.Equal(r.ViaGroups, []string{"groups/g-eng"})) {
			t.Errorf("dry run, ENG: %+v", r.Result)
		}
	}
}

func TestSweepWithoutGroupScope(t *testing.T) {
	e := groupEnv(t)
	s := e.stack
	var scopes []string
	for _, sc := range emulator.StackScopes {
		if sc != emulator.ScopeAdminDirectoryGroupReadonly {
			scopes = append(scopes, sc)
		}
	}
	rt := s.OAuth.IssueRefreshToken(s.ClientID, "users/100", scopes)
	s.Secrets.AddVersion(s.Project, secretID(s.SecretName), emulator.AuthorizedUserJSON(s.ClientID, s.ClientSecret, rt, s.OAuth.TokenURL()))
	if err := e.send(t, `{"requestId":"sn","allSpaces":true,"members":["alice@example.com","users/102"],"successor":"users/100"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	var planned []string
	got := map[string]contract.Outcome{}
	for _, r := range e.results(t) {
		if r.Outcome == contract.Planned {
			planned = append(planned, r.Detail)
			continue
		}
		got[r.Membership] = r.Outcome
		if r.ViaGroups != nil {
			t.Errorf("viaGroups without the scope: %+v", r.Result)
		}
	}
	if len(planned) != 1 || !strings.Contains(planned[0], "group access not checked for users/101, users/102") || !strings.Contains(planned[0], "admin.directory.group.readonly") {
		t.Errorf("planned = %q, want it to say group access was not checked for both, and the scope", planned)
	}
	if got["spaces/ENG/members/101"] != contract.Removed || got["spaces/HR/members/101"] != contract.NotMember {
		t.Errorf("the sweep did not run as without groups: %v", got)
	}
	if n := s.Directory.Stats().GroupsList; n != 1 {
		t.Errorf("groups.list = %d, want 1 (none after the first refusal)", n)
	}
	if !strings.Contains(e.logs.String(), "group access is not checked") {
		t.Error("no WARNING about the refused groups.list")
	}
}

// TestSweepGroupsNotCheckedPerPerson: a person the Directory does not know
// (named by id, so not resolved through users.get) and one in more groups
// than a child request carries are not checked; the others are, and the
// planned result names the first two.
func TestSweepGroupsNotCheckedPerPerson(t *testing.T) {
	ws := emulator.Default()
	ws.Groups = []emulator.Group{{ID: "g-eng", Email: "eng-all@example.com", Members: []string{"users/101", "users/104"}}}
	for i := 0; i < 1001; i++ {
		ws.Groups = append(ws.Groups, emulator.Group{ID: fmt.Sprintf("g%04d", i), Email: fmt.Sprintf("l%04d@example.com", i), Members: []string{"users/104"}})
	}
	ws.Spaces[2].Groups = []string{"groups/g-eng"} // HR
	e := newEnvWith(t, ws, emulator.ChatOptions{})
	if err := e.send(t, `{"requestId":"sp","allSpaces":true,"members":["users/999","alice@example.com","users/104"],"dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	got := decisionsByMembership(t, e)
	if r := got["spaces/HR/members/101"]; r.Outcome != contract.ViaGroup {
		t.Errorf("alice in HR: %+v", r.Result)
	}
	if r := got["spaces/HR/members/104"]; r.Outcome != contract.NotMember || r.ViaGroups != nil {
		t.Errorf("dave in HR (not checked): %+v", r.Result)
	}
	rs := e.results(t)
	if rs[0].Outcome != contract.Planned || !strings.Contains(rs[0].Detail, "group access not checked for users/999 (the Directory answered groups.list 404") ||
		!strings.Contains(rs[0].Detail, "users/104 (1002 groups: more than 1000") || strings.Contains(rs[0].Detail, "users/101") {
		t.Errorf("planned detail = %q", rs[0].Detail)
	}
	// 999: one (404); alice: one; dave: six pages of 200.
	if n := e.stack.Directory.Stats().GroupsList; n != 8 {
		t.Errorf("groups.list = %d, want 8", n)
	}
}

// TestSweepGroupsListRetried: a 503 from groups.list is retried like any
// API call, and the sweep goes on with the groups.
func TestSweepGroupsListRetried(t *testing.T) {
	e := groupEnv(t)
	e.stack.Directory.InjectFault(emulator.Fault{Method: "groups.list", Status: 503, Times: 1})
	if err := e.send(t, `{"requestId":"sr","allSpaces":true,"member":"alice@example.com","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	if r := decisionsByMembership(t, e)["spaces/HR/members/101"]; r.Outcome != contract.ViaGroup {
		t.Errorf("HR: %+v", r.Result)
	}
	if s := e.stack.Directory.Stats(); s.GroupsList != 3 || s.Faulted != 1 { // the 503, then alice's two pages
		t.Errorf("Directory stats %+v, want 3 groups.list, 1 faulted", s)
	}
}
