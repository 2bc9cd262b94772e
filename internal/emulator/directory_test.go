package emulator_test

import (
	"context"
	"strings"
	"testing"

	admindir "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

func dirAs(t *testing.T, st *emulator.Stack, user string, scopes ...string) *admindir.Service {
	t.Helper()
	svc, err := admindir.NewService(context.Background(),
		option.WithEndpoint(st.Directory.URL()),
		option.WithTokenSource(tokenSource(t, st, user, scopes...)))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestDirectory(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := dirAs(t, st, admin, emulator.StackScopes...)

	for _, key := range []string{"alice@example.com", "ALI@example.com", "101"} {
		u, err := svc.Users.Get(key).Do()
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if u.Id != "101" || u.PrimaryEmail != "alice@example.com" || u.Name == nil || u.Name.FullName != "Alice Anders" || u.Kind != "admin#directory#user" {
			t.Fatalf("get %s = %+v", key, u)
		}
	}
	_, err := svc.Users.Get("nobody@example.com").Do()
	apiErr(t, err, 404)
	_, err = svc.Users.Get("a/b").Do() // escaped by the client: one segment, invalid
	apiErr(t, err, 400)

	// Non-admins need viewType=domain_public.
	bobSvc := dirAs(t, st, bob, emulator.ScopeAdminDirectoryUserReadonly)
	_, err = bobSvc.Users.Get("alice@example.com").Do()
	apiErr(t, err, 403)
	if u, err := bobSvc.Users.Get("frank@example.com").ViewType("domain_public").Do(); err != nil || u.Id != "106" || u.Suspended || u.Relations != nil || u.OrgUnitPath != "" {
		t.Fatalf("domain_public = %+v, %v (frank is suspended, with a manager: not public)", u, err)
	}
	// Scope and token checks.
	noScope := dirAs(t, st, admin, emulator.ScopeChatMemberships)
	_, err = noScope.Users.Get("alice@example.com").Do()
	apiErr(t, err, 403)
	if code, _ := rawRequest(t, st.Directory.URL(), "GET", "/admin/directory/v1/users/101", "bad"); code != 401 {
		t.Fatalf("bad token = %d", code)
	}

	st.Directory.InjectFault(emulator.Fault{Method: "users.get", Status: 503, Times: 1})
	_, err = svc.Users.Get("alice@example.com").Do()
	apiErr(t, err, 503)
	if _, err := svc.Users.Get("alice@example.com").Do(); err != nil {
		t.Fatal(err)
	}
	if s := st.Directory.Stats(); s.Faulted != 1 || s.NotFound != 1 || s.Unauthorized != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestDirectoryOffboardingFields: suspended, archived, orgUnitPath and
// relations as Google documents the users resource, deleted users hidden
// from users.get and listed by users.list only with showDeleted=true.
func TestDirectoryOffboardingFields(t *testing.T) {
	ws := emulator.Default()
	ws.Users[1].Suspended = true // alice
	ws.Users[1].OrgUnitPath = "/Staff/Eng"
	ws.Users[1].Relations = []emulator.Relation{{Type: "friend", Value: "erin@example.com"}, {Type: "manager", Value: "bob@example.com"}}
	ws.Users[2].Archived = true // bob
	ws.Users[3].Deleted = true  // carol
	st := startStackWith(t, ws, emulator.ChatOptions{})
	svc := dirAs(t, st, admin, emulator.StackScopes...)

	u, err := svc.Users.Get("ali@example.com").Do()
	if err != nil || !u.Suspended || u.Archived || u.OrgUnitPath != "/Staff/Eng" {
		t.Fatalf("alice = %+v, %v", u, err)
	}
	rel, _ := u.Relations.([]any)
	if len(rel) != 2 || rel[1].(map[string]any)["type"] != "manager" || rel[1].(map[string]any)["value"] != "bob@example.com" {
		t.Fatalf("alice's relations = %#v", u.Relations)
	}
	if u, err := svc.Users.Get("bob@example.com").Do(); err != nil || !u.Archived || u.Suspended || u.OrgUnitPath != "/" {
		t.Fatalf("bob = %+v, %v", u, err)
	}
	_, err = svc.Users.Get("carol@example.com").Do()
	apiErr(t, err, 404)
	_, err = svc.Users.Get("103").Do()
	apiErr(t, err, 404)

	// Deleted users only with showDeleted, page by page.
	del, err := svc.Users.List().Customer("my_customer").ShowDeleted("true").Do()
	if err != nil || len(del.Users) != 1 || del.Users[0].Id != "103" || del.Users[0].PrimaryEmail != "carol@example.com" || del.Users[0].DeletionTime == "" {
		t.Fatalf("deleted users = %+v, %v", del, err)
	}
	var ids []string
	token := ""
	for {
		page, err := svc.Users.List().Domain("example.com").MaxResults(2).PageToken(token).Do()
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			ids = append(ids, u.Id)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if got := strings.Join(ids, ","); got != "100,101,102,104,105,106" {
		t.Fatalf("users listed = %s", got)
	}
	_, err = svc.Users.List().Do()
	apiErr(t, err, 400) // neither customer nor domain
	_, err = svc.Users.List().Customer("my_customer").Query("email:carol@example.com").Do()
	apiErr(t, err, 400) // not emulated: never silently ignored
	_, err = svc.Users.List().Customer("C0other").Do()
	apiErr(t, err, 403)
	_, err = dirAs(t, st, bob, emulator.ScopeAdminDirectoryUserReadonly).Users.List().Customer("my_customer").Do()
	apiErr(t, err, 403)
	if s := st.Directory.Stats(); s.ListCalls != 8 {
		t.Fatalf("stats = %+v", s)
	}

	bad := emulator.Default()
	bad.Users[0].Relations = []emulator.Relation{{Type: "boss", Value: "x@example.com"}}
	if err := bad.Validate(); err == nil {
		t.Fatal("an unknown relation type was accepted")
	}
	bad = emulator.Default()
	bad.Users[0].OrgUnitPath = "Staff"
	if err := bad.Validate(); err == nil {
		t.Fatal("an orgUnitPath without a leading / was accepted")
	}
}
