package deploytest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// monitoringChanges are the calls of r that change log-based metrics,
// channels, alert policies or dashboards.
func monitoringChanges(r result) []string {
	var out []string
	for _, c := range changesOf(r.calls) {
		if strings.HasPrefix(c, "logging metrics") || strings.Contains(c, "monitoring ") {
			out = append(out, c)
		}
	}
	return out
}

// TestAlerts: with --alert-email, deploy.sh creates one email channel, the
// log-based metrics of monitoring/metrics, the alert policies of
// monitoring/policies sending to that channel, and the dashboard; a second
// run changes none of them; a policy that differs from the repository's
// definition (its config hash) is updated, and only it.
func TestAlerts(t *testing.T) {
	t.Parallel()
	metrics, _ := filepath.Glob("../../monitoring/metrics/*.json")
	policies, _ := filepath.Glob("../../monitoring/policies/*.json")
	p := newProject(t)
	r := p.run(t, nil, "--project", project, "--alert-email", "oncall@example.com")
	mustSucceed(t, r)
	st := p.loadState(t)
	if len(st.Monitoring.Channels) != 1 {
		t.Fatalf("channels %v, want one for oncall@example.com", st.Monitoring.Channels)
	}
	var channel string
	for name, email := range st.Monitoring.Channels {
		channel = name
		if email != "oncall@example.com" {
			t.Errorf("channel %s sends to %s", name, email)
		}
	}
	if len(st.Monitoring.Metrics) != len(metrics) || len(st.Monitoring.Policies) != len(policies) || len(st.Monitoring.Dashboards) != 1 {
		t.Errorf("%d metrics, %d policies, %d dashboards; want %d, %d, 1",
			len(st.Monitoring.Metrics), len(st.Monitoring.Policies), len(st.Monitoring.Dashboards), len(metrics), len(policies))
	}
	for name, pol := range st.Monitoring.Policies {
		if !slices.Equal(pol.Channels, []string{channel}) {
			t.Errorf("policy %s (%s) notifies %v, want %s", name, pol.DisplayName, pol.Channels, channel)
		}
		if !strings.HasPrefix(pol.DisplayName, "chat-offboard chat-offboard: ") || len(pol.Labels["config_hash"]) != 16 {
			t.Errorf("policy %s: display name %q, config hash %q", name, pol.DisplayName, pol.Labels["config_hash"])
		}
	}
	if find(r.calls, "logging metrics create chat-offboard-decisions") < find(r.calls, "services enable") {
		t.Error("log-based metrics created before the APIs are enabled")
	}

	r = p.run(t, nil, "--project", project, "--alert-email", "oncall@example.com")
	mustSucceed(t, r)
	if c := monitoringChanges(r); len(c) != 0 {
		t.Errorf("second run changed %q", c)
	}

	st = p.loadState(t)
	var drifted string
	for name, pol := range st.Monitoring.Policies {
		drifted = name
		pol.Labels["config_hash"] = "edited-by-hand"
		break
	}
	p.saveState(t, st)
	r = p.run(t, nil, "--project", project, "--alert-email", "oncall@example.com")
	mustSucceed(t, r)
	if c := monitoringChanges(r); !slices.Equal(c, []string{"monitoring policies update " + drifted}) {
		t.Errorf("after a policy was edited by hand the run changed %q, want only that policy updated", c)
	}
}

// TestAlertsToAnExistingChannel: --notification-channel names a channel
// that exists; no channel is created and every policy sends to it. Without
// either flag the policies notify nobody, and deploy.sh says so.
func TestAlertsToAnExistingChannel(t *testing.T) {
	t.Parallel()
	const channel = "projects/my-proj/notificationChannels/42"
	p := newProject(t)
	st := p.loadState(t)
	st.Monitoring.Channels = map[string]string{channel: "pager@example.com"}
	p.saveState(t, st)
	r := p.run(t, nil, "--project", project, "--notification-channel", channel)
	mustSucceed(t, r)
	if find(r.calls, "beta monitoring channels") >= 0 {
		t.Errorf("a channel was looked up or created though one was named")
	}
	for name, pol := range p.loadState(t).Monitoring.Policies {
		if !slices.Equal(pol.Channels, []string{channel}) {
			t.Errorf("policy %s notifies %v, want %s", name, pol.Channels, channel)
		}
	}

	q := newProject(t)
	r = q.run(t, nil, "--project", project)
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "notify nobody") {
		t.Errorf("no warning that the alerts notify nobody:\n%s", r.stderr)
	}
}

// TestAlertSettingsRefused: a malformed address or channel, or both flags at
// once, are refused before any gcloud call.
func TestAlertSettingsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		setting string
	}{
		{"not an address", []string{"--alert-email", "oncall"}, "ALERT_EMAIL"},
		{"address with a filter injection", []string{"--alert-email", `a@b.co" OR type="sms`}, "ALERT_EMAIL"},
		{"channel id only", []string{"--notification-channel", "42"}, "NOTIFICATION_CHANNEL"},
		{"both", []string{"--alert-email", "a@example.com", "--notification-channel", "projects/my-proj/notificationChannels/42"}, "ALERT_EMAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			newProject(t).refusedBeforeGcloud(t, nil, append([]string{"--project", project}, tc.args...), tc.setting)
		})
	}
}
