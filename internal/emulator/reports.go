package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ScopeAdminReportsAuditReadonly is the only scope of the Reports API's
// activities.list (admin/reports/v1 discovery document).
const ScopeAdminReportsAuditReadonly = "https://www.googleapis.com/auth/admin.reports.audit.readonly"

// reportsApplications are the applicationName values of activities.list
// (the path parameter's pattern in the admin/reports/v1 discovery document).
var reportsApplications = strings.Fields(`access_evaluation access_transparency admin admin_data_action
	assignments calendar chat chrome classroom cloud_search contacts context_aware_access data_studio
	data_migration directory_sync drive gcp gmail gplus graduation groups groups_enterprise jamboard keep
	ldap login meet meet_hardware mobile profile rules saml token user_accounts vault
	gemini_in_workspace_apps tasks takeout voice chrome_sync workspace_studio gemini_notebook`)

// reportsEventNames are the event names activities.list takes for
// eventName, by applicationName: only those a Google reference gives, so
// that a guessed name fails here as it may in production (400; the
// emulation is stricter than Google may be, as nothing says which names
// Google refuses). For admin, the "User Settings" Admin audit events of the
// Reports API reference (developers.google.com/workspace/admin/reports/v1/
// appendix/activity/admin-user-settings: SUSPEND_USER and DELETE_USER among
// the events of users being suspended or removed, and the first of its
// list), UNSUSPEND_USER (Google Cloud Security's Workspace detection rules,
// github.com/chronicle/detection-rules) and ADD_GROUP_MEMBER (the sample
// LogEntry of Google's Community Security Analytics,
// github.com/GoogleCloudPlatform/security-analytics). Other applications
// take no event name here.
var reportsEventNames = map[string][]string{
	"admin": {"ACCEPT_USER_INVITATION", "ADD_GROUP_MEMBER", "DELETE_2SV_SCRATCH_CODES", "DELETE_USER",
		"GENERATE_2SV_SCRATCH_CODES", "REVOKE_3LO_DEVICE_TOKENS", "REVOKE_3LO_TOKEN", "SUSPEND_USER", "UNSUSPEND_USER"},
}

// reportsTime is the RFC 3339 pattern of startTime and endTime.
var reportsTime = regexp.MustCompile(`^(\d\d\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([-+])(\d\d):(\d\d))$`)

// reportsParams are the query parameters activities.list knows; the
// emulation answers those it does not implement (filters, actorIpAddress,
// ...) with 400 rather than ignore them.
var reportsParams = map[string]bool{
	"alt": true, "prettyPrint": true, "fields": true, "key": true, "quotaUser": true,
	"$.xgafv": true, "callback": true, "upload_protocol": true, "uploadType": true,
	"customerId": true, "eventName": true, "startTime": true, "endTime": true,
	"maxResults": true, "pageToken": true,
}

// reportsRetention is how far back activities.list reaches: a startTime
// further in the past reports the last 180 days.
const reportsRetention = 180 * 24 * time.Hour

// ReportParameter is a name and string value of an event.
type ReportParameter struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ReportEvent is one event of an activity.
type ReportEvent struct {
	Type       string            `json:"type,omitempty"`
	Name       string            `json:"name"`
	Parameters []ReportParameter `json:"parameters,omitempty"`
}

// ReportActivity is an activity record as the Reports API keeps it: when
// (Time, UniqueQualifier), in which application, who did it and its events.
type ReportActivity struct {
	Application     string
	Time            time.Time
	UniqueQualifier int64 // 0: Add assigns one
	ActorEmail      string
	Events          []ReportEvent
}

// AdminUserEvent is an Admin console activity of actor on the user
// userEmail, such as SUSPEND_USER, as the Reports API reports it
// (applicationName admin, type USER_SETTINGS, parameter USER_EMAIL).
func AdminUserEvent(eventName, userEmail, actor string, at time.Time) ReportActivity {
	return ReportActivity{Application: "admin", Time: at, ActorEmail: actor, Events: []ReportEvent{{
		Type: "USER_SETTINGS", Name: eventName, Parameters: []ReportParameter{{Name: "USER_EMAIL", Value: userEmail}},
	}}}
}

// ReportsStats are the counters of a Reports emulation.
type ReportsStats struct {
	// Calls counts activities.list calls, whatever their outcome.
	Calls int64
	// Faulted counts calls answered or dropped by a Fault.
	Faulted int64
	// Unauthorized counts calls answered 401.
	Unauthorized int64
}

// Reports emulates the Admin SDK Reports API activities.list on a loopback
// HTTP server, as google.golang.org/api/admin/reports/v1 speaks it. All
// methods are safe for concurrent use, also while the server handles
// requests.
//
// activities.list (GET admin/reports/v1/activity/users/{userKey}/
// applications/{applicationName}) needs scope admin.reports.audit.readonly
// and a Workspace admin as caller (403 otherwise). userKey is "all", or a
// user's id or primary email: the activities that user performed. It
// returns the activities of one application whose time is in
// [startTime, endTime) (endTime defaults to now; startTime to, and at most,
// 180 days back; startTime must be before endTime and now), with an event
// named eventName when that is given (a name the emulation does not know
// from a Google reference is 400), newest first, maxResults (1..1000,
// default 1000) a page. A page token is good only for the query that issued
// it. Activities keep all their events: eventName selects activities, it
// does not cut their events.
type Reports struct {
	srv    *loopbackServer
	auth   *OAuth
	faults faultSet
	now    func() time.Time

	admins map[string]bool   // user ids
	users  map[string]string // id and lower-case primary email -> primary email
	ids    map[string]string // lower-case primary email -> id

	mu         sync.Mutex
	activities []ReportActivity
	next       int64

	calls, faulted, unauthorized atomic.Int64
}

// NewReports starts a Reports emulation for the users and admins of ws,
// checking access tokens with auth, with no activities. It panics if ws is
// invalid or no loopback port is available.
func NewReports(ws Workspace, auth *OAuth) *Reports {
	if err := ws.Validate(); err != nil {
		panic(err)
	}
	r := &Reports{auth: auth, now: time.Now, admins: map[string]bool{}, users: map[string]string{},
		ids: map[string]string{}, next: 1}
	for _, a := range ws.Admins {
		r.admins[strings.TrimPrefix(a, "users/")] = true
	}
	for _, u := range ws.Users {
		r.users[u.ID] = u.Email
		r.users[strings.ToLower(u.Email)] = u.Email
		r.ids[strings.ToLower(u.Email)] = u.ID
	}
	r.srv = startLoopback(http.HandlerFunc(r.serve))
	return r
}

// URL returns the base URL, "http://127.0.0.1:PORT/", usable with
// option.WithEndpoint.
func (r *Reports) URL() string { return r.srv.base + "/" }

// Close stops the server and closes its connections. It is idempotent.
func (r *Reports) Close() { r.srv.close() }

// InjectFault adds a fault (Method "activities.list" or "").
func (r *Reports) InjectFault(f Fault) { r.faults.add(f) }

// ClearFaults removes all injected faults.
func (r *Reports) ClearFaults() { r.faults.clear() }

// Stats returns the current counters.
func (r *Reports) Stats() ReportsStats {
	return ReportsStats{Calls: r.calls.Load(), Faulted: r.faulted.Load(), Unauthorized: r.unauthorized.Load()}
}

// Add records an activity and returns its unique qualifier (a's, or one
// assigned when a has none).
func (r *Reports) Add(a ReportActivity) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.UniqueQualifier == 0 {
		a.UniqueQualifier = r.next
		r.next++
	}
	a.Events = slices.Clone(a.Events)
	r.activities = append(r.activities, a)
	return a.UniqueQualifier
}

// reportsQuery is a parsed activities.list call.
type reportsQuery struct {
	userKey, app, eventName string
	start, end              time.Time
	max, offset             int
	fingerprint             string // of what a page token is bound to
}

func (r *Reports) serve(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	rest, ok := strings.CutPrefix(requestPath(req), "/admin/reports/v1/activity/users/")
	userKey, app, ok2 := strings.Cut(rest, "/applications/")
	if !ok || !ok2 || req.Method != http.MethodGet {
		errf(404, "", "The requested URL %s was not found on this server.", req.URL.Path).write(w)
		return
	}
	g, ok := faultOrBearer(w, req, &r.faults, "activities.list", &r.faulted, &r.unauthorized, r.auth)
	if !ok {
		return
	}
	if !hasScope(g.Scopes, ScopeAdminReportsAuditReadonly) {
		errf(403, "", "Request had insufficient authentication scopes.").write(w)
		return
	}
	if !r.admins[strings.TrimPrefix(g.User, "users/")] {
		errf(403, "", "Access denied. You are not authorized to read activity records.").write(w)
		return
	}
	q, e := r.parseQuery(req.URL.RawQuery, userKey, app)
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, r.list(q))
}

// parseQuery checks the path and query parameters of a call.
func (r *Reports) parseQuery(raw, userKey, app string) (*reportsQuery, *apiError) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errf(400, "", "Invalid query string.")
	}
	for k := range v {
		if !reportsParams[k] {
			return nil, errf(400, "", "Invalid parameter %q (not emulated).", k)
		}
	}
	q := &reportsQuery{eventName: v.Get("eventName"), max: 1000}
	if q.app, err = url.PathUnescape(app); err != nil || !slices.Contains(reportsApplications, q.app) {
		return nil, errf(400, "", "Invalid value for: applicationName")
	}
	if q.eventName != "" && !slices.Contains(reportsEventNames[q.app], q.eventName) {
		return nil, errf(400, "", "Invalid value for: eventName (%s is not an event of %s)", q.eventName, q.app)
	}
	if q.userKey, err = url.PathUnescape(userKey); err != nil || (q.userKey != "all" && r.users[strings.ToLower(q.userKey)] == "") {
		return nil, errf(400, "", "Invalid value for: userKey")
	}
	if c := v.Get("customerId"); c != "" && c != "my_customer" && !strings.HasPrefix(c, "C") {
		return nil, errf(400, "", "Invalid value for: customerId")
	}
	if m := v.Get("maxResults"); m != "" {
		if q.max, err = strconv.Atoi(m); err != nil || q.max < 1 || q.max > 1000 {
			return nil, errf(400, "", "Invalid value '%s'. Values must be within the range: [1, 1000]", m)
		}
	}
	if e := q.setTimes(v.Get("startTime"), v.Get("endTime"), r.now()); e != nil {
		return nil, e
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{q.userKey, q.app, q.eventName, v.Get("startTime"),
		v.Get("endTime"), v.Get("customerId"), strconv.Itoa(q.max)}, "\x00")))
	q.fingerprint = hex.EncodeToString(sum[:8])
	if t := v.Get("pageToken"); t != "" {
		b, decodeErr := base64.RawURLEncoding.DecodeString(t)
		fp, off, _ := strings.Cut(string(b), ":")
		if q.offset, err = strconv.Atoi(off); decodeErr != nil || err != nil || fp != q.fingerprint || q.offset <= 0 {
			return nil, errf(400, "", "Invalid value for: pageToken")
		}
	}
	return q, nil
}

// setTimes applies startTime and endTime as the Reports API documents
// them.
func (q *reportsQuery) setTimes(start, end string, now time.Time) *apiError {
	q.start, q.end = now.Add(-reportsRetention), now
	for _, p := range []struct {
		name, value string
		to          *time.Time
	}{{"startTime", start, &q.start}, {"endTime", end, &q.end}} {
		if p.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.value)
		if !reportsTime.MatchString(p.value) || err != nil {
			return errf(400, "", "Invalid value '%s' for %s: not an RFC 3339 time", p.value, p.name)
		}
		*p.to = t
	}
	if start != "" && (!q.start.Before(q.end) || !q.start.Before(now)) {
		return errf(400, "", "Start time must be less than end time and the current time.")
	}
	if q.start.Before(now.Add(-reportsRetention)) {
		q.start = now.Add(-reportsRetention)
	}
	return nil
}

// reportsActivities is the JSON answer of activities.list.
type reportsActivities struct {
	Kind          string           `json:"kind"`
	Items         []reportsJSONAct `json:"items,omitempty"`
	NextPageToken string           `json:"nextPageToken,omitempty"`
}

type reportsJSONAct struct {
	Kind string `json:"kind"`
	ID   struct {
		Time            string `json:"time"`
		UniqueQualifier string `json:"uniqueQualifier"`
		ApplicationName string `json:"applicationName"`
		CustomerID      string `json:"customerId"`
	} `json:"id"`
	Actor struct {
		CallerType string `json:"callerType,omitempty"`
		Email      string `json:"email,omitempty"`
		ProfileID  string `json:"profileId,omitempty"`
	} `json:"actor"`
	Events []ReportEvent `json:"events"`
}

// list answers one page of q, newest first.
func (r *Reports) list(q *reportsQuery) reportsActivities {
	r.mu.Lock()
	var match []ReportActivity
	for _, a := range r.activities {
		if a.Application != q.app || a.Time.Before(q.start) || !a.Time.Before(q.end) {
			continue
		}
		if q.userKey != "all" && !strings.EqualFold(a.ActorEmail, r.users[strings.ToLower(q.userKey)]) {
			continue
		}
		if q.eventName != "" && !slices.ContainsFunc(a.Events, func(e ReportEvent) bool { return e.Name == q.eventName }) {
			continue
		}
		match = append(match, a)
	}
	r.mu.Unlock()
	slices.SortStableFunc(match, func(a, b ReportActivity) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return int(b.UniqueQualifier - a.UniqueQualifier)
	})
	out := reportsActivities{Kind: "reports#activities"}
	end := min(q.offset+q.max, len(match))
	for _, a := range match[min(q.offset, len(match)):end] {
		var j reportsJSONAct
		j.Kind = "audit#activity"
		j.ID.Time = a.Time.UTC().Format("2006-01-02T15:04:05.000Z")
		j.ID.UniqueQualifier = strconv.FormatInt(a.UniqueQualifier, 10)
		j.ID.ApplicationName, j.ID.CustomerID = a.Application, "C0emulated"
		j.Actor.Email = a.ActorEmail
		if id := r.ids[strings.ToLower(a.ActorEmail)]; id != "" {
			j.Actor.CallerType, j.Actor.ProfileID = "USER", id
		}
		j.Events = a.Events
		out.Items = append(out.Items, j)
	}
	if end < len(match) {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(q.fingerprint + ":" + strconv.Itoa(end)))
	}
	return out
}
