package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/oauth2"
	"google.golang.org/api/chat/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// TestFaultAfterApplyChatWrites: a Fault with AfterApply applies each Chat
// write (delete, create, patch) and then loses its answer, dropped or
// replaced with 500/503; the retry meets the applied state (404, 409, the
// role already set), and OnCall tells the served status from the answered
// one.
func TestFaultAfterApplyChatWrites(t *testing.T) {
	st := startStack(t, emulator.ChatOptions{})
	svc := adminChat(t, st)
	var mu sync.Mutex
	var lost []emulator.CallInfo
	st.Chat.OnCall(func(ci emulator.CallInfo) {
		if ci.AnswerLost {
			mu.Lock()
			lost = append(lost, ci)
			mu.Unlock()
		}
	})

	// members.delete, connection dropped after the delete applied.
	st.Chat.InjectFault(emulator.Fault{Method: "members.delete", Drop: true, AfterApply: true, Times: 1})
	_, err := svc.Spaces.Members.Delete("spaces/ENG/members/102").UseAdminAccess(true).Do()
	var ge *googleapi.Error
	if err == nil || errors.As(err, &ge) {
		t.Fatalf("dropped delete = %v, want a transport error", err)
	}
	if _, ok := st.Chat.IsMember("spaces/ENG", "102"); ok {
		t.Fatal("the delete was not applied before its answer was lost")
	}
	_, err = svc.Spaces.Members.Delete("spaces/ENG/members/102").UseAdminAccess(true).Do()
	wantStatus(t, err, 404, "NOT_FOUND")

	// members.create, answered 500 after the membership was created.
	st.Chat.InjectFault(emulator.Fault{Method: "members.create", Status: 500, AfterApply: true, Times: 1})
	_, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/104", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	wantStatus(t, err, 500, "INTERNAL")
	if role, ok := st.Chat.IsMember("spaces/ENG", "104"); !ok || role != emulator.RoleMember {
		t.Fatalf("after a create whose answer was lost: member %v, role %q", ok, role)
	}
	_, err = svc.Spaces.Members.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/104", Type: "HUMAN"}}).UseAdminAccess(true).Do()
	wantStatus(t, err, 409, "ALREADY_EXISTS")

	// members.patch, answered 503 after the role changed.
	st.Chat.InjectFault(emulator.Fault{Method: "members.patch", Status: 503, AfterApply: true, Times: 1})
	_, err = svc.Spaces.Members.Patch("spaces/ENG/members/104", &chat.Membership{Role: emulator.RoleManager}).UpdateMask("role").UseAdminAccess(true).Do()
	wantStatus(t, err, 503, "UNAVAILABLE")
	if role, _ := st.Chat.IsMember("spaces/ENG", "104"); role != emulator.RoleManager {
		t.Fatalf("after a patch whose answer was lost: role %q", role)
	}

	// A plain fault still changes nothing.
	st.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503, Times: 1})
	_, err = svc.Spaces.Members.Delete("spaces/ENG/members/103").UseAdminAccess(true).Do()
	wantStatus(t, err, 503, "UNAVAILABLE")
	if _, ok := st.Chat.IsMember("spaces/ENG", "103"); !ok {
		t.Fatal("a plain fault applied the delete")
	}

	s := st.Chat.Stats()
	if s.AnswersLost != 3 || s.Faulted != 4 {
		t.Fatalf("AnswersLost %d, Faulted %d; want 3, 4", s.AnswersLost, s.Faulted)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		method         string
		status, served int
	}{{"members.delete", 0, 200}, {"members.create", 500, 200}, {"members.patch", 503, 200}}
	if len(lost) != len(want) {
		t.Fatalf("OnCall saw %d lost answers, want %d: %+v", len(lost), len(want), lost)
	}
	for i, w := range want {
		if ci := lost[i]; ci.Method != w.method || ci.Status != w.status || ci.Served != w.served {
			t.Errorf("lost answer %d: %s answered %d served %d; want %s %d %d", i, ci.Method, ci.Status, ci.Served, w.method, w.status, w.served)
		}
	}
}

// TestFaultAfterApplySecretAndToken: Secret Manager's writes, the token
// endpoint and the revocation endpoint serve an AfterApply fault too: the
// version is added, the access token issued, the grant revoked, and the
// caller gets only the fault.
func TestFaultAfterApplySecretAndToken(t *testing.T) {
	ctx := context.Background()
	st := startStack(t, emulator.ChatOptions{})
	c := smClient(t, st.Secrets)
	st.Secrets.InjectFault(emulator.Fault{Method: "secrets.add", Status: 503, AfterApply: true, Times: 1})
	_, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: st.SecretName,
		Payload: &secretmanagerpb.SecretPayload{Data: []byte("v2")}}, noRetry)
	wantCode(t, err, codes.Unavailable)
	r, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: st.SecretName + "/versions/latest"}, noRetry)
	if err != nil || r.Name != st.SecretName+"/versions/2" || string(r.Payload.Data) != "v2" {
		t.Fatalf("after an add whose answer was lost: %v, %v", r, err)
	}

	conf := &oauth2.Config{ClientID: st.ClientID, ClientSecret: st.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: st.OAuth.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	before := st.OAuth.Stats().Refreshes
	st.OAuth.InjectFault(emulator.Fault{Method: "token", Drop: true, AfterApply: true, Times: 1})
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: st.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("dropped token answer = %v, want a transport error", err)
	}
	if s := st.OAuth.Stats(); s.Refreshes != before+1 || s.Faulted != 1 {
		t.Fatalf("after a refresh whose answer was lost: %+v (refreshes before %d)", s, before)
	}

	// The revocation endpoint: the grant is revoked, the caller gets 503.
	rt := st.OAuth.IssueRefreshToken(st.ClientID, alice, []string{emulator.ScopeChatMemberships})
	st.OAuth.InjectFault(emulator.Fault{Method: "revoke", Status: 503, AfterApply: true, Times: 1})
	resp, err := http.PostForm(st.OAuth.RevokeURL(), url.Values{"token": {rt}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || st.OAuth.RefreshTokenActive(rt) {
		t.Fatalf("revoke whose answer was lost: %d, still active %v; want 503 and revoked", resp.StatusCode, st.OAuth.RefreshTokenActive(rt))
	}
}
