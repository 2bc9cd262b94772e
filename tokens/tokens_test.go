package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/tokens"
)

func newSource(t *testing.T, st *emulator.Stack, logs *bytes.Buffer) *tokens.Source {
	t.Helper()
	var lg *slog.Logger
	if logs != nil {
		lg = slog.New(slog.NewJSONHandler(logs, nil))
	}
	src, err := tokens.New(context.Background(), tokens.Config{
		Secret:                st.SecretName + "/versions/latest",
		SecretManagerEndpoint: st.Secrets.Addr(),
		Logger:                lg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func stack(t *testing.T) *emulator.Stack {
	t.Helper()
	st, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	st := stack(t)
	src := newSource(t, st, nil)
	var wg sync.WaitGroup
	toks := make([]string, 64)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.TokenContext(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	for _, tk := range toks {
		if tk != toks[0] {
			t.Fatal("callers got different tokens")
		}
	}
	if _, ok := st.OAuth.Verify(toks[0]); !ok {
		t.Error("the token is not one the endpoint issued")
	}
	if s := src.Stats(); s.Refreshes != 1 || s.SecretReads != 1 {
		t.Errorf("stats %+v, want one refresh and one secret read", s)
	}
	if n := st.OAuth.Stats().Refreshes; n != 1 {
		t.Errorf("token endpoint saw %d refreshes", n)
	}
}

func TestInvalidateIssuedBefore(t *testing.T) {
	st := stack(t)
	src := newSource(t, st, nil)
	before := time.Now()
	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	// A 401 for a call that started before this token was issued must not
	// drop it: another caller already refreshed.
	src.InvalidateIssuedBefore(before.Add(-time.Second))
	if tok, _ := src.Token(); tok.AccessToken != first.AccessToken {
		t.Error("a stale 401 dropped a fresh token")
	}
	src.InvalidateIssuedBefore(time.Now())
	second, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken {
		t.Error("after invalidation: the same access token")
	}
	if diff := cmp.Diff(tokens.Stats{SecretReads: 1, Refreshes: 2}, src.Stats()); diff != "" {
		t.Errorf("after invalidation: stats (-want +got):\n%s", diff)
	}
}

func TestChecksumVerified(t *testing.T) {
	st := stack(t)
	st.Secrets.SetCorruptChecksum(true)
	_, err := newSource(t, st, nil).Token()
	if !errors.Is(err, tokens.ErrBadSecret) || !strings.Contains(err.Error(), "CRC32C") {
		t.Fatalf("Token = %v, want a CRC32C error", err)
	}
	// A payload without a checksum is accepted (nil checked, not assumed).
	st.Secrets.SetCorruptChecksum(false)
	st.Secrets.SetOmitChecksum(true)
	if _, err := newSource(t, st, nil).Token(); err != nil {
		t.Fatalf("without checksum: %v", err)
	}
}

func TestInvalidGrantRereadsOnceThenCritical(t *testing.T) {
	st := stack(t)
	var logs bytes.Buffer
	src := newSource(t, st, &logs)
	st.OAuth.RevokeRefreshToken(st.RefreshToken)
	_, err := src.Token()
	if !errors.Is(err, tokens.ErrInvalidGrant) || !tokens.IsPermanent(err) {
		t.Fatalf("Token = %v", err)
	}
	if n := st.Secrets.Stats().Accesses; n != 2 {
		t.Errorf("%d secret reads, want 2", n)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR+4"`) {
		t.Errorf("no critical line: %s", logs.String())
	}
	for _, secret := range []string{st.RefreshToken, st.ClientSecret} {
		if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
			t.Error("a secret leaked into the logs or the error")
		}
	}
}

func TestBadSecrets(t *testing.T) {
	for _, c := range []struct{ payload, want string }{
		{`not json`, "not JSON"},
		{`{"type":"service_account"}`, "authorized_user"},
		{`{"type":"authorized_user","client_id":"x"}`, "client_secret, refresh_token"},
	} {
		_, err := tokens.ParseCredentials([]byte(c.payload))
		if !errors.Is(err, tokens.ErrBadSecret) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.payload, err)
		}
	}
	creds := tokens.Credentials{Type: "authorized_user", ClientID: "id", ClientSecret: "s3cret", RefreshToken: "r3fresh"}
	if s := fmt.Sprint(creds) + fmt.Sprintf("%v %s", creds, creds); strings.Contains(s, "s3cret") || strings.Contains(s, "r3fresh") {
		t.Errorf("printing credentials shows a secret: %s", s)
	}
}

func TestEndpointMustBeLoopback(t *testing.T) {
	for _, ep := range []string{"10.0.0.1:443", "secretmanager.example.com:443", "nohostport"} {
		_, err := tokens.New(context.Background(), tokens.Config{Secret: "projects/p/secrets/s/versions/1", SecretManagerEndpoint: ep})
		if err == nil {
			t.Errorf("%s accepted", ep)
		}
	}
	for _, ep := range []string{"127.0.0.1:1", "localhost:1", "[::1]:1"} {
		src, err := tokens.New(context.Background(), tokens.Config{Secret: "projects/p/secrets/s/versions/1", SecretManagerEndpoint: ep})
		if err != nil {
			t.Errorf("%s refused: %v", ep, err)
			continue
		}
		src.Close()
	}
}

func TestSecretVersionName(t *testing.T) {
	for in, want := range map[string]string{
		"tok":                               "projects/p/secrets/tok/versions/latest",
		"projects/q/secrets/tok":            "projects/q/secrets/tok/versions/latest",
		"projects/q/secrets/tok/versions/3": "projects/q/secrets/tok/versions/3",
	} {
		if got, err := tokens.SecretVersionName(in, "p"); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"projects/q/secrets/a/b", "projects//secrets/x", "a/b", "projects/q/secrets/tok/versions/.."} {
		if _, err := tokens.SecretVersionName(bad, "p"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestWaitingHonoursContext(t *testing.T) {
	st := stack(t)
	st.OAuth.InjectFault(emulator.Fault{Method: "token", Latency: 2 * time.Second, Times: 1})
	src := newSource(t, st, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TokenContext = %v, want DeadlineExceeded", err)
	}
	// The refresh went on for the others.
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	if n := st.OAuth.Stats().Refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// A disabled newest version is what versions/latest names (Google's alias),
// even with an older version enabled: the read fails permanently, a CRITICAL
// line says to enable it or add a version, and either fix works.
func TestDisabledNewestVersionIsCriticalWithTheFix(t *testing.T) {
	st := stack(t)
	var logs bytes.Buffer
	project, secret := st.Project, st.SecretName[strings.LastIndex(st.SecretName, "/")+1:]
	v2 := st.Secrets.AddVersion(project, secret, emulator.AuthorizedUserJSON(st.ClientID, st.ClientSecret, st.RefreshToken, st.OAuth.TokenURL()))
	if err := st.Secrets.SetVersionEnabled(v2, false); err != nil {
		t.Fatal(err)
	}
	_, err := newSource(t, st, &logs).Token()
	if !errors.Is(err, tokens.ErrSecretVersionDisabled) || !tokens.IsPermanent(err) {
		t.Fatalf("Token = %v, want a permanent ErrSecretVersionDisabled", err)
	}
	line := logs.String()
	for _, want := range []string{`"level":"ERROR+4"`, "gcloud secrets versions enable N --secret=" + secret, "add a new version", "never roll back by disabling the newest version"} {
		if !strings.Contains(line, want) || !strings.Contains(err.Error(), strings.TrimPrefix(want, `"level":"ERROR+4"`)) {
			t.Errorf("log and error should say %q:\nlog: %s\nerror: %v", want, line, err)
		}
	}
	for _, s := range []string{st.RefreshToken, st.ClientSecret} {
		if strings.Contains(line, s) || strings.Contains(err.Error(), s) {
			t.Error("a secret leaked into the logs or the error")
		}
	}

	// Enabling the newest version again is one fix.
	if err := st.Secrets.SetVersionEnabled(v2, true); err != nil {
		t.Fatal(err)
	}
	if _, err := newSource(t, st, nil).Token(); err != nil {
		t.Fatalf("after enabling %s: %v", v2, err)
	}
	// Adding a newer version is the other.
	if err := st.Secrets.SetVersionEnabled(v2, false); err != nil {
		t.Fatal(err)
	}
	st.Secrets.AddVersion(project, secret, emulator.AuthorizedUserJSON(st.ClientID, st.ClientSecret, st.RefreshToken, st.OAuth.TokenURL()))
	if _, err := newSource(t, st, nil).Token(); err != nil {
		t.Fatalf("after adding version 3: %v", err)
	}

	// A pinned version that is disabled names that version in the fix.
	src, err := tokens.New(context.Background(), tokens.Config{Secret: v2, SecretManagerEndpoint: st.Secrets.Addr(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Token(); !errors.Is(err, tokens.ErrSecretVersionDisabled) || !strings.Contains(err.Error(), "gcloud secrets versions enable 2 --secret="+secret) {
		t.Fatalf("pinned disabled version: %v", err)
	}
}
