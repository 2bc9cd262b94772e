// Package tokens turns a delegated admin's authorized_user credentials, kept in
// Secret Manager, into OAuth2 access tokens for the Chat API.
//
// A Source reads the secret once per instance (lazily, on the first token
// request), verifies its CRC32C, and caches one access token that all
// concurrent callers share: however many events ask at once, one refresh runs
// per token lifetime. When the token endpoint answers invalid_grant (the
// refresh token was revoked or rotated), the Source re-reads the secret once
// and tries again; only if that fails too does it report ErrInvalidGrant.
//
// No secret value (client secret, refresh token, access token) ever appears in
// an error string or a log line written by this package, and Credentials and
// Source print and log REDACTED in place of secrets. The refresh token is sent
// only to Google's token endpoint or to a loopback emulator: any other
// token_uri or TokenURL is refused (CheckOAuthURL) before anything is sent.
package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/chat-offboard/chat-offboard/logging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// GoogleTokenURL is the token endpoint used when the credentials name none.
const GoogleTokenURL = "https://oauth2.googleapis.com/token"

// expiryMargin is how long before its stated expiry a cached access token is
// considered stale, so that a token never expires in flight.
const expiryMargin = time.Minute

// ErrInvalidGrant reports that the token endpoint rejected the refresh token
// even after the secret was re-read: an operator must authorize again and
// store a new secret version. It is returned wrapped; test with errors.Is.
var ErrInvalidGrant = errors.New("tokens: refresh token rejected (invalid_grant) after re-reading the secret; store a new secret version with cmd/authorize")

// ErrBadSecret reports a secret whose payload is not usable authorized_user
// JSON or whose checksum does not match. Test with errors.Is.
var ErrBadSecret = errors.New("tokens: unusable secret")

// ErrSecretVersionDisabled reports that Secret Manager refused to read the
// secret version with FAILED_PRECONDITION: the version is disabled (or
// destroyed). For versions/latest it is the most recently created version,
// whatever older versions are enabled: an operator must enable it again or
// add a new version. It is returned wrapped; test with errors.Is.
var ErrSecretVersionDisabled = errors.New("tokens: the secret version is not enabled (FAILED_PRECONDITION)")

// Credentials is the authorized_user JSON document stored in the secret, as
// written by `gcloud auth application-default login` and cmd/authorize.
type Credentials struct {
	Type         string `json:"type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
	TokenURI     string `json:"token_uri,omitempty"`
}

// redacted stands for a secret field's value in printed credentials.
const redacted = "REDACTED"

// redact hides a secret value, telling only whether it is set.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String shows the non-secret fields (type, client_id, token_uri) and
// REDACTED for client_secret and refresh_token, so that credentials printed by
// mistake (%v, %+v, %s) leak nothing.
func (c Credentials) String() string {
	return fmt.Sprintf("%s{client_id:%s token_uri:%s client_secret:%s refresh_token:%s}",
		c.Type, c.ClientID, c.TokenURI, redact(c.ClientSecret), redact(c.RefreshToken))
}

// GoString is String for %#v: Go syntax with the secret fields REDACTED.
func (c Credentials) GoString() string {
	return fmt.Sprintf("tokens.Credentials{Type:%q, ClientID:%q, ClientSecret:%q, RefreshToken:%q, TokenURI:%q}",
		c.Type, c.ClientID, redact(c.ClientSecret), redact(c.RefreshToken), c.TokenURI)
}

// Format makes every fmt verb print String (GoString for %#v), so that no
// verb (%d, %x, ...) reaches the secret fields.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), c.String())
}

// LogValue implements slog.LogValuer: a group of the non-secret fields, with
// client_secret and refresh_token REDACTED.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("type", c.Type),
		slog.String("client_id", c.ClientID),
		slog.String("token_uri", c.TokenURI),
		slog.String("client_secret", redact(c.ClientSecret)),
		slog.String("refresh_token", redact(c.RefreshToken)),
	)
}

// ParseCredentials decodes and checks an authorized_user document: the
// secret fields must be set, and a token_uri must be Google's token endpoint
// or a loopback emulator (see CheckOAuthURL). Its errors never quote a secret.
func ParseCredentials(b []byte) (Credentials, error) {
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("%w: payload is not JSON", ErrBadSecret)
	}
	var missing []string
	if c.Type != "authorized_user" {
		return Credentials{}, fmt.Errorf("%w: type is %q, want \"authorized_user\"", ErrBadSecret, c.Type)
	}
	if c.ClientID == "" {
		missing = append(missing, "client_id")
	}
	if c.ClientSecret == "" {
		missing = append(missing, "client_secret")
	}
	if c.RefreshToken == "" {
		missing = append(missing, "refresh_token")
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("%w: missing %s", ErrBadSecret, strings.Join(missing, ", "))
	}
	if c.TokenURI != "" {
		if err := CheckOAuthURL("token_uri", c.TokenURI); err != nil {
			return Credentials{}, fmt.Errorf("%w: %w", ErrBadSecret, err)
		}
	}
	return c, nil
}

// Config says where the credentials live and how to reach the endpoints.
type Config struct {
	// Secret is a full secret version name,
	// projects/P/secrets/S/versions/V (V may be "latest").
	Secret string
	// SecretManagerEndpoint, when set, is the host:port of a Secret Manager
	// emulator. It is dialled in plaintext without credentials, so only a
	// loopback address is accepted.
	SecretManagerEndpoint string
	// TokenURL, when set, overrides the token endpoint of the credentials
	// (the function's OAUTH_TOKEN_URL). Like a token_uri, it must be Google's
	// token endpoint or a loopback emulator (see CheckOAuthURL).
	TokenURL string
	// HTTPClient performs token refreshes; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives WARNING and CRITICAL lines; nil means slog.Default().
	Logger *slog.Logger
	// ClientOptions are extra options for the Secret Manager client (tests).
	ClientOptions []option.ClientOption
}

// Stats counts what a Source has done since it was built.
type Stats struct {
	SecretReads int64 // AccessSecretVersion calls that returned a payload
	Refreshes   int64 // successful token refreshes
	Failures    int64 // failed refresh or secret read attempts
}

// Source is a concurrency-safe, caching source of access tokens. All methods
// may be called from any number of goroutines at once.
type Source struct {
	cfg    Config
	log    *slog.Logger
	sm     *secretmanager.Client
	hc     *http.Client
	secret string

	mu       sync.Mutex
	creds    *Credentials
	tok      *oauth2.Token
	issuedAt time.Time
	inflight *refresh // non-nil while a refresh runs
	stats    Stats
}

// refresh is one shared refresh in flight; done is closed when tok/err are set.
type refresh struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// New builds a Source. It dials nothing and reads no secret yet: the first
// Token call does. Build one per instance, with context.Background().
func New(ctx context.Context, cfg Config) (*Source, error) {
	if !validSecretVersion(cfg.Secret) {
		return nil, fmt.Errorf("tokens: secret %q is not projects/P/secrets/S/versions/V", cfg.Secret)
	}
	if cfg.TokenURL != "" {
		if err := CheckOAuthURL(tokenURLField, cfg.TokenURL); err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
	}
	sm, err := NewSecretManagerClient(ctx, cfg.SecretManagerEndpoint, cfg.ClientOptions...)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: CheckRedirect}
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	return &Source{cfg: cfg, log: lg, sm: sm, hc: hc, secret: cfg.Secret}, nil
}

// String names the Source by its secret version; the credentials and the
// access token it holds are never printed.
func (s *Source) String() string { return "tokens.Source{secret:" + s.secret + "}" }

// GoString is String for %#v.
func (s *Source) GoString() string { return fmt.Sprintf("&tokens.Source{secret:%q}", s.secret) }

// LogValue implements slog.LogValuer with the secret version name only.
func (s *Source) LogValue() slog.Value {
	return slog.GroupValue(slog.String("secret", s.secret))
}

// Close releases the Secret Manager connection.
func (s *Source) Close() error { return s.sm.Close() }

// Stats returns a snapshot of the counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Token implements oauth2.TokenSource with a 30 s bound.
func (s *Source) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.TokenContext(ctx)
}

// TokenContext returns a valid access token, refreshing it when needed. One
// refresh runs at a time; concurrent callers wait for it, each no longer than
// its own ctx allows (the refresh itself goes on for the others).
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	if s.tok != nil && time.Until(s.tok.Expiry) > expiryMargin {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	r := s.inflight
	if r == nil {
		r = &refresh{done: make(chan struct{})}
		s.inflight = r
		go s.runRefresh(r)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("tokens: waiting for a token: %w", ctx.Err())
	}
}

// InvalidateIssuedBefore drops the cached access token if it was obtained
// before t: the Chat API answered 401 to a call that started at t. Concurrent
// 401s for the same token thus cause one refresh, not one each.
func (s *Source) InvalidateIssuedBefore(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && !s.issuedAt.After(t) {
		s.tok = nil
	}
}

func (s *Source) runRefresh(r *refresh) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	tok, err := s.refresh(ctx)
	s.mu.Lock()
	if err == nil {
		s.tok, s.issuedAt = tok, time.Now()
		s.stats.Refreshes++
	} else {
		s.stats.Failures++
	}
	s.inflight = nil
	s.mu.Unlock()
	r.tok, r.err = tok, err
	close(r.done)
}

// refresh obtains a new access token, reading the secret first when it has
// not been read, and once more after an invalid_grant.
func (s *Source) refresh(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	creds := s.creds
	s.mu.Unlock()
	if creds == nil {
		c, err := s.readSecret(ctx)
		if err != nil {
			return nil, err
		}
		creds = c
	}
	tok, err := s.exchange(ctx, creds)
	if err == nil || !isInvalidGrant(err) {
		return tok, err
	}
	s.log.Warn("token endpoint answered invalid_grant; re-reading the secret", "secret", s.secret)
	c, rerr := s.readSecret(ctx)
	if rerr != nil {
		return nil, fmt.Errorf("tokens: re-reading the secret after invalid_grant: %w", rerr)
	}
	tok, err = s.exchange(ctx, c)
	if err != nil && isInvalidGrant(err) {
		s.log.Log(ctx, logging.LevelCritical, "refresh token rejected after re-reading the secret; authorize again and add a secret version",
			"secret", s.secret, "clientId", c.ClientID)
		return nil, fmt.Errorf("%w (%v)", ErrInvalidGrant, err)
	}
	return tok, err
}

func (s *Source) readSecret(ctx context.Context) (*Credentials, error) {
	// Bound one read (the client retries UNAVAILABLE within it), so that a
	// refresh that met an outage ends soon after the outage does.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := s.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: s.secret})
	if status.Code(err) == codes.FailedPrecondition {
		fix := disabledFix(s.secret)
		s.log.Log(ctx, logging.LevelCritical, "the secret version is not enabled; "+fix, "secret", s.secret, "error", err.Error())
		return nil, fmt.Errorf("%w: reading %s: %w; %s", ErrSecretVersionDisabled, s.secret, err, fix)
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: reading secret %s: %w", s.secret, err)
	}
	p := resp.GetPayload()
	if p == nil {
		return nil, fmt.Errorf("%w: secret %s has no payload", ErrBadSecret, s.secret)
	}
	if p.DataCrc32C != nil {
		want := *p.DataCrc32C
		got := int64(crc32.Checksum(p.Data, crc32.MakeTable(crc32.Castagnoli)))
		if got != want {
			return nil, fmt.Errorf("%w: CRC32C mismatch reading %s (corrupted in transit)", ErrBadSecret, resp.GetName())
		}
	}
	c, err := ParseCredentials(p.Data)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", resp.GetName(), err)
	}
	s.mu.Lock()
	s.creds = &c
	s.stats.SecretReads++
	s.mu.Unlock()
	s.log.Info("read delegated credentials", "secretVersion", resp.GetName(), "clientId", c.ClientID)
	return &c, nil
}

// disabledFix says what an operator does about a secret version that is
// not enabled (version names a version of projects/P/secrets/S).
func disabledFix(version string) string {
	p := strings.Split(version, "/")
	secret, project, v := p[3], p[1], p[5]
	if v != "latest" {
		return fmt.Sprintf("enable it (gcloud secrets versions enable %s --secret=%s --project=%s) or point TOKEN_SECRET at an enabled version", v, secret, project)
	}
	return fmt.Sprintf("versions/latest is the most recently created version, and it is disabled: enable it "+
		"(gcloud secrets versions list %s --project=%s; gcloud secrets versions enable N --secret=%s --project=%s) "+
		"or add a new version (go run ./cmd/authorize); never roll back by disabling the newest version", secret, project, secret, project)
}

// tokenURLField names Config.TokenURL in errors.
const tokenURLField = "TokenURL (OAUTH_TOKEN_URL)"

func (s *Source) exchange(ctx context.Context, c *Credentials) (*oauth2.Token, error) {
	tokenURL, field := c.TokenURI, "token_uri"
	if s.cfg.TokenURL != "" {
		tokenURL, field = s.cfg.TokenURL, tokenURLField
	}
	if tokenURL == "" {
		tokenURL = GoogleTokenURL
	}
	// New and ParseCredentials checked already; checked again here, right
	// before the refresh token leaves, whatever path the URL came by.
	if err := CheckOAuthURL(field, tokenURL); err != nil {
		if field == "token_uri" {
			return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
		}
		return nil, fmt.Errorf("tokens: %w", err)
	}
	conf := &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.hc)
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: c.RefreshToken}).Token()
	if err != nil {
		return nil, sanitize(err)
	}
	return tok, nil
}

// RefreshError is a failed refresh, stripped of the response body.
type RefreshError struct {
	Code        string // RFC 6749 error code, e.g. invalid_grant
	Description string
	Status      int // HTTP status, 0 when no response arrived
	Err         error
}

// Error describes the refresh failure without the response body.
func (e *RefreshError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("tokens: token endpoint answered %d %s: %s", e.Status, e.Code, e.Description)
	}
	return fmt.Sprintf("tokens: token endpoint: %v", e.Err)
}

// Unwrap returns the transport error, if any.
func (e *RefreshError) Unwrap() error { return e.Err }

// AsRefreshError keeps the RFC 6749 error of a failed token exchange (an
// *oauth2.RetrieveError in err's chain) and drops the response body, which
// may echo what was sent. ok is false when err holds no such error.
func AsRefreshError(err error) (re *RefreshError, ok bool) {
	var oe *oauth2.RetrieveError
	if !errors.As(err, &oe) {
		return nil, false
	}
	status := 0
	if oe.Response != nil {
		status = oe.Response.StatusCode
	}
	return &RefreshError{Code: oe.ErrorCode, Description: oe.ErrorDescription, Status: status}, true
}

// sanitize turns any refresh failure into a *RefreshError without a
// response body. Transport errors (*url.Error) name the URL, which holds no
// secret: oauth2 sends credentials in the body, never in the query.
func sanitize(err error) error {
	if re, ok := AsRefreshError(err); ok {
		return re
	}
	return &RefreshError{Err: err}
}

func isInvalidGrant(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && re.Code == "invalid_grant"
}

// IsPermanent reports whether err means that retrying cannot help until an
// operator acts: a rejected refresh token, a bad client, an unusable secret
// or a secret version that is not enabled.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidGrant) || errors.Is(err, ErrBadSecret) || errors.Is(err, ErrSecretVersionDisabled) {
		return true
	}
	var re *RefreshError
	return errors.As(err, &re) && (re.Code == "invalid_client" || re.Code == "unauthorized_client")
}

func validSecretVersion(name string) bool {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "secrets" || p[4] != "versions" {
		return false
	}
	for _, s := range []string{p[1], p[3], p[5]} {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "?#% ") {
			return false
		}
	}
	return true
}

// SecretVersionName expands a TOKEN_SECRET value: a full version name is kept,
// projects/P/secrets/S gets /versions/latest, and a bare secret id is placed in
// project.
func SecretVersionName(value, project string) (string, error) {
	switch {
	case strings.HasPrefix(value, "projects/") && strings.Contains(value, "/versions/"):
	case strings.HasPrefix(value, "projects/"):
		value += "/versions/latest"
	default:
		if project == "" {
			return "", errors.New("a bare secret id needs GOOGLE_CLOUD_PROJECT")
		}
		value = "projects/" + project + "/secrets/" + value + "/versions/latest"
	}
	if !validSecretVersion(value) {
		return "", fmt.Errorf("%q is not projects/P/secrets/S/versions/V or a secret id", value)
	}
	return value, nil
}

// NewSecretManagerClient builds a Secret Manager client: Google's, with
// Application Default Credentials, or, when endpoint is set, an emulator at
// that host:port, dialled in plaintext without credentials and therefore
// refused unless it is a loopback address. The function and cmd/authorize
// both use it.
func NewSecretManagerClient(ctx context.Context, endpoint string, opts ...option.ClientOption) (*secretmanager.Client, error) {
	opts = append([]option.ClientOption(nil), opts...)
	if endpoint != "" {
		if err := CheckLoopback(endpoint); err != nil {
			return nil, err
		}
		opts = append(opts,
			option.WithEndpoint(endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	sm, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tokens: secret manager client: %w", err)
	}
	return sm, nil
}

// CheckLoopback refuses a plaintext endpoint (host:port, the port a
// number) that is not on this machine.
func CheckLoopback(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("tokens: Secret Manager endpoint %q is not host:port: %w", hostport, err)
	}
	if !validPort(port) {
		return fmt.Errorf("tokens: Secret Manager endpoint %q is not host:port: the port is not a number from 1 to 65535", hostport)
	}
	if isLoopbackHost(strings.ToLower(host)) {
		return nil
	}
	return fmt.Errorf("tokens: Secret Manager endpoint %q is not a loopback address; refusing to send credentials in plaintext", hostport)
}

// Transport is an http.RoundTripper that authorizes each request with a token
// from Source, honouring the request's context while it waits for a refresh.
// It is safe for concurrent use.
type Transport struct {
	Source *Source
	Base   http.RoundTripper // nil means http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}
