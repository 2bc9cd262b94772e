package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRevokeEndpoint: POST token=… revokes the grant (every refresh token
// of the client and user, and their access tokens); an access token
// revokes its refresh token's grant; an unknown or revoked token is 400
// invalid_token; only POST.
func TestRevokeEndpoint(t *testing.T) {
	o, _ := newOAuth(t)
	o.RegisterClient("other", "osecret")
	scopes := []string{"https://www.googleapis.com/auth/chat.memberships"}
	a1 := o.IssueRefreshToken("cid", admin, scopes)
	a2 := o.IssueRefreshToken("cid", admin, scopes)    // the same grant
	b := o.IssueRefreshToken("other", admin, scopes)   // another client
	c := o.IssueRefreshToken("cid", "users/7", scopes) // another user
	revoke := func(tok string) int {
		t.Helper()
		resp, err := http.PostForm(o.RevokeURL(), url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := revoke(a1); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	for rt, want := range map[string]bool{a1: false, a2: false, b: true, c: true} {
		if o.RefreshTokenActive(rt) != want {
			t.Errorf("%.12s… active %v, want %v", rt, !want, want)
		}
	}
	if st := revoke(a1); st != http.StatusBadRequest {
		t.Errorf("revoked again: %d, want 400", st)
	}
	if st := revoke("nonsense"); st != http.StatusBadRequest {
		t.Errorf("unknown token: %d, want 400", st)
	}
	at := o.IssueAccessToken(admin, scopes)
	if st := revoke(at); st != http.StatusOK {
		t.Errorf("an access token: %d", st)
	}
	if _, ok := o.Verify(at); ok {
		t.Error("the access token still verifies")
	}
	resp, err := http.Get(o.RevokeURL() + "?token=" + url.QueryEscape(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !o.RefreshTokenActive(b) {
		t.Errorf("GET: %d, want 405 and nothing revoked", resp.StatusCode)
	}
	resp, err = http.Post(o.RevokeURL()+"?token="+url.QueryEscape(b), "application/x-www-form-urlencoded", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || o.RefreshTokenActive(b) || o.Stats().Revocations != 3 {
		t.Errorf("POST with the token in the query (Google's example): %d, active %v, %d revocations", resp.StatusCode, o.RefreshTokenActive(b), o.Stats().Revocations)
	}
}
