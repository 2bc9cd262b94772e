package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// validEnv is the environment deploy.sh sets with its defaults.
func validEnv() map[string]string {
	return map[string]string{
		"GOOGLE_CLOUD_PROJECT":   "my-proj",
		"TOKEN_SECRET":           "projects/my-proj/secrets/chat-offboard-token/versions/latest",
		"RESULT_TOPIC":           "projects/my-proj/topics/chat-offboard-results",
		"REQUEST_TOPIC":          "projects/my-proj/topics/chat-offboard-requests",
		"CHAT_WRITES_PER_MINUTE": "300",
		"CHAT_READS_PER_MINUTE":  "3000",
		"INVOCATION_TIMEOUT":     "540s",
		"PROTECTED_MEMBERS":      "users/123,boss@example.com,app",
		"MAX_EVENT_AGE":          "23h",
		"LOG_LEVEL":              "debug",
	}
}

// TestCheckConfig: the check accepts what the function accepts, silently, and
// names the variable of what it refuses.
func TestCheckConfig(t *testing.T) {
	cases := []struct {
		name    string
		set     map[string]string
		wantVar string // "" = valid
	}{
		{"valid", nil, ""},
		{"protected users/app", map[string]string{"PROTECTED_MEMBERS": "users/app"}, "PROTECTED_MEMBERS"},
		{"protected a%b@example.com", map[string]string{"PROTECTED_MEMBERS": "a%b@example.com"}, "PROTECTED_MEMBERS"},
		{"protected users/a..b", map[string]string{"PROTECTED_MEMBERS": "users/a..b"}, "PROTECTED_MEMBERS"},
		{"result topic is the request topic", map[string]string{"RESULT_TOPIC": "projects/my-proj/topics/chat-offboard-requests"}, "RESULT_TOPIC"},
		{"no project", map[string]string{"GOOGLE_CLOUD_PROJECT": ""}, "GOOGLE_CLOUD_PROJECT"},
		{"max event age 0", map[string]string{"MAX_EVENT_AGE": "0s"}, "MAX_EVENT_AGE"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"invocation timeout", map[string]string{"INVOCATION_TIMEOUT": "540"}, "INVOCATION_TIMEOUT"},
		{"writes 0", map[string]string{"CHAT_WRITES_PER_MINUTE": "0"}, "CHAT_WRITES_PER_MINUTE"},
		{"workspace trigger", map[string]string{"AUTO_OFFBOARD_DOMAINS": "example.com", "AUTO_OFFBOARD_ORG_UNITS": "/Staff",
			"AUTO_OFFBOARD_SUCCESSOR": "it@example.com", "AUTO_OFFBOARD_ADD_SUCCESSOR": "true"}, ""},
		{"trigger domain", map[string]string{"AUTO_OFFBOARD_DOMAINS": "example.com,@x"}, "AUTO_OFFBOARD_DOMAINS"},
		{"trigger successor without domains", map[string]string{"AUTO_OFFBOARD_SUCCESSOR": "it@example.com"}, "AUTO_OFFBOARD_DOMAINS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.set {
				env[k] = v
			}
			var out bytes.Buffer
			code := check(func(k string) string { return env[k] }, &out)
			if tc.wantVar == "" {
				if code != 0 || out.Len() != 0 {
					t.Fatalf("check = %d %q, want 0 and no output", code, out.String())
				}
				return
			}
			if code != 2 {
				t.Errorf("check = %d, want 2", code)
			}
			if want := "configuration: " + tc.wantVar + ": "; !strings.HasPrefix(out.String(), want) {
				t.Errorf("output %q does not start with %q", out.String(), want)
			}
		})
	}
}

// TestCheckConfigFlag runs the built command with -check-config, as deploy.sh
// does.
func TestCheckConfigFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "function")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(set map[string]string) (int, string, string) {
		env := validEnv()
		for k, v := range set {
			env[k] = v
		}
		cmd := exec.Command(bin, "-check-config")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), stdout.String(), stderr.String()
		case err != nil:
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	if code, stdout, stderr := run(nil); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("valid: exit %d, stdout %q, stderr %q; want 0 and nothing printed", code, stdout, stderr)
	}
	code, stdout, stderr := run(map[string]string{"PROTECTED_MEMBERS": "users/app"})
	if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "configuration: PROTECTED_MEMBERS: ") {
		t.Errorf("users/app: exit %d, stdout %q, stderr %q; want 2 naming PROTECTED_MEMBERS", code, stdout, stderr)
	}
}

// TestListensOnLoopbackByDefault: without LOCAL_ONLY the local runner binds
// 127.0.0.1 only (it bound every interface before); LOCAL_ONLY=false is the
// explicit way to every interface, and a typo is refused.
func TestListensOnLoopbackByDefault(t *testing.T) {
	for v, want := range map[string]string{"": "127.0.0.1", "true": "127.0.0.1", "false": ""} {
		if got, err := listenHost(v); err != nil || got != want {
			t.Errorf("LOCAL_ONLY=%q: host %q, %v; want %q", v, got, err, want)
		}
	}
	if _, err := listenHost("yes"); err == nil || !strings.Contains(err.Error(), "LOCAL_ONLY") {
		t.Errorf("LOCAL_ONLY=yes: %v, want an error naming LOCAL_ONLY", err)
	}
}
