package emulator_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/chat/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

func TestDeleteMembership(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	m, err := svc.Spaces.Members.Delete("spaces/ENG/members/102").Do()
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if m.Name != "spaces/ENG/members/102" || m.State != "NOT_A_MEMBER" || m.Role != "ROLE_MEMBER" ||
		m.Member == nil || m.Member.Name != "users/102" || m.Member.Type != "HUMAN" {
		t.Fatalf("deleted membership = %+v member %+v", m, m.Member)
	}
	if _, ok := st.Chat.IsMember("spaces/ENG", "users/102"); ok {
		t.Fatal("bob is still a member")
	}
	// Idempotent from the caller's view: the second delete is 404.
	_, err = svc.Spaces.Members.Delete("spaces/ENG/members/102").Do()
	wantStatus(t, err, 404, "NOT_FOUND")

	// Deleting a manager keeps the role in the answer.
	m, err = svc.Spaces.Members.Delete("spaces/ENG/members/101").Do()
	if err != nil || m.Role != "ROLE_MANAGER" {
		t.Fatalf("delete manager = %+v, %v", m, err)
	}
	// Unknown space.
	_, err = svc.Spaces.Members.Delete("spaces/NOPE/members/102").Do()
	wantStatus(t, err, 404, "NOT_FOUND")
}

func TestDeletePermission(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	// The admin is not a member of SECRET nor a manager of SOLO.
	_, err := svc.Spaces.Members.Delete("spaces/SECRET/members/106").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	_, err = svc.Spaces.Members.Delete("spaces/SOLO/members/102").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")

	// With admin access it works on SECRET.
	m, err := svc.Spaces.Members.Delete("spaces/SECRET/members/106").UseAdminAccess(true).Do()
	if err != nil || m.State != "NOT_A_MEMBER" {
		t.Fatalf("admin delete = %+v, %v", m, err)
	}
	if got := st.Chat.Stats().AdminAccessCalls; got != 1 {
		t.Fatalf("AdminAccessCalls = %d", got)
	}
	// Admin access on a DM / group chat is 400.
	_, err = svc.Spaces.Members.Delete("spaces/GROUP/members/102").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	// A non-admin may not use admin access.
	bobSvc := chatAs(t, st, bob, emulator.ScopeChatMemberships, emulator.ScopeChatAdminMemberships)
	_, err = bobSvc.Spaces.Members.Delete("spaces/HR/members/105").UseAdminAccess(true).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	// A plain member may not remove others ...
	_, err = bobSvc.Spaces.Members.Delete("spaces/ENG/members/103").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	// ... but may leave.
	if _, err := bobSvc.Spaces.Members.Delete("spaces/ENG/members/102").Do(); err != nil {
		t.Fatalf("leave: %v", err)
	}
}

func TestOnlyManager(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	aliceSvc := chatAs(t, st, alice, emulator.ScopeChatMemberships)

	_, err := svc.Spaces.Members.Delete("spaces/SOLO/members/101").UseAdminAccess(true).Do()
	ge := wantStatus(t, err, 400, "FAILED_PRECONDITION")
	if !strings.Contains(ge.Message, "only owner") {
		t.Fatalf("message = %q", ge.Message)
	}
	_, err = aliceSvc.Spaces.Members.Delete("spaces/SOLO/members/101").Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")
	if role, ok := st.Chat.IsMember("spaces/SOLO", "101"); !ok || role != "ROLE_MANAGER" {
		t.Fatalf("alice = %q %v", role, ok)
	}

	// Demoting the only manager is refused too.
	_, err = aliceSvc.Spaces.Members.Patch("spaces/SOLO/members/101", &chat.Membership{Role: "ROLE_MEMBER"}).UpdateMask("role").Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")

	// Promote bob, then alice may go.
	if _, err := aliceSvc.Spaces.Members.Patch("spaces/SOLO/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").Do(); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if _, err := svc.Spaces.Members.Delete("spaces/SOLO/members/alice@example.com").UseAdminAccess(true).Do(); err != nil {
		t.Fatalf("delete after promotion: %v", err)
	}
}

// TestOnlyOwnerWhateverTheOthers: Google's guide says a space's only owner
// can't be removed, and says nothing of the other members: the emulation
// refuses it with no other human in the space too, and does not answer the
// delete of anyone else with more than the guide requires.
func TestOnlyOwnerWhateverTheOthers(t *testing.T) {
	ws := emulator.Default()
	ws.Spaces = append(ws.Spaces,
		emulator.Space{Name: "spaces/ALONE", SpaceType: emulator.SpaceTypeSpace, Members: []emulator.Member{
			{User: alice, Role: emulator.RoleManager}, {User: emulator.AppUser, Type: emulator.MemberTypeBot}}},
		emulator.Space{Name: "spaces/JUSTME", SpaceType: emulator.SpaceTypeSpace, Members: []emulator.Member{
			{User: alice, Role: emulator.RoleManager}}})
	st := startStackWith(t, ws, emulator.ChatOptions{})
	svc := adminChat(t, st)
	for _, name := range []string{"spaces/ALONE/members/101", "spaces/JUSTME/members/101"} {
		_, err := svc.Spaces.Members.Delete(name).UseAdminAccess(true).Do()
		wantStatus(t, err, 400, "FAILED_PRECONDITION")
		if _, ok := st.Chat.IsMember(strings.TrimSuffix(name, "/members/101"), alice); !ok {
			t.Errorf("%s: the only owner was removed", name)
		}
	}
	// The only owner may not leave either.
	_, err := chatAs(t, st, alice, emulator.ScopeChatMemberships).Spaces.Members.Delete("spaces/JUSTME/members/101").Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")
}

// TestEmptyDeleteAnswer: with ChatOptions.EmptyDeleteAnswer the delete is
// made and answers a Membership with nothing in it.
func TestEmptyDeleteAnswer(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{EmptyDeleteAnswer: true})
	m, err := adminChat(t, st).Spaces.Members.Delete("spaces/ENG/members/102").UseAdminAccess(true).Do()
	if err != nil || m.Name != "" || m.State != "" || m.Role != "" || m.Member != nil {
		t.Fatalf("delete = %+v, %v; want an empty membership", m, err)
	}
	if _, ok := st.Chat.IsMember("spaces/ENG", bob); ok {
		t.Error("bob is still a member of ENG")
	}
}

func TestAppMembership(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	_, err := svc.Spaces.Members.Delete("spaces/ENG/members/app").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	_, err = svc.Spaces.Members.Get("spaces/ENG/members/app").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	noApp := chatAs(t, st, admin, emulator.ScopeChatMemberships)
	_, err = noApp.Spaces.Members.Delete("spaces/ENG/members/app").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")

	m, err := svc.Spaces.Members.Get("spaces/ENG/members/app").Do()
	if err != nil || m.Name != "spaces/ENG/members/app" || m.Member.Name != "users/app" || m.Member.Type != "BOT" {
		t.Fatalf("get app = %+v, %v", m, err)
	}
	m, err = svc.Spaces.Members.Delete("spaces/ENG/members/app").Do()
	if err != nil || m.State != "NOT_A_MEMBER" || m.Member.Type != "BOT" {
		t.Fatalf("delete app = %+v, %v", m, err)
	}
	// Re-add the app.
	m, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/app", Type: "BOT"}}).Do()
	if err != nil || m.Name != "spaces/ENG/members/app" {
		t.Fatalf("create app = %+v, %v", m, err)
	}
}

func TestEmailAliasAddressing(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	for _, key := range []string{"101", "alice@example.com", "ALICE@example.com"} {
		m, err := svc.Spaces.Members.Get("spaces/ENG/members/" + key).Do()
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if m.Name != "spaces/ENG/members/101" || m.Member.Name != "users/101" || m.State != "JOINED" || m.Role != "ROLE_MANAGER" {
			t.Fatalf("get %s = %+v", key, m)
		}
	}
	_, err := svc.Spaces.Members.Get("spaces/ENG/members/nobody@example.com").Do()
	wantStatus(t, err, 404, "NOT_FOUND")
	// Known person, not a member: 404.
	_, err = svc.Spaces.Members.Get("spaces/ENG/members/erin@example.com").Do()
	wantStatus(t, err, 404, "NOT_FOUND")
	// Google documents "the user's email" as the alias, not the
	// Directory's further addresses: the emulation does not guess.
	_, err = svc.Spaces.Members.Get("spaces/ENG/members/ali@example.com").Do()
	wantStatus(t, err, 404, "NOT_FOUND")
	_, err = svc.Spaces.Members.Delete("spaces/SALES/members/ali@example.com").Do()
	wantStatus(t, err, 404, "NOT_FOUND")

	m, err := svc.Spaces.Members.Delete("spaces/SALES/members/alice@example.com").Do()
	if err != nil || m.Name != "spaces/SALES/members/101" {
		t.Fatalf("delete by email = %+v, %v", m, err)
	}
}

// TestPatchTakesTheServerAssignedName: Google documents the email alias for
// members.get and members.delete only; members.patch takes the name the
// server assigned.
func TestPatchTakesTheServerAssignedName(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	_, err := svc.Spaces.Members.Patch("spaces/ENG/members/bob@example.com", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	if role, _ := st.Chat.IsMember("spaces/ENG", "102"); role != "ROLE_MEMBER" {
		t.Fatalf("patch by email changed the role to %s", role)
	}
	m, err := svc.Spaces.Members.Patch("spaces/ENG/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do()
	if err != nil || m.Role != "ROLE_MANAGER" || m.Name != "spaces/ENG/members/102" {
		t.Fatalf("patch by id = %+v, %v", m, err)
	}
	// members.create takes users/{primary email} in the body.
	m, err = svc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/bob@example.com", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	if err != nil || m.Name != "spaces/HR/members/102" {
		t.Fatalf("create by email = %+v, %v", m, err)
	}
	_, err = svc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/ali@example.com", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	wantStatus(t, err, 404, "NOT_FOUND")
}

// TestAssistantManagers models Chat's roles since October 2025:
// ROLE_MANAGER is an owner, ROLE_ASSISTANT_MANAGER a manager who does not
// count for the only-owner rule.
func TestAssistantManagers(t *testing.T) {
	ws := emulator.Default()
	for i, s := range ws.Spaces {
		if s.Name == "spaces/SOLO" {
			ws.Spaces[i].Members[1].Role = emulator.RoleAssistantManager // bob
		}
	}
	st := startStackWith(t, ws, emulator.ChatOptions{})
	svc := adminChat(t, st)
	// Alice is the only owner although bob is a manager.
	_, err := svc.Spaces.Members.Delete("spaces/SOLO/members/101").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")
	// Making bob a manager of another kind keeps the owner count.
	m, err := svc.Spaces.Members.Get("spaces/SOLO/members/102").UseAdminAccess(true).Do()
	if err != nil || m.Role != "ROLE_ASSISTANT_MANAGER" {
		t.Fatalf("bob = %+v, %v", m, err)
	}
	// A manager may remove members, not owners, and may not change roles.
	bobSvc := chatAs(t, st, bob, emulator.ScopeChatMemberships)
	_, err = bobSvc.Spaces.Members.Delete("spaces/SOLO/members/101").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	_, err = bobSvc.Spaces.Members.Patch("spaces/SOLO/members/103", &chat.Membership{Role: "ROLE_ASSISTANT_MANAGER"}).UpdateMask("role").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	if _, err := bobSvc.Spaces.Members.Delete("spaces/SOLO/members/103").Do(); err != nil {
		t.Fatalf("manager removes a member: %v", err)
	}
	// Promote bob to owner: then alice may go.
	if _, err := svc.Spaces.Members.Patch("spaces/SOLO/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do(); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if _, err := svc.Spaces.Members.Delete("spaces/SOLO/members/101").UseAdminAccess(true).Do(); err != nil {
		t.Fatalf("delete after promotion: %v", err)
	}
	// The only owner cannot become a manager.
	_, err = svc.Spaces.Members.Patch("spaces/SOLO/members/102", &chat.Membership{Role: "ROLE_ASSISTANT_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")
}

func TestPathTricksRejected(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	tok := st.OAuth.IssueAccessToken(admin, emulator.StackScopes)
	before := st.Chat.Snapshot()

	cases := []struct {
		method, uri string
		want        int
	}{
		{"DELETE", "/v1/spaces/ENG/members/102/extra", 400},
		{"DELETE", "/v1/spaces/ENG/members/../../SECRET/members/106", 400},
		{"DELETE", "/v1/spaces/ENG/members/..", 400},
		{"DELETE", "/v1/spaces/ENG/members/.", 400},
		{"DELETE", "/v1/spaces/ENG/members/", 400},
		{"DELETE", "/v1/spaces//members/102", 400},
		{"DELETE", "/v1/spaces/ENG/members/102%2F..", 400},
		{"DELETE", "/v1/spaces/ENG/members/alice%40example.com", 400},
		{"DELETE", "/v1/spaces/ENG/members/a;b", 400},
		{"DELETE", "/v1/spaces/ENG/members/a,b", 400},
		{"DELETE", "/v1/spaces/ENG/../ENG/members/102", 400},
		{"DELETE", "/v1/spaces/ENG/members/102?useAdminAccess=yes", 400},
		{"DELETE", "/v1/spaces/ENG/members/102?bogus=1", 400},
		{"GET", "/v1/spaces/ENG/members/102/", 400},
		{"GET", "/v1/spaces/E%4EG/members", 400},
		{"DELETE", "/v1/users/102", 404},
		{"DELETE", "/v2/spaces/ENG/members/102", 404},
		{"PUT", "/v1/spaces/ENG/members/102", 404},
		{"GET", "/v1/spaces/ENG", 404},
	}
	for _, c := range cases {
		code, body := rawRequest(t, st.Chat.URL(), c.method, c.uri, tok)
		if code != c.want {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.uri, code, body, c.want)
		}
	}
	// The real client's {+name} expansion does not escape "/": the server
	// still refuses.
	svc := adminChat(t, st)
	_, err := svc.Spaces.Members.Delete("spaces/ENG/members/102/x").Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	_, err = svc.Spaces.Members.Delete("spaces/ENG/members/1 02").Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	after := st.Chat.Snapshot()
	if len(after.Spaces[0].Members) != len(before.Spaces[0].Members) || len(after.Spaces[5].Members) != len(before.Spaces[5].Members) {
		t.Fatal("state changed by rejected requests")
	}
	// Sanity: a well-formed raw request works.
	if code, body := rawRequest(t, st.Chat.URL(), "GET", "/v1/spaces/ENG/members/102?alt=json&prettyPrint=false", tok); code != 200 {
		t.Fatalf("well-formed raw GET = %d %s", code, body)
	}
}

func collectMembers(t *testing.T, call *chat.SpacesMembersListCall) (names []string, pages int) {
	t.Helper()
	err := call.Pages(context.Background(), func(r *chat.ListMembershipsResponse) error {
		pages++
		for _, m := range r.Memberships {
			names = append(names, m.Member.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return names, pages
}

func TestListFilterAndPages(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	all, pages := collectMembers(t, svc.Spaces.Members.List("spaces/ENG"))
	if strings.Join(all, ",") != "users/100,users/101,users/102,users/103,users/app" || pages != 1 {
		t.Fatalf("all = %v in %d pages", all, pages)
	}
	humans, pages := collectMembers(t, svc.Spaces.Members.List("spaces/ENG").Filter(`member.type = "HUMAN"`).PageSize(2))
	if strings.Join(humans, ",") != "users/100,users/101,users/102,users/103" || pages != 2 {
		t.Fatalf("humans = %v in %d pages", humans, pages)
	}
	mgrs, _ := collectMembers(t, svc.Spaces.Members.List("spaces/ENG").Filter(`role = "ROLE_MANAGER"`).PageSize(1))
	if strings.Join(mgrs, ",") != "users/100,users/101" {
		t.Fatalf("managers = %v", mgrs)
	}
	plain, _ := collectMembers(t, svc.Spaces.Members.List("spaces/ENG").Filter(`member.type != "BOT" AND role = "ROLE_MEMBER"`))
	if strings.Join(plain, ",") != "users/102,users/103" {
		t.Fatalf("plain members = %v", plain)
	}
	either, _ := collectMembers(t, svc.Spaces.Members.List("spaces/ENG").Filter(`member.type = "BOT" OR (role = "ROLE_MANAGER" AND member.type = "HUMAN")`))
	if strings.Join(either, ",") != "users/100,users/101,users/app" {
		t.Fatalf("or = %v", either)
	}

	// Admin access: a filter excluding bots is mandatory.
	_, err := svc.Spaces.Members.List("spaces/SECRET").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	sec, _ := collectMembers(t, svc.Spaces.Members.List("spaces/SECRET").UseAdminAccess(true).Filter(`member.type = "HUMAN"`))
	if strings.Join(sec, ",") != "users/104,users/106" {
		t.Fatalf("secret = %v", sec)
	}
	// Not a member, no admin access.
	_, err = svc.Spaces.Members.List("spaces/SECRET").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")

	for _, bad := range []string{`member.type = "ROBOT"`, `name = "x"`, `role = `, `member.type = "HUMAN" AND`, `(role = "ROLE_MEMBER"`} {
		_, err = svc.Spaces.Members.List("spaces/ENG").Filter(bad).Do()
		wantStatus(t, err, 400, "INVALID_ARGUMENT")
	}
	_, err = svc.Spaces.Members.List("spaces/ENG").PageSize(-1).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	// Page tokens are bound to their parent and filter.
	r, err := svc.Spaces.Members.List("spaces/ENG").PageSize(1).Do()
	if err != nil || r.NextPageToken == "" {
		t.Fatalf("page 1 = %+v, %v", r, err)
	}
	_, err = svc.Spaces.Members.List("spaces/OPS").PageToken(r.NextPageToken).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	_, err = svc.Spaces.Members.List("spaces/ENG").PageToken("garbage").Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	// Deleting between pages neither skips nor repeats members.
	r, err = svc.Spaces.Members.List("spaces/OPS").PageSize(2).Do()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Spaces.Members.Delete("spaces/OPS/members/102").Do(); err != nil {
		t.Fatal(err)
	}
	rest, _ := collectMembers(t, svc.Spaces.Members.List("spaces/OPS").PageSize(2).PageToken(r.NextPageToken))
	if strings.Join(rest, ",") != "users/103,users/104,users/106" {
		t.Fatalf("rest = %v", rest)
	}
}

func TestSearchSpaces(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	const q = `customer = "customers/my_customer" AND spaceType = "SPACE"`

	var names []string
	pages := 0
	err := svc.Spaces.Search().UseAdminAccess(true).Query(q).PageSize(4).Pages(context.Background(), func(r *chat.SearchSpacesResponse) error {
		pages++
		if r.TotalSize != 6 {
			t.Errorf("totalSize = %d", r.TotalSize)
		}
		for _, s := range r.Spaces {
			if s.SpaceType != "SPACE" {
				t.Errorf("space %s has type %s", s.Name, s.SpaceType)
			}
			names = append(names, s.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "spaces/ENG,spaces/SALES,spaces/HR,spaces/OPS,spaces/SOLO,spaces/SECRET" || pages != 2 {
		t.Fatalf("search = %v in %d pages", names, pages)
	}
	r, err := svc.Spaces.Search().UseAdminAccess(true).Query(q + ` AND displayName:"eng"`).Do()
	if err != nil || len(r.Spaces) != 1 || r.Spaces[0].DisplayName != "Engineering" {
		t.Fatalf("displayName search = %+v, %v", r, err)
	}
	// The current reference's spelling, as in its examples.
	r, err = svc.Spaces.Search().UseAdminAccess(true).Query(`customer = "customers/my_customer" AND space_type = "SPACE" AND display_name:"eng"`).Do()
	if err != nil || len(r.Results) != 1 || r.Results[0].Space.DisplayName != "Engineering" {
		t.Fatalf("display_name search = %+v, %v", r, err)
	}

	for _, bad := range []string{
		`spaceType = "SPACE"`,
		`customer = "customers/my_customer"`,
		`customer = "customers/my_customer" AND spaceType = "GROUP_CHAT"`,
		`customer = "customers/other" AND spaceType = "SPACE"`,
		`customer = "customers/my_customer" OR spaceType = "SPACE"`,
		`customer = "customers/my_customer" AND spaceType = "SPACE" AND bogus = "1"`,
		`customer = "customers/my_customer" AND space_type = "GROUP_CHAT"`,
		`customer = "customers/my_customer" AND SpaceType = "SPACE"`,
		`customer = "customers/my_customer" AND space_type = "SPACE" AND display_name = "Engineering"`,
		``,
	} {
		_, err := svc.Spaces.Search().UseAdminAccess(true).Query(bad).Do()
		wantStatus(t, err, 400, "INVALID_ARGUMENT")
	}
	_, err = svc.Spaces.Search().Query(q).Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")

	bobSvc := chatAs(t, st, bob, emulator.ScopeChatAdminSpacesReadonly)
	_, err = bobSvc.Spaces.Search().UseAdminAccess(true).Query(q).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	noScope := chatAs(t, st, admin, emulator.ScopeChatAdminMemberships)
	_, err = noScope.Spaces.Search().UseAdminAccess(true).Query(q).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
}

// TestSearchSpacesFields: spaces.search answers in results
// (SearchSpaceResult{space}) and in the deprecated spaces, as the current
// reference describes; ChatOptions.Search fills only one of them.
func TestSearchSpacesFields(t *testing.T) {
	const q = `customer = "customers/my_customer" AND space_type = "SPACE"`
	names := func(r *chat.SearchSpacesResponse) (results, spaces string) {
		var a, b []string
		for _, x := range r.Results {
			a = append(a, x.Space.Name)
		}
		for _, s := range r.Spaces {
			b = append(b, s.Name)
		}
		return strings.Join(a, ","), strings.Join(b, ",")
	}
	const all = "spaces/ENG,spaces/SALES,spaces/HR,spaces/OPS,spaces/SOLO,spaces/SECRET"
	for _, c := range []struct {
		name            string
		mode            emulator.SearchFields
		results, spaces string
	}{
		{"both", emulator.SearchBoth, all, all},
		{"results only", emulator.SearchResultsOnly, all, ""},
		{"spaces only", emulator.SearchSpacesOnly, "", all},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := startStack(t, emulator.ChatOptions{Search: c.mode})
			r, err := adminChat(t, st).Spaces.Search().UseAdminAccess(true).Query(q).Do()
			if err != nil {
				t.Fatal(err)
			}
			if results, spaces := names(r); results != c.results || spaces != c.spaces || r.TotalSize != 6 {
				t.Errorf("results %q, spaces %q, totalSize %d; want %q, %q, 6", results, spaces, r.TotalSize, c.results, c.spaces)
			}
		})
	}
}

func TestPatchAndCreate(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	m, err := svc.Spaces.Members.Patch("spaces/ENG/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").Do()
	if err != nil || m.Role != "ROLE_MANAGER" || m.State != "JOINED" {
		t.Fatalf("patch = %+v, %v", m, err)
	}
	if role, _ := st.Chat.IsMember("spaces/ENG", "bob@example.com"); role != "ROLE_MANAGER" {
		t.Fatalf("bob role = %q", role)
	}
	_, err = svc.Spaces.Members.Patch("spaces/ENG/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("state").Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	_, err = svc.Spaces.Members.Patch("spaces/ENG/members/102", &chat.Membership{Role: "ROLE_OWNER"}).UpdateMask("role").Do()
	wantStatus(t, err, 400, "INVALID_ARGUMENT")
	// dave is the only manager of SECRET.
	_, err = svc.Spaces.Members.Patch("spaces/SECRET/members/104", &chat.Membership{Role: "ROLE_MEMBER"}).UpdateMask("role").UseAdminAccess(true).Do()
	wantStatus(t, err, 400, "FAILED_PRECONDITION")

	m, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/105", Type: "HUMAN"}}).Do()
	if err != nil || m.Name != "spaces/ENG/members/105" || m.State != "JOINED" || m.Role != "ROLE_MEMBER" {
		t.Fatalf("create = %+v, %v", m, err)
	}
	_, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/105", Type: "HUMAN"}}).Do()
	wantStatus(t, err, 409, "ALREADY_EXISTS")
	m, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/frank@example.com", Type: "HUMAN"}}).Do()
	if err != nil || m.Name != "spaces/ENG/members/106" {
		t.Fatalf("create by email = %+v, %v", m, err)
	}
	bobSvc := chatAs(t, st, "users/103", emulator.ScopeChatMemberships)
	_, err = bobSvc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/104", Type: "HUMAN"}}).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	_, err = svc.Spaces.Members.Create("spaces/DM", &chat.Membership{Member: &chat.User{Name: "users/104", Type: "HUMAN"}}).Do()
	if err == nil {
		t.Fatal("create in a DM succeeded")
	}
}

func TestUnauthenticated(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})

	bad, err := chat.NewService(context.Background(), option.WithEndpoint(st.Chat.URL()), option.WithAPIKey("nope"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Spaces.Members.Get("spaces/ENG/members/102").Do()
	wantStatus(t, err, 401, "UNAUTHENTICATED")
	if code, _ := rawRequest(t, st.Chat.URL(), "GET", "/v1/spaces/ENG/members/102", "ya29.forged"); code != 401 {
		t.Fatalf("forged token = %d", code)
	}

	svc := adminChat(t, st)
	if _, err := svc.Spaces.Members.Get("spaces/ENG/members/102").Do(); err != nil {
		t.Fatal(err)
	}
	st.OAuth.ExpireAccessTokens() // the client still holds the old token
	_, err = svc.Spaces.Members.Get("spaces/ENG/members/102").Do()
	ge := wantStatus(t, err, 401, "UNAUTHENTICATED")
	if !strings.Contains(ge.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("WWW-Authenticate = %q", ge.Header.Get("WWW-Authenticate"))
	}
	if st.Chat.Stats().Unauthorized != 3 {
		t.Fatalf("Unauthorized = %d", st.Chat.Stats().Unauthorized)
	}

	// A token that expires by lifetime.
	short := emulator.NewOAuth(emulator.OAuthOptions{TokenLifetime: 300 * time.Millisecond})
	defer short.Close()
	c := emulator.NewChat(emulator.Default(), short, emulator.ChatOptions{})
	defer c.Close()
	tok := short.IssueAccessToken(admin, emulator.StackScopes)
	if code, body := rawRequest(t, c.URL(), "GET", "/v1/spaces/ENG/members/102", tok); code != 200 {
		t.Fatalf("fresh token = %d %s", code, body)
	}
	time.Sleep(350 * time.Millisecond)
	if _, ok := short.Verify(tok); ok {
		t.Fatal("expired token verifies")
	}
	if code, _ := rawRequest(t, c.URL(), "GET", "/v1/spaces/ENG/members/102", tok); code != 401 {
		t.Fatalf("expired token = %d", code)
	}
}

func TestScopes(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	ro := chatAs(t, st, admin, emulator.ScopeChatMembershipsReadonly)
	if _, err := ro.Spaces.Members.Get("spaces/ENG/members/102").Do(); err != nil {
		t.Fatalf("readonly get: %v", err)
	}
	_, err := ro.Spaces.Members.Delete("spaces/ENG/members/102").Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	_, err = ro.Spaces.Members.List("spaces/SECRET").UseAdminAccess(true).Filter(`member.type = "HUMAN"`).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")

	adminRO := chatAs(t, st, admin, emulator.ScopeChatAdminMembershipsReadonly)
	if _, err := adminRO.Spaces.Members.Get("spaces/SECRET/members/104").UseAdminAccess(true).Do(); err != nil {
		t.Fatalf("admin readonly get: %v", err)
	}
	_, err = adminRO.Spaces.Members.Delete("spaces/SECRET/members/106").UseAdminAccess(true).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
	// User scopes don't grant admin access.
	user := chatAs(t, st, admin, emulator.ScopeChatMemberships)
	_, err = user.Spaces.Members.Delete("spaces/SECRET/members/106").UseAdminAccess(true).Do()
	wantStatus(t, err, 403, "PERMISSION_DENIED")
}

func TestQuotas(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{WritesPerWindow: 2, ReadsPerWindow: 3, Window: time.Hour})
	svc := adminChat(t, st)
	for _, id := range []string{"102", "103"} {
		if _, err := svc.Spaces.Members.Delete("spaces/ENG/members/" + id).Do(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.Spaces.Members.Delete("spaces/OPS/members/103").Do()
	ge := wantStatus(t, err, 429, "RESOURCE_EXHAUSTED")
	ra, _ := strconv.Atoi(ge.Header.Get("Retry-After"))
	if ra < 3590 || ra > 3600 {
		t.Fatalf("Retry-After = %q", ge.Header.Get("Retry-After"))
	}
	if _, ok := st.Chat.IsMember("spaces/OPS", "103"); !ok {
		t.Fatal("throttled delete changed state")
	}
	for i := 0; i < 3; i++ { // reads have their own budget
		if _, err := svc.Spaces.Members.Get("spaces/OPS/members/103").Do(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = svc.Spaces.Members.List("spaces/OPS").Do()
	wantStatus(t, err, 429, "RESOURCE_EXHAUSTED")
	if s := st.Chat.Stats(); s.Throttled != 2 || s.ByStatus[429] != 2 {
		t.Fatalf("stats = %+v", s)
	}

	// A short window frees up.
	st2 := startStack(t, emulator.ChatOptions{ReadsPerWindow: 1, Window: 200 * time.Millisecond})
	svc2 := adminChat(t, st2)
	var got429 bool
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		_, err := svc2.Spaces.Members.Get("spaces/ENG/members/102").Do()
		if err != nil {
			ge := wantStatus(t, err, 429, "RESOURCE_EXHAUSTED")
			if ge.Header.Get("Retry-After") != "1" {
				t.Fatalf("Retry-After = %q", ge.Header.Get("Retry-After"))
			}
			got429 = true
			continue
		}
		if got429 {
			return // throttled, then admitted in the next window
		}
	}
	t.Fatal("short window never throttled then admitted")
}

func TestPerSpaceReadQuota(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{PerSpaceReadsPerSecond: 2})
	svc := adminChat(t, st)
	ok, throttled := 0, 0
	for i := 0; i < 10; i++ {
		_, err := svc.Spaces.Members.Get("spaces/ENG/members/102").Do()
		if err == nil {
			ok++
			continue
		}
		wantStatus(t, err, 429, "RESOURCE_EXHAUSTED")
		throttled++
	}
	if ok > 4 || throttled == 0 {
		t.Fatalf("ok=%d throttled=%d", ok, throttled)
	}
	// Other spaces have their own budget.
	if _, err := svc.Spaces.Members.Get("spaces/OPS/members/102").Do(); err != nil {
		t.Fatal(err)
	}
}

func TestFaults(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)

	st.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503, RetryAfter: 1500 * time.Millisecond, Times: 1})
	_, err := svc.Spaces.Members.Delete("spaces/ENG/members/102").Do()
	ge := wantStatus(t, err, 503, "UNAVAILABLE")
	if ge.Header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After = %q", ge.Header.Get("Retry-After"))
	}
	if _, ok := st.Chat.IsMember("spaces/ENG", "102"); !ok {
		t.Fatal("faulted delete changed state")
	}
	if _, err := svc.Spaces.Members.Delete("spaces/ENG/members/102").Do(); err != nil {
		t.Fatalf("after Times:1 fault: %v", err)
	}

	// Method filter: a get fault doesn't touch list.
	st.Chat.InjectFault(emulator.Fault{Method: "members.get", Status: 429, Times: 2})
	if _, err := svc.Spaces.Members.List("spaces/ENG").Do(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, err = svc.Spaces.Members.Get("spaces/ENG/members/103").Do()
		wantStatus(t, err, 429, "RESOURCE_EXHAUSTED")
	}
	if _, err := svc.Spaces.Members.Get("spaces/ENG/members/103").Do(); err != nil {
		t.Fatal(err)
	}

	// Drop: the client sees a transport error, not an API answer.
	st.Chat.InjectFault(emulator.Fault{Method: "members.delete", Drop: true})
	_, err = svc.Spaces.Members.Delete("spaces/ENG/members/103").Do()
	var ge2 *googleapi.Error
	if err == nil || errors.As(err, &ge2) {
		t.Fatalf("drop = %v", err)
	}
	st.Chat.ClearFaults()
	if _, ok := st.Chat.IsMember("spaces/ENG", "103"); !ok {
		t.Fatal("dropped delete changed state")
	}

	// Latency.
	st.Chat.InjectFault(emulator.Fault{Latency: 50 * time.Millisecond, Times: 1})
	start := time.Now()
	if _, err := svc.Spaces.Members.Get("spaces/ENG/members/103").Do(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("latency fault took %v", d)
	}

	// Rate.
	st.Chat.InjectFault(emulator.Fault{Status: 500, Rate: 0.5})
	failed := 0
	for i := 0; i < 100; i++ {
		if _, err := svc.Spaces.Members.Get("spaces/ENG/members/103").Do(); err != nil {
			apiErr(t, err, 500)
			failed++
		}
	}
	st.Chat.ClearFaults()
	if failed < 20 || failed > 80 {
		t.Fatalf("rate 0.5 failed %d/100", failed)
	}
	if s := st.Chat.Stats(); s.Faulted != int64(1+2+1+failed) {
		t.Fatalf("Faulted = %d, want %d", s.Faulted, 1+2+1+failed)
	}
}

func TestOnCallStatsSnapshot(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	var n, admins atomic.Int64
	var mu sync.Mutex
	var last emulator.CallInfo
	st.Chat.OnCall(func(ci emulator.CallInfo) {
		n.Add(1)
		if ci.AdminAccess {
			admins.Add(1)
		}
		mu.Lock()
		last = ci
		mu.Unlock()
	})
	if _, err := svc.Spaces.Members.Delete("spaces/HR/members/106").UseAdminAccess(true).Do(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if last.Method != "members.delete" || last.Name != "spaces/HR/members/106" || last.Status != 200 || !last.AdminAccess {
		t.Fatalf("last call = %+v", last)
	}
	mu.Unlock()

	// Concurrent traffic through the real client, under -race.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				switch i % 4 {
				case 0:
					_, _ = svc.Spaces.Members.List("spaces/OPS").Do()
				case 1:
					_, _ = svc.Spaces.Members.Create("spaces/OPS", &chat.Membership{Member: &chat.User{Name: "users/9" + strconv.Itoa(g), Type: "HUMAN"}}).Do()
				case 2:
					_, _ = svc.Spaces.Members.Delete("spaces/OPS/members/9" + strconv.Itoa(g)).Do()
				case 3:
					_ = st.Chat.Snapshot()
					_ = st.Chat.Stats()
				}
			}
		}(g)
	}
	wg.Wait()
	s := st.Chat.Stats()
	total := int64(0)
	for _, v := range s.Calls {
		total += v
	}
	if total != n.Load() || s.Calls["members.list"] != 40 || s.AdminAccessCalls != admins.Load() {
		t.Fatalf("stats %+v, hook saw %d", s, n.Load())
	}
	st.Chat.OnCall(nil)
	st.Chat.ResetStats()
	if s := st.Chat.Stats(); len(s.Calls) != 0 || s.AdminAccessCalls != 0 {
		t.Fatalf("after reset: %+v", s)
	}

	snap := st.Chat.Snapshot()
	snap.Spaces[0].Members = nil // a deep copy: no effect on the emulator
	if _, ok := st.Chat.IsMember("spaces/ENG", "users/100"); !ok {
		t.Fatal("snapshot aliases state")
	}
	if snap.Spaces[2].Name != "spaces/HR" || len(snap.Spaces[2].Members) != 2 {
		t.Fatalf("HR after delete = %+v", snap.Spaces[2])
	}
}

func TestWorkspaceValidate(t *testing.T) {
	if err := emulator.Default().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := emulator.Default()
	bad.Spaces[0].Members = append(bad.Spaces[0].Members, emulator.Member{User: "users/../x"})
	if bad.Validate() == nil {
		t.Fatal("bad member accepted")
	}
	bad = emulator.Default()
	bad.Spaces[6].Members[0].Role = emulator.RoleManager
	if bad.Validate() == nil {
		t.Fatal("group chat manager accepted")
	}
}
