package deploytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) {
	if state := os.Getenv("FAKEGCLOUD_STATE"); state != "" {
		os.Exit(fakeGcloud(state, os.Getenv("FAKEGCLOUD_LOG"), os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if checkConfig.dir != "" {
		os.RemoveAll(checkConfig.dir)
	}
	os.Exit(code)
}

// script is deploy.sh, relative to this package.
const script = "../../deploy.sh"

// checkConfig is ./cmd/function, built once per test binary: deploy.sh runs
// it with -check-config (CHAT_OFFBOARD_CHECK_CONFIG) instead of `go run`,
// which would compile it at every run.
var checkConfig struct {
	once      sync.Once
	dir, path string
	err       error
}

func checkConfigBinary(t *testing.T) string {
	t.Helper()
	checkConfig.once.Do(func() {
		dir, err := os.MkdirTemp("", "deploytest-function-")
		if err != nil {
			checkConfig.err = err
			return
		}
		checkConfig.dir = dir
		path := filepath.Join(dir, "function")
		out, err := exec.Command("go", "build", "-o", path, "../../cmd/function").CombinedOutput()
		if err != nil {
			checkConfig.err = fmt.Errorf("go build ../../cmd/function: %v\n%s", err, out)
			return
		}
		checkConfig.path = path
	})
	if checkConfig.err != nil {
		t.Fatal(checkConfig.err)
	}
	return checkConfig.path
}

const (
	project     = "my-proj"
	saEmail     = "chat-offboard-run@my-proj.iam.gserviceaccount.com"
	saMember    = "serviceAccount:" + saEmail
	buildEmail  = "chat-offboard-build@my-proj.iam.gserviceaccount.com"
	buildMember = "serviceAccount:" + buildEmail
	buildSAFlag = "build-service-account=projects/my-proj/serviceAccounts/" + buildEmail
	agent       = "serviceAccount:service-" + fakeProjectNumber + "@gcp-sa-pubsub.iam.gserviceaccount.com"
	trigSub     = "projects/my-proj/subscriptions/eventarc-us-central1-chat-offboard-123456-sub-789"
	auditSub    = "projects/my-proj/subscriptions/chat-offboard-results-audit"
)

// project is a fake project: a state file and a call log shared by the runs
// of one test.
type fakeProject struct {
	dir, state, log string
	script          string // deploy.sh to run; script unless a test copies it
}

func newProject(t *testing.T) *fakeProject {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "bin", "gcloud")); err != nil {
		t.Fatal(err)
	}
	return &fakeProject{dir: dir, state: filepath.Join(dir, "state.json"), log: filepath.Join(dir, "calls.log"), script: script}
}

// result is one run of deploy.sh.
type result struct {
	code           int
	stdout, stderr string
	calls          [][]string // gcloud argv of this run, in order
}

// run runs deploy.sh with only env (plus PATH and HOME) in its environment,
// the fake gcloud first on PATH and the settings checked by a build of
// ./cmd/function.
func (p *fakeProject) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	before := len(p.readLog(t))
	cmd := exec.Command("bash", append([]string{p.script}, args...)...)
	cmd.Env = append([]string{
		"PATH=" + filepath.Join(p.dir, "bin") + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + p.dir,
		"FAKEGCLOUD_STATE=" + p.state,
		"FAKEGCLOUD_LOG=" + p.log,
		"CHAT_OFFBOARD_CHECK_CONFIG=" + checkConfigBinary(t),
		"DEPLOY_RETRY_SECONDS=0",
		// The fake is this binary; under -race it would sleep 1 s at exit.
		"GORACE=atexit_sleep_ms=0",
	}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), calls: p.readLog(t)[before:]}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func (p *fakeProject) readLog(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c []string
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

func (p *fakeProject) loadState(t *testing.T) *fakeState {
	t.Helper()
	st, err := loadState(p.state)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (p *fakeProject) saveState(t *testing.T, st *fakeState) {
	t.Helper()
	if err := st.save(p.state); err != nil {
		t.Fatal(err)
	}
}

func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("deploy.sh exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// words returns the positional words of a call (its command path and
// resource).
func words(c []string) []string {
	var w []string
	for _, a := range c {
		if !strings.HasPrefix(a, "--") {
			w = append(w, a)
		}
	}
	return w
}

// flag returns the value of --name=value in c, and whether it is there.
func flag(c []string, name string) (string, bool) {
	for _, a := range c {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

// find returns the index of the first call whose words start with prefix and
// whose flags include each of with ("k=v"), or -1.
func find(calls [][]string, prefix string, with ...string) int {
	for i, c := range calls {
		if !strings.HasPrefix(strings.Join(words(c), " ")+" ", prefix+" ") {
			continue
		}
		ok := true
		for _, w := range with {
			if !slices.Contains(c, "--"+w) {
				ok = false
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// mutating reports whether a call changes something.
func mutating(c []string) bool {
	for _, w := range words(c) {
		switch w {
		case "create", "enable", "add-iam-policy-binding", "deploy", "update", "delete", "set-iam-policy", "add":
			return true
		}
	}
	return false
}

// changesOf returns the words of the calls that change something, in order.
func changesOf(calls [][]string) []string {
	var changes []string
	for _, c := range calls {
		if mutating(c) {
			changes = append(changes, strings.Join(words(c), " "))
		}
	}
	return changes
}

// binding is a granted role, as recorded by the fake.
type binding struct{ group, resource, role, member string }

func bindingsOf(calls [][]string) []binding {
	var out []binding
	for _, c := range calls {
		w := words(c)
		i := slices.Index(w, "add-iam-policy-binding")
		if i < 0 {
			continue
		}
		role, _ := flag(c, "role")
		member, _ := flag(c, "member")
		out = append(out, binding{strings.Join(w[:i], " "), w[i+1], role, member})
	}
	return out
}

// TestFreshProject deploys to an empty project and checks the order and the
// arguments of the calls.
func TestFreshProject(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, nil, "--project", project)
	mustSucceed(t, r)
	calls := r.calls

	if w := words(calls[0]); strings.Join(w, " ") != "meta list-files-for-upload ." {
		t.Errorf("first call = %q, want the list of files to upload", calls[0])
	}
	if w := words(calls[1]); strings.Join(w, " ") != "projects describe my-proj" {
		t.Errorf("second call = %q, want the project check", calls[1])
	}
	enable := find(calls, "services enable")
	if enable < 0 {
		t.Fatalf("no services enable call in %q", calls)
	}
	wantAPIs := []string{"cloudfunctions.googleapis.com", "run.googleapis.com", "eventarc.googleapis.com",
		"pubsub.googleapis.com", "secretmanager.googleapis.com", "cloudbuild.googleapis.com", "chat.googleapis.com",
		"firestore.googleapis.com"}
	for _, api := range wantAPIs {
		if !slices.Contains(calls[enable], api) {
			t.Errorf("services enable lacks %s: %q", api, calls[enable])
		}
	}
	if slices.Contains(calls[enable], "admin.googleapis.com") {
		t.Errorf("admin.googleapis.com enabled without --sweeps")
	}
	for i, c := range calls {
		if mutating(c) && i < enable {
			t.Errorf("call %d %q changes something before the APIs are enabled (call %d)", i, c, enable)
		}
	}

	// Topics and the dead-letter subscription.
	for _, topic := range []string{"chat-offboard-requests", "chat-offboard-results", "chat-offboard-dead-letters"} {
		if find(calls, "pubsub topics create "+topic, "project=my-proj") < 0 {
			t.Errorf("topic %s not created", topic)
		}
	}
	if find(calls, "pubsub subscriptions create chat-offboard-dead-letters-hold",
		"topic=chat-offboard-dead-letters", "expiration-period=never") < 0 {
		t.Errorf("no never-expiring subscription on the dead-letter topic")
	}
	// The results subscription keeps every result from the first one on:
	// it exists before the function does, and after its topic.
	audit := find(calls, "pubsub subscriptions create chat-offboard-results-audit", "project=my-proj",
		"topic=chat-offboard-results", "expiration-period=never", "message-retention-duration=7d")
	if audit < 0 {
		t.Fatalf("no never-expiring 7-day subscription on the results topic: %q", calls)
	}
	if i := find(calls, "pubsub topics create chat-offboard-results"); i > audit {
		t.Errorf("results topic created (call %d) after its subscription (call %d)", i, audit)
	}
	if find(calls, "secrets create chat-offboard-token", "replication-policy=automatic") < 0 {
		t.Errorf("secret not created")
	}

	// The service account exists before anything is granted to it.
	saCreate := find(calls, "iam service-accounts create chat-offboard-run", "project=my-proj")
	if saCreate < 0 {
		t.Fatal("service account not created")
	}
	for i, c := range calls {
		if m, _ := flag(c, "member"); m == saMember && i < saCreate {
			t.Errorf("call %d %q grants to the service account before it is created (call %d)", i, c, saCreate)
		}
		if m, _ := flag(c, "service-account"); m == saEmail && i < saCreate {
			t.Errorf("call %d %q uses the service account before it is created", i, c)
		}
	}

	// Least privilege: exactly these bindings, each on one resource.
	want := []binding{
		{"secrets", "chat-offboard-token", "roles/secretmanager.secretAccessor", saMember},
		{"pubsub topics", "chat-offboard-results", "roles/pubsub.publisher", saMember},
		{"pubsub topics", "chat-offboard-requests", "roles/pubsub.publisher", saMember},
		{"iam service-accounts", saEmail, "roles/iam.serviceAccountTokenCreator", agent},
		{"projects", project, "roles/datastore.user", saMember},
		{"projects", project, "roles/cloudbuild.builds.builder", buildMember},
		{"projects", project, "roles/logging.logWriter", buildMember},
		{"projects", project, "roles/artifactregistry.writer", buildMember},
		{"projects", project, "roles/storage.objectViewer", buildMember},
		{"run services", "chat-offboard", "roles/run.invoker", saMember},
		{"pubsub topics", "chat-offboard-dead-letters", "roles/pubsub.publisher", agent},
		{"pubsub subscriptions", trigSub, "roles/pubsub.subscriber", agent},
	}
	if got := bindingsOf(calls); !slices.Equal(got, want) {
		t.Errorf("bindings:\n got %q\nwant %q", got, want)
	}
	// The only project-wide grants are the build service account's and the
	// runtime account's datastore.user, conditioned on the ledger's database.
	for _, c := range calls {
		if w := words(c); len(w) > 0 && (w[0] == "projects" || w[0] == "organizations") && mutating(c) {
			m, _ := flag(c, "member")
			role, _ := flag(c, "role")
			cond, _ := flag(c, "condition")
			ledgerGrant := m == saMember && role == "roles/datastore.user" && cond == ledgerCondition
			if w[0] != "projects" || (m != buildMember && !ledgerGrant) {
				t.Errorf("project-wide change %q", c)
			}
		}
	}

	// The ledger: the database in the function's region, after the API,
	// then the TTL policies (the order is checked in TestLedger).
	for _, prefix := range []string{"firestore databases create", "firestore fields ttls update expireAt"} {
		if i := find(calls, prefix); i < enable {
			t.Errorf("%q at call %d, the APIs enabled at call %d", prefix, i, enable)
		}
	}
	if find(calls, "firestore databases create", "database=(default)", "location=us-central1", "type=firestore-native", "project=my-proj") < 0 {
		t.Errorf("no native-mode (default) database created in us-central1: %q", calls)
	}

	// The function.
	deploy := find(calls, "functions deploy chat-offboard")
	if deploy < 0 {
		t.Fatal("function not deployed")
	}
	for _, w := range []string{"gen2", "runtime=go126", "entry-point=RemoveMembership", "trigger-topic=chat-offboard-requests",
		"retry", "source=.", "region=us-central1", "project=my-proj", "service-account=" + saEmail,
		"trigger-service-account=" + saEmail, buildSAFlag, "max-instances=1", "concurrency=80", "cpu=1", "memory=512Mi", "timeout=540s"} {
		if !slices.Contains(calls[deploy], "--"+w) {
			t.Errorf("deploy lacks --%s: %q", w, calls[deploy])
		}
	}
	env := envVars(t, calls[deploy])
	wantEnv := map[string]string{
		"GOOGLE_CLOUD_PROJECT":   project,
		"TOKEN_SECRET":           "projects/my-proj/secrets/chat-offboard-token/versions/latest",
		"RESULT_TOPIC":           "projects/my-proj/topics/chat-offboard-results",
		"REQUEST_TOPIC":          "projects/my-proj/topics/chat-offboard-requests",
		"CHAT_WRITES_PER_MINUTE": "300",
		"CHAT_READS_PER_MINUTE":  "3000",
		"INVOCATION_TIMEOUT":     "540s",
		"FIRESTORE_DATABASE":     "(default)",
		"LEDGER_RETENTION":       "9600h",
	}
	if !mapsEqual(env, wantEnv) {
		t.Errorf("env vars = %v, want %v", env, wantEnv)
	}
	for _, prev := range []string{"pubsub topics create chat-offboard-requests", "secrets create", "iam service-accounts create",
		"iam service-accounts create chat-offboard-build", "projects add-iam-policy-binding"} {
		if i := find(calls, prev); i > deploy {
			t.Errorf("%q (call %d) after the deploy (call %d)", prev, i, deploy)
		}
	}

	// The delivery policy, after the deploy, on the trigger's subscription:
	// the dead letters, and retries that ride out a 12-hour outage (100
	// deliveries, 10 s to 600 s apart: 56,430 s at the least; messages kept
	// 7 days).
	update := find(calls, "pubsub subscriptions update "+trigSub,
		"dead-letter-topic=projects/my-proj/topics/chat-offboard-dead-letters", "max-delivery-attempts=100",
		"min-retry-delay=10s", "max-retry-delay=600s", "message-retention-duration=7d")
	if update < 0 {
		t.Fatalf("no delivery policy set on %s: %q", trigSub, calls)
	}
	if update < deploy {
		t.Errorf("dead-letter policy (call %d) before the deploy (call %d)", update, deploy)
	}
	if audit > deploy {
		t.Errorf("results subscription (call %d) after the deploy (call %d): early results would be lost", audit, deploy)
	}
	st := p.loadState(t)
	wantAudit := &fakeSub{Topic: "chat-offboard-results", Retention: "7d", Expiration: "never"}
	if diff := cmp.Diff(wantAudit, st.Subs[auditSub]); diff != "" {
		t.Errorf("audit subscription state (-want +got):\n%s", diff)
	}
	wantTrigger := &fakeSub{Topic: "chat-offboard-requests", DeadLetterTopic: "projects/my-proj/topics/chat-offboard-dead-letters", MaxAttempts: 100,
		MinBackoff: "10s", MaxBackoff: "600s", Retention: "604800s"}
	if diff := cmp.Diff(wantTrigger, st.Subs[trigSub]); diff != "" {
		t.Errorf("trigger subscription state (-want +got):\n%s", diff)
	}

	// What next.
	for _, s := range []string{
		"gcloud pubsub topics publish chat-offboard-requests --project=my-proj",
		"--message='{\"requestId\":",
		"gcloud pubsub subscriptions pull chat-offboard-results-audit --project=my-proj --limit=10 --format=json",
		"gcloud pubsub subscriptions pull chat-offboard-dead-letters-hold",
		"go run ./cmd/authorize",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "--auto-ack") {
		t.Errorf("instructions read the audit subscription with --auto-ack, which deletes what it shows:\n%s", r.stdout)
	}
	if _, next, _ := strings.Cut(r.stdout, "deploy.sh: done"); strings.Contains(next, "subscriptions create") {
		t.Errorf("instructions still ask the operator to create a subscription:\n%s", next)
	}
}

// envVars decodes --set-env-vars=^;^K=V;K=V.
func envVars(t *testing.T, c []string) map[string]string {
	t.Helper()
	v, ok := flag(c, "set-env-vars")
	if !ok {
		t.Fatalf("no --set-env-vars in %q", c)
	}
	rest, ok := strings.CutPrefix(v, "^;^")
	if !ok {
		t.Fatalf("--set-env-vars %q does not use the ^;^ delimiter", v)
	}
	m := map[string]string{}
	for _, kv := range strings.Split(rest, ";") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSecondRunChangesNothing runs deploy.sh again on the state the first run
// left: it only reads, and says "unchanged" for everything.
func TestSecondRunChangesNothing(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	mustSucceed(t, p.run(t, nil, "--project", project))
	// The operator has authorized meanwhile.
	st := p.loadState(t)
	st.Secrets["chat-offboard-token"] = 1
	p.saveState(t, st)

	r := p.run(t, nil, "--project", project)
	mustSucceed(t, r)
	for _, c := range r.calls {
		if mutating(c) {
			t.Errorf("second run changed something: %q", c)
		}
	}
	if n := strings.Count(r.stdout, "unchanged"); n < 16 {
		t.Errorf("second run reports %d unchanged things, want every one:\n%s", n, r.stdout)
	}
	for _, sub := range []string{"chat-offboard-results-audit", "chat-offboard-dead-letters-hold"} {
		if !regexp.MustCompile(`(?m)^subscription ` + sub + ` +unchanged$`).MatchString(r.stdout) {
			t.Errorf("second run does not report subscription %s unchanged:\n%s", sub, r.stdout)
		}
	}
	for _, s := range []string{"created", "added", "deployed", "enabled", "go run ./cmd/authorize"} {
		if strings.Contains(r.stdout, s) {
			t.Errorf("second run output mentions %q:\n%s", s, r.stdout)
		}
	}

	// --redeploy deploys the function again and changes nothing else.
	r = p.run(t, nil, "--project", project, "--redeploy")
	mustSucceed(t, r)
	if changes := changesOf(r.calls); !slices.Equal(changes, []string{"functions deploy chat-offboard"}) {
		t.Errorf("--redeploy changed %q, want only the deploy", changes)
	}
}

// TestPartialProject: what exists is kept, only what is missing is added,
// TestDisabledNewestSecretVersion: the function reads versions/latest, the
// most recently created version; when that one is disabled deploy.sh says so
// with the fix (enable it, or add a version), though an older version is
// enabled, and does not ask for a first consent.
func TestDisabledNewestSecretVersion(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	mustSucceed(t, p.run(t, nil, "--project", project))
	st := p.loadState(t)
	st.Secrets["chat-offboard-token"] = 2
	st.SecretLatest = map[string]string{"chat-offboard-token": "DISABLED"}
	p.saveState(t, st)
	r := p.run(t, nil, "--project", project)
	mustSucceed(t, r)
	for _, want := range []string{"WARNING: the newest version (2) of the secret chat-offboard-token is\nDISABLED",
		"gcloud secrets versions enable 2 --secret=chat-offboard-token --project=" + project,
		"never by disabling the newest"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "has no version yet") {
		t.Errorf("a secret with versions is said to have none:\n%s", r.stdout)
	}
	// Enabled again: nothing to say.
	st.SecretLatest = nil
	p.saveState(t, st)
	r = p.run(t, nil, "--project", project)
	mustSucceed(t, r)
	if strings.Contains(r.stdout, "WARNING: the newest version") || strings.Contains(r.stdout, "has no version yet") {
		t.Errorf("an enabled newest version is warned about:\n%s", r.stdout)
	}
}

// including single missing bindings in existing policies.
func TestPartialProject(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	mustSucceed(t, p.run(t, nil, "--project", project))
	st := p.loadState(t)
	st.Services = slices.DeleteFunc(st.Services, func(s string) bool { return s == "chat.googleapis.com" })
	delete(st.Subs, "projects/my-proj/subscriptions/chat-offboard-dead-letters-hold")
	// A deployment made before deploy.sh kept results has no audit subscription.
	delete(st.Subs, auditSub)
	st.Policies["pubsub topics chat-offboard-results"] = []string{"roles/pubsub.viewer\tuser:someone@example.com"}
	st.Subs[trigSub].MaxAttempts = 5
	p.saveState(t, st)

	r := p.run(t, nil, "--project", project)
	mustSucceed(t, r)
	want := []string{
		"services enable chat.googleapis.com",
		"pubsub subscriptions create chat-offboard-results-audit",
		"pubsub subscriptions create chat-offboard-dead-letters-hold",
		"pubsub topics add-iam-policy-binding chat-offboard-results",
		"pubsub subscriptions update " + trigSub,
	}
	if changes := changesOf(r.calls); !slices.Equal(changes, want) {
		t.Errorf("changes:\n got %q\nwant %q", changes, want)
	}
	st = p.loadState(t)
	if got := st.Policies["pubsub topics chat-offboard-results"]; len(got) != 2 || got[0] != "roles/pubsub.viewer\tuser:someone@example.com" {
		t.Errorf("existing binding not kept: %q", got)
	}
	if s := st.Subs[auditSub]; s == nil || s.Topic != "chat-offboard-results" {
		t.Errorf("audit subscription state = %+v", s)
	}
}

// TestDryRun: no gcloud at all, and the plan printed is the fresh run's calls,
// in order, with placeholders for what only the checks can tell.
func TestDryRun(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, nil, "--dry-run", "--project", project)
	mustSucceed(t, r)
	if len(r.calls) != 0 {
		t.Fatalf("--dry-run ran gcloud: %q", r.calls)
	}
	if _, err := os.Stat(p.state); !os.IsNotExist(err) {
		t.Errorf("--dry-run touched the state: %v", err)
	}
	var plan [][]string
	for _, line := range strings.Split(r.stdout, "\n") {
		if !strings.HasPrefix(line, "gcloud ") {
			continue
		}
		line = strings.TrimSuffix(line, "   # check")
		argv, err := shellWords(line)
		if err != nil {
			t.Fatalf("plan line %q: %v", line, err)
		}
		plan = append(plan, argv[1:])
	}

	fresh := newProject(t)
	real := fresh.run(t, nil, "--project", project)
	mustSucceed(t, real)
	replace := strings.NewReplacer("PROJECT_NUMBER", fakeProjectNumber,
		"TRIGGER_SUBSCRIPTION", trigSub, "TRIGGER", "chat-offboard-123456")
	for _, c := range plan {
		for i := range c {
			c[i] = replace.Replace(c[i])
		}
	}
	unrender(plan, real.calls)
	// The real run finds the secret without versions and says so; the plan
	// lists the same check.
	if len(plan) != len(real.calls) {
		t.Fatalf("plan has %d commands, a fresh run %d:\nplan: %q\nrun:  %q", len(plan), len(real.calls), plan, real.calls)
	}
	for i := range plan {
		if !slices.Equal(plan[i], real.calls[i]) {
			t.Errorf("command %d:\nplan %q\nrun  %q", i, plan[i], real.calls[i])
		}
	}
	if !strings.Contains(r.stdout, "gcloud pubsub topics publish") {
		t.Errorf("plan lacks the first-request hint")
	}
}

// renderedFile matches a monitoring definition's file flag, keeping the
// flag and the file's name.
var renderedFile = regexp.MustCompile(`^(--(?:config|policy)-from-file)=.*/([^/]+\.json)$`)

// unrender replaces, in each call of each list, the path of a monitoring
// definition by its file name: a run renders them into a temporary
// directory, a plan names their templates.
func unrender(lists ...[][]string) {
	for _, calls := range lists {
		for _, c := range calls {
			for i := range c {
				c[i] = renderedFile.ReplaceAllString(c[i], "$1=$2")
			}
		}
	}
}

// shellWords splits a line printed by deploy.sh's show(): plain words and
// single-quoted words with '\” escapes.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, started := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case in && ch == '\'':
			in = false
		case in:
			cur.WriteByte(ch)
		case ch == '\'':
			in, started = true, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			started = true
		case ch == ' ':
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(ch)
			started = true
		}
	}
	if in {
		return nil, errors.New("unterminated quote")
	}
	if started {
		out = append(out, cur.String())
	}
	return out, nil
}

// TestBadSettings: each invalid value is refused before any gcloud call,
// with a message naming the setting.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     []string
		args    []string
		setting string
	}{
		{"empty project", []string{"PROJECT="}, nil, "PROJECT"},
		{"no project", nil, nil, "PROJECT"},
		{"project with uppercase", nil, []string{"--project", "My-Proj"}, "PROJECT"},
		{"region with spaces", nil, []string{"--project", project, "--region", "us central1"}, "REGION"},
		{"region from env", []string{"REGION=us-central1; rm -rf /"}, []string{"--project", project}, "REGION"},
		{"budget 0", []string{"CHAT_WRITES_PER_MINUTE=0"}, []string{"--project", project}, "CHAT_WRITES_PER_MINUTE"},
		{"budget not a number", nil, []string{"--project", project, "--writes-per-minute", "lots"}, "CHAT_WRITES_PER_MINUTE"},
		{"reads negative", []string{"CHAT_READS_PER_MINUTE=-5"}, []string{"--project", project}, "CHAT_READS_PER_MINUTE"},
		{"max instances 0", nil, []string{"--project", project, "--max-instances=0"}, "MAX_INSTANCES"},
		{"more instances than writes", []string{"MAX_INSTANCES=301"}, []string{"--project", project}, "MAX_INSTANCES"},
		{"function with uppercase", []string{"FUNCTION=Chat-Offboard"}, []string{"--project", project}, "FUNCTION"},
		{"topic with slash", nil, []string{"--project", project, "--result-topic", "projects/x/topics/y"}, "RESULT_TOPIC"},
		{"dead letters on the results topic", nil, []string{"--project", project, "--dead-letter-topic", "chat-offboard-results"}, "DEAD_LETTER_TOPIC"},
		{"bad build service account", []string{"BUILD_SERVICE_ACCOUNT=Build"}, []string{"--project", project}, "BUILD_SERVICE_ACCOUNT"},
		{"build service account is the runtime one", nil, []string{"--project", project, "--build-service-account", "chat-offboard-run"}, "BUILD_SERVICE_ACCOUNT"},
		{"result subscription with slash", []string{"RESULT_SUBSCRIPTION=a/b/c"}, []string{"--project", project}, "RESULT_SUBSCRIPTION"},
		{"same subscriptions", nil, []string{"--project", project, "--result-subscription", "keep", "--dead-letter-subscription=keep"}, "RESULT_SUBSCRIPTION"},
		{"secret with space", []string{"SECRET=my secret"}, []string{"--project", project}, "SECRET"},
		{"timeout too long", nil, []string{"--project", project, "--timeout", "600s"}, "TIMEOUT"},
		{"delivery attempts 3", nil, []string{"--project", project, "--max-delivery-attempts", "3"}, "MAX_DELIVERY_ATTEMPTS"},
		{"concurrency 0", []string{"CONCURRENCY=0"}, []string{"--project", project}, "CONCURRENCY"},
		{"protected member with ;", nil, []string{"--project", project, "--protected-members", "a@example.com;LOG_LEVEL=debug"}, "PROTECTED_MEMBERS"},
		{"bad log level", []string{"LOG_LEVEL=loud"}, []string{"--project", project}, "LOG_LEVEL"},
		{"missing flag value", nil, []string{"--project"}, "--project"},
		{"unknown flag", nil, []string{"--project", project, "--frobnicate"}, "--frobnicate"},
		{"database with uppercase", nil, []string{"--project", project, "--firestore-database", "Ledger"}, "FIRESTORE_DATABASE"},
		{"database too short", nil, []string{"--project", project, "--firestore-database=abc"}, "FIRESTORE_DATABASE"},
		{"database too long", nil, []string{"--project", project, "--firestore-database", "a" + strings.Repeat("b", 63)}, "FIRESTORE_DATABASE"},
		{"database ending with a hyphen", []string{"FIRESTORE_DATABASE=ledger-"}, []string{"--project", project}, "FIRESTORE_DATABASE"},
		{"database starting with a digit", []string{"FIRESTORE_DATABASE=1ledger"}, []string{"--project", project}, "FIRESTORE_DATABASE"},
		{"database with underscore", nil, []string{"--project", project, "--firestore-database", "chat_ledger"}, "FIRESTORE_DATABASE"},
		{"database (default) misspelt", nil, []string{"--project", project, "--firestore-database", "(Default)"}, "FIRESTORE_DATABASE"},
		{"database with a condition injection", nil, []string{"--project", project, "--firestore-database", `x" || true || "`}, "FIRESTORE_DATABASE"},
		{"empty database", []string{"FIRESTORE_DATABASE="}, []string{"--project", project}, "FIRESTORE_DATABASE"},
		{"retention with ;", nil, []string{"--project", project, "--ledger-retention", "9600h;LOG_LEVEL=debug"}, "LEDGER_RETENTION"},
		{"missing database value", nil, []string{"--project", project, "--firestore-database"}, "--firestore-database"},
		// --workspace-trigger: an organization id is its number, and it ends up in the sink's filter.
		{"organization with letters", nil, []string{"--project", project, "--workspace-trigger", "12a"}, "WORKSPACE_TRIGGER"},
		{"organization resource name", nil, []string{"--project", project, "--workspace-trigger", "organizations/123"}, "WORKSPACE_TRIGGER"},
		{"organization with a leading zero", []string{"WORKSPACE_TRIGGER=0123"}, []string{"--project", project}, "WORKSPACE_TRIGGER"},
		{"negative organization", nil, []string{"--project", project, "--workspace-trigger=-123"}, "WORKSPACE_TRIGGER"},
		{"organization with a filter injection", nil, []string{"--project", project, "--workspace-trigger", `123" OR logName:"x`}, "WORKSPACE_TRIGGER"},
		{"organization with a space", []string{"WORKSPACE_TRIGGER=123 456"}, []string{"--project", project}, "WORKSPACE_TRIGGER"},
		{"organization too long", nil, []string{"--project", project, "--workspace-trigger", "1" + strings.Repeat("0", 20)}, "WORKSPACE_TRIGGER"},
		{"missing organization", nil, []string{"--project", project, "--workspace-trigger"}, "--workspace-trigger"},
		{"sink with a slash", nil, []string{"--project", project, "--workspace-trigger", "123", "--workspace-sink", "a/b"}, "WORKSPACE_SINK"},
		{"sink too long", []string{"WORKSPACE_SINK=" + strings.Repeat("s", 101)}, []string{"--project", project, "--workspace-trigger", "123"}, "WORKSPACE_SINK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			p.refusedBeforeGcloud(t, tc.env, tc.args, tc.setting)
		})
	}
}

// TestCheckErrorStops: a failed check other than NOT_FOUND (no permission)
// stops the run instead of being taken for "missing".
func TestCheckErrorStops(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, []string{"FAKEGCLOUD_FAIL=secrets describe"}, "--project", project)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "PERMISSION_DENIED") || !strings.Contains(r.stderr, "gcloud secrets describe chat-offboard-token") {
		t.Errorf("stderr does not explain the failure:\n%s", r.stderr)
	}
	if find(r.calls, "secrets create") >= 0 || find(r.calls, "functions deploy") >= 0 {
		t.Errorf("went on after a failed check: %q", r.calls)
	}
}

// TestBudgets: the per-instance budgets and the concurrency follow the
// arithmetic of docs/operators.md.
func TestBudgets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env                        []string
		writes, reads, concurrency string
		maxInstances               string
	}{
		{nil, "300", "3000", "80", "1"},
		{[]string{"MAX_INSTANCES=10"}, "30", "300", "80", "10"},
		{[]string{"MAX_INSTANCES=100"}, "3", "30", "13", "100"},
		{[]string{"MAX_INSTANCES=3", "CHAT_WRITES_PER_MINUTE=100"}, "33", "1000", "80", "3"},
		{[]string{"MAX_INSTANCES=300", "TIMEOUT=60"}, "1", "10", "1", "300"},
		{[]string{"CONCURRENCY=200", "MAX_INSTANCES=2"}, "150", "1500", "200", "2"},
	}
	for _, tc := range cases {
		p := newProject(t)
		r := p.run(t, tc.env, "--project", project, "--dry-run")
		mustSucceed(t, r)
		var deploy []string
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "gcloud functions deploy") {
				var err error
				if deploy, err = shellWords(line); err != nil {
					t.Fatal(err)
				}
			}
		}
		if deploy == nil {
			t.Fatalf("%v: no deploy in the plan", tc.env)
		}
		env := envVars(t, deploy)
		c, _ := flag(deploy, "concurrency")
		m, _ := flag(deploy, "max-instances")
		type limits struct{ Writes, Reads, Concurrency, MaxInstances string }
		want := limits{tc.writes, tc.reads, tc.concurrency, tc.maxInstances}
		got := limits{env["CHAT_WRITES_PER_MINUTE"], env["CHAT_READS_PER_MINUTE"], c, m}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v: limits (-want +got):\n%s", tc.env, diff)
		}
	}
}

// TestSettingsReachTheFunction: flags and environment end up in the deploy
// call, PROTECTED_MEMBERS with its commas intact.
func TestSettingsReachTheFunction(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, []string{"REGION=europe-west1", "PROTECTED_MEMBERS=users/1,boss@example.com,app", "LOG_LEVEL=debug"},
		"--project=other-proj", "--function", "offboard", "--sweeps", "--max-event-age=12h", "--secret", "tok", "--timeout=300",
		"--result-subscription", "offboard-log")
	mustSucceed(t, r)
	if find(r.calls, "pubsub subscriptions create offboard-log", "project=other-proj", "topic=chat-offboard-results") < 0 {
		t.Errorf("--result-subscription not created: %q", r.calls)
	}
	if !strings.Contains(r.stdout, "gcloud pubsub subscriptions pull offboard-log --project=other-proj") {
		t.Errorf("output does not read the results from offboard-log:\n%s", r.stdout)
	}
	deploy := find(r.calls, "functions deploy offboard")
	if deploy < 0 {
		t.Fatalf("no deploy: %q", r.calls)
	}
	env := envVars(t, r.calls[deploy])
	wantEnv := map[string]string{
		"PROTECTED_MEMBERS": "users/1,boss@example.com,app", "LOG_LEVEL": "debug",
		"MAX_EVENT_AGE": "12h", "TOKEN_SECRET": "projects/other-proj/secrets/tok/versions/latest",
		// and what deploy.sh sets whatever the flags: the defaults, the
		// project, the topics, --timeout as INVOCATION_TIMEOUT.
		"CHAT_READS_PER_MINUTE": "3000", "CHAT_WRITES_PER_MINUTE": "300", "GOOGLE_CLOUD_PROJECT": "other-proj",
		"INVOCATION_TIMEOUT": "300s", "REQUEST_TOPIC": "projects/other-proj/topics/chat-offboard-requests",
		"RESULT_TOPIC":       "projects/other-proj/topics/chat-offboard-results",
		"FIRESTORE_DATABASE": "(default)", "LEDGER_RETENTION": "9600h",
	}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	for _, w := range []string{"region=europe-west1", "project=other-proj", "timeout=300s",
		"service-account=offboard-run@other-proj.iam.gserviceaccount.com"} {
		if !slices.Contains(r.calls[deploy], "--"+w) {
			t.Errorf("deploy lacks --%s: %q", w, r.calls[deploy])
		}
	}
	if i := find(r.calls, "services enable"); i < 0 || !slices.Contains(r.calls[i], "admin.googleapis.com") {
		t.Errorf("--sweeps did not enable the Admin SDK API")
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, nil, "--help")
	mustSucceed(t, r)
	for _, s := range []string{"PROJECT", "REGION", "FUNCTION", "REQUEST_TOPIC", "RESULT_TOPIC", "RESULT_SUBSCRIPTION", "DEAD_LETTER_TOPIC",
		"SECRET", "CHAT_WRITES_PER_MINUTE", "CHAT_READS_PER_MINUTE", "MAX_INSTANCES", "CONCURRENCY",
		"PROTECTED_MEMBERS", "TIMEOUT", "MAX_DELIVERY_ATTEMPTS", "FIRESTORE_DATABASE", "--firestore-database",
		"LEDGER_RETENTION", "--ledger-retention", "9600h", "--dry-run", "WORKSPACE_TRIGGER", "--workspace-trigger", "WORKSPACE_SINK", "AUTO_OFFBOARD_DOMAINS", "--auto-offboard-domains",
		"AUTO_OFFBOARD_ORG_UNITS", "AUTO_OFFBOARD_SUCCESSOR", "AUTO_OFFBOARD_ADD_SUCCESSOR"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help does not mention %s", s)
		}
	}
	if len(r.calls) != 0 {
		t.Errorf("--help ran gcloud")
	}
}

// TestShellcheck runs Debian's shellcheck on deploy.sh when it is installed
// (.ci/run installs it).
func TestShellcheck(t *testing.T) {
	t.Parallel()
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not on PATH (apt-get install shellcheck)")
	}
	out, err := exec.Command(sc, "--shell=bash", "--severity=style", script).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck deploy.sh: %v\n%s", err, out)
	}
}

// refusedBeforeGcloud runs deploy.sh with args, then with args and
// --dry-run, and fails unless each run exits 2 naming setting on standard
// error before any gcloud call is made or planned.
func (p *fakeProject) refusedBeforeGcloud(t *testing.T, env, args []string, setting string) {
	t.Helper()
	for _, dry := range [][]string{nil, {"--dry-run"}} {
		r := p.run(t, env, append(slices.Clone(args), dry...)...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", dry, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "deploy.sh: "+setting+": ") {
			t.Errorf("%v: stderr does not name %s:\n%s", dry, setting, r.stderr)
		}
		if len(r.calls) != 0 || strings.Contains(r.stdout, "gcloud") {
			t.Errorf("%v: gcloud called or planned before the check: %q\n%s", dry, r.calls, r.stdout)
		}
	}
}

// TestDeliveryPolicyRidesOutTwelveHours: the trigger's subscription, as
// deploy.sh leaves it, retries a request that fails at once (a dependency
// down) for at least 12 hours before dead-lettering it, and keeps it longer
// than the slowest retries can last: Pub/Sub's backoff doubles from the
// minimum to the maximum between deliveries (docs/operators.md has the
// arithmetic). The Eventarc default it replaces, 10 deliveries, gives up
// after 2,430 s (about 40 minutes).
func TestDeliveryPolicyRidesOutTwelveHours(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	mustSucceed(t, p.run(t, nil, "--project", project))
	var sub *fakeSub
	for name, s := range p.loadState(t).Subs {
		if strings.Contains(name, "/subscriptions/eventarc-") {
			sub = s
		}
	}
	if sub == nil {
		t.Fatal("no trigger subscription")
	}
	minB, _ := gcloudDuration(sub.MinBackoff)
	maxB, _ := gcloudDuration(sub.MaxBackoff)
	retention, _ := gcloudDuration(sub.Retention)
	// retries is how long deliveries of a request that fails at once are
	// spread over: the backoffs between them.
	retries := func(attempts int) time.Duration {
		var total time.Duration
		for i, b := 0, minB; i < attempts-1; i++ {
			total += b
			b = min(2*b, maxB)
		}
		return total
	}
	if got := retries(sub.MaxAttempts); got < 12*time.Hour || got != 56430*time.Second {
		t.Errorf("%d deliveries, %v to %v apart: retried for %v, want 56,430 s (at least 12 h)", sub.MaxAttempts, minB, maxB, got)
	}
	// At the slowest every delivery runs until the 540 s timeout.
	if slowest := retries(sub.MaxAttempts) + time.Duration(sub.MaxAttempts)*540*time.Second; retention < slowest {
		t.Errorf("messages kept %v, less than the slowest retries last (%v)", retention, slowest)
	}
	if old := retries(10); old != 2430*time.Second {
		t.Errorf("10 deliveries retried for %v, want 2,430 s", old)
	}
}
