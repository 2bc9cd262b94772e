package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// secretsEnv is an env that records every error Handle returned; the
// tokens it must not find are those the OAuth emulation issued.
type secretsEnv struct {
	*env
	errs    []string
	secrets []string // known secret values besides the stack's and the issued tokens
}

func newSecretsEnv(t *testing.T) *secretsEnv {
	// 6 s an invocation: 4 s for the calls after the publish reserve, so
	// that a busy machine does not turn an outage test into a timeout.
	e := newEnv(t, func(c *Config) { c.EventTimeout = 6 * time.Second })
	return &secretsEnv{env: e}
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
	tokens := s.stack.OAuth.IssuedTokens()
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
		if s.stack.OAuth.Stats().Refreshes == 0 {
			t.Fatal("no access token was issued")
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
		if n := s.stack.OAuth.Stats().Refreshes; n < 2 {
			t.Errorf("%d refreshes, want one more after the 401", n)
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
