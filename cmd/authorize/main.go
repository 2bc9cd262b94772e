// Command authorize runs the OAuth consent of chat-offboard's delegated
// Workspace admin and stores the result, an authorized_user credential, where
// the function reads it: a new version of a Secret Manager secret (or, with
// --out, a file with mode 0600).
//
// The flow is the one Google recommends for installed applications, done
// strictly: a loopback redirect on 127.0.0.1 (a random port unless --port),
// a random state that the redirect must carry back, PKCE with S256, and
// access_type=offline with prompt=consent so that Google always issues a
// refresh token. It asks for exactly the scopes of the chosen features:
//
//	always    https://www.googleapis.com/auth/chat.memberships
//	--sweeps  + chat.admin.memberships, chat.admin.spaces.readonly,
//	          admin.directory.user.readonly
//	--app     + chat.memberships.app
//
// It prints the URL to open (and opens it with --open), waits for the
// redirect, exchanges the code and stores the credential. It never prints a
// secret: neither the client secret nor a token, only the secret version name
// and the granted scopes. Its endpoints (flags, or the client secrets file's
// auth_uri and token_uri) must be Google's OAuth endpoints or a loopback
// emulator: credentials go only to Google.
//
// Usage:
//
//	go run ./cmd/authorize --client-secrets client_secret.json \
//	    --secret projects/PROJECT/secrets/chat-offboard-token [--create] [--sweeps] [--app]
//	go run ./cmd/authorize --client-id ID --client-secret-file FILE --out creds.json
//
// Writing to Secret Manager uses Application Default Credentials (gcloud auth
// application-default login) with permission to add secret versions.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// OAuth scopes, by feature.
const (
	ScopeChatMemberships            = "https://www.googleapis.com/auth/chat.memberships"
	ScopeChatAdminMemberships       = "https://www.googleapis.com/auth/chat.admin.memberships"
	ScopeChatAdminSpacesReadonly    = "https://www.googleapis.com/auth/chat.admin.spaces.readonly"
	ScopeAdminDirectoryUserReadonly = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeChatMembershipsApp         = "https://www.googleapis.com/auth/chat.memberships.app"
)

// Google's endpoints, used unless the client secrets file or a flag names
// others. Any other endpoint must be on Google's OAuth hosts or a loopback
// emulator (tokens.CheckOAuthURL).
const (
	GoogleAuthURL  = tokens.GoogleAuthURL
	GoogleTokenURL = tokens.GoogleTokenURL
)

// callbackPath is the path of the loopback redirect URI. A Web-type OAuth
// client must list http://127.0.0.1:PORT/callback exactly (with --port).
const callbackPath = "/callback"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// browser opens the consent URL for the user. It may return before the user
// has answered; the redirect arrives at the loopback listener.
type browser func(ctx context.Context, authURL string) error

// run is the command: it parses args, runs the flow and reports on stdout
// (progress, the URL, the result) and stderr (errors). It returns the exit
// code: 0 on success, 1 when the flow or the storing failed, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, nil)
}

// runWith is run with the browser step injected (tests play the browser).
// A nil browse means: print the URL, and open it only with --open.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, browse browser) int {
	stdout, stderr = &lockedWriter{w: stdout}, &lockedWriter{w: stderr}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "authorize: %v\n", err)
		return 2
	}
	if browse == nil && o.open {
		browse = systemBrowser
	}
	if err := authorize(ctx, o, stdout, stderr, browse); err != nil {
		fmt.Fprintf(stderr, "authorize: %v\n", err)
		return 1
	}
	return 0
}

// lockedWriter serializes writes from the main goroutine and the callback
// handler.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// options are the parsed flags. They hold the client secret: print them only
// through String, GoString or LogValue, which redact it.
type options struct {
	clientID, clientSecret string
	authURL, tokenURL      string
	scopes                 []string
	secret                 string // projects/P/secrets/S
	out                    string
	create                 bool
	timeout                time.Duration
	open                   bool
	port                   int
	loginHint              string
	smEndpoint             string
}

// String shows the options with the client secret REDACTED.
func (o options) String() string {
	return fmt.Sprintf("{client_id:%s client_secret:%s auth_url:%s token_url:%s scopes:%v secret:%s out:%s}",
		o.clientID, redactSecret(o.clientSecret), o.authURL, o.tokenURL, o.scopes, o.secret, o.out)
}

// GoString is String for %#v.
func (o options) GoString() string { return "main.options" + o.String() }

// Format makes every fmt verb print String (GoString for %#v).
func (o options) Format(f fmt.State, verb rune) { formatRedacted(f, verb, o.String(), o.GoString()) }

// LogValue implements slog.LogValuer with the client secret REDACTED.
func (o options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", o.clientID),
		slog.String("client_secret", redactSecret(o.clientSecret)),
		slog.String("auth_url", o.authURL),
		slog.String("token_url", o.tokenURL),
		slog.Any("scopes", o.scopes),
		slog.String("secret", o.secret),
		slog.String("out", o.out),
	)
}

// redactSecret hides a secret value, telling only whether it is set.
func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// formatRedacted prints a value with a secret through its redacting String
// (or GoString for %#v) whatever the verb.
func formatRedacted(f fmt.State, verb rune, str, goStr string) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, goStr)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), str)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("authorize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		clientSecrets    = fs.String("client-secrets", "", "Google's downloaded `client_secret_*.json` of a Desktop (installed) or Web OAuth client")
		clientID         = fs.String("client-id", "", "OAuth client `id` (instead of --client-secrets)")
		clientSecretFile = fs.String("client-secret-file", "", "`file` holding the OAuth client secret (with --client-id)")
		sweeps           = fs.Bool("sweeps", false, "also ask for the scopes of allSpaces sweeps (admin access, directory lookups)")
		app              = fs.Bool("app", false, "also ask for chat.memberships.app (removing Chat apps)")
		secret           = fs.String("secret", "", "store the credential as a new version of Secret Manager secret `projects/P/secrets/S`")
		create           = fs.Bool("create", false, "create the secret (automatic replication) if it does not exist")
		out              = fs.String("out", "", "write the credential to `file` (mode 0600) instead of Secret Manager")
		timeout          = fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser's redirect")
		open             = fs.Bool("open", false, "open the URL in the default browser")
		port             = fs.Int("port", 0, "loopback `port` of the redirect (0: random; a Web client needs a fixed, registered one)")
		loginHint        = fs.String("login-hint", "", "`email` of the admin, preselected on the consent screen")
		authURL          = fs.String("auth-url", "", "authorization endpoint `URL`: Google's, or a loopback emulator (tests)")
		tokenURL         = fs.String("token-url", "", "token endpoint `URL`: Google's, or a loopback emulator (tests); also stored as token_uri")
		smEndpoint       = fs.String("secret-manager-endpoint", "", "`host:port` of a Secret Manager emulator (loopback, plaintext)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: authorize (--client-secrets FILE | --client-id ID --client-secret-file FILE)\n"+
			"                 (--secret projects/P/secrets/S [--create] | --out FILE) [--sweeps] [--app] [flags]\n\n"+
			"Runs the delegated admin's OAuth consent and stores an authorized_user credential.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o := &options{
		secret: *secret, out: *out, create: *create, timeout: *timeout, open: *open,
		port: *port, loginHint: *loginHint, smEndpoint: *smEndpoint,
		authURL: GoogleAuthURL, tokenURL: GoogleTokenURL,
	}
	switch {
	case *clientSecrets != "" && (*clientID != "" || *clientSecretFile != ""):
		return nil, errors.New("--client-secrets and --client-id/--client-secret-file exclude each other")
	case *clientSecrets != "":
		c, err := readClientSecrets(*clientSecrets)
		if err != nil {
			return nil, err
		}
		o.clientID, o.clientSecret = c.ClientID, c.ClientSecret
		if c.AuthURI != "" {
			o.authURL = c.AuthURI
		}
		if c.TokenURI != "" {
			o.tokenURL = c.TokenURI
		}
	case *clientID != "" && *clientSecretFile != "":
		b, err := os.ReadFile(*clientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--client-secret-file: %w", err)
		}
		o.clientID, o.clientSecret = *clientID, strings.TrimSpace(string(b))
		if o.clientSecret == "" {
			return nil, fmt.Errorf("--client-secret-file %s is empty", *clientSecretFile)
		}
	default:
		return nil, errors.New("name the OAuth client: --client-secrets FILE, or --client-id ID with --client-secret-file FILE")
	}
	// Credentials go only to Google (or a loopback emulator): the client
	// secrets file's auth_uri and token_uri were checked as it was read.
	if *authURL != "" {
		if err := tokens.CheckOAuthURL("--auth-url", *authURL); err != nil {
			return nil, err
		}
		o.authURL = *authURL
	}
	if *tokenURL != "" {
		if err := tokens.CheckOAuthURL("--token-url", *tokenURL); err != nil {
			return nil, err
		}
		o.tokenURL = *tokenURL
	}
	switch {
	case o.secret == "" && o.out == "":
		return nil, errors.New("say where to store the credential: --secret projects/P/secrets/S or --out FILE")
	case o.secret != "" && o.out != "":
		return nil, errors.New("--secret and --out exclude each other")
	case o.secret != "" && !validSecretName(o.secret):
		return nil, fmt.Errorf("--secret %q is not projects/PROJECT/secrets/SECRET (no /versions/)", o.secret)
	case o.create && o.secret == "":
		return nil, errors.New("--create needs --secret")
	case o.smEndpoint != "" && o.secret == "":
		return nil, errors.New("--secret-manager-endpoint needs --secret")
	case o.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case o.port < 0 || o.port > 65535:
		return nil, fmt.Errorf("--port %d is not a port", o.port)
	}
	if o.smEndpoint != "" {
		if err := tokens.CheckLoopback(o.smEndpoint); err != nil {
			return nil, fmt.Errorf("--secret-manager-endpoint: %w", err)
		}
	}
	o.scopes = Scopes(*sweeps, *app)
	return o, nil
}

// Scopes returns exactly the OAuth scopes that the chosen features need.
func Scopes(sweeps, app bool) []string {
	s := []string{ScopeChatMemberships}
	if sweeps {
		s = append(s, ScopeChatAdminMemberships, ScopeChatAdminSpacesReadonly, ScopeAdminDirectoryUserReadonly)
	}
	if app {
		s = append(s, ScopeChatMembershipsApp)
	}
	return s
}

// clientConfig is the "installed" or "web" object of Google's client
// secrets file. It holds the client secret: print it only through String,
// GoString or LogValue, which redact it.
type clientConfig struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	AuthURI      string `json:"auth_uri"`
	TokenURI     string `json:"token_uri"`
}

// String shows the client with the client secret REDACTED.
func (c clientConfig) String() string {
	return fmt.Sprintf("{client_id:%s client_secret:%s auth_uri:%s token_uri:%s}",
		c.ClientID, redactSecret(c.ClientSecret), c.AuthURI, c.TokenURI)
}

// GoString is String for %#v.
func (c clientConfig) GoString() string { return "main.clientConfig" + c.String() }

// Format makes every fmt verb print String (GoString for %#v).
func (c clientConfig) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, c.String(), c.GoString())
}

// LogValue implements slog.LogValuer with the client secret REDACTED.
func (c clientConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redactSecret(c.ClientSecret)),
		slog.String("auth_uri", c.AuthURI),
		slog.String("token_uri", c.TokenURI),
	)
}

func readClientSecrets(path string) (*clientConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--client-secrets: %w", err)
	}
	var f struct {
		Installed *clientConfig `json:"installed"`
		Web       *clientConfig `json:"web"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		// The error of encoding/json may quote the input: keep it out.
		return nil, fmt.Errorf("--client-secrets %s is not JSON", path)
	}
	c := f.Installed
	if c == nil {
		c = f.Web
	}
	if c == nil || c.ClientID == "" || c.ClientSecret == "" {
		return nil, fmt.Errorf("--client-secrets %s has no \"installed\" or \"web\" client with client_id and client_secret", path)
	}
	for _, f := range []struct{ field, value string }{{"auth_uri", c.AuthURI}, {"token_uri", c.TokenURI}} {
		if f.value == "" {
			continue
		}
		if err := tokens.CheckOAuthURL(f.field, f.value); err != nil {
			return nil, fmt.Errorf("--client-secrets %s: %w", path, err)
		}
	}
	return c, nil
}

func validSecretName(name string) bool {
	p := strings.Split(name, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "secrets" {
		return false
	}
	for _, s := range []string{p[1], p[3]} {
		if s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") != "" {
			return false
		}
	}
	return true
}

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

func authorize(ctx context.Context, o *options, stdout, stderr io.Writer, browse browser) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// Check the destination first: an admin's consent that cannot be
	// stored would have to be given again.
	var sm *secretmanager.Client
	if o.secret != "" {
		var err error
		if sm, err = secretManager(ctx, o.smEndpoint); err != nil {
			return err
		}
		defer sm.Close()
		if err := ensureSecret(ctx, sm, o.secret, o.create, stdout); err != nil {
			return err
		}
	} else if st, err := os.Stat(filepath.Dir(o.out)); err != nil || !st.IsDir() {
		return fmt.Errorf("--out %s: the directory does not exist", o.out)
	}

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		return fmt.Errorf("loopback listener: %w", err)
	}
	redirectURI := fmt.Sprintf("http://%s%s", ln.Addr(), callbackPath)
	state, err := randomString(32)
	if err != nil {
		ln.Close()
		return err
	}
	verifier := oauth2.GenerateVerifier()
	conf := &oauth2.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: o.authURL, TokenURL: o.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  redirectURI,
		Scopes:       o.scopes,
	}
	authOpts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier)}
	if o.loginHint != "" {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("login_hint", o.loginHint))
	}
	authURL := conf.AuthCodeURL(state, authOpts...)

	results := make(chan callback, 1)
	srv := &http.Server{
		Handler:           callbackHandler(state, results, stderr),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()

	fmt.Fprintf(stdout, "Open this URL in a browser where the delegated Workspace admin is signed in,\n"+
		"and grant access (waiting up to %s for the redirect to %s):\n\n  %s\n\n", o.timeout, redirectURI, authURL)
	fmt.Fprintf(stdout, "Scopes asked for:\n  %s\n\n", strings.Join(o.scopes, "\n  "))
	if browse != nil {
		go func() {
			if err := browse(ctx, authURL); err != nil {
				fmt.Fprintf(stderr, "authorize: could not open a browser (%v); open the URL yourself\n", err)
			}
		}()
	}

	var cb callback
	select {
	case cb = <-results:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no redirect arrived within %s (run again, or raise --timeout)", o.timeout)
		}
		return fmt.Errorf("waiting for the redirect: %w", ctx.Err())
	}
	if cb.err != nil {
		return cb.err
	}

	hctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	tok, err := conf.Exchange(hctx, cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchanging the authorization code: %w", sanitize(err))
	}
	if tok.RefreshToken == "" {
		return errors.New("the token endpoint issued no refresh token; revoke the app's access at https://myaccount.google.com/permissions and run again")
	}
	granted := o.scopes
	if s, _ := tok.Extra("scope").(string); s != "" {
		granted = strings.Fields(s)
	}
	var missing []string
	for _, s := range o.scopes {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the admin did not grant %s; nothing was stored: run again and leave every box checked on the consent screen", strings.Join(missing, ", "))
	}

	creds := tokens.Credentials{
		Type:         "authorized_user",
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		RefreshToken: tok.RefreshToken,
		TokenURI:     o.tokenURL,
	}
	payload, err := json.Marshal(creds)
	if err != nil {
		return fmt.Errorf("encoding the credential: %w", err)
	}
	if _, err := tokens.ParseCredentials(payload); err != nil {
		return err
	}

	if o.out != "" {
		if err := writeFile0600(o.out, payload); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Wrote the authorized_user credential to %s (mode 0600).\n", o.out)
	} else {
		name, err := addVersion(ctx, sm, o.secret, payload)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Stored the authorized_user credential as secret version %s.\n", name)
		fmt.Fprintf(stdout, "The function reads versions/latest at its next start or its next invalid_grant.\n")
	}
	fmt.Fprintf(stdout, "Granted scopes:\n  %s\n", strings.Join(granted, "\n  "))
	return nil
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
// response body.
func sanitize(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &tokens.RefreshError{Code: re.ErrorCode, Description: re.ErrorDescription, Status: status}
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

// writeFile0600 writes data to path atomically (a temporary file in the same
// directory, renamed), with mode 0600 whatever the umask or an older file's
// mode.
func writeFile0600(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".authorize-*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// secretManager dials Secret Manager: Google's with Application Default
// Credentials, or a loopback emulator in plaintext.
func secretManager(ctx context.Context, endpoint string) (*secretmanager.Client, error) {
	c, err := tokens.NewSecretManagerClient(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w (are Application Default Credentials set up? gcloud auth application-default login)", err)
	}
	return c, nil
}

// ensureSecret checks that the secret exists, creating it when create is set.
func ensureSecret(ctx context.Context, sm *secretmanager.Client, name string, create bool, stdout io.Writer) error {
	_, err := sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name})
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.NotFound:
	case codes.PermissionDenied:
		if !create {
			// Adding versions (roles/secretmanager.secretVersionAdder)
			// does not need to read the secret: let the add decide.
			fmt.Fprintf(stdout, "Cannot check secret %s (permission denied); will try to add a version anyway.\n", name)
			return nil
		}
		return fmt.Errorf("reading secret %s: %w", name, err)
	default:
		return fmt.Errorf("reading secret %s: %w", name, err)
	}
	if !create {
		return fmt.Errorf("secret %s does not exist: run deploy.sh first, or pass --create", name)
	}
	i := strings.LastIndex(name, "/secrets/")
	_, err = sm.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
		Parent:   name[:i],
		SecretId: name[i+len("/secrets/"):],
		Secret: &secretmanagerpb.Secret{
			Replication: &secretmanagerpb.Replication{
				Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
			},
			Labels: map[string]string{"app": "chat-offboard"},
		},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("creating secret %s: %w", name, err)
	}
	if err == nil {
		fmt.Fprintf(stdout, "Created secret %s.\n", name)
	}
	return nil
}

// addVersion stores payload as a new version, with its CRC32C so that Secret
// Manager verifies it, and returns the version name.
func addVersion(ctx context.Context, sm *secretmanager.Client, secret string, payload []byte) (string, error) {
	crc := int64(crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	v, err := sm.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  secret,
		Payload: &secretmanagerpb.SecretPayload{Data: payload, DataCrc32C: &crc},
	})
	if err != nil {
		return "", fmt.Errorf("adding a version to %s: %w", secret, err)
	}
	return v.GetName(), nil
}

// systemBrowser opens u with the platform's opener.
func systemBrowser(ctx context.Context, u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", u)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
