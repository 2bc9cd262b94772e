package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// DirectoryStats are the counters of a Directory emulation.
type DirectoryStats struct {
	// Calls counts users.get calls, whatever their outcome.
	Calls int64
	// ListCalls counts users.list calls, whatever their outcome.
	ListCalls int64
	// GroupsList counts groups.list calls, whatever their outcome.
	GroupsList int64
	// NotFound counts calls answered 404.
	NotFound int64
	// Faulted counts calls answered or dropped by a Fault.
	Faulted int64
	// Unauthorized counts calls answered 401.
	Unauthorized int64
}

// directoryParams are the query parameters users.get takes (and every
// method's standard ones); listParams are users.list's own, as emulated.
var (
	directoryParams = map[string]bool{
		"alt": true, "prettyPrint": true, "fields": true, "key": true, "quotaUser": true,
		"$.xgafv": true, "callback": true, "upload_protocol": true, "uploadType": true,
		"customFieldMask": true, "projection": true, "viewType": true,
	}
	listParams = map[string]bool{
		"customer": true, "domain": true, "showDeleted": true, "maxResults": true, "pageToken": true,
	}
)

// Directory emulates the Admin SDK Directory API users.get, users.list and
// groups.list (described at Directory.groupsList) on a loopback HTTP server. Its users are fixed at construction (SetSuspended changes a suspension). All
// methods are safe for concurrent use, also while the server handles
// requests.
//
// users.get takes a user id, primary email or alias (case-insensitive) and
// answers 404 for a deleted user. users.list needs customer (my_customer or
// the Workspace's customer id) or domain, lists users in a stable order,
// maxResults (1 to 500, default 100) at a time, and with showDeleted=true
// only the deleted users; its query, orderBy, sortOrder and event
// parameters are not emulated (400). A user carries suspended, archived,
// orgUnitPath and relations as Google documents the users resource, and a
// deleted one deletionTime. The token needs scope
// admin.directory.user.readonly or admin.directory.user; with the default
// viewType=admin_view the caller must be a Workspace admin (403 otherwise),
// with viewType=domain_public any user of the Workspace may read, and sees
// only the id, the primary email and the name.
type Directory struct {
	// state guards the users' suspended and archived flags, which
	// SetSuspended changes (directory_state.go): read-locked while a
	// request is served.
	state  sync.RWMutex
	srv    *loopbackServer
	auth   *OAuth
	faults faultSet

	byKey    map[string]*directoryUser // id and lower-case emails of users not deleted; read-only after construction
	users    []*directoryUser          // every user, deleted ones too, in seed order; read-only
	customer string                    // the customer id, without "customers/"
	admins   map[string]bool           // user ids

	groups groupIndex // read-only after construction

	calls, listCalls, groupsCalls, notFound, faulted, unauthorized atomic.Int64
}

type directoryUser struct {
	Kind         string            `json:"kind"`
	ID           string            `json:"id"`
	PrimaryEmail string            `json:"primaryEmail"`
	Name         directoryUserName `json:"name"`
	Aliases      []string          `json:"aliases,omitempty"`
	NonEditable  []string          `json:"nonEditableAliases,omitempty"`
	IsAdmin      bool              `json:"isAdmin"`
	Suspended    bool              `json:"suspended"`
	Archived     bool              `json:"archived"`
	OrgUnitPath  string            `json:"orgUnitPath"`
	Relations    []Relation        `json:"relations,omitempty"`
	CustomerID   string            `json:"customerId,omitempty"`
	DeletionTime string            `json:"deletionTime,omitempty"`
}

type directoryUserName struct {
	FullName   string `json:"fullName,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// NewDirectory starts a Directory emulation with the users of ws, checking
// access tokens with auth. It panics if ws is invalid or no loopback port
// is available.
func NewDirectory(ws Workspace, auth *OAuth) *Directory {
	if err := ws.Validate(); err != nil {
		panic(err)
	}
	d := &Directory{auth: auth, byKey: map[string]*directoryUser{}, admins: map[string]bool{},
		customer: strings.TrimPrefix(ws.Customer, "customers/")}
	if d.customer == "" {
		d.customer = strings.TrimPrefix(DefaultCustomer, "customers/")
	}
	for _, a := range ws.Admins {
		d.admins[strings.TrimPrefix(a, "users/")] = true
	}
	for _, u := range ws.Users {
		du := &directoryUser{
			Kind:         "admin#directory#user",
			ID:           u.ID,
			PrimaryEmail: u.Email,
			Aliases:      append([]string(nil), u.Aliases...),
			NonEditable:  append([]string(nil), u.NonEditableAliases...),
			IsAdmin:      d.admins[u.ID],
			Suspended:    u.Suspended,
			Archived:     u.Archived,
			OrgUnitPath:  u.OrgUnitPath,
			Relations:    append([]Relation(nil), u.Relations...),
			CustomerID:   d.customer,
		}
		if du.OrgUnitPath == "" {
			du.OrgUnitPath = "/"
		}
		du.Name.FullName = u.Name
		if given, family, ok := strings.Cut(u.Name, " "); ok {
			du.Name.GivenName, du.Name.FamilyName = given, family
		} else {
			du.Name.GivenName = u.Name
		}
		d.users = append(d.users, du)
		if u.Deleted {
			du.DeletionTime = "2026-01-01T00:00:00.000Z"
			continue
		}
		d.byKey[u.ID] = du
		d.byKey[strings.ToLower(u.Email)] = du
		for _, a := range u.Aliases {
			d.byKey[strings.ToLower(a)] = du
		}
	}
	d.groups = newGroupIndex(ws.Groups)
	d.srv = startLoopback(http.HandlerFunc(d.serve))
	return d
}

// URL returns the base URL, "http://127.0.0.1:PORT/", usable with
// option.WithEndpoint.
func (d *Directory) URL() string { return d.srv.base + "/" }

// Close stops the server and closes its connections. It is idempotent.
func (d *Directory) Close() { d.srv.close() }

// InjectFault adds a fault (Method "users.get", "users.list",
// "groups.list" or "").
func (d *Directory) InjectFault(f Fault) { d.faults.add(f) }

// ClearFaults removes all injected faults.
func (d *Directory) ClearFaults() { d.faults.clear() }

// Stats returns the current counters.
func (d *Directory) Stats() DirectoryStats {
	return DirectoryStats{Calls: d.calls.Load(), ListCalls: d.listCalls.Load(), GroupsList: d.groupsCalls.Load(), NotFound: d.notFound.Load(), Faulted: d.faulted.Load(), Unauthorized: d.unauthorized.Load()}
}

func (d *Directory) serve(w http.ResponseWriter, r *http.Request) {
	d.state.RLock()
	defer d.state.RUnlock()
	if requestPath(r) == "/admin/directory/v1/groups" {
		d.serveGroups(w, r)
		return
	}
	fail := func(e *apiError) {
		if e.code == 404 {
			d.notFound.Add(1)
		}
		e.write(w)
	}
	method, key := "users.get", ""
	if p := requestPath(r); p == "/admin/directory/v1/users" {
		method = "users.list"
		d.listCalls.Add(1)
	} else if k, ok := strings.CutPrefix(p, "/admin/directory/v1/users/"); ok && !strings.Contains(k, "/") {
		d.calls.Add(1)
		key = k
	} else {
		d.calls.Add(1)
		fail(errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet {
		fail(errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	if f, ok := d.faults.match(method); ok {
		if _, answered := applyHTTPFault(w, r, f, &d.faulted); answered {
			return
		}
	}
	q, e := d.authorize(r, method)
	if e != nil {
		if e.code == 401 {
			d.unauthorized.Add(1)
		}
		fail(e)
		return
	}
	if method == "users.list" {
		if e := d.list(w, q); e != nil {
			fail(e)
		}
		return
	}
	key, err := url.PathUnescape(key)
	if err != nil || !validSegment(key) {
		fail(errf(400, "", "Invalid Input: userKey"))
		return
	}
	u := d.byKey[key]
	if u == nil {
		u = d.byKey[strings.ToLower(key)]
	}
	if u == nil {
		fail(errf(404, "", "Resource Not Found: userKey"))
		return
	}
	if q.Get("viewType") == "domain_public" {
		// Only what other users of the domain see: not the account's
		// state, unit or relations (stricter than unsure).
		writeJSON(w, publicUser{Kind: u.Kind, ID: u.ID, PrimaryEmail: u.PrimaryEmail, Name: u.Name})
		return
	}
	writeJSON(w, u)
}

// publicUser is a user in the domain_public view.
type publicUser struct {
	Kind         string            `json:"kind"`
	ID           string            `json:"id"`
	PrimaryEmail string            `json:"primaryEmail"`
	Name         directoryUserName `json:"name"`
}

// authorize checks the token, the query parameters of method, the scope
// and the view, and returns the query.
func (d *Directory) authorize(r *http.Request, method string) (url.Values, *apiError) {
	g, ok := d.auth.verifyBearer(r)
	if !ok {
		return nil, errf(401, "", "Login Required.")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errf(400, "", "Invalid query string.")
	}
	for k := range q {
		if !directoryParams[k] && !(method == "users.list" && listParams[k]) {
			return nil, errf(400, "", "Invalid parameter %q (or not emulated).", k)
		}
	}
	if !hasScope(g.Scopes, ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryUser) {
		return nil, errf(403, "", "Request had insufficient authentication scopes.")
	}
	switch q.Get("viewType") {
	case "", "admin_view":
		if !d.admins[strings.TrimPrefix(g.User, "users/")] {
			return nil, errf(403, "", "Not Authorized to access this resource/api")
		}
	case "domain_public":
	default:
		return nil, errf(400, "", "Invalid Input: viewType")
	}
	return q, nil
}
