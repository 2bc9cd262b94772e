package offboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// tokenTap sits between the function and the OAuth emulation's token
// endpoint (through OAUTH_TOKEN_URL) and keeps every token it hands out, so
// that the secrets test knows the access tokens it must not find.
type tokenTap struct {
	srv      *httptest.Server
	upstream atomic.Pointer[string]
	mu       sync.Mutex
	tokens   []string
}

func newTokenTap(t *testing.T) *tokenTap {
	tap := &tokenTap{}
	tap.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := tap.upstream.Load()
		body, _ := io.ReadAll(r.Body)
		if up == nil {
			http.Error(w, "no upstream", http.StatusBadGateway)
			return
		}
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, *up, bytes.NewReader(body))
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			// The emulation dropped the connection: do the same.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "upstream failed", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(b, &tok) == nil {
			tap.mu.Lock()
			for _, s := range []string{tok.AccessToken, tok.RefreshToken} {
				if s != "" {
					tap.tokens = append(tap.tokens, s)
				}
			}
			tap.mu.Unlock()
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(tap.srv.Close)
	return tap
}

func (tap *tokenTap) issued() []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]string(nil), tap.tokens...)
}

// secretsEnv is an env whose token endpoint is tapped, and which records
// every error Handle returned.
type secretsEnv struct {
	*env
	tap     *tokenTap
	errs    []string
	secrets []string // known secret values besides the stack's and the tapped tokens
}

func newSecretsEnv(t *testing.T) *secretsEnv {
	tap := newTokenTap(t)
	e := newEnv(t, func(c *Config) {
		c.OAuthTokenURL = tap.srv.URL
		c.EventTimeout = 3 * time.Second
	})
	up := e.stack.OAuth.TokenURL()
	tap.upstream.Store(&up)
	return &secretsEnv{env: e, tap: tap}
}

// do sends one request and keeps the error, if any.
func (s *secretsEnv) do(t *testing.T, data string) error {
	t.Helper()
	err := s.f.Handle(context.Background(), pubsubEvent(data, time.Now()))
	if err != nil {
		s.errs = append(s.errs, err.Error())
	}
	return err
}

// rotate stores a new authorized_user secret version with the given client
// secret and refresh token, which become known secrets too.
func (s *secretsEnv) rotate(clientSecret, refresh string) {
	st := s.stack
	st.Secrets.AddVersion(st.Project, secretID(st.SecretName), emulator.AuthorizedUserJSON(st.ClientID, clientSecret, refresh, st.OAuth.TokenURL()))
	s.secrets = append(s.secrets, clientSecret, refresh)
}

// check fails if any known secret, or a 12-character piece of one, is in a
// log line, an error Handle returned or a result (data or attributes).
func (s *secretsEnv) check(t *testing.T) {
	t.Helper()
	var hay []string
	hay = append(hay, s.logs.String())
	hay = append(hay, s.errs...)
	for _, r := range s.results(t) {
		b, _ := json.Marshal(r.Result)
		a, _ := json.Marshal(r.Attrs)
		hay = append(hay, string(b), string(a))
	}
	secrets := append([]string{s.stack.ClientSecret, s.stack.RefreshToken}, s.secrets...)
	tokens := s.tap.issued()
	secrets = append(secrets, tokens...)
	for _, sec := range secrets {
		pieces := []string{sec}
		if len(sec) >= 24 {
			m := len(sec) / 2
			pieces = append(pieces, sec[m-6:m+6], sec[len(sec)-12:])
		}
		for _, h := range hay {
			for _, p := range pieces {
				if strings.Contains(h, p) {
					t.Errorf("a secret (%.7s…, piece %q) appears in: %.300s", sec, p, h)
				}
			}
		}
	}
	if len(s.logs.String()) == 0 {
		t.Error("no log lines at all: nothing was checked")
	}
	t.Logf("checked %d secret values (%d tapped tokens) against %d log bytes, %d errors, %d results",
		len(secrets), len(tokens), len(s.logs.String()), len(s.errs), len(s.results(t)))
}

// TestSecretsNeverLeak runs the function through success, Chat faults,
// 401s, invalid_grant, a rotated secret, a wrong client secret, malformed
// and corrupted secrets and outages of Secret Manager and the token
// endpoint, with debug logging, and checks that no client secret, refresh
// token or access token the emulations issued appears in any log line,
// error or result.
func TestSecretsNeverLeak(t *testing.T) {
	req := func(m string) string { return `{"space":"spaces/ENG","member":"` + m + `"}` }
	t.Run("success", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		for _, d := range []string{
			req("users/101"), req("users/101"), `{"space":"spaces/OPS","member":"carol@example.com","dryRun":true}`,
			`{"membership":"spaces/OPS/members/104"}`, `{"space":"spaces/SALES","member":"users/105","adminAccess":true}`,
			req("x/../y"), `{"membership":"spaces/SOLO/members/101"}`,
		} {
			_ = s.do(t, d)
		}
		if len(s.tap.issued()) == 0 {
			t.Fatal("the tap saw no access token")
		}
		s.check(t)
	})
	t.Run("chat faults", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		s.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 500, Times: 1})
		s.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 429, RetryAfter: time.Second, Times: 1})
		_ = s.do(t, req("users/101"))
		s.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Drop: true, Times: 1})
		_ = s.do(t, req("users/102"))
		s.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503})
		if err := s.do(t, req("users/103")); err == nil {
			t.Error("persistent 503: no error")
		}
		s.stack.Chat.ClearFaults()
		s.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 403, Times: 1})
		_ = s.do(t, req("users/103"))
		s.check(t)
	})
	t.Run("401", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		_ = s.do(t, req("users/101"))
		s.stack.OAuth.ExpireAccessTokens()
		if err := s.do(t, req("users/102")); err != nil {
			t.Errorf("after an early expiry: %v", err)
		}
		s.stack.Chat.InjectFault(emulator.Fault{Status: 401})
		if err := s.do(t, req("users/103")); err == nil {
			t.Error("persistent 401: no error")
		}
		if len(s.tap.issued()) < 2 {
			t.Errorf("%d tokens issued, want a refresh after the 401", len(s.tap.issued()))
		}
		s.check(t)
	})
	t.Run("invalid_grant and rotation", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		_ = s.do(t, req("users/101"))
		s.stack.OAuth.RevokeRefreshToken(s.stack.RefreshToken)
		if err := s.do(t, req("users/102")); err == nil {
			t.Error("invalid_grant: no error")
		}
		s.rotate(s.stack.ClientSecret, s.stack.OAuth.IssueRefreshToken(s.stack.ClientID, "users/100", emulator.StackScopes))
		if err := s.do(t, req("users/102")); err != nil {
			t.Errorf("after rotation: %v", err)
		}
		if !strings.Contains(s.logs.String(), `"severity":"CRITICAL"`) {
			t.Error("no CRITICAL line for invalid_grant")
		}
		s.check(t)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		s.rotate("GOCSPX-wrong-"+strings.Repeat("k", 24), s.stack.OAuth.IssueRefreshToken(s.stack.ClientID, "users/100", emulator.StackScopes))
		if err := s.do(t, req("users/101")); err == nil {
			t.Error("wrong client secret: no error")
		}
		s.check(t)
	})
	t.Run("malformed secrets", func(t *testing.T) {
		t.Parallel()
		for _, payload := range []func(cs, rt string) []byte{
			func(cs, rt string) []byte { // a service account key holding the values
				return []byte(`{"type":"service_account","client_id":"x","client_secret":"` + cs + `","refresh_token":"` + rt + `","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEv` + rt + `\n-----END PRIVATE KEY-----\n"}`)
			},
			func(cs, rt string) []byte { // truncated JSON
				return []byte(`{"type":"authorized_user","client_secret":"` + cs + `","refresh_token":"` + rt)
			},
			func(cs, rt string) []byte { // a bare token instead of JSON
				return []byte(rt)
			},
			func(cs, rt string) []byte { // a wrong type for the token
				return []byte(`{"type":"authorized_user","client_id":"x","client_secret":"` + cs + `","refresh_token":["` + rt + `"]}`)
			},
		} {
			s := newSecretsEnv(t)
			cs, rt := "GOCSPX-malformed-"+strings.Repeat("q", 20), s.stack.OAuth.IssueRefreshToken(s.stack.ClientID, "users/100", emulator.StackScopes)
			s.stack.Secrets.AddVersion(s.stack.Project, secretID(s.stack.SecretName), payload(cs, rt))
			s.secrets = append(s.secrets, cs, rt)
			if err := s.do(t, req("users/101")); err == nil {
				t.Error("malformed secret: no error")
			}
			s.check(t)
		}
	})
	t.Run("corrupt checksum", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		s.stack.Secrets.SetCorruptChecksum(true)
		if err := s.do(t, req("users/101")); err == nil {
			t.Error("corrupt checksum: no error")
		}
		s.stack.Secrets.SetCorruptChecksum(false)
		if err := s.do(t, req("users/101")); err != nil {
			t.Errorf("after the checksum is right again: %v", err)
		}
		s.check(t)
	})
	t.Run("outages", func(t *testing.T) {
		t.Parallel()
		s := newSecretsEnv(t)
		s.stack.Secrets.InjectFault(emulator.Fault{Status: 503})
		if err := s.do(t, req("users/101")); err == nil {
			t.Error("Secret Manager outage: no error")
		}
		s.stack.Secrets.ClearFaults()
		s.stack.OAuth.InjectFault(emulator.Fault{Status: 503})
		if err := s.do(t, req("users/101")); err == nil {
			t.Error("token endpoint outage: no error")
		}
		s.stack.OAuth.ClearFaults()
		s.stack.OAuth.InjectFault(emulator.Fault{Drop: true, Times: 3})
		_ = s.do(t, req("users/101"))
		s.stack.OAuth.ClearFaults()
		if err := s.do(t, req("users/102")); err != nil {
			t.Errorf("after the outages: %v", err)
		}
		s.check(t)
	})
}
