package emulator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OAuthOptions configures an OAuth emulation.
type OAuthOptions struct {
	// TokenLifetime is the lifetime of issued access tokens; 0 means 1 hour.
	TokenLifetime time.Duration
	// ConsentUser is the user ("users/ID") who grants consent at the
	// authorization endpoint; see OAuth.SetConsentUser.
	ConsentUser string
}

// Grant is what an access token stands for.
type Grant struct {
	// User is the user name ("users/ID") the token acts for.
	User string
	// Scopes are the granted OAuth scopes.
	Scopes []string
	// Expiry is when the token stops being valid.
	Expiry time.Time
}

// OAuthStats are the counters of an OAuth emulation.
type OAuthStats struct {
	// Refreshes counts successful refresh_token grants.
	Refreshes int64
	// CodeExchanges counts successful authorization_code grants.
	CodeExchanges int64
	// Errors counts error answers of the token endpoint, faults included.
	Errors int64
	// Faulted counts token endpoint calls answered or dropped by a Fault.
	Faulted int64
	// Revocations counts grants revoked at the revocation endpoint.
	Revocations int64
}

// Paths of the OAuth emulation, relative to URL().
const (
	oauthTokenPath = "/token"
	oauthAuthPath  = "/o/oauth2/v2/auth"
)

type refreshEntry struct {
	clientID string
	user     string
	scopes   []string
	scope    string // space-joined scopes
}

type accessEntry struct {
	g  Grant
	rt string // refresh token it was minted from, "" if none
}

type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	user        string
	scopes      []string
	offline     bool
	expiry      time.Time
}

// OAuth emulates Google's OAuth 2.0 token endpoint (grant types
// refresh_token and authorization_code with PKCE), authorization endpoint
// and revocation endpoint (serveRevoke) on a loopback HTTP server. All methods are safe for concurrent
// use, also while the server handles requests.
type OAuth struct {
	srv      *loopbackServer
	lifetime time.Duration
	faults   faultSet

	mu          sync.RWMutex
	clients     map[string]string // client id -> secret
	refresh     map[string]*refreshEntry
	access      map[string]accessEntry
	codes       map[string]*authCode
	consentUser string
	consentOnly []string // nil = grant what is asked
	deny        bool
	lastAuth    url.Values
	issued      int      // access tokens issued since the last sweep
	minted      []string // every access and refresh token issued, in order

	refreshes, exchanges, errs, faulted, revocations atomic.Int64
}

// NewOAuth starts an OAuth emulation on 127.0.0.1 with an ephemeral port.
// It panics if no loopback port is available.
func NewOAuth(opts OAuthOptions) *OAuth {
	o := &OAuth{
		lifetime:    opts.TokenLifetime,
		clients:     map[string]string{},
		refresh:     map[string]*refreshEntry{},
		access:      map[string]accessEntry{},
		codes:       map[string]*authCode{},
		consentUser: opts.ConsentUser,
	}
	if o.lifetime <= 0 {
		o.lifetime = time.Hour
	}
	mux := http.NewServeMux()
	mux.HandleFunc(oauthTokenPath, o.serveToken)
	mux.HandleFunc(oauthAuthPath, o.serveAuth)
	mux.HandleFunc(oauthRevokePath, o.serveRevoke)
	o.srv = startLoopback(mux)
	return o
}

// URL returns the base URL of the server, "http://127.0.0.1:PORT".
func (o *OAuth) URL() string { return o.srv.base }

// TokenURL returns the token endpoint URL (for oauth2.Endpoint.TokenURL and
// the token_uri of an authorized_user credential).
func (o *OAuth) TokenURL() string { return o.srv.base + oauthTokenPath }

// AuthURL returns the authorization endpoint URL (for
// oauth2.Endpoint.AuthURL).
func (o *OAuth) AuthURL() string { return o.srv.base + oauthAuthPath }

// Close stops the server and closes its connections. It is idempotent.
func (o *OAuth) Close() { o.srv.close() }

// RegisterClient registers (or re-keys) an OAuth client.
func (o *OAuth) RegisterClient(id, secret string) {
	o.mu.Lock()
	o.clients[id] = secret
	o.mu.Unlock()
}

func randomToken(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// IssueRefreshToken returns a new random refresh token of client clientID
// bound to user ("users/ID") and scopes, as if the user had consented.
func (o *OAuth) IssueRefreshToken(clientID, user string, scopes []string) string {
	rt := randomToken("1//emu-")
	e := &refreshEntry{clientID: clientID, user: user, scopes: slices.Clone(scopes), scope: strings.Join(scopes, " ")}
	o.mu.Lock()
	o.refresh[rt] = e
	o.minted = append(o.minted, rt)
	o.mu.Unlock()
	return rt
}

// IssuedTokens returns every access and refresh token the emulation has
// issued, so that a test can check that none of them leaks into logs,
// errors or results.
func (o *OAuth) IssuedTokens() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return slices.Clone(o.minted)
}

// RevokeRefreshToken revokes a refresh token and every access token minted
// from it; using it afterwards answers invalid_grant.
func (o *OAuth) RevokeRefreshToken(rt string) {
	o.mu.Lock()
	delete(o.refresh, rt)
	for at, e := range o.access {
		if e.rt == rt {
			delete(o.access, at)
		}
	}
	o.mu.Unlock()
}

// IssueAccessToken mints an access token for user and scopes directly,
// without the token endpoint (for benchmarks and tests that do not exercise
// the OAuth flow). It expires after the configured token lifetime.
func (o *OAuth) IssueAccessToken(user string, scopes []string) string {
	return o.mint(user, slices.Clone(scopes), "")
}

// mint records a new access token.
func (o *OAuth) mint(user string, scopes []string, rt string) string {
	at := randomToken("ya29.emu-")
	now := time.Now()
	o.mu.Lock()
	o.issued++
	if o.issued >= 4096 {
		o.issued = 0
		for k, e := range o.access {
			if !now.Before(e.g.Expiry) {
				delete(o.access, k)
			}
		}
	}
	o.access[at] = accessEntry{g: Grant{User: user, Scopes: scopes, Expiry: now.Add(o.lifetime)}, rt: rt}
	o.minted = append(o.minted, at)
	o.mu.Unlock()
	return at
}

// Verify reports the grant of a valid (issued, unexpired, unrevoked) access
// token. The returned Scopes slice is shared: do not modify it.
func (o *OAuth) Verify(accessToken string) (Grant, bool) {
	o.mu.RLock()
	e, ok := o.access[accessToken]
	o.mu.RUnlock()
	if !ok || !time.Now().Before(e.g.Expiry) {
		return Grant{}, false
	}
	return e.g, true
}

// verifyBearer verifies the access token of r's "Authorization: Bearer"
// header, as Verify does; a request without one has no grant.
func (o *OAuth) verifyBearer(r *http.Request) (Grant, bool) {
	tok, ok := bearerToken(r)
	if !ok {
		return Grant{}, false
	}
	return o.Verify(tok)
}

// ExpireAccessTokens invalidates every access token issued so far,
// simulating early expiry: APIs then answer 401 until the client refreshes.
func (o *OAuth) ExpireAccessTokens() {
	o.mu.Lock()
	clear(o.access)
	o.mu.Unlock()
}

// InjectFault adds a fault for the token endpoint (Method "token"), the
// revocation endpoint ("revoke"), or both ("").
func (o *OAuth) InjectFault(f Fault) { o.faults.add(f) }

// ClearFaults removes all injected faults.
func (o *OAuth) ClearFaults() { o.faults.clear() }

// Stats returns the current counters.
func (o *OAuth) Stats() OAuthStats {
	return OAuthStats{
		Refreshes:     o.refreshes.Load(),
		CodeExchanges: o.exchanges.Load(),
		Errors:        o.errs.Load(),
		Faulted:       o.faulted.Load(),
		Revocations:   o.revocations.Load(),
	}
}

// oauthError answers an RFC 6749 error.
func (o *OAuth) oauthError(w http.ResponseWriter, code int, errCode, desc string) {
	o.errs.Add(1)
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{errCode, desc})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="emulator"`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

func (o *OAuth) serveToken(w http.ResponseWriter, r *http.Request) {
	o.withFaults(w, r, "token", o.serveTokenCall)
}

// withFaults serves a call of the token ("token") or revocation ("revoke")
// endpoint through the faults matched for method: a latency, then either
// the fault's answer, or serve; with AfterApply, serve first (a token
// issued, a code used up, a grant revoked) and then the fault's answer.
func (o *OAuth) withFaults(w http.ResponseWriter, r *http.Request, method string, serve http.HandlerFunc) {
	f, ok := o.faults.match(method)
	if ok && !sleepCtx(r.Context(), f.Latency) {
		return
	}
	if ok && f.AfterApply && (f.Drop || f.Status != 0) {
		serve(discardResponse{h: http.Header{}}, r)
	}
	if ok && o.tokenFault(w, f) {
		return
	}
	serve(w, r)
}

// tokenFault answers the token endpoint call with the fault f (a dropped
// connection, or an RFC 6749 error with f.Status) and reports whether it
// did.
func (o *OAuth) tokenFault(w http.ResponseWriter, f Fault) bool {
	if f.Drop {
		// Counted before the client can see the drop.
		o.faulted.Add(1)
		o.errs.Add(1)
		if dropConn(w) {
			return true
		}
		o.faulted.Add(-1)
		o.errs.Add(-1)
	}
	if f.Drop && f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	if f.Status == 0 {
		return false
	}
	o.faulted.Add(1)
	setRetryAfter(w, f.RetryAfter)
	code := "server_error"
	switch f.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		code = "temporarily_unavailable"
	case http.StatusBadRequest:
		code = "invalid_request"
	case http.StatusUnauthorized:
		code = "invalid_client"
	}
	o.oauthError(w, f.Status, code, "injected fault")
	return true
}

// serveTokenCall answers a token endpoint call past its faults.
func (o *OAuth) serveTokenCall(w http.ResponseWriter, r *http.Request) {
	if !o.readForm(w, r, "token", false) {
		return
	}
	form := r.PostForm
	clientID, ok := o.authenticateClient(r, form)
	if !ok {
		o.oauthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found or its secret is wrong.")
		return
	}
	switch form.Get("grant_type") {
	case "refresh_token":
		o.refreshGrant(w, form, clientID)
	case "authorization_code":
		o.codeGrant(w, form, clientID)
	case "":
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
	default:
		o.oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
	}
}

// readForm checks that r is a form-encoded POST to the endpoint named what
// and parses its form (at most 64 KiB); an empty body may go without a
// Content-Type when emptyOK. It answers the error and reports false
// otherwise.
func (o *OAuth) readForm(w http.ResponseWriter, r *http.Request, what string, emptyOK bool) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		o.oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "the "+what+" endpoint accepts POST only")
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" && !(emptyOK && r.ContentLength == 0) {
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return false
	}
	return true
}

// authenticateClient checks HTTP Basic or form client credentials.
func (o *OAuth) authenticateClient(r *http.Request, form url.Values) (string, bool) {
	var id, secret string
	if u, p, ok := r.BasicAuth(); ok {
		var err1, err2 error
		id, err1 = url.QueryUnescape(u)
		secret, err2 = url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			return "", false
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return "", false
		}
		if form.Has("client_secret") {
			return "", false // two authentication methods
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return "", false
	}
	o.mu.RLock()
	want, ok := o.clients[id]
	o.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return "", false
	}
	return id, true
}

// requiredParam returns the value of the form parameter name, or answers
// invalid_request and reports false when it is missing or empty.
func (o *OAuth) requiredParam(w http.ResponseWriter, form url.Values, name string) (string, bool) {
	v := form.Get(name)
	if v == "" {
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: "+name)
		return "", false
	}
	return v, true
}

func (o *OAuth) refreshGrant(w http.ResponseWriter, form url.Values, clientID string) {
	rt, ok := o.requiredParam(w, form, "refresh_token")
	if !ok {
		return
	}
	o.mu.RLock()
	e, ok := o.refresh[rt]
	o.mu.RUnlock()
	if !ok || e.clientID != clientID {
		o.oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	scopes, scope := e.scopes, e.scope
	if s := form.Get("scope"); s != "" {
		req := strings.Fields(s)
		for _, sc := range req {
			if !slices.Contains(e.scopes, sc) {
				o.oauthError(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were not granted.")
				return
			}
		}
		scopes, scope = req, strings.Join(req, " ")
	}
	at := o.mint(e.user, scopes, rt)
	o.refreshes.Add(1)
	writeToken(w, tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(o.lifetime / time.Second), Scope: scope})
}

func writeToken(w http.ResponseWriter, tr tokenResponse) {
	body, _ := json.Marshal(tr)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
