package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// fakeMonitored is an alert policy or a dashboard of the fake project.
type fakeMonitored struct {
	DisplayName string            `json:"displayName"`
	Labels      map[string]string `json:"labels,omitempty"` // userLabels of a policy, labels of a dashboard
	Channels    []string          `json:"notificationChannels,omitempty"`
}

// fakeMonitoring is the fake's model of Cloud Logging's log-based metrics and
// Cloud Monitoring's channels, alert policies and dashboards.
type fakeMonitoring struct {
	// Metrics: log-based metric name -> description.
	Metrics map[string]string `json:"metrics,omitempty"`
	// Channels: channel name -> email address.
	Channels   map[string]string         `json:"channels,omitempty"`
	Policies   map[string]*fakeMonitored `json:"alertPolicies,omitempty"`
	Dashboards map[string]*fakeMonitored `json:"dashboards,omitempty"`
}

// fakeChannelFilter is the one channel filter the fake understands: what
// deploy.sh asks for an email channel.
var fakeChannelFilter = regexp.MustCompile(`^type="email" AND labels\.email_address="([^"]+)"$`)

// fakeDisplayFilter is the list filter on a display name.
var fakeDisplayFilter = regexp.MustCompile(`^displayName="([^"]+)"$`)

// monitoring answers `logging metrics`, `beta monitoring channels`,
// `monitoring policies` and `monitoring dashboards` calls. Like the real
// services it needs the API enabled and reads --config-from-file and
// --policy-from-file as JSON, refusing a file that does not parse.
func (f *fake) monitoring(p []string) int {
	m := &f.st.Monitoring
	switch {
	case len(p) == 4 && p[0] == "logging" && p[1] == "metrics":
		if _, ok := f.begin("logging.googleapis.com"); !ok {
			return 1
		}
		return f.logMetric(m, p[2], p[3])
	case len(p) >= 4 && p[0] == "beta" && p[1] == "monitoring" && p[2] == "channels":
		if _, ok := f.begin("monitoring.googleapis.com"); !ok {
			return 1
		}
		return f.channels(m, p[3])
	case len(p) >= 3 && p[0] == "monitoring" && (p[1] == "policies" || p[1] == "dashboards"):
		if _, ok := f.begin("monitoring.googleapis.com"); !ok {
			return 1
		}
		if m.Policies == nil {
			m.Policies = map[string]*fakeMonitored{}
		}
		if m.Dashboards == nil {
			m.Dashboards = map[string]*fakeMonitored{}
		}
		set, flag, labels := m.Policies, "policy-from-file", "userLabels"
		if p[1] == "dashboards" {
			set, flag, labels = m.Dashboards, "config-from-file", "labels"
		}
		return f.monitored(set, p[1], p[2:], flag, labels)
	}
	return f.unsupported()
}

// readConfig reads the JSON file of flag into v.
func (f *fake) readConfig(flag string, v any) bool {
	b, err := os.ReadFile(f.c.flags[flag])
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		f.fail("INVALID_ARGUMENT: --%s: %v", flag, err)
		return false
	}
	return true
}

func (f *fake) logMetric(m *fakeMonitoring, verb, name string) int {
	if m.Metrics == nil {
		m.Metrics = map[string]string{}
	}
	desc, exists := m.Metrics[name]
	switch verb {
	case "describe":
		if !exists {
			return f.notFound(name)
		}
		return f.value(map[string]string{"name": name, "description": desc})
	case "create", "update":
		if verb == "create" && exists {
			return f.alreadyExists(name)
		}
		if verb == "update" && !exists {
			return f.notFound(name)
		}
		var cfg struct{ Name, Description, Filter string }
		if !f.readConfig("config-from-file", &cfg) {
			return 1
		}
		if cfg.Name != name || cfg.Filter == "" {
			return f.fail("INVALID_ARGUMENT: metric %q: the file names %q, filter %q", name, cfg.Name, cfg.Filter)
		}
		m.Metrics[name] = cfg.Description
		f.dirty = true
		return 0
	}
	return f.unsupported()
}

func (f *fake) channels(m *fakeMonitoring, verb string) int {
	if m.Channels == nil {
		m.Channels = map[string]string{}
	}
	switch verb {
	case "list":
		sub := fakeChannelFilter.FindStringSubmatch(f.c.flags["filter"])
		if sub == nil || f.c.flags["format"] != "value(name)" {
			return f.unsupported()
		}
		var names []string
		for name, email := range m.Channels {
			if email == sub[1] {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintln(f.out, n)
		}
		return 0
	case "create":
		email, ok := strings.CutPrefix(f.c.flags["channel-labels"], "email_address=")
		if f.c.flags["type"] != "email" || !ok {
			return f.unsupported()
		}
		name := fmt.Sprintf("projects/%s/notificationChannels/%d", f.c.flags["project"], 1000+len(m.Channels))
		m.Channels[name] = email
		f.dirty = true
		return 0
	}
	return f.unsupported()
}

// monitored answers list, create and update of alert policies or dashboards.
func (f *fake) monitored(set map[string]*fakeMonitored, kind string, args []string, flag, labels string) int {
	switch {
	case len(args) == 1 && args[0] == "list":
		sub := fakeDisplayFilter.FindStringSubmatch(f.c.flags["filter"])
		if sub == nil {
			return f.unsupported()
		}
		for name, o := range set {
			if o.DisplayName == sub[1] {
				return f.value(map[string]string{"name": name, labels + ".config_hash": o.Labels["config_hash"]})
			}
		}
		return 0
	case len(args) == 1 && args[0] == "create", len(args) == 2 && args[0] == "update":
		var cfg map[string]json.RawMessage
		if !f.readConfig(flag, &cfg) {
			return 1
		}
		o := &fakeMonitored{}
		json.Unmarshal(cfg["displayName"], &o.DisplayName)
		json.Unmarshal(cfg[labels], &o.Labels)
		json.Unmarshal(cfg["notificationChannels"], &o.Channels)
		if o.DisplayName == "" {
			return f.fail("INVALID_ARGUMENT: %s without a displayName", kind)
		}
		for _, ch := range o.Channels {
			if _, ok := f.st.Monitoring.Channels[ch]; !ok {
				return f.fail("INVALID_ARGUMENT: notification channel %s does not exist", ch)
			}
		}
		name := fmt.Sprintf("projects/%s/%s/%d", f.c.flags["project"], kind, 1000+len(set))
		if args[0] == "update" {
			if _, ok := set[args[1]]; !ok {
				return f.notFound(args[1])
			}
			name = args[1]
		}
		set[name] = o
		f.dirty = true
		return 0
	}
	return f.unsupported()
}
