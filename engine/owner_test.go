package engine

import (
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// The only-owner rule and hand-offs as the function knows them (issue 22,
// points 2, 3 and 6): what it reads before it writes, never what an
// undocumented error or answer says.

// aloneWorkspace is the default workspace with spaces/ALONE, where alice is
// the only owner and the only human (beside the app), and dave's auto-accept
// off: members.create invites him.
func aloneWorkspace() emulator.Workspace {
	ws := emulator.Default()
	ws.Spaces = append(ws.Spaces, emulator.Space{Name: "spaces/ALONE", DisplayName: "Alice alone", SpaceType: emulator.SpaceTypeSpace,
		Members: []emulator.Member{{User: "users/101", Role: emulator.RoleManager}, {User: emulator.AppUser, Type: emulator.MemberTypeBot}}})
	for i := range ws.Users {
		if ws.Users[i].ID == "104" {
			ws.Users[i].AutoAcceptOff = true
		}
	}
	return ws
}

// TestOnlyOwnerKnownBeforeTheDelete: before an owner's delete the function
// asks members.list whether they are the only owner; if so it hands over to
// the named successor first, whatever error Chat would have refused the
// delete with (Google documents none) and whoever else is in the space; with
// no successor the delete is made, and its refusal is reported with Google's
// own code, status and message, and the fix.
func TestOnlyOwnerKnownBeforeTheDelete(t *testing.T) {
	refusals := []emulator.Refusal{
		{Code: 400, Status: "FAILED_PRECONDITION"},
		{Code: 400, Status: "INVALID_ARGUMENT"},
		{Code: 403, Status: "PERMISSION_DENIED"},
	}
	forms := []struct {
		name, target string // target: the request's fields naming alice in a space
	}{
		{"single", `"member":"users/101"`},
		{"space + members", `"members":["users/101"]`},
	}
	for _, refusal := range refusals {
		for _, form := range forms {
			t.Run(refusal.Status+" "+form.name, func(t *testing.T) {
				e := newEnvWith(t, aloneWorkspace(), emulator.ChatOptions{OnlyOwnerRefusal: refusal})
				// SOLO: bob, a member, takes over. ALONE: carol is
				// added and takes over.
				for _, req := range []string{
					`{"requestId":"solo","space":"spaces/SOLO",` + form.target + `,"adminAccess":true,"successor":"bob@example.com"}`,
					`{"requestId":"alone","space":"spaces/ALONE",` + form.target + `,"adminAccess":true,"successor":"users/103","addSuccessor":true}`,
				} {
					if err := e.send(t, req); err != nil {
						t.Fatal(err)
					}
				}
				rs := e.results(t)
				if len(rs) != 2 {
					t.Fatalf("%d results, want 2: %+v", len(rs), rs)
				}
				for i, want := range []contract.Result{
					{Membership: "spaces/SOLO/members/101", HandOff: &contract.HandOffLog{Successor: "bob@example.com", Promoted: true}},
					{Membership: "spaces/ALONE/members/101", HandOff: &contract.HandOffLog{Successor: "users/103", Added: true, Promoted: true}},
				} {
					want.Outcome, want.MembershipState, want.Role, want.AdminAccess = contract.Removed, "NOT_A_MEMBER", "ROLE_MANAGER", true
					want.Member = &contract.Member{Name: "users/101", Type: "HUMAN"}
					if diff := resultDiff(want, rs[i].Result, []string{"RequestID", "Attempts"}); diff != "" {
						t.Errorf("hand-off (-want +got):\n%s", diff)
					}
				}
				for space, successor := range map[string]string{"spaces/SOLO": "102", "spaces/ALONE": "103"} {
					if role, _ := e.stack.Chat.IsMember(space, successor); role != emulator.RoleManager {
						t.Errorf("users/%s in %s: %q, want the owner", successor, space, role)
					}
				}

				// No successor: the delete is refused as Chat refuses it.
				e = newEnvWith(t, aloneWorkspace(), emulator.ChatOptions{OnlyOwnerRefusal: refusal})
				if err := e.send(t, `{"space":"spaces/ALONE",`+form.target+`,"adminAccess":true}`); err != nil {
					t.Fatal(err)
				}
				r := e.only(t)
				failed := contract.Result{
					Membership: "spaces/ALONE/members/101", Outcome: contract.Failed, AdminAccess: true,
					Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
					Error:  &contract.ErrorInfo{Code: refusal.Code, Status: refusal.Status, Message: "The membership cannot be deleted because it is the only owner of the space. Make another member an owner first."},
					Detail: onlyOwnerFix,
				}
				if diff := resultDiff(failed, r.Result, []string{"RequestID", "Attempts"}); diff != "" {
					t.Errorf("no successor (-want +got):\n%s", diff)
				}
				if _, ok := e.stack.Chat.IsMember("spaces/ALONE", "101"); !ok {
					t.Error("alice is gone from ALONE")
				}
			})
		}
	}
}

// TestOwnerWhoIsNotTheOnlyOneIsNotHandedOver: an owner beside another owner
// is removed without a hand-off, after the one members.list that says so.
func TestOwnerWhoIsNotTheOnlyOneIsNotHandedOver(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101","successor":"users/103"}`); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	want := contract.Result{
		Membership: "spaces/ENG/members/101", Outcome: contract.Removed, MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER",
		Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
	}
	if diff := resultDiff(want, r.Result, []string{"RequestID", "Attempts"}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	calls := e.stack.Chat.Stats().Calls
	if calls["members.list"] != 1 || calls["members.patch"]+calls["members.create"] != 0 {
		t.Errorf("calls %v: want one members.list and no hand-off", calls)
	}
	if role, _ := e.stack.Chat.IsMember("spaces/ENG", "103"); role != emulator.RoleMember {
		t.Errorf("carol became %q", role)
	}
}

// TestHandOffOnlyToWhoHasJoined: a successor whose membership is INVITED
// (their auto-accept is off) is not made the owner, and the only owner is not
// removed: failed, with a fix that says the successor must accept, or name
// another. Whether the invitation is made by the hand-off, found by
// members.get (single) or met as 409 by a sweep's child, whose admin list
// cannot show invitations.
func TestHandOffOnlyToWhoHasJoined(t *testing.T) {
	e := newEnvWith(t, aloneWorkspace(), emulator.ChatOptions{})
	reqs := []string{
		// dave is invited by the hand-off itself.
		`{"requestId":"a","space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"dave@example.com","addSuccessor":true}`,
		// Then found invited: by members.get, and by a sweep's child.
		`{"requestId":"b","space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/104"}`,
		`{"requestId":"c","space":"spaces/SOLO","members":["users/101"],"adminAccess":true,"successor":"users/104","addSuccessor":true}`,
	}
	for _, req := range reqs {
		if err := e.send(t, req); err != nil {
			t.Fatal(err)
		}
	}
	rs := e.results(t)
	if len(rs) != len(reqs) {
		t.Fatalf("%d results, want %d", len(rs), len(reqs))
	}
	for i, log := range []*contract.HandOffLog{
		{Successor: "dave@example.com", Added: true},
		{Successor: "users/104"},
		{Successor: "users/104", Added: true},
	} {
		want := contract.Result{
			Membership: "spaces/SOLO/members/101", Outcome: contract.Failed, AdminAccess: true,
			Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
			Error: &contract.ErrorInfo{Code: 400, Status: "FAILED_PRECONDITION"}, HandOff: log,
		}
		r := rs[i].Result
		if diff := resultDiff(want, r, []string{"RequestID", "Attempts", "Detail"}, ignoreErrorMessage); diff != "" {
			t.Errorf("%s (-want +got):\n%s", reqs[i], diff)
		}
		if r.Error == nil || !strings.Contains(r.Error.Message, "INVITED") ||
			!strings.Contains(r.Detail, "the successor must accept the invitation to the space, or name another successor") {
			t.Errorf("%s: error %+v, detail %q: want the invitation named and the fix", reqs[i], r.Error, r.Detail)
		}
	}
	if role, _ := e.stack.Chat.IsMember("spaces/SOLO", "101"); role != emulator.RoleManager {
		t.Errorf("alice in SOLO: %q, want still the owner", role)
	}
	if s := e.stack.Chat.MembershipState("spaces/SOLO", "104"); s != "INVITED" {
		t.Errorf("dave in SOLO: %s, want INVITED", s)
	}
	if role, _ := e.stack.Chat.IsMember("spaces/SOLO", "104"); role != emulator.RoleMember {
		t.Errorf("dave's role in SOLO: %q, want ROLE_MEMBER", role)
	}
	if n := e.stack.Chat.Stats().Calls["members.patch"]; n != 0 {
		t.Errorf("%d members.patch calls: nobody invited may be made the owner", n)
	}
}

// TestRemovalSaysWhatTheFunctionKnows: a removal's role and member are the
// ones read before the delete (and recorded in its intent), its state
// NOT_A_MEMBER is the function's: the delete's answer, whose contents Google
// does not specify, is not read (here it is empty).
func TestRemovalSaysWhatTheFunctionKnows(t *testing.T) {
	e := newEnvWith(t, emulator.Default(), emulator.ChatOptions{EmptyDeleteAnswer: true})
	cases := []struct {
		req, membership, role, member, typ string
	}{
		{`{"space":"spaces/ENG","member":"users/101"}`, "spaces/ENG/members/101", "ROLE_MANAGER", "users/101", "HUMAN"},
		{`{"space":"spaces/SALES","member":"alice@example.com"}`, "spaces/SALES/members/alice@example.com", "ROLE_MEMBER", "users/101", "HUMAN"},
		{`{"membership":"spaces/OPS/members/103","adminAccess":true}`, "spaces/OPS/members/103", "ROLE_MEMBER", "users/103", "HUMAN"},
		{`{"space":"spaces/ENG","member":"app"}`, "spaces/ENG/members/app", "ROLE_MEMBER", "users/app", "BOT"},
		{`{"space":"spaces/OPS","members":["users/102"],"adminAccess":true}`, "spaces/OPS/members/102", "ROLE_MANAGER", "users/102", "HUMAN"},
		{`{"space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/102"}`, "spaces/SOLO/members/101", "ROLE_MANAGER", "users/101", "HUMAN"},
	}
	for _, c := range cases {
		if err := e.send(t, c.req); err != nil {
			t.Fatal(err)
		}
	}
	rs := e.results(t)
	if len(rs) != len(cases) {
		t.Fatalf("%d results, want %d", len(rs), len(cases))
	}
	for i, c := range cases {
		r := rs[i].Result
		if r.Outcome != contract.Removed || r.Membership != c.membership || r.MembershipState != "NOT_A_MEMBER" || r.Role != c.role ||
			r.Member == nil || r.Member.Name != c.member || r.Member.Type != c.typ {
			t.Errorf("%s: %s %s %s %s %+v; want removed %s NOT_A_MEMBER %s {%s %s}", c.req, r.Outcome, r.Membership, r.MembershipState, r.Role, r.Member,
				c.membership, c.role, c.member, c.typ)
		}
	}
}
