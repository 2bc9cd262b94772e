package emulator_test

import (
	"context"
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
	if u, err := bobSvc.Users.Get("alice@example.com").ViewType("domain_public").Do(); err != nil || u.Id != "101" {
		t.Fatalf("domain_public = %+v, %v", u, err)
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
