package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSettingsCheckedByTheFunction: what the function would refuse at every
// event is refused by deploy.sh before any gcloud call, by the function's own
// code (cmd/function -check-config), naming the setting. Bash patterns used
// to accept these.
func TestSettingsCheckedByTheFunction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     []string
		args    []string
		setting string
	}{
		{"protected users/app", []string{"PROTECTED_MEMBERS=users/app"}, nil, "PROTECTED_MEMBERS"},
		{"protected a%b@example.com", nil, []string{"--protected-members", "a%b@example.com"}, "PROTECTED_MEMBERS"},
		{"protected users/a..b", []string{"PROTECTED_MEMBERS=users/1,users/a..b"}, nil, "PROTECTED_MEMBERS"},
		{"result topic is the request topic", nil, []string{"--result-topic", "chat-offboard-requests"}, "RESULT_TOPIC"},
		{"request topic is the result topic", []string{"REQUEST_TOPIC=chat-offboard-results"}, nil, "RESULT_TOPIC"},
		{"max event age 0", []string{"MAX_EVENT_AGE=0s"}, nil, "MAX_EVENT_AGE"},
		{"max event age negative", nil, []string{"--max-event-age=-1h"}, "MAX_EVENT_AGE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			p.refusedBeforeGcloud(t, tc.env, append([]string{"--project", project}, tc.args...), tc.setting)
		})
	}
}

// TestCheckConfigSeesTheDeployedEnvironment: the check runs with -check-config
// on exactly the environment that is deployed (full topic names, per-instance
// budgets, INVOCATION_TIMEOUT), not on the operator's variables; a check that
// fails without naming a setting stops the run too.
func TestCheckConfigSeesTheDeployedEnvironment(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	dump := filepath.Join(p.dir, "check.env")
	fake := filepath.Join(p.dir, "check.sh")
	writeFile(t, fake, "#!/bin/sh\necho \"ARGS=$*\" >"+dump+"\nenv >>"+dump+"\n")
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	r := p.run(t, []string{"CHAT_OFFBOARD_CHECK_CONFIG=" + fake, "CHAT_ENDPOINT=http://127.0.0.1:1", "MAX_INSTANCES=2",
		"PROTECTED_MEMBERS=users/1,boss@example.com"}, "--project", project, "--dry-run", "--timeout=120s")
	mustSucceed(t, r)
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the check did not run: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"ARGS":                   "-check-config",
		"GOOGLE_CLOUD_PROJECT":   project,
		"TOKEN_SECRET":           "projects/my-proj/secrets/chat-offboard-token/versions/latest",
		"RESULT_TOPIC":           "projects/my-proj/topics/chat-offboard-results",
		"REQUEST_TOPIC":          "projects/my-proj/topics/chat-offboard-requests",
		"CHAT_WRITES_PER_MINUTE": "150",
		"CHAT_READS_PER_MINUTE":  "1500",
		"INVOCATION_TIMEOUT":     "120s",
		"PROTECTED_MEMBERS":      "users/1,boss@example.com",
		"FIRESTORE_DATABASE":     "(default)",
		"LEDGER_RETENTION":       "9600h",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the check saw %s=%q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"CHAT_ENDPOINT", "MAX_INSTANCES", "FAKEGCLOUD_STATE", "DEPLOY_RETRY_SECONDS"} {
		if v, ok := got[k]; ok {
			t.Errorf("the check saw the operator's %s=%q", k, v)
		}
	}

	// A check that fails without naming a setting (go missing, a build
	// error) stops the run: exit 1, its output shown, nothing called.
	writeFile(t, fake, "#!/bin/sh\necho 'cmd/function: build failed' >&2\nexit 1\n")
	r = p.run(t, []string{"CHAT_OFFBOARD_CHECK_CONFIG=" + fake}, "--project", project)
	type outcome struct {
		Code  int
		Calls [][]string
	}
	if diff := cmp.Diff(outcome{Code: 1}, outcome{r.code, r.calls}, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("failing check (-want +got):\n%s\nstderr:\n%s", diff, r.stderr)
	}
	if !strings.Contains(r.stderr, "cmd/function: build failed") {
		t.Errorf("failing check: its output is not shown; stderr:\n%s", r.stderr)
	}
}

// TestBuildServiceAccount: Cloud Build builds as a service account of its own,
// created when missing and left alone when present, with the roles Google
// documents for a custom build service account, and passed to the deploy.
func TestBuildServiceAccount(t *testing.T) {
	t.Parallel()
	roles := []string{"roles/cloudbuild.builds.builder", "roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer"}

	t.Run("created when missing", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		r := p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		create := find(r.calls, "iam service-accounts create chat-offboard-build", "project=my-proj")
		deploy := find(r.calls, "functions deploy chat-offboard", buildSAFlag)
		if create < 0 || deploy < 0 || create > deploy {
			t.Fatalf("build service account created at call %d, deploy with --%s at call %d: %q", create, buildSAFlag, deploy, r.calls)
		}
		for _, role := range roles {
			i := find(r.calls, "projects add-iam-policy-binding my-proj", "member="+buildMember, "role="+role, "condition=None")
			if i < 0 || i < create || i > deploy {
				t.Errorf("%s granted at call %d (account created at %d, deploy at %d)", role, i, create, deploy)
			}
		}
		if !strings.Contains(r.stdout, "service account "+buildEmail) {
			t.Errorf("output does not report the build service account:\n%s", r.stdout)
		}
		if got := p.loadState(t).BuildSAs["us-central1/chat-offboard"]; got != "projects/my-proj/serviceAccounts/"+buildEmail {
			t.Errorf("function built as %q", got)
		}
		// Granted once: a second run reads the policy and adds nothing.
		r = p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		if i := find(r.calls, "projects add-iam-policy-binding"); i >= 0 {
			t.Errorf("second run granted again: %q", r.calls[i])
		}
	})

	t.Run("not created when present", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		st := p.loadState(t)
		st.SAs[buildEmail] = true
		st.Policies["projects "+project] = []string{"roles/cloudbuild.builds.builder\t" + buildMember, "roles/owner\tuser:boss@example.com"}
		p.saveState(t, st)
		r := p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		if i := find(r.calls, "iam service-accounts create chat-offboard-build"); i >= 0 {
			t.Errorf("existing build service account created again: %q", r.calls[i])
		}
		if find(r.calls, "iam service-accounts describe "+buildEmail) < 0 {
			t.Errorf("build service account not looked up: %q", r.calls)
		}
		if i := find(r.calls, "projects add-iam-policy-binding my-proj", "role=roles/cloudbuild.builds.builder"); i >= 0 {
			t.Errorf("existing binding added again: %q", r.calls[i])
		}
		for _, role := range roles[1:] {
			if find(r.calls, "projects add-iam-policy-binding my-proj", "member="+buildMember, "role="+role) < 0 {
				t.Errorf("missing %s not granted", role)
			}
		}
		if find(r.calls, "functions deploy chat-offboard", buildSAFlag) < 0 {
			t.Errorf("deploy without --%s: %q", buildSAFlag, r.calls)
		}
		if got := p.loadState(t).Policies["projects "+project]; !slices.Contains(got, "roles/owner\tuser:boss@example.com") {
			t.Errorf("existing project binding lost: %q", got)
		}
	})

	t.Run("named", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		r := p.run(t, []string{"BUILD_SERVICE_ACCOUNT=offboard-builder"}, "--project", project, "--dry-run")
		mustSucceed(t, r)
		for _, s := range []string{
			"gcloud iam service-accounts describe offboard-builder@my-proj.iam.gserviceaccount.com --project=my-proj",
			"gcloud iam service-accounts create offboard-builder --project=my-proj",
			"gcloud projects add-iam-policy-binding my-proj --member=serviceAccount:offboard-builder@my-proj.iam.gserviceaccount.com --role=roles/cloudbuild.builds.builder --condition=None",
			"--build-service-account=projects/my-proj/serviceAccounts/offboard-builder@my-proj.iam.gserviceaccount.com",
		} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("plan lacks %q:\n%s", s, r.stdout)
			}
		}
	})
}

// TestNotActiveFunctionIsRedeployed: a function that exists but is not
// ACTIVE (a failed or interrupted deployment) is deployed again, not
// reported unchanged.
func TestNotActiveFunctionIsRedeployed(t *testing.T) {
	t.Parallel()
	for _, state := range []string{"FAILED", "DEPLOYING", "UNKNOWN", "STATE_UNSPECIFIED"} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			mustSucceed(t, p.run(t, nil, "--project", project))
			st := p.loadState(t)
			st.Secrets["chat-offboard-token"] = 1
			st.FunctionStates["us-central1/chat-offboard"] = state
			p.saveState(t, st)

			r := p.run(t, nil, "--project", project)
			mustSucceed(t, r)
			if i := find(r.calls, "functions describe chat-offboard", "format=value(state)"); i < 0 {
				t.Errorf("the function's state is not read: %q", r.calls)
			}
			if changes := changesOf(r.calls); !slices.Equal(changes, []string{"functions deploy chat-offboard"}) {
				t.Errorf("changes %q, want only the deploy", changes)
			}
			if !strings.Contains(r.stdout, "redeployed (was "+state+")") || strings.Contains(r.stdout, "function chat-offboard unchanged") {
				t.Errorf("output does not report the redeploy of a %s function:\n%s", state, r.stdout)
			}
			if got := p.loadState(t).FunctionStates["us-central1/chat-offboard"]; got != "" {
				t.Errorf("state after the deploy = %q, want ACTIVE", got)
			}
			// ACTIVE now: the next run changes nothing.
			r = p.run(t, nil, "--project", project)
			mustSucceed(t, r)
			if changes := changesOf(r.calls); len(changes) != 0 {
				t.Errorf("run after the redeploy changed %q", changes)
			}
		})
	}
}

// TestInvocationTimeout: the function learns its timeout from
// INVOCATION_TIMEOUT, which deploy.sh sets from TIMEOUT (Cloud Run sets no
// timeout variable).
func TestInvocationTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ timeout, want string }{{"", "540s"}, {"120", "120s"}, {"300s", "300s"}} {
		p := newProject(t)
		var env []string
		if tc.timeout != "" {
			env = []string{"TIMEOUT=" + tc.timeout}
		}
		r := p.run(t, env, "--project", project)
		mustSucceed(t, r)
		deploy := find(r.calls, "functions deploy chat-offboard")
		if deploy < 0 {
			t.Fatalf("no deploy: %q", r.calls)
		}
		if got := envVars(t, r.calls[deploy])["INVOCATION_TIMEOUT"]; got != tc.want {
			t.Errorf("TIMEOUT=%q: INVOCATION_TIMEOUT=%q, want %q", tc.timeout, got, tc.want)
		}
		if !slices.Contains(r.calls[deploy], "--timeout="+tc.want) {
			t.Errorf("TIMEOUT=%q: deploy lacks --timeout=%s: %q", tc.timeout, tc.want, r.calls[deploy])
		}
	}
}
