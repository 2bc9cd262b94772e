package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// Markers that must never be printed.
const (
	clientSecretMarker = "CLIENT-SECRET-MARKER-5d1e"
	refreshTokenMarker = "REFRESH-TOKEN-MARKER-0a9c"
)

// rejectedEndpoints may never receive the client secret or a code.
var rejectedEndpoints = []string{
	"http://oauth2.googleapis.com/token",
	"https://oauth2.googleapis.com.evil.com/token",
	"https://evil@oauth2.googleapis.com/token",
	"https://oauth2.googleapis.com:8443/token",
	"https://10.0.0.1/token",
	"https://8.8.8.8/token",
	"https://example.com/token",
	"http://accounts.google.com/o/oauth2/v2/auth",
	"https://accounts.google.com.evil.com/o/oauth2/v2/auth",
	"ftp://x",
	"http://[::1",
}

// acceptedEndpoints are Google's and loopback emulators.
var acceptedEndpoints = []string{
	"https://oauth2.googleapis.com/token",
	"https://www.googleapis.com/oauth2/v4/token",
	"https://accounts.google.com/o/oauth2/auth",
	"https://accounts.google.com/o/oauth2/v2/auth",
	"http://127.0.0.1:8080/token",
	"http://[::1]:8080/auth",
	"http://localhost:8080/token",
}

// writeClientSecrets writes a client secrets file of kind with the given
// auth_uri and token_uri and returns its path.
func writeClientSecrets(t *testing.T, kind, authURI, tokenURI string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "client_secret.json")
	b, _ := json.Marshal(map[string]any{kind: map[string]any{
		"client_id": "id.apps.googleusercontent.com", "client_secret": clientSecretMarker,
		"auth_uri": authURI, "token_uri": tokenURI, "redirect_uris": []string{"http://localhost"},
	}})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestOAuthEndpointsMustBeGoogle: --auth-url, --token-url and the client
// secrets file's auth_uri and token_uri are refused (exit 2, the setting
// named, before any browser or network) unless they are Google's or
// loopback.
func TestOAuthEndpointsMustBeGoogle(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secretFile, []byte(clientSecretMarker), 0o600); err != nil {
		t.Fatal(err)
	}
	client := []string{"--client-id", "id", "--client-secret-file", secretFile, "--out", filepath.Join(t.TempDir(), "c.json")}
	type tcase struct {
		name  string
		args  []string
		field string
	}
	var cases []tcase
	for _, raw := range rejectedEndpoints {
		cases = append(cases,
			tcase{"--auth-url " + raw, append(slices.Clone(client), "--auth-url", raw), "--auth-url"},
			tcase{"--token-url " + raw, append(slices.Clone(client), "--token-url", raw), "--token-url"},
		)
		for _, kind := range []string{"installed", "web"} {
			cases = append(cases,
				tcase{kind + " auth_uri " + raw, []string{"--client-secrets",
					writeClientSecrets(t, kind, raw, tokens.GoogleTokenURL), "--out", "x"}, "auth_uri"},
				tcase{kind + " token_uri " + raw, []string{"--client-secrets",
					writeClientSecrets(t, kind, tokens.GoogleAuthURL, raw), "--out", "x"}, "token_uri"},
				// A flag does not excuse a bad file.
				tcase{kind + " token_uri " + raw + " with --token-url", []string{"--client-secrets",
					writeClientSecrets(t, kind, tokens.GoogleAuthURL, raw), "--out", "x",
					"--token-url", tokens.GoogleTokenURL}, "token_uri"},
			)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			asked := false
			code := runWith(context.Background(), tc.args, &stdout, &stderr,
				func(context.Context, string) error { asked = true; return nil })
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.field+" ") || !strings.Contains(stderr.String(), "is not Google's OAuth endpoint") {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.field)
			}
			if asked || stdout.Len() != 0 {
				t.Errorf("the flow started: %q", stdout.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), clientSecretMarker) {
				t.Error("the client secret was printed")
			}
		})
	}
	for _, raw := range acceptedEndpoints {
		o, err := parseFlags(append(slices.Clone(client), "--auth-url", raw, "--token-url", raw), io.Discard)
		if err != nil || o.authURL != raw || o.tokenURL != raw {
			t.Errorf("flags %q refused: %v", raw, err)
		}
		file := writeClientSecrets(t, "installed", raw, raw)
		o, err = parseFlags([]string{"--client-secrets", file, "--out", "x"}, io.Discard)
		if err != nil || o.authURL != raw || o.tokenURL != raw {
			t.Errorf("client secrets file with %q refused: %v", raw, err)
		}
	}
	// Without endpoints in the file or flags, Google's are used.
	o, err := parseFlags([]string{"--client-secrets", writeClientSecrets(t, "web", "", ""), "--out", "x"}, io.Discard)
	if err != nil || o.authURL != GoogleAuthURL || o.tokenURL != GoogleTokenURL {
		t.Errorf("defaults: %v, %v", o, err)
	}
}

// TestSecretCarriersRedacted: the options and the client secrets file's
// client, which hold the client secret, and the stored credential, which also
// holds the refresh token, print and log no secret.
func TestSecretCarriersRedacted(t *testing.T) {
	o := options{clientID: "client-id-77", clientSecret: clientSecretMarker, authURL: GoogleAuthURL,
		tokenURL: GoogleTokenURL, scopes: Scopes(true, false, false), out: "creds.json"}
	c := clientConfig{ClientID: "client-id-77", ClientSecret: clientSecretMarker, AuthURI: GoogleAuthURL, TokenURI: GoogleTokenURL}
	creds := tokens.Credentials{Type: "authorized_user", ClientID: "client-id-77", ClientSecret: clientSecretMarker,
		RefreshToken: refreshTokenMarker, TokenURI: GoogleTokenURL}
	for name, v := range map[string]any{"options": o, "*options": &o, "clientConfig": c, "*clientConfig": &c,
		"Credentials": creds, "*Credentials": &creds} {
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out = append(out, verb+": "+fmt.Sprintf(verb, v))
		}
		var jb, tb bytes.Buffer
		slog.New(slog.NewJSONHandler(&jb, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&tb, nil)).Info("x", "v", v)
		out = append(out, "json: "+jb.String(), "text: "+tb.String())
		for _, s := range out {
			if strings.Contains(s, clientSecretMarker) || strings.Contains(s, refreshTokenMarker) {
				t.Errorf("%s shows a secret: %s", name, s)
			}
		}
		for _, s := range []string{out[0], out[1], out[2], out[3], jb.String(), tb.String()} {
			if !strings.Contains(s, "client-id-77") || !strings.Contains(s, "REDACTED") {
				t.Errorf("%s: %s, want the client id and REDACTED", name, s)
			}
		}
	}
}
