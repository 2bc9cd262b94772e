package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

func newOAuth(t *testing.T) (*emulator.OAuth, *oauth2.Config) {
	t.Helper()
	o := emulator.NewOAuth(emulator.OAuthOptions{ConsentUser: admin})
	t.Cleanup(o.Close)
	o.RegisterClient("cid", "csecret")
	return o, &oauth2.Config{
		ClientID:     "cid",
		ClientSecret: "csecret",
		Endpoint:     oauth2.Endpoint{TokenURL: o.TokenURL(), AuthURL: o.AuthURL()},
		RedirectURL:  "http://127.0.0.1:8085/callback",
		Scopes:       []string{emulator.ScopeChatMemberships, emulator.ScopeAdminDirectoryUserReadonly},
	}
}

func retrieveErr(t *testing.T, err error, code, status int) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want *oauth2.RetrieveError", err)
	}
	if re.Response.StatusCode != status || (code != 0 && re.ErrorCode != errCodes[code]) {
		t.Fatalf("RetrieveError = %d %q (%v), want %d %q", re.Response.StatusCode, re.ErrorCode, re, status, errCodes[code])
	}
	return re
}

const (
	invalidGrant = iota + 1
	invalidClient
	tempUnavailable
)

var errCodes = map[int]string{invalidGrant: "invalid_grant", invalidClient: "invalid_client", tempUnavailable: "temporarily_unavailable"}

func TestOAuthRefresh(t *testing.T) {
	ctx := context.Background()
	o, conf := newOAuth(t)
	scopes := []string{emulator.ScopeChatMemberships}
	rt := o.IssueRefreshToken("cid", alice, scopes)

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		c := *conf
		c.Endpoint.AuthStyle = style
		tok, err := c.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.Extra("scope") != emulator.ScopeChatMemberships || tok.Expiry.IsZero() {
			t.Fatalf("token = %+v scope %v", tok, tok.Extra("scope"))
		}
		g, ok := o.Verify(tok.AccessToken)
		if !ok || g.User != alice || len(g.Scopes) != 1 || g.Scopes[0] != emulator.ScopeChatMemberships {
			t.Fatalf("grant = %+v %v", g, ok)
		}
	}
	if s := o.Stats(); s.Refreshes != 3 || s.Errors != 0 {
		t.Fatalf("stats = %+v", s)
	}

	_, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: "1//unknown"}).Token()
	retrieveErr(t, err, invalidGrant, 400)

	bad := *conf
	bad.ClientSecret = "wrong"
	bad.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	_, err = bad.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	retrieveErr(t, err, invalidClient, 401)

	// Revocation kills the refresh token and its access tokens.
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		t.Fatal(err)
	}
	o.RevokeRefreshToken(rt)
	if _, ok := o.Verify(tok.AccessToken); ok {
		t.Fatal("access token survived revocation")
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	retrieveErr(t, err, invalidGrant, 400)

	// Faults on the token endpoint.
	rt2 := o.IssueRefreshToken("cid", alice, scopes)
	o.InjectFault(emulator.Fault{Method: "token", Status: 503, Times: 1})
	c := *conf
	c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	_, err = c.TokenSource(ctx, &oauth2.Token{RefreshToken: rt2}).Token()
	retrieveErr(t, err, tempUnavailable, 503)
	if _, err := c.TokenSource(ctx, &oauth2.Token{RefreshToken: rt2}).Token(); err != nil {
		t.Fatalf("after fault: %v", err)
	}
	o.InjectFault(emulator.Fault{Method: "token", Drop: true, Times: 1})
	_, err = c.TokenSource(ctx, &oauth2.Token{RefreshToken: rt2}).Token()
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("drop = %v", err)
	}
	if s := o.Stats(); s.Faulted != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestOAuthCodeFlowPKCE(t *testing.T) {
	ctx := context.Background()
	o, conf := newOAuth(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// authorize plays the browser and returns the redirect's query.
	authorize := func(authURL string) url.Values {
		t.Helper()
		resp, err := noRedirect.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize = %d", resp.StatusCode)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), conf.RedirectURL) {
			t.Fatalf("Location = %v", loc)
		}
		return loc.Query()
	}

	verifier := oauth2.GenerateVerifier()
	q := authorize(conf.AuthCodeURL("st4te", oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("redirect query = %v", q)
	}
	last := o.LastAuthRequest()
	if last.Get("code_challenge_method") != "S256" || last.Get("access_type") != "offline" || last.Get("prompt") != "consent" || last.Get("client_id") != "cid" {
		t.Fatalf("LastAuthRequest = %v", last)
	}

	// Wrong verifier: invalid_grant (and the code is spent).
	_, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	retrieveErr(t, err, invalidGrant, 400)

	q = authorize(conf.AuthCodeURL("s2", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || !strings.Contains(tok.Extra("scope").(string), emulator.ScopeChatMemberships) {
		t.Fatalf("token = %+v", tok)
	}
	if g, ok := o.Verify(tok.AccessToken); !ok || g.User != admin {
		t.Fatalf("grant = %+v", g)
	}
	// The refresh token works; the code is single use.
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}
	_, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	retrieveErr(t, err, invalidGrant, 400)

	// redirect_uri must match.
	q = authorize(conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)))
	other := *conf
	other.RedirectURL = "http://127.0.0.1:9999/callback"
	_, err = other.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	retrieveErr(t, err, invalidGrant, 400)

	// Without access_type=offline there is no refresh token.
	q = authorize(conf.AuthCodeURL("s4", oauth2.S256ChallengeOption(verifier)))
	tok, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken != "" {
		t.Fatalf("online exchange = %+v, %v", tok, err)
	}

	// Consent for another user, with granular consent.
	o.SetConsentUser(bob)
	o.SetConsentScopes([]string{emulator.ScopeChatMemberships})
	q = authorize(conf.AuthCodeURL("s5", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	tok, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := o.Verify(tok.AccessToken); g.User != bob || len(g.Scopes) != 1 {
		t.Fatalf("grant = %+v", g)
	}

	// Denied consent.
	o.SetDenyConsent(true)
	q = authorize(conf.AuthCodeURL("s6", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	if q.Get("error") != "access_denied" || q.Get("state") != "s6" || q.Has("code") {
		t.Fatalf("deny = %v", q)
	}
	o.SetDenyConsent(false)

	// No PKCE: refused.
	q = authorize(conf.AuthCodeURL("s7", oauth2.AccessTypeOffline))
	if q.Get("error") != "invalid_request" {
		t.Fatalf("no PKCE = %v", q)
	}
	// Non-loopback redirect: not redirected at all.
	evil := *conf
	evil.RedirectURL = "https://evil.example.com/cb"
	resp, err := noRedirect.Get(evil.AuthCodeURL("s8", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("evil redirect = %d", resp.StatusCode)
	}
	if s := o.Stats(); s.CodeExchanges != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

// The Stack's secret is a real authorized_user credential that
// golang.org/x/oauth2/google accepts, honouring its token_uri.
func TestStackCredential(t *testing.T) {
	ctx := context.Background()
	st := startStack(t, emulator.ChatOptions{})
	js := emulator.AuthorizedUserJSON(st.ClientID, st.ClientSecret, st.RefreshToken, st.OAuth.TokenURL())
	creds, err := google.CredentialsFromJSONWithType(ctx, js, google.AuthorizedUser)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatal(err)
	}
	g, ok := st.OAuth.Verify(tok.AccessToken)
	if !ok || g.User != admin || len(g.Scopes) != len(emulator.StackScopes) {
		t.Fatalf("grant = %+v", g)
	}
	if st.SecretName != "projects/"+st.Project+"/secrets/"+emulator.StackSecretID {
		t.Fatalf("SecretName = %q", st.SecretName)
	}
}
