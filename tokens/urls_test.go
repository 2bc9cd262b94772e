package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// rejectedOAuthURLs are endpoint values that must never receive a secret.
var rejectedOAuthURLs = []string{
	"http://oauth2.googleapis.com/token",           // plaintext to Google
	"https://oauth2.googleapis.com.evil.com/token", // look-alike host
	"https://evil@oauth2.googleapis.com/token",     // user info
	"https://user:pw@oauth2.googleapis.com/token",  // user info with password
	"https://oauth2.googleapis.com:8443/token",     // non-default port
	"https://10.0.0.1/token",                       // private, non-loopback IP
	"https://8.8.8.8/token",                        // public IP
	"https://[2001:db8::1]/token",                  // non-loopback IPv6
	"https://example.com/token",
	"https://evil.example/token",
	"https://googleapis.com/token",         // not one of the OAuth hosts
	"https://oauth2.googleapis.com./token", // trailing dot: another name
	"ftp://oauth2.googleapis.com/token",
	"//oauth2.googleapis.com/token",     // no scheme
	"oauth2.googleapis.com/token",       // relative
	"https:oauth2.googleapis.com",       // opaque
	"http://[::1",                       // unparsable
	"https://oauth2.googleapis.com/%zz", // unparsable escape
	"",
}

// acceptedOAuthURLs are Google's endpoints and loopback emulators.
var acceptedOAuthURLs = []string{
	"https://oauth2.googleapis.com/token",
	"https://accounts.google.com/o/oauth2/auth",
	"https://accounts.google.com/o/oauth2/v2/auth",
	"https://www.googleapis.com/oauth2/v4/token",
	"https://oauth2.googleapis.com:443/token",
	"https://OAuth2.GoogleAPIs.com/token",
	"http://127.0.0.1:8080/token",
	"https://127.0.0.1/token",
	"http://127.1.2.3:1/token",
	"http://[::1]:9000/token",
	"http://localhost:4000/o/oauth2/auth",
	"https://localhost/token",
}

func TestCheckOAuthURL(t *testing.T) {
	for _, field := range []string{"token_uri", "auth_uri", "TokenURL"} {
		for _, raw := range rejectedOAuthURLs {
			t.Run("reject/"+field+"/"+raw, func(t *testing.T) {
				err := tokens.CheckOAuthURL(field, raw)
				if err == nil {
					t.Fatalf("%s %q accepted", field, raw)
				}
				if !strings.HasPrefix(err.Error(), field+" ") || !strings.Contains(err.Error(), fmt.Sprintf("%q", raw)) {
					t.Errorf("error %q does not name %s and the value", err, field)
				}
				if !strings.Contains(err.Error(), "is not Google's OAuth endpoint") {
					t.Errorf("error %q does not say why", err)
				}
			})
		}
		for _, raw := range acceptedOAuthURLs {
			if err := tokens.CheckOAuthURL(field, raw); err != nil {
				t.Errorf("%s %q refused: %v", field, raw, err)
			}
		}
	}
	// The error shows the right Google endpoint for the kind of field.
	err := tokens.CheckOAuthURL("token_uri", "https://evil.example/token")
	if want := `token_uri "https://evil.example/token" is not Google's OAuth endpoint (https://oauth2.googleapis.com/token) or a loopback emulator`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start with %s", err, want)
	}
	if err := tokens.CheckOAuthURL("auth_uri", "https://evil.example/auth"); err == nil || !strings.Contains(err.Error(), tokens.GoogleAuthURL) {
		t.Errorf("auth_uri error %v does not show %s", err, tokens.GoogleAuthURL)
	}
	// An unparsable URL wraps the parser's reason.
	if err := tokens.CheckOAuthURL("token_uri", "http://[::1"); err == nil || errors.Unwrap(err) == nil {
		t.Errorf("unparsable URL: %v does not wrap the parse error", err)
	}
}

func TestParseCredentialsTokenURI(t *testing.T) {
	payload := func(uri string) []byte {
		return emulator.AuthorizedUserJSON("id", "CLIENT-SECRET-MARKER", "REFRESH-TOKEN-MARKER", uri)
	}
	for _, raw := range rejectedOAuthURLs {
		if raw == "" {
			continue // no token_uri: Google's default
		}
		_, err := tokens.ParseCredentials(payload(raw))
		if !errors.Is(err, tokens.ErrBadSecret) || !strings.Contains(err.Error(), "token_uri") || !tokens.IsPermanent(err) {
			t.Errorf("token_uri %q: %v, want a permanent ErrBadSecret naming token_uri", raw, err)
		}
		if err != nil && (strings.Contains(err.Error(), "CLIENT-SECRET-MARKER") || strings.Contains(err.Error(), "REFRESH-TOKEN-MARKER")) {
			t.Errorf("token_uri %q: the error shows a secret: %v", raw, err)
		}
	}
	for _, raw := range append([]string{""}, acceptedOAuthURLs...) {
		if _, err := tokens.ParseCredentials(payload(raw)); err != nil {
			t.Errorf("token_uri %q refused: %v", raw, err)
		}
	}
}

func TestConfigTokenURLMustBeGoogle(t *testing.T) {
	for _, raw := range rejectedOAuthURLs {
		if raw == "" {
			continue // unset: the credentials' token_uri
		}
		_, err := tokens.New(context.Background(), tokens.Config{Secret: "projects/p/secrets/s/versions/1", TokenURL: raw})
		if err == nil || !strings.Contains(err.Error(), "OAUTH_TOKEN_URL") || !strings.Contains(err.Error(), "TokenURL") {
			t.Errorf("TokenURL %q: %v, want an error naming TokenURL (OAUTH_TOKEN_URL)", raw, err)
		}
	}
	for _, raw := range acceptedOAuthURLs {
		src, err := tokens.New(context.Background(), tokens.Config{Secret: "projects/p/secrets/s/versions/1", SecretManagerEndpoint: "127.0.0.1:1", TokenURL: raw})
		if err != nil {
			t.Errorf("TokenURL %q refused: %v", raw, err)
			continue
		}
		src.Close()
	}
}

// recordingTransport fails every request and remembers it: with it as the
// Source's HTTP client, nothing can leave the process unseen.
type recordingTransport struct {
	mu   sync.Mutex
	reqs []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.reqs = append(rt.reqs, r.Method+" "+r.URL.String())
	return nil, errors.New("recordingTransport: no request may be sent")
}

func (rt *recordingTransport) requests() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.reqs...)
}

// TestNonGoogleTokenURIInSecretNeverSent: a credential in Secret Manager whose
// token_uri is not Google's makes the source fail, naming token_uri, before
// the refresh token is sent anywhere, even when OAUTH_TOKEN_URL points at the
// (loopback) emulation.
func TestNonGoogleTokenURIInSecretNeverSent(t *testing.T) {
	for _, override := range []bool{false, true} {
		for _, uri := range []string{
			"https://evil.example/token",
			"http://oauth2.googleapis.com/token",
			"https://oauth2.googleapis.com.evil.com/token",
			"https://evil@oauth2.googleapis.com/token",
			"https://10.0.0.1/token",
		} {
			t.Run(fmt.Sprintf("override=%v/%s", override, uri), func(t *testing.T) {
				st := stack(t)
				const refresh = "REFRESH-TOKEN-MARKER-7f3a"
				v := st.Secrets.AddVersion(st.Project, emulator.StackSecretID,
					emulator.AuthorizedUserJSON(st.ClientID, st.ClientSecret, refresh, uri))
				rt := &recordingTransport{}
				var logs bytes.Buffer
				cfg := tokens.Config{
					Secret:                v,
					SecretManagerEndpoint: st.Secrets.Addr(),
					HTTPClient:            &http.Client{Transport: rt},
					Logger:                slog.New(slog.NewJSONHandler(&logs, nil)),
				}
				if override {
					cfg.TokenURL = st.OAuth.TokenURL()
				}
				src, err := tokens.New(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				// Through the Transport too: the Chat API call must not go out.
				hc := &http.Client{Transport: &tokens.Transport{Source: src, Base: rt}}
				if resp, err := hc.Get(st.Chat.URL()); err == nil {
					resp.Body.Close()
					t.Fatal("a request was authorized")
				}
				_, err = src.Token()
				if err == nil {
					t.Fatal("Token succeeded")
				}
				if !strings.Contains(err.Error(), "token_uri") || !strings.Contains(err.Error(), uri) ||
					!errors.Is(err, tokens.ErrBadSecret) || !tokens.IsPermanent(err) {
					t.Errorf("Token = %v, want a permanent ErrBadSecret naming token_uri %q", err, uri)
				}
				if reqs := rt.requests(); len(reqs) != 0 {
					t.Errorf("requests were sent: %v", reqs)
				}
				if n := st.OAuth.Stats().Refreshes; n != 0 {
					t.Errorf("the token endpoint saw %d refreshes", n)
				}
				for _, secret := range []string{refresh, st.ClientSecret} {
					if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
						t.Errorf("a secret (%.8s…) appears in the error or the logs", secret)
					}
				}
			})
		}
	}
}

// TestCredentialsRedacted: no fmt verb and no slog handler shows the client
// secret or the refresh token.
func TestCredentialsRedacted(t *testing.T) {
	const secret, refresh = "CLIENT-SECRET-MARKER-91c2", "REFRESH-TOKEN-MARKER-4be8"
	creds := tokens.Credentials{Type: "authorized_user", ClientID: "client-id-123", ClientSecret: secret,
		RefreshToken: refresh, TokenURI: tokens.GoogleTokenURL}
	printed := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.40s"} {
		printed[verb] = fmt.Sprintf(verb, creds)
		printed[verb+" pointer"] = fmt.Sprintf(verb, &creds)
		printed[verb+" slice"] = fmt.Sprintf(verb, []tokens.Credentials{creds})
		printed[verb+" field"] = fmt.Sprintf(verb, struct {
			C tokens.Credentials
			P *tokens.Credentials
		}{creds, &creds})
	}
	printed["Sprint"] = fmt.Sprint(creds)
	printed["Sprintln"] = fmt.Sprintln(creds, &creds)
	printed["String"] = creds.String()
	printed["GoString"] = creds.GoString()
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		lg := slog.New(h(&b))
		lg.Info("creds", "creds", creds, "ptr", &creds, slog.Any("any", creds))
		lg.With("creds", creds).Info("with")
		lg.Info("group", slog.Group("g", "creds", creds))
		printed["slog "+name] = b.String()
	}
	for how, s := range printed {
		if strings.Contains(s, secret) || strings.Contains(s, refresh) {
			t.Errorf("%s shows a secret: %s", how, s)
		}
	}
	// The non-secret fields are shown, and the secrets marked REDACTED.
	for _, how := range []string{"%v", "%+v", "%#v", "%s", "slog json", "slog text"} {
		s := printed[how]
		if !strings.Contains(s, "client-id-123") || !strings.Contains(s, "authorized_user") ||
			!strings.Contains(s, tokens.GoogleTokenURL) || strings.Count(s, "REDACTED") < 2 {
			t.Errorf("%s = %s, want client_id, type, token_uri and REDACTED secrets", how, s)
		}
	}
	if !strings.HasPrefix(printed["%#v"], "tokens.Credentials{") {
		t.Errorf("%%#v = %s", printed["%#v"])
	}
	// Redaction is only for printing: the stored JSON keeps the secrets.
	b, err := tokens.ParseCredentials(emulator.AuthorizedUserJSON(creds.ClientID, secret, refresh, creds.TokenURI))
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	if diff := cmp.Diff(creds, b); diff != "" {
		t.Errorf("ParseCredentials (-want +got):\n%s", diff)
	}
}

// TestSourceRedacted: a Source, which holds the credentials and the access
// token once it has them, prints and logs neither.
func TestSourceRedacted(t *testing.T) {
	st := stack(t)
	src := newSource(t, st, nil)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("source", "src", src)
	slog.New(slog.NewTextHandler(&b, nil)).Info("source", "src", src)
	out := fmt.Sprintf("%v %+v %#v %s", src, src, src, src) + b.String()
	for _, secret := range []string{st.ClientSecret, st.RefreshToken, tok.AccessToken} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret (%.8s…) appears: %s", secret, out)
		}
	}
	if !strings.Contains(out, st.SecretName) {
		t.Errorf("the secret version is not named: %s", out)
	}
}
