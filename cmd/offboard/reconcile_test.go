package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/request"
)

const (
	testOrg      = "506102632746"
	reportsAdmin = "admin@example.com"
)

// reconcileFixture is what offboard reconcile talks to: the Reports API and
// Secret Manager emulations (the delegated admin's credential, with the
// scope of cmd/authorize --workspace-trigger, in the secret "reports-token"),
// and Pub/Sub (pstest) with the topic "requests".
type reconcileFixture struct {
	stack     *emulator.Stack
	reports   *emulator.Reports
	env       map[string]string
	published func() []publishedMessage
}

// publishedMessage is a message on the requests topic.
type publishedMessage struct {
	data  []byte
	attrs map[string]string
}

func newReconcileFixture(t *testing.T) *reconcileFixture {
	t.Helper()
	st, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	r := emulator.NewReports(emulator.Default(), st.OAuth)
	t.Cleanup(r.Close)
	rt := st.OAuth.IssueRefreshToken(st.ClientID, "users/100",
		append(slices.Clone(emulator.StackScopes), emulator.ScopeAdminReportsAuditReadonly))
	st.Secrets.AddVersion(st.Project, "reports-token", emulator.AuthorizedUserJSON(st.ClientID, st.ClientSecret, rt, st.OAuth.TokenURL()))
	env, _, published := clitest.PstestEnv(t)
	env["REPORTS_ENDPOINT"] = r.URL()
	env["SECRET_MANAGER_ENDPOINT"] = st.Secrets.Addr()
	env["TOKEN_SECRET"] = "projects/" + st.Project + "/secrets/reports-token"
	return &reconcileFixture{stack: st, reports: r, env: env, published: func() []publishedMessage {
		var out []publishedMessage
		for _, m := range published() {
			out = append(out, publishedMessage{m.Data, m.Attributes})
		}
		return out
	}}
}

// reconcile runs offboard reconcile args, through the command's dispatch.
func (f *reconcileFixture) reconcile(t *testing.T, args ...string) invocation {
	t.Helper()
	return offboard(t, context.Background(), f.env, append([]string{"reconcile"}, args...)...)
}

// TestReconcilePublishesMissedEvents: every suspension and deletion of the
// last 24 hours whose event name a Google reference gives is published as
// the LogEntry a sink would publish, oldest first, under the request id the
// activity's own entry derives; what is older, not offboarding, or another
// application's is left alone; the event names no Google reference gives
// are not asked for, and listed.
func TestReconcilePublishesMissedEvents(t *testing.T) {
	t.Parallel()
	f := newReconcileFixture(t)
	now := time.Now()
	bob := f.reports.Add(emulator.AdminUserEvent("DELETE_USER", "bob@example.com", reportsAdmin, now.Add(-3*time.Hour)))
	alice := f.reports.Add(emulator.AdminUserEvent("SUSPEND_USER", "alice@example.com", reportsAdmin, now.Add(-2*time.Hour)))
	// Parameters in another order: USER_EMAIL is looked up by name.
	erin := emulator.AdminUserEvent("SUSPEND_USER", "erin@example.com", "", now.Add(-time.Hour))
	erin.Events[0].Parameters = append([]emulator.ReportParameter{{Name: "SUSPENSION_REASON", Value: "left"}}, erin.Events[0].Parameters...)
	erinQ := f.reports.Add(erin)
	// Not asked for: their names are unconfirmed.
	f.reports.Add(emulator.AdminUserEvent("ARCHIVE_USER", "gina@example.com", reportsAdmin, now.Add(-time.Hour)))
	f.reports.Add(emulator.AdminUserEvent("DELETE_USER", "carol@example.com", reportsAdmin, now.Add(-30*time.Hour)))
	f.reports.Add(emulator.AdminUserEvent("CHANGE_PASSWORD", "dave@example.com", reportsAdmin, now.Add(-time.Hour)))
	login := emulator.AdminUserEvent("SUSPEND_USER", "frank@example.com", reportsAdmin, now.Add(-time.Hour))
	login.Application = "login"
	f.reports.Add(login)

	r := f.reconcile(t, "--since", "24h", "--organization", testOrg)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	// Pub/Sub does not keep the order of publishing: matched by request id.
	msgs := map[string]publishedMessage{}
	for _, m := range f.published() {
		msgs[m.attrs["requestId"]] = m
	}
	type want struct {
		event, email, actor string
		at                  time.Time
		uq                  int64
	}
	wants := []want{
		{"DELETE_USER", "bob@example.com", reportsAdmin, now.Add(-3 * time.Hour), bob},
		{"SUSPEND_USER", "alice@example.com", reportsAdmin, now.Add(-2 * time.Hour), alice},
		{"SUSPEND_USER", "erin@example.com", "", now.Add(-time.Hour), erinQ},
	}
	if len(msgs) != len(wants) {
		t.Fatalf("published %d messages, want %d", len(msgs), len(wants))
	}
	var ids []string
	for i, w := range wants {
		id := request.AuditRequestID(w.at, w.uq)
		ids = append(ids, id)
		data := msgs[id].data
		if !request.LooksLikeLogEntry(data) {
			t.Fatalf("message %d is not a LogEntry: %s", i, data)
		}
		ev, err := request.ParseAuditEntry(data)
		if err != nil {
			t.Fatalf("message %d: the function would refuse it: %v\n%s", i, err, data)
		}
		if ev.EventName != w.event || ev.Email != w.email || ev.Actor != w.actor || ev.Organization != testOrg ||
			request.AuditMethods[ev.Method] != w.event || ev.RequestID() != id {
			t.Errorf("message %s = %+v, want %+v", id, ev, w)
		}
	}
	// Listed oldest first.
	var listed []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], request.AuditRequestPrefix) {
			listed = append(listed, f[0])
		}
	}
	if !slices.Equal(listed, ids) {
		t.Errorf("stdout lists %q, want %q:\n%s", listed, ids, r.stdout)
	}
	// Progress: one line per event name asked for.
	const unconfirmed = "not asked for (no Google reference names them; their activities are not reconciled): " +
		"ARCHIVE_USER, DELETE_AUTO_PROVISIONED_USER, HARD_DELETED_AUTO_PROVISIONED_USER, SUSPEND_AUTO_PROVISIONED_USER"
	if !strings.Contains(r.stderr, unconfirmed) {
		t.Errorf("the unconfirmed event names are not listed:\n%s", r.stderr)
	}
	for _, name := range []string{"SUSPEND_USER", "DELETE_USER"} {
		if !strings.Contains(r.stderr, "offboard reconcile: "+name+" since ") {
			t.Errorf("no progress for %s:\n%s", name, r.stderr)
		}
	}
	if s := f.reports.Stats(); s.Calls != 2 {
		t.Errorf("%d activities.list calls, want one per confirmed event name (2)", s.Calls)
	}
}

// TestReconcileSameRequestAsTheSink: the LogEntry a sink publishes for an
// activity (timeUsec to the microsecond) and the one reconcile publishes
// from the Reports API (id.time to the millisecond) are the same request, so
// the ledger acts once whichever arrives first.
func TestReconcileSameRequestAsTheSink(t *testing.T) {
	t.Parallel()
	f := newReconcileFixture(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond).Add(417 * time.Microsecond)
	q := f.reports.Add(emulator.AdminUserEvent("SUSPEND_USER", "alice@example.com", reportsAdmin, at))
	sink := (&request.AuditEvent{InsertID: "fjwwoaeb955f", Organization: testOrg, Method: "google.admin.AdminService.suspendUser",
		EventName: "SUSPEND_USER", Email: "alice@example.com", Actor: reportsAdmin, Time: at, UniqueQualifier: q, HasActivityID: true}).LogEntry()
	fromSink, err := request.ParseAuditEntry(sink)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.reconcile(t, "--organization", testOrg); r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	msgs := f.published()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages, want 1", len(msgs))
	}
	reconciled, err := request.ParseAuditEntry(msgs[0].data)
	if err != nil {
		t.Fatal(err)
	}
	if reconciled.RequestID() != fromSink.RequestID() {
		t.Errorf("reconciled request id %s, the sink's %s", reconciled.RequestID(), fromSink.RequestID())
	}
	if reconciled.InsertID == fromSink.InsertID || !strings.HasPrefix(reconciled.InsertID, "reports-") {
		t.Errorf("reconciled insertId %q does not say where it comes from", reconciled.InsertID)
	}
}

// TestReconcileDryRun lists without publishing, in JSON lines too.
func TestReconcileDryRun(t *testing.T) {
	t.Parallel()
	f := newReconcileFixture(t)
	at := time.Now().Add(-time.Hour)
	q := f.reports.Add(emulator.AdminUserEvent("DELETE_USER", "bob@example.com", reportsAdmin, at))
	delete(f.env, "REQUEST_TOPIC") // a dry run needs no topic
	r := f.reconcile(t, "--organization", testOrg, "--dry-run", "--output", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if n := len(f.published()); n != 0 {
		t.Errorf("--dry-run published %d messages", n)
	}
	var line map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &line); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if line["requestId"] != request.AuditRequestID(at, q) || line["messageId"] != "" || !strings.Contains(line["event"], "DELETE_USER bob@example.com") {
		t.Errorf("listed %v", line)
	}
	if !strings.Contains(r.stderr, "nothing published (--dry-run)") {
		t.Errorf("stderr does not say nothing was published:\n%s", r.stderr)
	}
}

// TestReconcileRefusals: bad settings are refused before any call; the
// Reports API's refusal stops the run with nothing published; an activity
// that names two people is named and skipped, the others published.
func TestReconcileRefusals(t *testing.T) {
	t.Parallel()
	f := newReconcileFixture(t)
	f.reports.Add(emulator.AdminUserEvent("SUSPEND_USER", "alice@example.com", reportsAdmin, time.Now().Add(-time.Hour)))
	for name, args := range map[string][]string{
		"no organization":           nil,
		"organization not a number": {"--organization", "organizations/1"},
		"since 0":                   {"--organization", testOrg, "--since", "0s"},
		"since beyond 180 days":     {"--organization", testOrg, "--since", "4321h"},
		"output xml":                {"--organization", testOrg, "--output", "xml"},
		"an argument":               {"--organization", testOrg, "now"},
	} {
		if r := f.reconcile(t, args...); r.code != exitUsage || !strings.Contains(r.stderr, "offboard reconcile: ") {
			t.Errorf("%s: exit %d, want %d with a reason\n%s", name, r.code, exitUsage, r.stderr)
		}
	}
	// Not Google's, and user info: the host of the second is evil.example,
	// which passed as loopback before and got the token in plaintext.
	for _, ep := range []string{"https://reports.example.com/", "http://127.0.0.1:1@evil.example/"} {
		f.env["REPORTS_ENDPOINT"] = ep
		if r := f.reconcile(t, "--organization", testOrg); r.code != exitUsage || !strings.Contains(r.stderr, "REPORTS_ENDPOINT") {
			t.Errorf("REPORTS_ENDPOINT=%s: exit %d\n%s", ep, r.code, r.stderr)
		}
	}
	f.env["REPORTS_ENDPOINT"] = f.reports.URL()
	if s := f.reports.Stats(); s.Calls != 0 {
		t.Errorf("refused runs called the Reports API %d times", s.Calls)
	}

	// The function's own secret: consent without admin.reports.audit.readonly.
	f.env["TOKEN_SECRET"] = f.stack.SecretName
	r := f.reconcile(t, "--organization", testOrg)
	if r.code != exitUsage || !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "insufficient authentication scopes") {
		t.Errorf("without the scope: exit %d\n%s", r.code, r.stderr)
	}
	if n := len(f.published()); n != 0 {
		t.Errorf("published %d messages after the Reports API refused", n)
	}

	f.env["TOKEN_SECRET"] = "projects/" + f.stack.Project + "/secrets/reports-token"
	// An event name the Reports API refuses (400; asked first, in sorted
	// order): named, the others reconciled, exit 1.
	f.reports.InjectFault(emulator.Fault{Method: "activities.list", Status: 400, Times: 1})
	r = f.reconcile(t, "--organization", testOrg)
	if r.code != exitAttention || !strings.Contains(r.stderr, "eventName DELETE_USER: the Reports API refused it") {
		t.Errorf("a refused event name: exit %d\n%s", r.code, r.stderr)
	}
	if msgs := f.published(); len(msgs) != 1 {
		t.Errorf("published %d messages, want alice's suspension", len(msgs))
	}
	two := emulator.AdminUserEvent("SUSPEND_USER", "bob@example.com", reportsAdmin, time.Now().Add(-2*time.Hour))
	two.Events = append(two.Events, emulator.AdminUserEvent("SUSPEND_USER", "carol@example.com", "", time.Time{}).Events...)
	f.reports.Add(two)
	r = f.reconcile(t, "--organization", testOrg)
	if r.code != exitAttention || !strings.Contains(r.stderr, "names more than one person (bob@example.com, carol@example.com)") {
		t.Errorf("two people in one activity: exit %d\n%s", r.code, r.stderr)
	}
	msgs := f.published()
	if len(msgs) != 2 {
		t.Fatalf("published %d messages, want alice's only (twice: once a run)", len(msgs))
	}
	for _, m := range msgs {
		if ev, err := request.ParseAuditEntry(m.data); err != nil || ev.Email != "alice@example.com" {
			t.Errorf("published %+v, %v; want alice's suspension", ev, err)
		}
	}
}

// TestDispatch: offboard NAME runs the command NAME with the remaining
// arguments; help lists every command; an unknown one or none is a usage
// error.
func TestDispatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string // in the output
	}{
		{[]string{"reconcile", "--help"}, exitOK, "Usage: offboard reconcile"},
		{[]string{"report", "--help"}, exitOK, "Usage: offboard report"},
		{[]string{"help", "report"}, exitOK, "Usage: offboard report"},
		{[]string{"help"}, exitOK, "  reconcile "},
		{[]string{"--help"}, exitOK, "  report "},
		{[]string{"publish"}, exitUsage, `unknown command "publish"`},
		{nil, exitUsage, "Usage: offboard COMMAND"},
	} {
		inv := offboard(t, context.Background(), nil, tc.args...)
		if inv.code != tc.code || !strings.Contains(inv.stderr+inv.stdout, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s%s", tc.args, inv.code, tc.code, tc.want, inv.stdout, inv.stderr)
		}
	}
}

// TestReconcilePages: more activities than one page holds (1,000) are all
// read, page after page, and each listed once.
func TestReconcilePages(t *testing.T) {
	t.Parallel()
	f := newReconcileFixture(t)
	const n = 2500
	now := time.Now()
	for i := range n {
		f.reports.Add(emulator.AdminUserEvent("SUSPEND_USER", fmt.Sprintf("u%d@example.com", i), reportsAdmin,
			now.Add(-time.Duration(i+1)*time.Second)))
	}
	start := time.Now()
	r := f.reconcile(t, "--organization", testOrg, "--dry-run", "--output", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("%d activities read and listed in %v", n, time.Since(start).Round(time.Millisecond))
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l map[string]string
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ids[l["requestId"]] = true
	}
	if len(ids) != n || !strings.Contains(r.stderr, fmt.Sprintf(": %d activities (3 pages)", n)) {
		t.Errorf("%d distinct request ids, want %d; stderr:\n%s", len(ids), n, r.stderr)
	}
}
