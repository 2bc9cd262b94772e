package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/oauth2"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// GoogleRevokeURL is Google's token revocation endpoint.
const GoogleRevokeURL = "https://oauth2.googleapis.com/revoke"

// revokeURL is the revocation endpoint beside the token endpoint tokenURL:
// Google's for a token endpoint on Google's hosts, else (a loopback
// emulator) /revoke on the token endpoint's origin.
func revokeURL(tokenURL string) string {
	u, err := url.Parse(tokenURL)
	if err != nil || strings.HasSuffix(strings.ToLower(u.Hostname()), ".googleapis.com") || strings.EqualFold(u.Hostname(), "accounts.google.com") {
		return GoogleRevokeURL
	}
	return u.Scheme + "://" + u.Host + "/revoke"
}

// revokeToken revokes token (a refresh token) at the revocation endpoint
// beside tokenURL: a form POST, as Google documents it. Google revokes the
// grant the token belongs to: every token of that admin for that OAuth
// client. It runs on its own 30 s, even after ctx ended (it cleans up after
// a failure), and its errors never quote the token.
func revokeToken(ctx context.Context, tokenURL, token string) error {
	u := revokeURL(tokenURL)
	if err := tokens.CheckOAuthURL("revocation endpoint", u); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return fmt.Errorf("revoking at %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := &http.Client{CheckRedirect: tokens.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("revoking at %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoking at %s: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// revokeAfterFailure revokes the refresh token of a consent that cannot be
// kept (a partial grant, a credential that cannot be stored) and returns
// why, saying whether the token is dead: a live token that nothing stores
// is still a grant of the admin's. When the secret's current credential is
// of the same OAuth client (keep), it is not revoked: Google revokes the
// admin's whole grant to the client, which would take the function's
// working credential with it.
func revokeAfterFailure(ctx context.Context, o *options, keep bool, refreshToken string, why error) error {
	if keep {
		return fmt.Errorf("%w; the new refresh token was not revoked: the secret's current credential is of the same OAuth client, and revoking would revoke the admin's whole grant, that credential's too", why)
	}
	if err := revokeToken(ctx, o.tokenURL, refreshToken); err != nil {
		return fmt.Errorf("%w; the new refresh token could NOT be revoked (%v): remove the app's access in the admin's Google Account (https://myaccount.google.com/permissions)", why, err)
	}
	return fmt.Errorf("%w; the new refresh token was revoked at Google", why)
}

// sameClient reports whether p is a credential of OAuth client clientID
// (nil: no).
func (p *previous) sameClient(clientID string) bool { return p != nil && p.creds.ClientID == clientID }

// previous is the credential a rotation replaces: the secret's latest
// version before this run.
type previous struct {
	version string // projects/P/secrets/S/versions/N
	creds   tokens.Credentials
}

// tokenURL is the previous credential's token endpoint (Google's when it
// names none).
func (p *previous) tokenURL() string { return cmp.Or(p.creds.TokenURI, tokens.GoogleTokenURL) }

// readPrevious reads the secret's latest version, the credential this run
// replaces. It returns nil (and says so) when there is none or it cannot be
// read: adding versions does not need reading them.
func readPrevious(ctx context.Context, sm *secretmanager.Client, secret string, stdout io.Writer) *previous {
	if sm == nil {
		return nil
	}
	v, err := sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: secret + "/versions/latest"})
	if err != nil {
		return nil // no version yet, or no permission to read: nothing to retire
	}
	creds, err := tokens.ParseCredentials(v.GetPayload().GetData())
	if err != nil {
		fmt.Fprintf(stdout, "The latest version %s is not a usable credential; it is left as it is.\n", v.GetName())
		return nil
	}
	return &previous{version: v.GetName(), creds: creds}
}

// works refreshes refreshToken once at the token endpoint: the credential
// the function will read works.
func (c *authRequest) works(ctx context.Context, refreshToken string) error {
	hctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second, CheckRedirect: tokens.CheckRedirect})
	if _, err := c.conf.TokenSource(hctx, &oauth2.Token{RefreshToken: refreshToken}).Token(); err != nil {
		return fmt.Errorf("the stored credential does not refresh: %w", sanitize(err))
	}
	return nil
}

// retire revokes the previous credential at Google once the new one works:
// when it is another OAuth client's (another grant), or when
// --revoke-previous revoked it before the consent already. A previous
// credential of the same OAuth client may be the same admin's, and Google
// revokes grants, not tokens: revoking it would revoke the new credential
// too, so it is left to --revoke-previous (which revokes before the
// consent) and said so.
func (c *authRequest) retire(ctx context.Context, o *options, prev *previous, refreshToken string, stdout io.Writer) error {
	if prev == nil || prev.creds.RefreshToken == refreshToken || o.revokePrevious {
		return nil
	}
	if err := c.works(ctx, refreshToken); err != nil {
		return fmt.Errorf("%w; the previous credential (%s) was not revoked", err, prev.version)
	}
	if prev.sameClient(o.clientID) {
		fmt.Fprintf(stdout, "The previous credential (%s) is of the same OAuth client and was not revoked: Google revokes an admin's whole grant to a client,\n"+
			"so if it is the same admin's, revoking it would revoke the new one too. If it is another admin's, or may be compromised,\n"+
			"run again with --revoke-previous (it revokes the latest version before the consent). Disable the old version either way.\n", prev.version)
		return nil
	}
	if err := revokeToken(ctx, prev.tokenURL(), prev.creds.RefreshToken); err != nil {
		return fmt.Errorf("the new credential works, but the previous one (%s) could not be revoked: %w; revoke it in the old admin's Google Account or the Admin console", prev.version, err)
	}
	fmt.Fprintf(stdout, "Revoked the previous credential (%s, another OAuth client) at Google.\n", prev.version)
	return nil
}

// revokeBefore is --revoke-previous: it revokes the previous credential's
// grant before the consent, so that the new grant is not the one revoked.
// The function fails with invalid_grant until the new version is stored.
func revokeBefore(ctx context.Context, o *options, prev *previous, stdout io.Writer) error {
	if !o.revokePrevious {
		return nil
	}
	if prev == nil {
		return errors.New("--revoke-previous: the secret's latest version cannot be read (none, no permission, or not a credential); nothing was asked")
	}
	if err := revokeToken(ctx, prev.tokenURL(), prev.creds.RefreshToken); err != nil {
		return fmt.Errorf("--revoke-previous: %w; nothing was asked", err)
	}
	fmt.Fprintf(stdout, "Revoked the previous credential (%s) at Google: the function fails with invalid_grant until the new one is stored.\n", prev.version)
	return nil
}
