package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/tokens"
)

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
	revokePrevious         bool
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

// parseFlags parses the command line into options: the flags, then the
// OAuth client (setClient), its endpoints (setEndpoints) and the checks of
// the rest (check).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("authorize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		clientSecrets    = fs.String("client-secrets", "", "Google's downloaded `client_secret_*.json` of a Desktop (installed) or Web OAuth client")
		clientID         = fs.String("client-id", "", "OAuth client `id` (instead of --client-secrets)")
		clientSecretFile = fs.String("client-secret-file", "", "`file` holding the OAuth client secret (with --client-id)")
		sweeps           = fs.Bool("sweeps", false, "also ask for the scopes of allSpaces sweeps (admin access, directory lookups)")
		app              = fs.Bool("app", false, "also ask for chat.memberships.app (removing Chat apps)")
		trigger          = fs.Bool("workspace-trigger", false, "also ask for the scopes of the Workspace trigger: those of --sweeps, and admin.reports.audit.readonly (offboard reconcile)")
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
		revokePrevious   = fs.Bool("revoke-previous", false, "revoke the secret's latest credential at Google before the consent (another admin's, or compromised); the function fails until the new one is stored")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: authorize (--client-secrets FILE | --client-id ID --client-secret-file FILE)\n"+
			"                 (--secret projects/P/secrets/S [--create] | --out FILE) [--sweeps] [--app] [--workspace-trigger] [flags]\n\n"+
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
		port: *port, loginHint: *loginHint, smEndpoint: *smEndpoint, revokePrevious: *revokePrevious,
		authURL: GoogleAuthURL, tokenURL: GoogleTokenURL,
	}
	if err := o.setClient(*clientSecrets, *clientID, *clientSecretFile); err != nil {
		return nil, err
	}
	if err := o.setEndpoints(*authURL, *tokenURL); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	o.scopes = Scopes(*sweeps || *trigger, *app, *trigger)
	return o, nil
}

// setClient sets the OAuth client from --client-secrets, or from --client-id
// with --client-secret-file (exactly one of the two). A client secrets file
// may also name the endpoints.
func (o *options) setClient(clientSecrets, clientID, clientSecretFile string) error {
	switch {
	case clientSecrets != "" && (clientID != "" || clientSecretFile != ""):
		return errors.New("--client-secrets and --client-id/--client-secret-file exclude each other")
	case clientSecrets != "":
		c, err := readClientSecrets(clientSecrets)
		if err != nil {
			return err
		}
		o.clientID, o.clientSecret = c.ClientID, c.ClientSecret
		if c.AuthURI != "" {
			o.authURL = c.AuthURI
		}
		if c.TokenURI != "" {
			o.tokenURL = c.TokenURI
		}
	case clientID != "" && clientSecretFile != "":
		b, err := os.ReadFile(clientSecretFile)
		if err != nil {
			return fmt.Errorf("--client-secret-file: %w", err)
		}
		o.clientID, o.clientSecret = clientID, strings.TrimSpace(string(b))
		if o.clientSecret == "" {
			return fmt.Errorf("--client-secret-file %s is empty", clientSecretFile)
		}
	default:
		return errors.New("name the OAuth client: --client-secrets FILE, or --client-id ID with --client-secret-file FILE")
	}
	return nil
}

// setEndpoints applies --auth-url and --token-url, which override the
// client secrets file's.
func (o *options) setEndpoints(authURL, tokenURL string) error {
	// Credentials go only to Google (or a loopback emulator): the client
	// secrets file's auth_uri and token_uri were checked as it was read.
	if authURL != "" {
		if err := tokens.CheckOAuthURL("--auth-url", authURL); err != nil {
			return err
		}
		o.authURL = authURL
	}
	if tokenURL != "" {
		if err := tokens.CheckOAuthURL("--token-url", tokenURL); err != nil {
			return err
		}
		o.tokenURL = tokenURL
	}
	return nil
}

// check checks the destination and the other flags.
func (o *options) check() error {
	switch {
	case o.secret == "" && o.out == "":
		return errors.New("say where to store the credential: --secret projects/P/secrets/S or --out FILE")
	case o.secret != "" && o.out != "":
		return errors.New("--secret and --out exclude each other")
	case o.secret != "" && !validSecretName(o.secret):
		return fmt.Errorf("--secret %q is not projects/PROJECT/secrets/SECRET (no /versions/)", o.secret)
	case o.create && o.secret == "":
		return errors.New("--create needs --secret")
	case o.smEndpoint != "" && o.secret == "":
		return errors.New("--secret-manager-endpoint needs --secret")
	case o.timeout <= 0:
		return errors.New("--timeout must be positive")
	case o.port < 0 || o.port > 65535:
		return fmt.Errorf("--port %d is not a port", o.port)
	}
	if o.smEndpoint != "" {
		if err := tokens.CheckLoopback(o.smEndpoint); err != nil {
			return fmt.Errorf("--secret-manager-endpoint: %w", err)
		}
	}
	return nil
}

// Scopes returns exactly the OAuth scopes that the chosen features need:
// sweeps, removing apps, and reading the Admin audit activities (publish
// reconcile, the Workspace trigger's catch-up).
func Scopes(sweeps, app, reports bool) []string {
	s := []string{ScopeChatMemberships}
	if sweeps {
		s = append(s, ScopeChatAdminMemberships, ScopeChatAdminSpacesReadonly, ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryGroupReadonly)
	}
	if app {
		s = append(s, ScopeChatMembershipsApp)
	}
	if reports {
		s = append(s, ScopeAdminReportsAuditReadonly)
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
