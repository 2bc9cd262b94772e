package engine

import (
	"errors"
	"strings"
	"testing"
)

// TestEndpointsAreCheckedAtStart: every endpoint override is parsed as a
// URL when the configuration loads, and a value that could send the admin's
// token anywhere but Google or this machine is a configuration error naming
// the variable. CHAT_ENDPOINT and DIRECTORY_ENDPOINT were not checked at
// all: "http://127.0.0.1:1@evil.example/" (user info; the host is
// evil.example) sent the bearer token there in plaintext.
func TestEndpointsAreCheckedAtStart(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_SECRET": "s", "RESULT_TOPIC": "results"}
	load := func(k, v string) error {
		_, err := LoadConfig(func(name string) string {
			if name == k {
				return v
			}
			return base[name]
		})
		return err
	}
	for _, c := range []struct{ name, value string }{
		{"CHAT_ENDPOINT", "http://127.0.0.1:1@evil.example/"},
		{"DIRECTORY_ENDPOINT", "http://127.0.0.1:1@evil.example/"},
		{"CHAT_ENDPOINT", "https://chat.example.com/"},
		{"DIRECTORY_ENDPOINT", "http://admin.googleapis.com/"},
		{"OAUTH_TOKEN_URL", "http://127.0.0.1:1@evil.example/token"},
		{"SECRET_MANAGER_ENDPOINT", "127.0.0.1:1@evil.example"},
		{"SECRET_MANAGER_ENDPOINT", "10.1.2.3:443"},
	} {
		err := load(c.name, c.value)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != c.name {
			t.Errorf("%s=%q: %v, want a configuration error naming %s", c.name, c.value, err, c.name)
		}
	}
	for _, c := range []struct{ name, value string }{
		{"CHAT_ENDPOINT", "https://chat.googleapis.com/"},
		{"DIRECTORY_ENDPOINT", "http://127.0.0.1:8080/"},
		{"OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"},
		{"SECRET_MANAGER_ENDPOINT", "127.0.0.1:9000"},
	} {
		if err := load(c.name, c.value); err != nil && strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q refused: %v", c.name, c.value, err)
		}
	}
}
