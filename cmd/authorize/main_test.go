package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// syncBuffer is written by run while the test reads it.
type syncBuffer = syncbuf.Buffer

// fixture is the emulated Google side: OAuth (consent by the Workspace admin
// users/100), Secret Manager, Chat and Directory.
type fixture struct {
	stack      *emulator.Stack
	secretFile string // holds the client secret
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f := &fixture{stack: st, secretFile: filepath.Join(t.TempDir(), "client-secret")}
	if err := os.WriteFile(f.secretFile, []byte(st.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// args are the flags that point authorize at the emulations.
func (f *fixture) args(extra ...string) []string {
	return append([]string{
		"--client-id", f.stack.ClientID,
		"--client-secret-file", f.secretFile,
		"--auth-url", f.stack.OAuth.AuthURL(),
		"--token-url", f.stack.OAuth.TokenURL(),
		"--timeout", "15s",
	}, extra...)
}

// withSecretManager adds the Secret Manager flags for secret id.
func (f *fixture) withSecretManager(id string, extra ...string) []string {
	return f.args(append([]string{
		"--secret", "projects/" + f.stack.Project + "/secrets/" + id,
		"--secret-manager-endpoint", f.stack.Secrets.Addr(),
	}, extra...)...)
}

// outcome is one run of the command.
type outcome struct {
	code           int
	stdout, stderr string
	browserURL     string
	landing        *http.Response // what the loopback redirect answered the browser
	landingBody    string
}

// noRedirect is the browser's HTTP client: it stops at each 302 so that the
// test sees every hop.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// consent plays the browser: GET the authorization URL (the emulated consent
// screen answers 302), then follow that redirect to the loopback listener.
func consent(ctx context.Context, authURL string) (*http.Response, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, "", fmt.Errorf("consent screen answered %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	// The browser's tab outlives the command's context.
	req, _ = http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, loc, nil)
	resp, err = noRedirect.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// runAuthorize runs the command with a browser that does before(authURL)
// first (nil: nothing) and then consents.
func runAuthorize(t *testing.T, args []string, before func(authURL string)) outcome {
	t.Helper()
	var stdout, stderr syncBuffer
	var o outcome
	var wg sync.WaitGroup
	browse := func(ctx context.Context, authURL string) error {
		wg.Add(1)
		defer wg.Done()
		o.browserURL = authURL
		if before != nil {
			before(authURL)
		}
		resp, body, err := consent(ctx, authURL)
		if err != nil {
			t.Errorf("browser: %v", err)
			return nil
		}
		o.landing, o.landingBody = resp, body
		return nil
	}
	o.code = runWith(context.Background(), args, &stdout, &stderr, browse)
	wg.Wait()
	o.stdout, o.stderr = stdout.String(), stderr.String()
	return o
}

// secretNever checks that no secret reached the output.
func secretNever(t *testing.T, o outcome, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(o.stdout, s) || strings.Contains(o.stderr, s) || strings.Contains(o.landingBody, s) {
			t.Errorf("a secret (%.8s…) appears in the output", s)
		}
	}
}

func smClient(t *testing.T, addr string) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(), option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStoresWorkingSecret is the "working secret": authorize stores a
// new secret version whose refresh token the token endpoint accepts, and the
// function, reading that secret, removes a membership on the emulated Chat
// API.
func TestStoresWorkingSecret(t *testing.T) {
	f := newFixture(t)
	o := runAuthorize(t, f.withSecretManager("fresh-token", "--create"), nil)
	if o.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
	}
	version := "projects/" + f.stack.Project + "/secrets/fresh-token/versions/1"
	if !strings.Contains(o.stdout, "secret version "+version) {
		t.Errorf("stdout does not name the version %s:\n%s", version, o.stdout)
	}
	if !strings.Contains(o.stdout, "Granted scopes:\n  "+ScopeChatMemberships) {
		t.Errorf("stdout does not list the granted scopes:\n%s", o.stdout)
	}
	// The URL printed is the one the browser got.
	if o.browserURL == "" || !strings.Contains(o.stdout, "\n  "+o.browserURL+"\n") {
		t.Errorf("the browser's URL %q is not printed:\n%s", o.browserURL, o.stdout)
	}
	if o.landing.StatusCode != http.StatusOK || !strings.Contains(o.landingBody, "Authorization received") {
		t.Errorf("landing page = %d %q", o.landing.StatusCode, o.landingBody)
	}

	// The request: state, PKCE S256, offline, consent, loopback redirect.
	q := f.stack.OAuth.LastAuthRequest()
	for k, want := range map[string]string{
		"response_type": "code", "access_type": "offline", "prompt": "consent",
		"code_challenge_method": "S256", "client_id": f.stack.ClientID, "scope": ScopeChatMemberships,
	} {
		if q.Get(k) != want {
			t.Errorf("auth request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 32 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q or code_challenge %q too weak", q.Get("state"), q.Get("code_challenge"))
	}
	if u, err := url.Parse(q.Get("redirect_uri")); err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
		t.Errorf("redirect_uri = %q, want http://127.0.0.1:PORT/…", q.Get("redirect_uri"))
	}
	if q.Has("include_granted_scopes") {
		t.Errorf("include_granted_scopes would widen the token beyond the asked scopes")
	}
	if st := f.stack.OAuth.Stats(); st.CodeExchanges != 1 {
		t.Errorf("code exchanges = %d, want 1", st.CodeExchanges)
	}

	// The version holds authorized_user JSON...
	sm := smClient(t, f.stack.Secrets.Addr())
	resp, err := sm.AccessSecretVersion(context.Background(), &secretmanagerpb.AccessSecretVersionRequest{Name: version})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := tokens.ParseCredentials(resp.GetPayload().GetData())
	if err != nil {
		t.Fatal(err)
	}
	if creds.ClientID != f.stack.ClientID || creds.ClientSecret != f.stack.ClientSecret || creds.TokenURI != f.stack.OAuth.TokenURL() {
		t.Errorf("credentials = %v (token_uri %q)", creds, creds.TokenURI)
	}
	var raw map[string]any
	_ = json.Unmarshal(resp.GetPayload().GetData(), &raw)
	if len(raw) != 5 {
		t.Errorf("authorized_user JSON has fields %v, want exactly type, client_id, client_secret, refresh_token, token_uri", raw)
	}
	// ... whose refresh token the token endpoint accepts, for the admin, with
	// exactly the asked scope.
	conf := &oauth2.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: creds.TokenURI, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: creds.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refreshing with the stored token: %v", err)
	}
	g, ok := f.stack.OAuth.Verify(tok.AccessToken)
	if !ok || g.User != "users/100" || !slices.Equal(g.Scopes, []string{ScopeChatMemberships}) {
		t.Errorf("grant = %+v, %v", g, ok)
	}
	secretNever(t, o, f.stack.ClientSecret, creds.RefreshToken, tok.AccessToken)

	// The function, configured with that secret, removes a membership.
	ps, psrv := pubsubtest.Pstest(t)
	ctx := context.Background()
	if err := pubsubtest.CreateTopic(ctx, ps, "test-project", "results"); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{
		Project:               "test-project",
		TokenSecret:           "projects/" + f.stack.Project + "/secrets/fresh-token/versions/latest",
		ResultTopic:           "projects/test-project/topics/results",
		MaxEventAge:           time.Hour,
		WritesPerMinute:       600,
		ReadsPerMinute:        600,
		ChatEndpoint:          f.stack.Chat.URL(),
		DirectoryEndpoint:     f.stack.Directory.URL(),
		SecretManagerEndpoint: f.stack.Secrets.Addr(),
		EventTimeout:          10 * time.Second,
	}
	var logs syncBuffer
	fn, err := engine.New(ctx, cfg, engine.WithPubSubClient(ps), engine.WithLogger(logging.New(&logs, cfg.LogLevel)), engine.WithLedger(ledger.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Close()
	if err := fn.Handle(ctx, pubsubEvent(`{"requestId":"authorize-e2e","space":"spaces/ENG","member":"users/102"}`)); err != nil {
		t.Fatalf("Handle: %v\n%s", err, logs.String())
	}
	msgs := psrv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d results, want 1\n%s", len(msgs), logs.String())
	}
	var r contract.Result
	if err := json.Unmarshal(msgs[0].Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != contract.Removed || r.Membership != "spaces/ENG/members/102" {
		t.Errorf("result = %+v\n%s", r, logs.String())
	}
}

// pubsubEvent is the CloudEvent Eventarc delivers for a message with data.
func pubsubEvent(data string) event.Event {
	e := event.New()
	e.SetID("msg-authorize-1")
	e.SetType(contract.PublishedEventType)
	e.SetSource("//pubsub.googleapis.com/projects/test-project/topics/requests")
	e.SetTime(time.Now())
	_ = e.SetData("application/json", map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString([]byte(data)),
			"messageId":   "msg-authorize-1",
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/test-project/subscriptions/requests-push",
	})
	return e
}

// TestScopesPerFlags: exactly the scopes of the chosen features, and --out
// writes a 0600 file.
func TestScopesPerFlags(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		flags []string
		want  []string
	}{
		{nil, []string{ScopeChatMemberships}},
		{[]string{"--sweeps"}, []string{ScopeChatMemberships, ScopeChatAdminMemberships, ScopeChatAdminSpacesReadonly, ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryGroupReadonly}},
		{[]string{"--app"}, []string{ScopeChatMemberships, ScopeChatMembershipsApp}},
		{[]string{"--sweeps", "--app"}, []string{ScopeChatMemberships, ScopeChatAdminMemberships, ScopeChatAdminSpacesReadonly,
			ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryGroupReadonly, ScopeChatMembershipsApp}},
		{[]string{"--workspace-trigger"}, []string{ScopeChatMemberships, ScopeChatAdminMemberships, ScopeChatAdminSpacesReadonly,
			ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryGroupReadonly, ScopeAdminReportsAuditReadonly}},
	}
	// The emulator's names for the same scopes.
	if ScopeChatMemberships != emulator.ScopeChatMemberships || ScopeChatAdminMemberships != emulator.ScopeChatAdminMemberships ||
		ScopeChatAdminSpacesReadonly != emulator.ScopeChatAdminSpacesReadonly ||
		ScopeAdminDirectoryUserReadonly != emulator.ScopeAdminDirectoryUserReadonly || ScopeChatMembershipsApp != emulator.ScopeChatMembershipsApp ||
		ScopeAdminDirectoryGroupReadonly != emulator.ScopeAdminDirectoryGroupReadonly ||
		ScopeAdminReportsAuditReadonly != emulator.ScopeAdminReportsAuditReadonly {
		t.Fatal("scope constants differ from the emulator's")
	}
	for i, tc := range cases {
		out := filepath.Join(t.TempDir(), "creds.json")
		// A pre-existing, world-readable file is replaced by a 0600 one.
		if i == 0 {
			if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		o := runAuthorize(t, f.args(append(tc.flags, "--out", out)...), nil)
		if o.code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", tc.flags, o.code, o.stdout, o.stderr)
		}
		if got := strings.Fields(f.stack.OAuth.LastAuthRequest().Get("scope")); !slices.Equal(got, tc.want) {
			t.Errorf("%v: scopes asked %q, want %q", tc.flags, got, tc.want)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%v: --out mode %v, want 0600", tc.flags, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(out)
		creds, err := tokens.ParseCredentials(b)
		if err != nil {
			t.Fatalf("%v: %v", tc.flags, err)
		}
		secretNever(t, o, f.stack.ClientSecret, creds.RefreshToken)
		if !strings.Contains(o.stdout, "mode 0600") {
			t.Errorf("stdout: %s", o.stdout)
		}
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".authorize-*"))
		if len(matches) != 0 {
			t.Errorf("temporary files left: %v", matches)
		}
	}
}

// TestForgedStateRefused: a redirect with another state is refused (400) and
// its code is never exchanged; the real redirect still completes the flow.
func TestForgedStateRefused(t *testing.T) {
	f := newFixture(t)
	var forged *http.Response
	o := runAuthorize(t, f.args("--out", filepath.Join(t.TempDir(), "c.json")), func(authURL string) {
		u, _ := url.Parse(authURL)
		redirect := u.Query().Get("redirect_uri")
		for _, q := range []string{"state=forged&code=4/attacker-code", "state=&error=access_denied", "code=4/no-state"} {
			resp, err := noRedirect.Get(redirect + "?" + q)
			if err != nil {
				t.Errorf("forged redirect: %v", err)
				return
			}
			resp.Body.Close()
			forged = resp
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("forged redirect %q answered %s, want 400", q, resp.Status)
			}
		}
	})
	if forged == nil {
		t.Fatal("no forged redirect sent")
	}
	if o.code != 0 {
		t.Fatalf("exit %d after a refused forgery\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stderr, "state does not match") {
		t.Errorf("stderr does not report the refused redirect:\n%s", o.stderr)
	}
	if st := f.stack.OAuth.Stats(); st.CodeExchanges != 1 || st.Errors != 0 {
		t.Errorf("token endpoint stats %+v: the forged code must never be exchanged", st)
	}
}

// TestStolenCodeUseless: PKCE: whoever intercepts the code cannot redeem it
// without the verifier that only authorize holds.
func TestStolenCodeUseless(t *testing.T) {
	f := newFixture(t)
	var stolen url.Values
	var stderr syncBuffer
	browse := func(ctx context.Context, authURL string) error {
		resp, err := noRedirect.Get(authURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		stolen = loc.Query()
		// The thief redeems it first, without the verifier.
		form := url.Values{"grant_type": {"authorization_code"}, "code": {stolen.Get("code")},
			"client_id": {f.stack.ClientID}, "client_secret": {f.stack.ClientSecret},
			"redirect_uri": {f.stack.OAuth.LastAuthRequest().Get("redirect_uri")}}
		tr, err := http.PostForm(f.stack.OAuth.TokenURL(), form)
		if err != nil {
			return err
		}
		tr.Body.Close()
		if tr.StatusCode != http.StatusBadRequest {
			t.Errorf("code redeemed without the verifier: %s", tr.Status)
		}
		resp, err = noRedirect.Get(loc.String())
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	code := runWith(context.Background(), f.args("--out", filepath.Join(t.TempDir(), "c.json")), io.Discard, &stderr, browse)
	if stolen.Get("code") == "" {
		t.Fatal("no code seen")
	}
	// Codes are single-use: the thief's failed attempt consumed it, and
	// authorize reports the failed exchange instead of storing anything.
	if code != 1 || !strings.Contains(stderr.String(), "invalid_grant") {
		t.Errorf("exit %d, stderr %s", code, stderr.String())
	}
}

// TestDeniedConsent: the admin clicks Cancel: a clear message, exit 1,
// nothing stored.
func TestDeniedConsent(t *testing.T) {
	f := newFixture(t)
	f.stack.OAuth.SetDenyConsent(true)
	before := f.stack.Secrets.Stats().Adds
	o := runAuthorize(t, f.withSecretManager(emulator.StackSecretID), nil)
	if o.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stderr, "consent was not given: access_denied") || !strings.Contains(o.stderr, "denied access") {
		t.Errorf("stderr does not explain the denial:\n%s", o.stderr)
	}
	if !strings.Contains(o.landingBody, "Authorization failed") {
		t.Errorf("landing page: %q", o.landingBody)
	}
	if n := f.stack.Secrets.Stats().Adds; n != before {
		t.Errorf("%d secret versions added after a denial", n-before)
	}
	secretNever(t, o, f.stack.ClientSecret)
}

// TestPartialConsent: granular consent that leaves out a needed scope stores
// nothing.
func TestPartialConsent(t *testing.T) {
	f := newFixture(t)
	f.stack.OAuth.SetConsentScopes([]string{ScopeChatMemberships})
	out := filepath.Join(t.TempDir(), "c.json")
	o := runAuthorize(t, f.args("--sweeps", "--out", out), nil)
	if o.code != 1 || !strings.Contains(o.stderr, "did not grant "+ScopeChatAdminMemberships) {
		t.Errorf("exit %d, stderr:\n%s", o.code, o.stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--out written after a partial consent: %v", err)
	}
}

// TestClientSecretsFile reads Google's downloaded client file, endpoints
// included, in both its installed and web forms.
func TestClientSecretsFile(t *testing.T) {
	f := newFixture(t)
	for _, kind := range []string{"installed", "web"} {
		file := filepath.Join(t.TempDir(), "client_secret_123.apps.googleusercontent.com.json")
		b, _ := json.Marshal(map[string]any{kind: map[string]any{
			"client_id": f.stack.ClientID, "client_secret": f.stack.ClientSecret, "project_id": "p",
			"auth_uri": f.stack.OAuth.AuthURL(), "token_uri": f.stack.OAuth.TokenURL(),
			"redirect_uris": []string{"http://localhost"},
		}})
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "c.json")
		o := runAuthorize(t, []string{"--client-secrets", file, "--out", out, "--timeout", "15s"}, nil)
		if o.code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", kind, o.code, o.stdout, o.stderr)
		}
		secretNever(t, o, f.stack.ClientSecret)
	}
}

// TestSecretMustExist: without --create a missing secret stops the run
// before the admin is asked anything.
func TestSecretMustExist(t *testing.T) {
	f := newFixture(t)
	var stdout, stderr syncBuffer
	asked := false
	code := runWith(context.Background(), f.withSecretManager("missing"), &stdout, &stderr,
		func(context.Context, string) error { asked = true; return nil })
	if code != 1 || !strings.Contains(stderr.String(), "does not exist") || !strings.Contains(stderr.String(), "--create") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if asked || strings.Contains(stdout.String(), "http") {
		t.Errorf("consent asked for although the secret is missing")
	}
	// An existing secret (deploy.sh made it) gets version 2 next to 1.
	o := runAuthorize(t, f.withSecretManager(emulator.StackSecretID), nil)
	if o.code != 0 || !strings.Contains(o.stdout, f.stack.SecretName+"/versions/2") {
		t.Errorf("exit %d\n%s\n%s", o.code, o.stdout, o.stderr)
	}
}

// TestTimeout: no redirect within --timeout is an error, not a hang.
func TestTimeout(t *testing.T) {
	f := newFixture(t)
	var stdout, stderr syncBuffer
	args := f.args("--out", filepath.Join(t.TempDir(), "c.json"))
	args = append(args, "--timeout", "300ms")
	start := time.Now()
	code := run(context.Background(), args, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no redirect arrived within 300ms") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestUsage: bad flags are exit 2 with a message naming the flag, before
// any network.
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "s")
	if err := os.WriteFile(secretFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	client := []string{"--client-id", "id", "--client-secret-file", secretFile}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--out", "x"}, "--client-secrets FILE"},
		{slices.Clone(client), "--secret projects/P/secrets/S or --out FILE"},
		{append(slices.Clone(client), "--out", "x", "--secret", "projects/p/secrets/s"), "exclude each other"},
		{append(slices.Clone(client), "--secret", "projects/p/secrets/s/versions/1"), "--secret"},
		{append(slices.Clone(client), "--secret", "p/s"), "--secret"},
		{append(slices.Clone(client), "--out", "x", "--create"), "--create needs --secret"},
		{append(slices.Clone(client), "--secret", "projects/p/secrets/s", "--secret-manager-endpoint", "10.0.0.1:443"), "loopback"},
		{append(slices.Clone(client), "--out", "x", "--token-url", "http://oauth.example.com/token"), "--token-url"},
		{append(slices.Clone(client), "--out", "x", "--auth-url", "ftp://x"), "--auth-url"},
		{[]string{"--client-secrets", secretFile, "--out", "x"}, "is not JSON"},
		{[]string{"--client-secrets", filepath.Join(dir, "none.json"), "--out", "x"}, "--client-secrets"},
		{append(slices.Clone(client), "--out", "x", "extra"), "unexpected argument"},
	}
	for _, tc := range cases {
		var stdout, stderr syncBuffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--sweeps") {
		t.Errorf("--help: exit %d\n%s", code, stderr.String())
	}
}
