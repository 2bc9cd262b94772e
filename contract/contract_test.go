package contract

import (
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTopicName(t *testing.T) {
	cases := []struct {
		name, in, project, want string
		wantErr                 bool
	}{
		{"empty stays empty", "", "p", "", false},
		{"blank stays empty", "  ", "p", "", false},
		{"id in the project", "results", "p", "projects/p/topics/results", false},
		{"id trimmed", " results\n", "p", "projects/p/topics/results", false},
		{"full name kept", "projects/other/topics/results", "p", "projects/other/topics/results", false},
		{"full name trimmed", " projects/other/topics/results ", "p", "projects/other/topics/results", false},
		{"subscription", "projects/p/subscriptions/results", "p", "", true},
		{"no project in a full name", "projects//topics/results", "p", "", true},
		{"no topic in a full name", "projects/p/topics/", "p", "", true},
		{"too long a full name", "projects/p/topics/results/x", "p", "", true},
		{"id with a slash", "a/b", "p", "", true},
		{"id without a project", "results", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := TopicName(c.in, c.project)
			if (err != nil) != c.wantErr {
				t.Fatalf("TopicName(%q, %q) error = %v, want error %v", c.in, c.project, err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("TopicName(%q, %q) = %q, want %q", c.in, c.project, got, c.want)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	const req, ms = "hr-1", "spaces/ENG/members/101"
	// Stable across calls and across releases: consumers drop duplicates
	// by it, also between versions of the function.
	if got, want := EventID(req, ms, Removed), "7aaedfc6aaec05cef16f1717d9681f4b"; got != want {
		t.Errorf("EventID = %s, want %s (the id of a decision must not change)", got, want)
	}
	first, again := EventID(req, ms, Removed), EventID(req, ms, Removed)
	if first != again {
		t.Error("EventID is not stable")
	}
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]Outcome{}
	for _, o := range Outcomes {
		id := EventID(req, ms, o)
		if !hex.MatchString(id) {
			t.Errorf("EventID(%s) = %q, want 32 hex digits", o, id)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("outcomes %s and %s share the id %s", prev, o, id)
		}
		seen[id] = o
	}
	for _, c := range []struct{ name, a, b string }{
		{"request", EventID("hr-1", ms, Removed), EventID("hr-2", ms, Removed)},
		{"membership", EventID(req, "spaces/ENG/members/101", Removed), EventID(req, "spaces/ENG/members/102", Removed)},
		{"field boundary", EventID("ab", "c", Removed), EventID("a", "bc", Removed)},
		{"no membership", EventID(req, "", Planned), EventID(req, "", Invalid)},
	} {
		if c.a == c.b {
			t.Errorf("%s: ids do not differ: %s", c.name, c.a)
		}
	}
}

func TestResultAttributes(t *testing.T) {
	at := time.Date(2026, 11, 28, 11, 0, 0, 123000000, time.FixedZone("CET", 3600))
	cases := []struct {
		name string
		r    Result
		want map[string]string
	}{
		{"membership decision", Result{RequestID: "hr-1", Membership: "spaces/ENG/members/101", Outcome: Removed, ProcessedAt: at},
			map[string]string{
				"ce-specversion": "1.0",
				"ce-type":        "dev.chat-offboard.membership.result.v1",
				"ce-source":      "//chat-offboard/RemoveMembership",
				"ce-id":          "7aaedfc6aaec05cef16f1717d9681f4b",
				"ce-time":        "2026-11-28T10:00:00.123Z",
				"ce-subject":     "spaces/ENG/members/101",
				"content-type":   "application/json",
				"outcome":        "removed",
				"requestId":      "hr-1",
			}},
		{"request without a membership", Result{RequestID: "bulk-1", Outcome: Planned, ProcessedAt: at.Add(-123 * time.Millisecond)},
			map[string]string{
				"ce-specversion": "1.0",
				"ce-type":        ResultEventType,
				"ce-source":      ResultSource,
				"ce-id":          EventID("bulk-1", "", Planned),
				"ce-time":        "2026-11-28T10:00:00Z",
				"ce-subject":     "requests/bulk-1",
				"content-type":   "application/json",
				"outcome":        "planned",
				"requestId":      "bulk-1",
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, c.r.Attributes()); diff != "" {
				t.Errorf("Attributes (-want +got):\n%s", diff)
			}
		})
	}
}

// A dry run's results and the real request's under one id have different
// ce-ids (a consumer dropping duplicates keeps both planned results), and
// each request message answered id_reused has its own.
func TestResultEventIDTellsApart(t *testing.T) {
	real := Result{RequestID: "hr-9", Outcome: Planned}
	dry := Result{RequestID: "hr-9", Outcome: Planned, DryRun: true}
	if real.EventID() != EventID("hr-9", "", Planned) {
		t.Errorf("a real request's ce-id changed: %s", real.EventID())
	}
	if real.EventID() == dry.EventID() {
		t.Error("a dry run's planned result has the real request's ce-id")
	}
	a := Result{RequestID: "hr-9", Outcome: IDReused, SourceMessageID: "1"}
	b := Result{RequestID: "hr-9", Outcome: IDReused, SourceMessageID: "2"}
	again := a
	if a.EventID() == b.EventID() || a.EventID() != again.EventID() {
		t.Errorf("id_reused ce-ids: %s, %s, again %s: want one per message, stable", a.EventID(), b.EventID(), again.EventID())
	}
	if got := dry.Attributes()["ce-id"]; got != dry.EventID() {
		t.Errorf("Attributes ce-id = %s, want %s", got, dry.EventID())
	}
}
