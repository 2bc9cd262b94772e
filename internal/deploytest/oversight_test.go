package deploytest

import (
	"slices"
	"strings"
	"testing"
)

// TestOversight (issue 23): with --approvers, the approval topic is
// created with its own trigger to the function and only the approvers may
// publish to it, and the function learns its name; with
// --workspace-trigger, Cloud Scheduler publishes the due tick to the
// requests topic. A second run changes nothing; a new schedule updates the
// job only.
func TestOversight(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	args := []string{"--project", project, "--workspace-trigger", org, "--auto-offboard-domains", "example.com",
		"--approvers", "user:ops@example.com,group:approvers@example.com", "--auto-offboard-delay", "24h",
		"--auto-offboard-max-per-hour=5", "--approval-required", "bulk,restore"}
	r := p.run(t, nil, args...)
	mustSucceed(t, r)
	env := envVars(t, r.calls[find(r.calls, "functions deploy chat-offboard")])
	for k, v := range map[string]string{"APPROVAL_TOPIC": "projects/my-proj/topics/chat-offboard-approvals",
		"AUTO_OFFBOARD_DELAY": "24h", "AUTO_OFFBOARD_MAX_PER_HOUR": "5", "APPROVAL_REQUIRED": "bulk,restore"} {
		if env[k] != v {
			t.Errorf("function env %s = %q, want %q", k, env[k], v)
		}
	}
	st := p.loadState(t)
	if !st.Topics["chat-offboard-approvals"] {
		t.Fatal("no approval topic")
	}
	tr := st.Oversight.Triggers["chat-offboard-approvals"]
	if tr == nil || tr.Topic != "projects/my-proj/topics/chat-offboard-approvals" || tr.Service != "us-central1/chat-offboard" ||
		tr.EventFilters != "type=google.cloud.pubsub.topic.v1.messagePublished" || "serviceAccount:"+tr.ServiceAccount != saMember {
		t.Errorf("approval trigger: %+v", tr)
	}
	var publishers []string
	for _, b := range bindingsOf(r.calls) {
		if b.resource == "chat-offboard-approvals" {
			if b.role != "roles/pubsub.publisher" {
				t.Errorf("binding on the approval topic: %+v", b)
			}
			publishers = append(publishers, b.member)
		}
	}
	slices.Sort(publishers)
	if !slices.Equal(publishers, []string{"group:approvers@example.com", "user:ops@example.com"}) {
		t.Errorf("approval topic publishers %v, want exactly the approvers", publishers)
	}
	job := st.Oversight.Jobs["us-central1/chat-offboard-due"]
	if job == nil || job.Schedule != "*/5 * * * *" || job.Topic != "projects/my-proj/topics/chat-offboard-requests" || job.Body != `{"requestId":"due","due":true}` {
		t.Errorf("due job: %+v", job)
	}

	st.Secrets["chat-offboard-token"] = 1 // authorized meanwhile
	p.saveState(t, st)
	r = p.run(t, nil, args...)
	mustSucceed(t, r)
	if changes := changesOf(r.calls); len(changes) != 0 {
		t.Errorf("second run changed %q", changes)
	}
	r = p.run(t, nil, append(args, "--due-schedule", "*/2 * * * *")...)
	mustSucceed(t, r)
	if changes := changesOf(r.calls); !slices.Equal(changes, []string{"scheduler jobs update pubsub chat-offboard-due"}) {
		t.Errorf("a new schedule changed %q, want the job only", changes)
	}
	if got := p.loadState(t).Oversight.Jobs["us-central1/chat-offboard-due"].Schedule; got != "*/2 * * * *" {
		t.Errorf("schedule %q after the update", got)
	}
}

// TestOversightDefaults: without --approvers there is no approval topic
// and the function gets no APPROVAL_TOPIC (a Workspace trigger without
// approvers is warned about); without --workspace-trigger no due job.
func TestOversightDefaults(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := p.run(t, nil, "--project", project, "--workspace-trigger", org, "--auto-offboard-domains", "example.com")
	mustSucceed(t, r)
	st := p.loadState(t)
	if st.Topics["chat-offboard-approvals"] || len(st.Oversight.Triggers) != 0 {
		t.Errorf("an approval topic without approvers: %+v", st.Oversight)
	}
	if _, ok := envVars(t, r.calls[find(r.calls, "functions deploy chat-offboard")])["APPROVAL_TOPIC"]; ok {
		t.Error("APPROVAL_TOPIC set without approvers")
	}
	if !strings.Contains(r.stderr, "no --approvers") || len(st.Oversight.Jobs) != 1 {
		t.Errorf("want a warning and the due job: jobs %v\n%s", st.Oversight.Jobs, r.stderr)
	}
	q := newProject(t)
	mustSucceed(t, q.run(t, nil, "--project", project))
	if st := q.loadState(t); len(st.Oversight.Jobs) != 0 || st.Topics["chat-offboard-approvals"] {
		t.Errorf("oversight resources without the trigger or approvers: %+v", st.Oversight)
	}
}

// TestOversightBadSettings: approvers that are no IAM members, approval
// forms without approvers, an approval topic that is another topic, and a
// schedule that is no cron line stop deploy.sh before any gcloud call.
func TestOversightBadSettings(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	for _, c := range []struct {
		args    []string
		setting string
	}{
		{[]string{"--approvers", "ops@example.com"}, "APPROVERS"},
		{[]string{"--approval-required", "sweep"}, "APPROVERS"},
		{[]string{"--approvers", "user:ops@example.com", "--approval-topic", "chat-offboard-requests"}, "APPROVAL_TOPIC"},
		{[]string{"--due-schedule", "every 5 minutes"}, "DUE_SCHEDULE"},
	} {
		p.refusedBeforeGcloud(t, nil, append([]string{"--project", project}, c.args...), c.setting)
	}
	// The function's own checks: a delay that is no duration.
	r := p.run(t, nil, "--project", project, "--auto-offboard-delay", "soon", "--dry-run")
	if r.code != 2 || !strings.Contains(r.stderr, "AUTO_OFFBOARD_DELAY") {
		t.Errorf("AUTO_OFFBOARD_DELAY=soon: exit %d\n%s", r.code, r.stderr)
	}
}
