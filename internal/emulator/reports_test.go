package emulator_test

import (
	"context"
	"slices"
	"testing"
	"time"

	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// startReports starts a Reports emulation for the default Workspace on the
// stack's OAuth, and returns it with a real Reports client acting as user
// with scopes.
func startReports(t *testing.T, user string, scopes ...string) (*emulator.Reports, *reports.Service, *emulator.Stack) {
	t.Helper()
	st := startStack(t, emulator.ChatOptions{})
	r := emulator.NewReports(emulator.Default(), st.OAuth)
	t.Cleanup(r.Close)
	return r, reportsAs(t, st, r, user, scopes...), st
}

func reportsAs(t *testing.T, st *emulator.Stack, r *emulator.Reports, user string, scopes ...string) *reports.Service {
	t.Helper()
	svc, err := reports.NewService(context.Background(), option.WithEndpoint(r.URL()),
		option.WithTokenSource(tokenSource(t, st, user, scopes...)))
	if err != nil {
		t.Fatalf("reports.NewService: %v", err)
	}
	return svc
}

// names lists "EVENT USER_EMAIL" of each activity's first event.
func names(acts []*reports.Activity) []string {
	var out []string
	for _, a := range acts {
		e := a.Events[0]
		out = append(out, e.Name+" "+e.Parameters[0].Value)
	}
	return out
}

// TestReportsActivitiesList: one application, the time range, the event
// name, newest first, through the real client library.
func TestReportsActivitiesList(t *testing.T) {
	t.Parallel()
	r, svc, _ := startReports(t, admin, emulator.ScopeAdminReportsAuditReadonly)
	now := time.Now()
	const by = "admin@example.com"
	r.Add(emulator.AdminUserEvent("SUSPEND_USER", "old@example.com", by, now.Add(-48*time.Hour)))
	r.Add(emulator.AdminUserEvent("SUSPEND_USER", "alice@example.com", by, now.Add(-2*time.Hour)))
	r.Add(emulator.AdminUserEvent("DELETE_USER", "bob@example.com", by, now.Add(-30*time.Minute)))
	r.Add(emulator.AdminUserEvent("CHANGE_PASSWORD", "carol@example.com", by, now.Add(-10*time.Minute)))
	login := emulator.AdminUserEvent("login_success", "dave@example.com", "dave@example.com", now.Add(-time.Hour))
	login.Application = "login"
	r.Add(login)
	since := now.Add(-24 * time.Hour).UTC().Format(time.RFC3339)

	got, err := svc.Activities.List("all", "admin").StartTime(since).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CHANGE_PASSWORD carol@example.com", "DELETE_USER bob@example.com", "SUSPEND_USER alice@example.com"}
	if !slices.Equal(names(got.Items), want) || got.NextPageToken != "" {
		t.Errorf("admin since 24h = %q (next %q), want %q", names(got.Items), got.NextPageToken, want)
	}
	a := got.Items[2]
	if a.Id.ApplicationName != "admin" || a.Id.UniqueQualifier == 0 || a.Id.Time != now.Add(-2*time.Hour).UTC().Format("2006-01-02T15:04:05.000Z") ||
		a.Actor.Email != by || a.Actor.ProfileId != "100" || a.Events[0].Type != "USER_SETTINGS" || a.Events[0].Parameters[0].Name != "USER_EMAIL" {
		t.Errorf("activity = %+v id %+v actor %+v event %+v", a, a.Id, a.Actor, a.Events[0])
	}

	got, err = svc.Activities.List("all", "admin").EventName("SUSPEND_USER").StartTime(since).Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SUSPEND_USER alice@example.com"}; !slices.Equal(names(got.Items), want) {
		t.Errorf("SUSPEND_USER since 24h = %q, want %q", names(got.Items), want)
	}
	got, err = svc.Activities.List("all", "admin").EventName("SUSPEND_USER").Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SUSPEND_USER alice@example.com", "SUSPEND_USER old@example.com"}; !slices.Equal(names(got.Items), want) {
		t.Errorf("SUSPEND_USER without startTime = %q, want %q", names(got.Items), want)
	}
	until := now.Add(-time.Hour).UTC().Format(time.RFC3339)
	got, err = svc.Activities.List("all", "admin").StartTime(since).EndTime(until).Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SUSPEND_USER alice@example.com"}; !slices.Equal(names(got.Items), want) {
		t.Errorf("admin between -24h and -1h = %q, want %q", names(got.Items), want)
	}
	got, err = svc.Activities.List("all", "login").StartTime(since).Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"login_success dave@example.com"}; !slices.Equal(names(got.Items), want) {
		t.Errorf("login = %q, want %q", names(got.Items), want)
	}
	got, err = svc.Activities.List("dave@example.com", "admin").Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 0 {
		t.Errorf("admin activities of dave (who did none) = %q", names(got.Items))
	}
}

// TestReportsPaging: maxResults a page, tokens bound to their query, and
// Pages of the client library sees every activity once.
func TestReportsPaging(t *testing.T) {
	t.Parallel()
	r, svc, _ := startReports(t, admin, emulator.ScopeAdminReportsAuditReadonly)
	now := time.Now()
	var want []string
	for i := range 5 {
		u := []string{"a", "b", "c", "d", "e"}[i] + "@example.com"
		r.Add(emulator.AdminUserEvent("SUSPEND_USER", u, "admin@example.com", now.Add(-time.Duration(i+1)*time.Minute)))
		want = append(want, "SUSPEND_USER "+u)
	}
	var got []string
	pages := 0
	err := svc.Activities.List("all", "admin").EventName("SUSPEND_USER").MaxResults(2).
		Pages(context.Background(), func(p *reports.Activities) error {
			pages++
			got = append(got, names(p.Items)...)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages %q, want 3 pages %q", pages, got, want)
	}
	first, err := svc.Activities.List("all", "admin").EventName("SUSPEND_USER").MaxResults(2).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Activities.List("all", "admin").EventName("DELETE_USER").MaxResults(2).PageToken(first.NextPageToken).Do()
	apiErr(t, err, 400)
	_, err = svc.Activities.List("all", "admin").PageToken("bm9wZQ").Do()
	apiErr(t, err, 400)
}

// TestReportsRefusals: scope, admin, and what Google's documentation rules
// out.
func TestReportsRefusals(t *testing.T) {
	t.Parallel()
	r, svc, st := startReports(t, admin, emulator.ScopeAdminReportsAuditReadonly)
	now := time.Now()
	noScope := reportsAs(t, st, r, admin, emulator.ScopeAdminDirectoryUserReadonly)
	_, err := noScope.Activities.List("all", "admin").Do()
	apiErr(t, err, 403)
	notAdmin := reportsAs(t, st, r, alice, emulator.ScopeAdminReportsAuditReadonly)
	_, err = notAdmin.Activities.List("all", "admin").Do()
	apiErr(t, err, 403)
	if code, _ := rawRequest(t, r.URL(), "GET", "/admin/reports/v1/activity/users/all/applications/admin", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	for name, call := range map[string]*reports.ActivitiesListCall{
		"unknown application":  svc.Activities.List("all", "chat-offboard"),
		"unknown user":         svc.Activities.List("nobody@example.com", "admin"),
		"start in the future":  svc.Activities.List("all", "admin").StartTime(now.Add(time.Hour).UTC().Format(time.RFC3339)),
		"start after end":      svc.Activities.List("all", "admin").StartTime(now.Add(-time.Hour).UTC().Format(time.RFC3339)).EndTime(now.Add(-2 * time.Hour).UTC().Format(time.RFC3339)),
		"start not RFC 3339":   svc.Activities.List("all", "admin").StartTime("2026-12-01 10:00:00"),
		"maxResults 1001":      svc.Activities.List("all", "admin").MaxResults(1001),
		"filters not emulated": svc.Activities.List("all", "admin").Filters("USER_EMAIL==a@example.com"),
		// Event names no Google reference gives (guessed by naming) and
		// an event of another application.
		"event name guessed":       svc.Activities.List("all", "admin").EventName("ARCHIVE_USER"),
		"event name guessed too":   svc.Activities.List("all", "admin").EventName("SUSPEND_AUTO_PROVISIONED_USER"),
		"event of another app":     svc.Activities.List("all", "login").EventName("SUSPEND_USER"),
		"event name in lower case": svc.Activities.List("all", "admin").EventName("suspend_user"),
	} {
		if _, err := call.Do(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			apiErr(t, err, 400)
		}
	}
	if s := r.Stats(); s.Unauthorized != 1 || s.Calls < 10 {
		t.Errorf("stats %+v", s)
	}
}
