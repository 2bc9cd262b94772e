package tokens

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// googleAPISuffix is the domain of Google's API hosts (chat.googleapis.com,
// admin.googleapis.com, www.googleapis.com, regional and mTLS variants).
const googleAPISuffix = ".googleapis.com"

// CheckAPIEndpoint reports whether raw, the value of the API endpoint
// setting named field (CHAT_ENDPOINT, DIRECTORY_ENDPOINT, REPORTS_ENDPOINT),
// may receive the delegated admin's bearer token. It parses raw as a URL and
// accepts only
//
//   - http or https on a loopback host (127.0.0.0/8, ::1 or "localhost"),
//     where the emulations of the tests run, and
//   - https on a Google API host (a name under googleapis.com, such as
//     chat.googleapis.com) on the default port,
//
// in both cases with no user info, no query and no fragment. Anything else,
// "http://127.0.0.1:1@evil.example/" included (its host is evil.example),
// is an error naming field and the value. Callers treat an empty setting as
// "the client library's Google default" and do not call it then.
func CheckAPIEndpoint(field, raw string) error {
	const what = "a Google API endpoint (https://NAME.googleapis.com/) or a loopback emulator"
	reject := func(why string) error {
		return fmt.Errorf("%s %q is not %s: %s", field, raw, what, why)
	}
	u, err := parseAbsolute(field, raw, what)
	if err != nil {
		return err
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return reject("a query or a fragment is not allowed")
	case u.Port() != "" && !validPort(u.Port()):
		return reject("the port is not a number from 1 to 65535")
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case isLoopbackHost(host):
		return nil
	case u.Scheme != "https":
		return reject("http is allowed only to a loopback host; the scheme must be https")
	case !isGoogleAPIHost(host):
		return reject("the host is not a Google API host (under googleapis.com)")
	case u.Port() != "" && u.Port() != "443":
		return reject("a non-default port is not allowed")
	}
	return nil
}

// isLoopbackHost reports whether host (lower case, without brackets) is
// "localhost" or a loopback IP address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isGoogleAPIHost reports whether host is a DNS name under googleapis.com
// made of letters, digits, hyphens and dots only.
func isGoogleAPIHost(host string) bool {
	if !strings.HasSuffix(host, googleAPISuffix) || len(host) == len(googleAPISuffix) {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// validPort reports whether p is a decimal port from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// ErrCrossHostRedirect reports a redirect to another host than the
// request's own, refused by CheckRedirect. Test with errors.Is.
var ErrCrossHostRedirect = errors.New("tokens: refusing a redirect to another host: it would carry the credentials there")

// CheckRedirect is the redirect policy of every http.Client that carries
// credentials (Transport's bearer token, a refresh token in a token
// request): a redirect is followed only to the same scheme, host and port
// as the original request, at most 10 times. tokens.Transport authorizes
// every request it sends, redirected ones included, and Go's client strips
// the Authorization header only when the caller set it; so without this
// policy a redirect from an API (or anything answering in its place) would
// receive the admin's token. Safe for concurrent use.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("tokens: stopped after 10 redirects")
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("%w (from %s to %s)", ErrCrossHostRedirect, first.Host, req.URL.Host)
	}
	return nil
}

// NewHTTPClient returns an http.Client that authorizes every request with a
// token from src (Transport over base; nil base means
// http.DefaultTransport), gives up after timeout (0: never), and follows no
// redirect to another host (CheckRedirect). Safe for concurrent use.
func NewHTTPClient(src *Source, base http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{Transport: &Transport{Source: src, Base: base}, Timeout: timeout, CheckRedirect: CheckRedirect}
}
