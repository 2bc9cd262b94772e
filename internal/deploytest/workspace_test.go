package deploytest

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/request"
)

const (
	org          = "123456789012"
	sinkName     = "chat-offboard-workspace"
	sinkKey      = "organizations/" + org + "/sinks/" + sinkName
	sinkDest     = "pubsub.googleapis.com/projects/my-proj/topics/chat-offboard-requests"
	sinkWriter   = "serviceAccount:service-org-" + org + "@gcp-sa-logging.iam.gserviceaccount.com"
	wantSinkRole = "roles/pubsub.publisher"
)

// wantFilter is the sink's filter, written out: the Admin audit log of the
// organization, Workspace's Admin service, and exactly the methods of a user
// being suspended, archived or deleted (Google's names, deploy.sh says where
// they come from).
const wantFilter = `logName="organizations/123456789012/logs/cloudaudit.googleapis.com%2Factivity"` +
	` AND protoPayload.serviceName="admin.googleapis.com"` +
	` AND (protoPayload.methodName="google.admin.AdminService.suspendUser"` +
	` OR protoPayload.methodName="google.admin.AdminService.suspendAutoProvisionedUser"` +
	` OR protoPayload.methodName="google.admin.AdminService.archiveUser"` +
	` OR protoPayload.methodName="google.admin.AdminService.deleteUser"` +
	` OR protoPayload.methodName="google.admin.AdminService.deleteAutoProvisionedUser"` +
	` OR protoPayload.methodName="google.admin.AdminService.hardDeletedAutoProvisionedUser")`

// TestWorkspaceTrigger: --workspace-trigger ORG creates the organization's
// sink with the filter on the Admin audit log and the requests topic as
// destination, after the function and its subscription exist, and grants
// the sink's writer identity roles/pubsub.publisher on the requests topic
// and nothing else.
func TestWorkspaceTrigger(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, []string{"AUTO_OFFBOARD_ORG_UNITS=/Staff,/Sales"}, "--project", project, "--workspace-trigger", org,
		"--auto-offboard-domains", "example.com,example.org", "--auto-offboard-successor=boss@example.com")
	mustSucceed(t, r)

	// Who the function may sweep reaches its environment; the Admin SDK API
	// (its Directory reads and sweeps) is enabled.
	deploy := find(r.calls, "functions deploy chat-offboard")
	if deploy < 0 {
		t.Fatalf("no deploy: %q", r.calls)
	}
	env := envVars(t, r.calls[deploy])
	for k, v := range map[string]string{"AUTO_OFFBOARD_DOMAINS": "example.com,example.org",
		"AUTO_OFFBOARD_ORG_UNITS": "/Staff,/Sales", "AUTO_OFFBOARD_SUCCESSOR": "boss@example.com"} {
		if env[k] != v {
			t.Errorf("function env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["AUTO_OFFBOARD_ADD_SUCCESSOR"]; ok {
		t.Errorf("AUTO_OFFBOARD_ADD_SUCCESSOR set without --auto-offboard-add-successor: %v", env)
	}
	if i := find(r.calls, "services enable"); i < 0 || !slices.Contains(r.calls[i], "admin.googleapis.com") {
		t.Errorf("--workspace-trigger did not enable the Admin SDK API")
	}

	create := find(r.calls, "logging sinks create "+sinkName+" "+sinkDest, "organization="+org)
	if create < 0 {
		t.Fatalf("no sink created on organization %s: %q", org, r.calls)
	}
	c := r.calls[create]
	if got, _ := flag(c, "log-filter"); got != wantFilter {
		t.Errorf("sink filter:\n got %s\nwant %s", got, wantFilter)
	}
	// The sink routes exactly the methods the function acts on.
	var methods []string
	for _, m := range regexp.MustCompile(`protoPayload\.methodName="([^"]+)"`).FindAllStringSubmatch(wantFilter, -1) {
		methods = append(methods, m[1])
	}
	if fn := slices.Sorted(maps.Keys(request.AuditMethods)); !slices.Equal(slices.Sorted(slices.Values(methods)), fn) {
		t.Errorf("the sink routes %q, the function acts on %q", methods, fn)
	}
	for _, f := range []string{"include-children", "project", "disabled"} {
		if _, ok := flag(c, f); ok {
			t.Errorf("sink created with --%s: %q", f, c)
		}
	}
	for _, before := range []string{"functions deploy", "pubsub subscriptions update " + trigSub} {
		if i := find(r.calls, before); i < 0 || i > create {
			t.Errorf("%q at call %d, the sink at call %d: entries would reach a topic nobody reads", before, i, create)
		}
	}
	st := p.loadState(t)
	want := &fakeSink{Destination: sinkDest, Filter: wantFilter, WriterIdentity: sinkWriter}
	if diff := cmp.Diff(want, st.Sinks[sinkKey]); diff != "" {
		t.Errorf("sink (-want +got):\n%s", diff)
	}

	// The writer identity: one binding, on the requests topic, granted
	// after the sink exists.
	var writer []binding
	for _, b := range bindingsOf(r.calls) {
		if b.member == sinkWriter {
			writer = append(writer, b)
		}
	}
	if want := []binding{{"pubsub topics", "chat-offboard-requests", wantSinkRole, sinkWriter}}; !slices.Equal(writer, want) {
		t.Errorf("writer identity's bindings = %q, want %q", writer, want)
	}
	if i := find(r.calls, "pubsub topics add-iam-policy-binding chat-offboard-requests", "member="+sinkWriter); i < create {
		t.Errorf("writer identity granted at call %d, before the sink (call %d)", i, create)
	}
	if got := st.Policies["pubsub topics chat-offboard-requests"]; !slices.Contains(got, wantSinkRole+"\t"+sinkWriter) {
		t.Errorf("requests topic policy %q lacks the writer identity", got)
	}
	for _, s := range []string{"roles/logging.configWriter", "Sharing options", "Legal and compliance",
		"go run ./cmd/offboard reconcile --since 24h --organization=" + org, "cmd/authorize --sweeps"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output does not mention %q:\n%s", s, r.stdout)
		}
	}

	// Without the flag: no sink, no call to Cloud Logging's sinks at all.
	plain := newProject(t).run(t, nil, "--project", project)
	mustSucceed(t, plain)
	if i := find(plain.calls, "logging sinks"); i >= 0 {
		t.Errorf("a run without --workspace-trigger calls %q", plain.calls[i])
	}
}

// TestWorkspaceTriggerIdempotent: a second run changes nothing; a sink that
// exists with another filter, another destination or disabled is updated
// (never created a second time) and enabled again.
func TestWorkspaceTriggerIdempotent(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	args := []string{"--project", project, "--workspace-trigger=" + org}
	mustSucceed(t, p.run(t, nil, args...))

	r := p.run(t, nil, args...)
	mustSucceed(t, r)
	if changes := changesOf(r.calls); len(changes) != 0 {
		t.Errorf("second run changed %q", changes)
	}
	if !strings.Contains(r.stdout, "log sink "+sinkName+" on organization "+org) ||
		strings.Contains(r.stdout, "log sink "+sinkName+" on organization "+org+" created") {
		t.Errorf("second run does not report the sink unchanged:\n%s", r.stdout)
	}

	for _, tc := range []struct {
		name  string
		spoil func(s *fakeSink)
	}{
		{"filter edited", func(s *fakeSink) { s.Filter = `protoPayload.methodName="google.admin.AdminService.suspendUser"` }},
		{"disabled", func(s *fakeSink) { s.Disabled = true }},
		{"other destination", func(s *fakeSink) {
			s.Destination = "pubsub.googleapis.com/projects/my-proj/topics/chat-offboard-results"
		}},
	} {
		st := p.loadState(t)
		tc.spoil(st.Sinks[sinkKey])
		p.saveState(t, st)
		r := p.run(t, nil, args...)
		mustSucceed(t, r)
		if changes, want := changesOf(r.calls), []string{"logging sinks update " + sinkName + " " + sinkDest}; !slices.Equal(changes, want) {
			t.Errorf("%s: changes %q, want %q", tc.name, changes, want)
		}
		if i := find(r.calls, "logging sinks update", "organization="+org, "no-disabled", "log-filter="+wantFilter); i < 0 {
			t.Errorf("%s: no update with the filter and --no-disabled: %q", tc.name, r.calls)
		}
		want := &fakeSink{Destination: sinkDest, Filter: wantFilter, WriterIdentity: sinkWriter}
		if diff := cmp.Diff(want, p.loadState(t).Sinks[sinkKey]); diff != "" {
			t.Errorf("%s: sink after the run (-want +got):\n%s", tc.name, diff)
		}
	}

	// A sink of that name made by hand in a fresh project: updated, and its
	// writer identity granted.
	q := newProject(t)
	st := q.loadState(t)
	st.Sinks[sinkKey] = &fakeSink{Destination: sinkDest, Filter: "severity>=ERROR", WriterIdentity: sinkWriter}
	q.saveState(t, st)
	r = q.run(t, nil, args...)
	mustSucceed(t, r)
	if find(r.calls, "logging sinks create") >= 0 || find(r.calls, "logging sinks update "+sinkName) < 0 {
		t.Errorf("existing sink not updated in place: %q", changesOf(r.calls))
	}
	if find(r.calls, "pubsub topics add-iam-policy-binding chat-offboard-requests", "member="+sinkWriter) < 0 {
		t.Errorf("writer identity of the existing sink not granted: %q", r.calls)
	}
}

// TestWorkspaceTriggerDryRun: the dry run plans the sink's calls exactly as
// a fresh run makes them, with a placeholder for the writer identity, and
// runs no gcloud.
func TestWorkspaceTriggerDryRun(t *testing.T) {
	t.Parallel()
	args := []string{"--project", project, "--workspace-trigger", org, "--workspace-sink", "offboard-on-suspend"}
	p := newProject(t)
	r := p.run(t, nil, append([]string{"--dry-run"}, args...)...)
	mustSucceed(t, r)
	if len(r.calls) != 0 {
		t.Fatalf("--dry-run ran gcloud: %q", r.calls)
	}
	var plan [][]string
	for _, line := range strings.Split(r.stdout, "\n") {
		if !strings.HasPrefix(line, "gcloud ") {
			continue
		}
		argv, err := shellWords(strings.TrimSuffix(line, "   # check"))
		if err != nil {
			t.Fatalf("plan line %q: %v", line, err)
		}
		plan = append(plan, argv[1:])
	}
	real := newProject(t).run(t, nil, args...)
	mustSucceed(t, real)
	replace := strings.NewReplacer("PROJECT_NUMBER", fakeProjectNumber, "TRIGGER_SUBSCRIPTION", trigSub,
		"TRIGGER", "chat-offboard-123456", "SINK_WRITER_IDENTITY", sinkWriter)
	for _, c := range plan {
		for i := range c {
			c[i] = replace.Replace(c[i])
		}
	}
	unrender(plan, real.calls)
	if diff := cmp.Diff(real.calls, plan); diff != "" {
		t.Errorf("plan differs from a fresh run (-run +plan):\n%s", diff)
	}
	if find(plan, "logging sinks create offboard-on-suspend "+sinkDest, "organization="+org, "log-filter="+wantFilter) < 0 {
		t.Errorf("plan lacks the sink: %q", plan)
	}
	if !strings.Contains(r.stdout, "SINK_WRITER_IDENTITY stands for") {
		t.Errorf("plan does not explain its placeholder:\n%s", r.stdout)
	}
}

// TestWorkspaceTriggerNoPermission: without the organization role the sink's
// describe fails; the run stops there with gcloud's reason instead of trying
// a create, and grants nothing to a writer identity.
func TestWorkspaceTriggerNoPermission(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, []string{"FAKEGCLOUD_FAIL=logging sinks describe"}, "--project", project, "--workspace-trigger", org)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "PERMISSION_DENIED") || !strings.Contains(r.stdout, "roles/logging.configWriter") {
		t.Errorf("the failure is not explained:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if i := find(r.calls, "logging sinks create"); i >= 0 {
		t.Errorf("created a sink after a failed describe: %q", r.calls[i])
	}
	if i := find(r.calls, "pubsub topics add-iam-policy-binding chat-offboard-requests", "member="+sinkWriter); i >= 0 {
		t.Errorf("granted a writer identity: %q", r.calls[i])
	}
}
