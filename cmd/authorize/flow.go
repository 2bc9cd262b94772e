package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// ConsentError is the authorization endpoint's error redirect, e.g.
// access_denied when the admin clicked Cancel.
type ConsentError struct {
	Code        string
	Description string
}

func (e *ConsentError) Error() string {
	msg := "consent was not given: " + e.Code
	if e.Description != "" {
		msg += " (" + e.Description + ")"
	}
	if e.Code == "access_denied" {
		msg += "; the admin denied access, or the OAuth consent screen does not allow this user (add them as a test user, or publish the app as Internal)"
	}
	return msg
}

// callback is what the loopback redirect brought.
type callback struct {
	code string
	err  error
}

// authorize runs the flow: check the destination, start the loopback
// listener, show (or open) the consent URL, wait for the redirect, exchange
// the code and store the credential.
func authorize(ctx context.Context, o *options, stdout, stderr io.Writer, browse browser) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// Check the destination first: an admin's consent that cannot be
	// stored would have to be given again.
	sm, err := openDestination(ctx, o, stdout)
	if err != nil {
		return err
	}
	if sm != nil {
		defer sm.Close()
	}
	prev := readPrevious(ctx, sm, o.secret, stdout)
	if err := revokeBefore(ctx, o, prev, stdout); err != nil {
		return err
	}
	c, err := newAuthRequest(o)
	if err != nil {
		return err
	}
	// Unless --revoke-previous revoked it, a current credential of the
	// same client may share the admin's grant: a failure keeps that grant.
	c.keepGrant = !o.revokePrevious && prev.sameClient(o.clientID)
	defer c.serve(stderr)()
	c.announce(ctx, stdout, stderr, browse)
	code, err := c.wait(ctx)
	if err != nil {
		return err
	}
	refreshToken, granted, err := c.exchange(ctx, code)
	if err != nil {
		return err
	}
	payload, err := credentialPayload(o, refreshToken)
	if err == nil {
		err = store(ctx, o, sm, payload, stdout)
	}
	if err != nil {
		return revokeAfterFailure(ctx, o, c.keepGrant, refreshToken, err)
	}
	fmt.Fprintf(stdout, "Granted scopes:\n  %s\n", strings.Join(granted, "\n  "))
	return c.retire(ctx, o, prev, refreshToken, stdout)
}

// authRequest is one run's authorization request: the loopback listener its
// redirect comes back to, the state and PKCE verifier that bind the redirect
// to this run, and the consent URL.
type authRequest struct {
	o           *options
	ln          net.Listener
	redirectURI string
	state       string
	verifier    string
	conf        *oauth2.Config
	authURL     string
	results     chan callback
	// keepGrant: a failure must not revoke the new refresh token
	// (revokeAfterFailure).
	keepGrant bool
}

// newAuthRequest opens the loopback listener and builds the consent URL:
// offline access, forced approval, PKCE S256, and the login hint if any.
func newAuthRequest(o *options) (*authRequest, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		return nil, fmt.Errorf("loopback listener: %w", err)
	}
	c := &authRequest{o: o, ln: ln, results: make(chan callback, 1)}
	c.redirectURI = fmt.Sprintf("http://%s%s", ln.Addr(), callbackPath)
	if c.state, err = randomString(32); err != nil {
		ln.Close()
		return nil, err
	}
	c.verifier = oauth2.GenerateVerifier()
	c.conf = &oauth2.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: o.authURL, TokenURL: o.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  c.redirectURI,
		Scopes:       o.scopes,
	}
	authOpts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(c.verifier)}
	if o.loginHint != "" {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("login_hint", o.loginHint))
	}
	c.authURL = c.conf.AuthCodeURL(c.state, authOpts...)
	return c, nil
}

// serve serves the redirect on the listener and returns the function that
// shuts the server down.
func (c *authRequest) serve(stderr io.Writer) (shutdown func()) {
	srv := &http.Server{
		Handler:           callbackHandler(c.state, c.results, stderr),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(c.ln) }()
	return func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}
}

// announce prints the consent URL and the scopes, and opens the URL with
// browse when set.
func (c *authRequest) announce(ctx context.Context, stdout, stderr io.Writer, browse browser) {
	fmt.Fprintf(stdout, "Open this URL in a browser where the delegated Workspace admin is signed in,\n"+
		"and grant access (waiting up to %s for the redirect to %s):\n\n  %s\n\n", c.o.timeout, c.redirectURI, c.authURL)
	fmt.Fprintf(stdout, "Scopes asked for:\n  %s\n\n", strings.Join(c.o.scopes, "\n  "))
	if browse != nil {
		go func() {
			if err := browse(ctx, c.authURL); err != nil {
				fmt.Fprintf(stderr, "authorize: could not open a browser (%v); open the URL yourself\n", err)
			}
		}()
	}
}

// wait waits for the redirect and returns its authorization code.
func (c *authRequest) wait(ctx context.Context) (string, error) {
	var cb callback
	select {
	case cb = <-c.results:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("no redirect arrived within %s (run again, or raise --timeout)", c.o.timeout)
		}
		return "", fmt.Errorf("waiting for the redirect: %w", ctx.Err())
	}
	if cb.err != nil {
		return "", cb.err
	}
	return cb.code, nil
}

// exchange trades the code for tokens and returns the refresh token and the
// granted scopes, refusing a grant without a refresh token or with fewer
// scopes than asked for.
func (c *authRequest) exchange(ctx context.Context, code string) (refreshToken string, granted []string, err error) {
	hctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	tok, err := c.conf.Exchange(hctx, code, oauth2.VerifierOption(c.verifier))
	if err != nil {
		return "", nil, fmt.Errorf("exchanging the authorization code: %w", sanitize(err))
	}
	if tok.RefreshToken == "" {
		return "", nil, errors.New("the token endpoint issued no refresh token; revoke the app's access at https://myaccount.google.com/permissions and run again")
	}
	granted = c.o.scopes
	if s, _ := tok.Extra("scope").(string); s != "" {
		granted = strings.Fields(s)
	}
	var missing []string
	for _, s := range c.o.scopes {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return "", nil, revokeAfterFailure(ctx, c.o, c.keepGrant, tok.RefreshToken,
			fmt.Errorf("the admin did not grant %s; nothing was stored: run again and leave every box checked on the consent screen", strings.Join(missing, ", ")))
	}
	return tok.RefreshToken, granted, nil
}

// credentialPayload encodes the authorized_user credential, checked as the
// function will parse it.
func credentialPayload(o *options, refreshToken string) ([]byte, error) {
	creds := tokens.Credentials{
		Type:         "authorized_user",
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		RefreshToken: refreshToken,
		TokenURI:     o.tokenURL,
	}
	payload, err := json.Marshal(creds)
	if err != nil {
		return nil, fmt.Errorf("encoding the credential: %w", err)
	}
	if _, err := tokens.ParseCredentials(payload); err != nil {
		return nil, err
	}
	return payload, nil
}

// callbackHandler serves the loopback redirect. Only a request carrying the
// run's state is taken (the first one); any other is refused with 400 and
// the wait goes on, so that a forged redirect can neither inject a code nor
// end the flow.
func callbackHandler(state string, results chan<- callback, stderr io.Writer) http.Handler {
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc(callbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			fmt.Fprintln(stderr, "authorize: refused a redirect whose state does not match this run (forged or stale); still waiting")
			page(w, http.StatusBadRequest, "State mismatch", "This redirect does not belong to the running authorization and was refused.")
			return
		}
		cb := callback{code: q.Get("code")}
		switch {
		case q.Get("error") != "":
			cb = callback{err: &ConsentError{Code: q.Get("error"), Description: q.Get("error_description")}}
		case cb.code == "":
			cb = callback{err: errors.New("the redirect carried neither a code nor an error")}
		}
		taken := false
		once.Do(func() { taken = true })
		switch {
		case !taken:
			page(w, http.StatusConflict, "Already answered", "This authorization has already received its redirect.")
			return
		case cb.err != nil:
			page(w, http.StatusOK, "Authorization failed", "Access was not granted. See the terminal for details.")
		default:
			page(w, http.StatusOK, "Authorization received", "You can close this tab and return to the terminal.")
		}
		// The page is out before the flow goes on (and ends the server).
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		results <- cb
	})
	return mux
}

func page(w http.ResponseWriter, code int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1><p>%s</p>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// sanitize keeps the RFC 6749 error of a failed exchange and drops the
// response body (tokens.AsRefreshError); other errors pass unchanged.
func sanitize(err error) error {
	if re, ok := tokens.AsRefreshError(err); ok {
		return re
	}
	return err
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
