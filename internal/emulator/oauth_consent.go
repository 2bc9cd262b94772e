// The authorization code flow of the OAuth emulation: the consent screen
// (the authorization endpoint) and the authorization_code grant of the token
// endpoint.

package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SetConsentUser sets the user ("users/ID") who grants consent at the
// authorization endpoint.
func (o *OAuth) SetConsentUser(user string) {
	o.mu.Lock()
	o.consentUser = user
	o.mu.Unlock()
}

// SetConsentScopes limits the scopes the consenting user grants to those of
// scopes that were asked for (granular consent); nil grants all asked scopes.
func (o *OAuth) SetConsentScopes(scopes []string) {
	o.mu.Lock()
	o.consentOnly = slices.Clone(scopes)
	o.mu.Unlock()
}

// SetDenyConsent makes the authorization endpoint answer
// error=access_denied (the user clicked "Cancel").
func (o *OAuth) SetDenyConsent(deny bool) {
	o.mu.Lock()
	o.deny = deny
	o.mu.Unlock()
}

// LastAuthRequest returns a copy of the query parameters of the last
// request to the authorization endpoint, or nil.
func (o *OAuth) LastAuthRequest() url.Values {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.lastAuth == nil {
		return nil
	}
	c := make(url.Values, len(o.lastAuth))
	for k, v := range o.lastAuth {
		c[k] = slices.Clone(v)
	}
	return c
}

// serveAuth plays Google's consent screen: it answers 302 to redirect_uri
// with a code (or error=access_denied), or 400 when the request is not
// redirectable (unknown client, bad redirect_uri).
func (o *OAuth) serveAuth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	o.mu.Lock()
	o.lastAuth = q
	_, known := o.clients[q.Get("client_id")]
	user, deny, only := o.consentUser, o.deny, o.consentOnly
	o.mu.Unlock()
	if !known {
		http.Error(w, "Error 401: invalid_client. The OAuth client was not found.", http.StatusUnauthorized)
		return
	}
	redirect := q.Get("redirect_uri")
	if !loopbackRedirect(redirect) {
		http.Error(w, "Error 400: redirect_uri_mismatch. redirect_uri must be http://127.0.0.1:PORT/...", http.StatusBadRequest)
		return
	}
	if code, desc := refuseAuth(q, user, deny); code != "" {
		redirectBack(w, r, redirect, q.Get("state"), url.Values{"error": {code}, "error_description": {desc}})
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if only != nil {
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return !slices.Contains(only, s) })
	}
	code := o.issueCode(&authCode{
		clientID:    q.Get("client_id"),
		redirectURI: redirect,
		challenge:   q.Get("code_challenge"),
		user:        user,
		scopes:      scopes,
		offline:     q.Get("access_type") == "offline",
	})
	redirectBack(w, r, redirect, q.Get("state"), url.Values{"code": {code}, "scope": {strings.Join(scopes, " ")}})
}

// refuseAuth returns the error code and description with which the consent
// screen refuses the authorization request q, or "" when it consents (as
// user, unless deny is set).
func refuseAuth(q url.Values, user string, deny bool) (code, desc string) {
	switch {
	case q.Get("response_type") != "code":
		return "unsupported_response_type", "response_type must be code"
	case strings.TrimSpace(q.Get("scope")) == "":
		return "invalid_scope", "Missing required parameter: scope"
	case q.Get("code_challenge_method") != "S256":
		return "invalid_request", "code_challenge_method must be S256"
	case len(q.Get("code_challenge")) != 43:
		return "invalid_request", "code_challenge must be a base64url SHA-256 digest"
	case deny:
		return "access_denied", "The user denied access."
	case user == "":
		return "access_denied", "No consent user is configured."
	}
	return "", ""
}

// redirectBack answers 302 to redirect with params (and state, if any)
// added to its query.
func redirectBack(w http.ResponseWriter, r *http.Request, redirect, state string, params url.Values) {
	if state != "" {
		params.Set("state", state)
	}
	u, _ := url.Parse(redirect)
	qq := u.Query()
	for k, v := range params {
		qq[k] = v
	}
	u.RawQuery = qq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// issueCode stores c under a new random authorization code, valid for ten
// minutes, and returns the code. Expired codes are dropped once 1024 are
// outstanding.
func (o *OAuth) issueCode(c *authCode) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	code := "4/emu-" + hex.EncodeToString(b[:])
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.codes) >= 1024 {
		now := time.Now()
		for k, old := range o.codes {
			if now.After(old.expiry) {
				delete(o.codes, k)
			}
		}
	}
	c.expiry = time.Now().Add(10 * time.Minute)
	o.codes[code] = c
	return code
}

func (o *OAuth) codeGrant(w http.ResponseWriter, form url.Values, clientID string) {
	code, ok := o.requiredParam(w, form, "code")
	if !ok {
		return
	}
	o.mu.Lock()
	c, ok := o.codes[code]
	delete(o.codes, code) // single use, whatever the outcome
	o.mu.Unlock()
	switch {
	case !ok || time.Now().After(c.expiry):
		o.oauthError(w, http.StatusBadRequest, "invalid_grant", "Malformed auth code.")
		return
	case c.clientID != clientID:
		o.oauthError(w, http.StatusBadRequest, "invalid_grant", "The authorization code was issued to another client.")
		return
	case form.Get("redirect_uri") != c.redirectURI:
		o.oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request.")
		return
	}
	v := form.Get("code_verifier")
	sum := sha256.Sum256([]byte(v))
	if v == "" || !validVerifier(v) || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		o.oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
		return
	}
	tr := tokenResponse{TokenType: "Bearer", ExpiresIn: int64(o.lifetime / time.Second), Scope: strings.Join(c.scopes, " ")}
	if c.offline {
		tr.RefreshToken = o.IssueRefreshToken(clientID, c.user, c.scopes)
	}
	tr.AccessToken = o.mint(c.user, c.scopes, tr.RefreshToken)
	o.exchanges.Add(1)
	writeToken(w, tr)
}

// validVerifier checks RFC 7636 section 4.1: 43..128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// loopbackRedirect reports whether u is an acceptable redirect URI: http on
// 127.0.0.1 or [::1], no fragment.
func loopbackRedirect(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" || p.Fragment != "" || p.User != nil {
		return false
	}
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback() && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}
