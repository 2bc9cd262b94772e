package emulator

import "net/http"

// oauthRevokePath is the revocation endpoint, relative to URL(): Google's is
// https://oauth2.googleapis.com/revoke.
const oauthRevokePath = "/revoke"

// RevokeURL returns the URL of the revocation endpoint.
func (o *OAuth) RevokeURL() string { return o.srv.base + oauthRevokePath }

// serveRevoke emulates Google's token revocation ("Revoking a token" in
// Google's OAuth 2.0 guides): a POST, form-encoded, whose token parameter
// (in the body, or in the query as Google's curl example has it) is a
// refresh or an access token; 200 when revoked, 400 invalid_token for a
// token it does not know (already revoked, or never issued). Revoking an
// access token revokes the refresh token it came from. Google revokes the
// grant, not one token: every refresh token of the same client and user
// stops working, and their access tokens. Where Google says less than
// that, this is the stricter reading: code that revokes an old credential
// must not count on a new one of the same client and admin surviving.
// Faults with Method "revoke" apply (see withFaults).
func (o *OAuth) serveRevoke(w http.ResponseWriter, r *http.Request) {
	o.withFaults(w, r, "revoke", o.serveRevokeCall)
}

// serveRevokeCall answers a revocation endpoint call past its faults.
func (o *OAuth) serveRevokeCall(w http.ResponseWriter, r *http.Request) {
	if !o.readForm(w, r, "revocation", true) {
		return
	}
	tok := r.Form.Get("token")
	if tok == "" {
		o.oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: token")
		return
	}
	if !o.revokeGrant(tok) {
		o.oauthError(w, http.StatusBadRequest, "invalid_token", "Token expired or revoked")
		return
	}
	o.revocations.Add(1)
	w.WriteHeader(http.StatusOK)
}

// revokeGrant revokes the grant of tok (a refresh token, or an access token
// minted from one): every refresh token of its client and user, and the
// access tokens minted from them. It reports false for a token it does not
// know.
func (o *OAuth) revokeGrant(tok string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	rt := tok
	if a, ok := o.access[tok]; ok {
		delete(o.access, tok)
		if a.rt == "" {
			return true
		}
		rt = a.rt
	}
	e, ok := o.refresh[rt]
	if !ok {
		return rt != tok // an access token without a live refresh token
	}
	for k, other := range o.refresh {
		if other.clientID == e.clientID && other.user == e.user {
			delete(o.refresh, k)
		}
	}
	for k, a := range o.access {
		if _, live := o.refresh[a.rt]; a.rt != "" && !live {
			delete(o.access, k)
		}
	}
	return true
}

// RefreshTokenActive reports whether rt is a refresh token the token
// endpoint still accepts.
func (o *OAuth) RefreshTokenActive(rt string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, ok := o.refresh[rt]
	return ok
}
