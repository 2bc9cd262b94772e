package emulator_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/chat/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

const (
	admin = "users/100"
	alice = "users/101"
	bob   = "users/102"
)

func startStack(t *testing.T, opts emulator.ChatOptions) *emulator.Stack {
	t.Helper()
	return startStackWith(t, emulator.Default(), opts)
}

func startStackWith(t *testing.T, ws emulator.Workspace, opts emulator.ChatOptions) *emulator.Stack {
	t.Helper()
	st, err := emulator.StartAll(ws, opts)
	if err != nil {
		t.Fatalf("StartAll: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// tokenSource returns a real oauth2 token source for user and scopes,
// refreshing through the emulated token endpoint.
func tokenSource(t testing.TB, st *emulator.Stack, user string, scopes ...string) oauth2.TokenSource {
	t.Helper()
	conf := &oauth2.Config{
		ClientID:     st.ClientID,
		ClientSecret: st.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: st.OAuth.TokenURL(), AuthURL: st.OAuth.AuthURL()},
	}
	rt := st.OAuth.IssueRefreshToken(st.ClientID, user, scopes)
	return conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt})
}

// chatAs returns a real Chat API client acting as user with scopes.
func chatAs(t testing.TB, st *emulator.Stack, user string, scopes ...string) *chat.Service {
	t.Helper()
	svc, err := chat.NewService(context.Background(),
		option.WithEndpoint(st.Chat.URL()),
		option.WithTokenSource(tokenSource(t, st, user, scopes...)))
	if err != nil {
		t.Fatalf("chat.NewService: %v", err)
	}
	return svc
}

// adminChat acts as the admin with all Stack scopes.
func adminChat(t testing.TB, st *emulator.Stack) *chat.Service {
	return chatAs(t, st, admin, emulator.StackScopes...)
}

// apiErr asserts err is a *googleapi.Error with code and returns it.
func apiErr(t *testing.T, err error, code int) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error = %v (%T), want *googleapi.Error %d", err, err, code)
	}
	if ge.Code != code {
		t.Fatalf("error code = %d (%v), want %d", ge.Code, ge, code)
	}
	return ge
}

// wantStatus asserts a googleapi.Error with code and canonical status.
func wantStatus(t *testing.T, err error, code int, status string) *googleapi.Error {
	t.Helper()
	ge := apiErr(t, err, code)
	if !strings.Contains(ge.Body, `"status":"`+status+`"`) {
		t.Fatalf("error body = %s, want status %s", ge.Body, status)
	}
	return ge
}

// rawRequest sends exactly method and requestURI over a fresh TCP
// connection to base (an http://host:port/ URL), bypassing any client-side
// URL cleaning, and returns the status and body.
func rawRequest(t *testing.T, base, method, requestURI, token string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := method + " " + requestURI + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, requestURI, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
