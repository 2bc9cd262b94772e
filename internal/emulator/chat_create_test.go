package emulator_test

import (
	"strings"
	"testing"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// The members.create rules that restoring a membership meets, as Google
// documents them for spaces.members.create.

// TestCreateIgnoresTheRoleInItsBody: the role "can only be used as input in
// UpdateMembership"; a new membership is ROLE_MEMBER whatever the body says,
// and a patch then sets the role.
func TestCreateIgnoresTheRoleInItsBody(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	m, err := svc.Spaces.Members.Create("spaces/HR", &chat.Membership{
		Role: "ROLE_MANAGER", Member: &chat.User{Name: "users/101", Type: "HUMAN"},
	}).UseAdminAccess(true).Do()
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != emulator.RoleMember || m.State != "JOINED" || m.Name != "spaces/HR/members/101" {
		t.Fatalf("created %+v, want spaces/HR/members/101 JOINED as ROLE_MEMBER", m)
	}
	if role, _ := st.Chat.IsMember("spaces/HR", "101"); role != emulator.RoleMember {
		t.Fatalf("role in the space %q, want ROLE_MEMBER", role)
	}
	m, err = svc.Spaces.Members.Patch(m.Name, &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do()
	if err != nil || m.Role != emulator.RoleManager {
		t.Fatalf("patch: %+v %v", m, err)
	}
}

// TestCreateInvitesWithoutAutoAccept: a person whose auto-accept policy is
// off is invited (state INVITED), not added; get answers INVITED, a second
// create is 409, and members.list shows them only with showInvited, which
// admin access cannot use.
func TestCreateInvitesWithoutAutoAccept(t *testing.T) {
	ws := emulator.Default()
	for i := range ws.Users {
		if ws.Users[i].ID == "106" {
			ws.Users[i].AutoAcceptOff = true
		}
	}
	st := startStackWith(t, ws, emulator.ChatOptions{})
	svc := adminChat(t, st)
	m, err := svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/frank@example.com", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "INVITED" || m.Name != "spaces/ENG/members/106" {
		t.Fatalf("created %+v, want spaces/ENG/members/106 INVITED", m)
	}
	if s := st.Chat.MembershipState("spaces/ENG", "106"); s != "INVITED" {
		t.Errorf("MembershipState = %s, want INVITED", s)
	}
	got, err := svc.Spaces.Members.Get("spaces/ENG/members/106").UseAdminAccess(true).Do()
	if err != nil || got.State != "INVITED" {
		t.Fatalf("get: %+v %v, want INVITED", got, err)
	}
	_, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/106", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	apiErr(t, err, 409)
	// Someone who has not joined is not made an owner (an assumption).
	_, err = svc.Spaces.Members.Patch("spaces/ENG/members/106", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").UseAdminAccess(true).Do()
	if ge := apiErr(t, err, 400); !strings.Contains(ge.Message, "invited") {
		t.Errorf("patch of an invited membership to owner: %q, want it to say the membership is invited", ge.Message)
	}
	if role, _ := st.Chat.IsMember("spaces/ENG", "106"); role != emulator.RoleMember {
		t.Errorf("frank's role %q after a refused patch, want ROLE_MEMBER", role)
	}
	// Someone with auto-accept on joins at once.
	m, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/105", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	if err != nil || m.State != "JOINED" {
		t.Fatalf("erin: %+v %v, want JOINED", m, err)
	}

	listed := func(call *chat.SpacesMembersListCall) map[string]string {
		t.Helper()
		page, err := call.Do()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, m := range page.Memberships {
			out[m.Member.Name] = m.State
		}
		return out
	}
	if got := listed(svc.Spaces.Members.List("spaces/ENG").UseAdminAccess(true).Filter(`member.type = "HUMAN"`)); got["users/106"] != "" || got["users/105"] != "JOINED" {
		t.Errorf("admin list %v: want erin JOINED and frank (invited) absent", got)
	}
	if got := listed(svc.Spaces.Members.List("spaces/ENG").ShowInvited(true)); got["users/106"] != "INVITED" {
		t.Errorf("list with showInvited %v: want frank INVITED", got)
	}
	_, err = svc.Spaces.Members.List("spaces/ENG").UseAdminAccess(true).Filter(`member.type = "HUMAN"`).ShowInvited(true).Do()
	apiErr(t, err, 400)
}

// TestAdminAccessCannotAddOutsiders: with useAdminAccess, members.create
// adds neither apps nor people outside the organisation; without it, the
// space's manager can add an outsider by id.
func TestAdminAccessCannotAddOutsiders(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	_, err := svc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/999", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	ge := apiErr(t, err, 400)
	if _, ok := st.Chat.IsMember("spaces/HR", "999"); ok {
		t.Fatalf("an outsider was added with admin access (%v)", ge)
	}
	_, err = svc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/app", Type: "BOT"}}).UseAdminAccess(true).Do()
	apiErr(t, err, 400)
	m, err := svc.Spaces.Members.Create("spaces/HR", &chat.Membership{Member: &chat.User{Name: "users/999", Type: "HUMAN"}}).Do()
	if err != nil || m.Name != "spaces/HR/members/999" {
		t.Fatalf("without admin access: %+v %v", m, err)
	}
}
