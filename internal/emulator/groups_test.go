package emulator_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// groupWorkspace is Default with two groups: eng-all (alice, bob, and the
// nested group leads) and leads (carol). ENG has eng-all as a member,
// SALES has leads.
func groupWorkspace() emulator.Workspace {
	ws := emulator.Default()
	ws.Groups = []emulator.Group{
		{ID: "g-eng", Email: "eng-all@example.com", Name: "Engineering", Members: []string{"users/101", "users/102", "groups/g-leads"}},
		{ID: "g-leads", Email: "leads@example.com", Name: "Leads", Members: []string{"users/103"}},
	}
	for i := range ws.Spaces {
		switch ws.Spaces[i].Name {
		case "spaces/ENG":
			ws.Spaces[i].Groups = []string{"groups/g-eng"}
		case "spaces/SALES":
			ws.Spaces[i].Groups = []string{"groups/g-leads"}
		}
	}
	return ws
}

// listAll pages through members.list and returns the memberships' names,
// with "group:" before a group membership's groupMember name.
func listAll(t *testing.T, call func(token string) (*chat.ListMembershipsResponse, error)) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		page, err := call(token)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Memberships {
			switch {
			case m.GroupMember != nil && m.Member == nil && m.Role == "":
				out = append(out, "group:"+m.GroupMember.Name+"@"+m.Name)
			case m.Member != nil && m.GroupMember == nil:
				out = append(out, m.Member.Name)
			default:
				t.Fatalf("membership is neither a user's nor a group's: %+v", m)
			}
		}
		if token = page.NextPageToken; token == "" {
			return out
		}
	}
}

func TestListShowGroups(t *testing.T) {
	st := startStackWith(t, groupWorkspace(), emulator.ChatOptions{})
	svc := adminChat(t, st)
	list := func(filter string, groups bool) []string {
		return listAll(t, func(tok string) (*chat.ListMembershipsResponse, error) {
			return svc.Spaces.Members.List("spaces/ENG").UseAdminAccess(true).Filter(filter).
				ShowGroups(groups).PageSize(2).PageToken(tok).Do()
		})
	}
	humans := []string{"users/100", "users/101", "users/102", "users/103"}
	withGroup := append(append([]string(nil), humans...), "group:groups/g-eng@spaces/ENG/members/g-eng")
	for _, c := range []struct {
		filter string
		groups bool
		want   []string
	}{
		{`member.type = "HUMAN"`, false, humans},
		{`member.type != "BOT"`, false, humans},
		// A group's membership has no member.type: = "HUMAN" drops it.
		{`member.type = "HUMAN"`, true, humans},
		{`member.type != "BOT"`, true, withGroup},
		// Nor a role: a role filter drops it too.
		{`member.type != "BOT" AND role = "ROLE_MEMBER"`, true, []string{"users/102", "users/103"}},
	} {
		if got := list(c.filter, c.groups); !reflect.DeepEqual(got, c.want) {
			t.Errorf("filter %s, showGroups %v: %v, want %v", c.filter, c.groups, got, c.want)
		}
	}
	// Without admin access and without a filter, the caller (a member)
	// sees the group too.
	alice := chatAs(t, st, alice, emulator.ScopeChatMembershipsReadonly)
	got := listAll(t, func(tok string) (*chat.ListMembershipsResponse, error) {
		return alice.Spaces.Members.List("spaces/ENG").ShowGroups(true).PageToken(tok).Do()
	})
	if want := "group:groups/g-eng@spaces/ENG/members/g-eng"; got[len(got)-1] != want {
		t.Errorf("without admin access: %v, want %s last", got, want)
	}
	// A page token is bound to showGroups.
	page, err := svc.Spaces.Members.List("spaces/ENG").UseAdminAccess(true).Filter(`member.type != "BOT"`).ShowGroups(true).PageSize(1).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Spaces.Members.List("spaces/ENG").UseAdminAccess(true).Filter(`member.type != "BOT"`).PageSize(1).PageToken(page.NextPageToken).Do()
	apiErr(t, err, 400)
	// A group's membership is not addressed by members.get here.
	_, err = svc.Spaces.Members.Get("spaces/ENG/members/g-eng").UseAdminAccess(true).Do()
	apiErr(t, err, 404)
	// The snapshot keeps the groups.
	snap := st.Chat.Snapshot()
	if snap.Spaces[0].Name != "spaces/ENG" || !reflect.DeepEqual(snap.Spaces[0].Groups, []string{"groups/g-eng"}) || len(snap.Groups) != 2 {
		t.Errorf("snapshot: %+v groups %+v", snap.Spaces[0], snap.Groups)
	}
}

func TestDirectoryGroupsList(t *testing.T) {
	ws := groupWorkspace()
	// alice is in 250 more groups: two pages of 200.
	for i := 0; i < 250; i++ {
		ws.Groups = append(ws.Groups, emulator.Group{ID: fmt.Sprintf("g%03d", i), Email: fmt.Sprintf("list%03d@example.com", i), Members: []string{"users/101"}})
	}
	st := startStackWith(t, ws, emulator.ChatOptions{})
	svc := dirAs(t, st, admin, emulator.StackScopes...)
	ids := func(userKey string, size int64) []string {
		t.Helper()
		var out []string
		call := svc.Groups.List().UserKey(userKey)
		if size > 0 {
			call.MaxResults(size)
		}
		token, pages := "", 0
		for {
			g, err := call.PageToken(token).Do()
			if err != nil {
				t.Fatalf("groups of %s: %v", userKey, err)
			}
			pages++
			for _, x := range g.Groups {
				out = append(out, x.Id)
			}
			if token = g.NextPageToken; token == "" {
				break
			}
		}
		if size == 0 && pages != (len(out)+199)/200 && len(out) > 0 {
			t.Errorf("groups of %s: %d pages for %d groups", userKey, pages, len(out))
		}
		return out
	}
	// By id, email or alias; direct groups only (carol is in g-eng only
	// through leads: not listed).
	for _, key := range []string{"102", "bob@example.com", "BOB@example.com"} {
		if got := ids(key, 0); !reflect.DeepEqual(got, []string{"g-eng"}) {
			t.Errorf("groups of %s = %v", key, got)
		}
	}
	if got := ids("carol@example.com", 0); !reflect.DeepEqual(got, []string{"g-leads"}) {
		t.Errorf("groups of carol = %v (nested groups are not followed)", got)
	}
	if got := ids("dave@example.com", 0); len(got) != 0 {
		t.Errorf("groups of dave = %v", got)
	}
	got := ids("ali@example.com", 0)
	if len(got) != 251 || got[0] != "g-eng" || !strings.HasPrefix(got[1], "g0") {
		t.Errorf("groups of alice: %d, first %v", len(got), got[:2])
	}
	if small := ids("101", 7); !reflect.DeepEqual(small, got) {
		t.Errorf("pages of 7 differ from pages of 200")
	}
	g, err := svc.Groups.List().UserKey("102").Do()
	if err != nil || len(g.Groups) != 1 || g.Groups[0].Email != "eng-all@example.com" || g.Groups[0].Name != "Engineering" || g.Groups[0].DirectMembersCount != 3 || g.Kind != "admin#directory#groups" {
		t.Fatalf("group = %+v, %v", g, err)
	}

	// Refusals.
	_, err = svc.Groups.List().UserKey("nobody@example.com").Do()
	apiErr(t, err, 404)
	_, err = svc.Groups.List().Do()
	apiErr(t, err, 400)
	_, err = svc.Groups.List().UserKey("101").Customer("my_customer").Do()
	apiErr(t, err, 400)
	_, err = svc.Groups.List().UserKey("101").MaxResults(201).Do()
	apiErr(t, err, 400)
	first, err := svc.Groups.List().UserKey("101").MaxResults(1).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Groups.List().UserKey("102").MaxResults(1).PageToken(first.NextPageToken).Do()
	apiErr(t, err, 400) // a token of another call
	noScope := dirAs(t, st, admin, emulator.ScopeAdminDirectoryUserReadonly)
	_, err = noScope.Groups.List().UserKey("101").Do()
	apiErr(t, err, 403)
	bobSvc := dirAs(t, st, bob, emulator.ScopeAdminDirectoryGroupReadonly)
	_, err = bobSvc.Groups.List().UserKey("101").Do()
	apiErr(t, err, 403)
	if all, err := svc.Groups.List().Customer("my_customer").Do(); err != nil || len(all.Groups) != 200 || all.NextPageToken == "" {
		t.Fatalf("customer groups: %v", err)
	}

	st.Directory.InjectFault(emulator.Fault{Method: "groups.list", Status: 503, Times: 1})
	_, err = svc.Groups.List().UserKey("101").Do()
	apiErr(t, err, 503)
	if s := st.Directory.Stats(); s.Calls != 0 || s.GroupsList < 20 || s.Faulted != 1 {
		t.Fatalf("stats = %+v (users.get counted apart from groups.list)", s)
	}
}

func TestWorkspaceGroupsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*emulator.Workspace)
	}{
		{"unknown group in a space", func(w *emulator.Workspace) { w.Spaces[0].Groups = []string{"groups/nope"} }},
		{"group in a DM", func(w *emulator.Workspace) { w.Spaces[7].Groups = []string{"groups/g-eng"} }},
		{"duplicate group id", func(w *emulator.Workspace) {
			w.Groups = append(w.Groups, emulator.Group{ID: "g-eng", Email: "x@example.com"})
		}},
		{"group email of a user", func(w *emulator.Workspace) { w.Groups[1].Email = "alice@example.com" }},
		{"unknown member", func(w *emulator.Workspace) { w.Groups[1].Members = []string{"users/999"} }},
		{"itself as member", func(w *emulator.Workspace) { w.Groups[1].Members = []string{"groups/g-leads"} }},
	} {
		ws := groupWorkspace()
		c.edit(&ws)
		if err := ws.Validate(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if err := groupWorkspace().Validate(); err != nil {
		t.Fatal(err)
	}
	ws := groupWorkspace()
	c := ws.Clone()
	c.Groups[0].Members[0] = "users/999"
	c.Spaces[0].Groups[0] = "groups/x"
	if ws.Groups[0].Members[0] != "users/101" || ws.Spaces[0].Groups[0] != "groups/g-eng" {
		t.Error("Clone shares groups")
	}
}
