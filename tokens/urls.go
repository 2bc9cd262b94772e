package tokens

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// GoogleAuthURL is Google's OAuth 2.0 authorization endpoint.
const GoogleAuthURL = "https://accounts.google.com/o/oauth2/v2/auth"

// googleOAuthHosts are the hosts of Google's OAuth endpoints: the token
// endpoints https://oauth2.googleapis.com/token and
// https://www.googleapis.com/oauth2/v4/token, and the authorization endpoints
// https://accounts.google.com/o/oauth2/auth and
// https://accounts.google.com/o/oauth2/v2/auth.
var googleOAuthHosts = map[string]bool{
	"oauth2.googleapis.com": true,
	"accounts.google.com":   true,
	"www.googleapis.com":    true,
}

// CheckOAuthURL reports whether raw, the value of an OAuth endpoint setting
// named field (token_uri, auth_uri, a flag or an environment variable), may
// receive the client secret, a code or a refresh token. It accepts only
//
//   - https URLs on Google's OAuth hosts (oauth2.googleapis.com,
//     accounts.google.com, www.googleapis.com) with no user info and no port
//     other than 443, and
//   - http or https URLs on a loopback host (127.0.0.0/8, ::1 or
//     "localhost"), where the emulations of the tests run.
//
// Any other value, including an empty or unparsable one, is an error that
// names field and the value, so that credentials go only to Google. Callers
// that treat an empty setting as "Google's default" must not call it then.
// Both the tokens package and cmd/authorize use it.
func CheckOAuthURL(field, raw string) error {
	want := GoogleTokenURL
	if f := strings.ToLower(field); strings.Contains(f, "auth") && !strings.Contains(f, "token") {
		want = GoogleAuthURL
	}
	what := fmt.Sprintf("Google's OAuth endpoint (%s) or a loopback emulator", want)
	reject := func(why string) error {
		return fmt.Errorf("%s %q is not %s: %s", field, raw, what, why)
	}
	u, err := parseAbsolute(field, raw, what)
	if err != nil {
		return err
	}
	host := strings.ToLower(u.Hostname())
	if isLoopbackHost(host) {
		return nil
	}
	switch {
	case !googleOAuthHosts[host]:
		return reject("the host is not one of Google's OAuth hosts")
	case u.Scheme != "https":
		return reject("the scheme must be https")
	case u.Port() != "" && u.Port() != "443":
		return reject("a non-default port is not allowed")
	}
	return nil
}

// parseAbsolute parses raw, the value of field, as an absolute http or
// https URL with a host and no user info; what says what it should be, for
// the error.
func parseAbsolute(field, raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// *url.Error quotes raw already; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %q is not %s: unparsable URL: %w", field, raw, what, err)
	}
	why := ""
	switch {
	case u.Opaque != "" || u.Host == "":
		why = "not an absolute URL with a host"
	case u.User != nil:
		why = "user info is not allowed"
	case u.Scheme != "https" && u.Scheme != "http":
		why = "the scheme must be https"
	}
	if why != "" {
		return nil, fmt.Errorf("%s %q is not %s: %s", field, raw, what, why)
	}
	return u, nil
}
