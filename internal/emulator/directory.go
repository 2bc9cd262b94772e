package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// DirectoryStats are the counters of a Directory emulation.
type DirectoryStats struct {
	// Calls counts users.get calls, whatever their outcome.
	Calls int64
	// NotFound counts calls answered 404.
	NotFound int64
	// Faulted counts calls answered or dropped by a Fault.
	Faulted int64
	// Unauthorized counts calls answered 401.
	Unauthorized int64
}

var directoryParams = map[string]bool{
	"alt": true, "prettyPrint": true, "fields": true, "key": true, "quotaUser": true,
	"$.xgafv": true, "callback": true, "upload_protocol": true, "uploadType": true,
	"customFieldMask": true, "projection": true, "viewType": true,
}

// Directory emulates the Admin SDK Directory API users.get on a loopback
// HTTP server. Its users are fixed at construction. All methods are safe
// for concurrent use, also while the server handles requests.
//
// users.get takes a user id, primary email or alias (case-insensitive).
// The token needs scope admin.directory.user.readonly or
// admin.directory.user; with the default viewType=admin_view the caller must
// be a Workspace admin (403 otherwise), with viewType=domain_public any
// user of the Workspace may read.
type Directory struct {
	srv    *loopbackServer
	auth   *OAuth
	faults faultSet

	byKey  map[string]*directoryUser // id and lower-case emails; read-only after construction
	admins map[string]bool           // user ids

	calls, notFound, faulted, unauthorized atomic.Int64
}

type directoryUser struct {
	Kind         string            `json:"kind"`
	ID           string            `json:"id"`
	PrimaryEmail string            `json:"primaryEmail"`
	Name         directoryUserName `json:"name"`
	Aliases      []string          `json:"aliases,omitempty"`
	IsAdmin      bool              `json:"isAdmin"`
	Suspended    bool              `json:"suspended"`
	CustomerID   string            `json:"customerId,omitempty"`
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
	d := &Directory{auth: auth, byKey: map[string]*directoryUser{}, admins: map[string]bool{}}
	for _, a := range ws.Admins {
		d.admins[strings.TrimPrefix(a, "users/")] = true
	}
	for _, u := range ws.Users {
		du := &directoryUser{
			Kind:         "admin#directory#user",
			ID:           u.ID,
			PrimaryEmail: u.Email,
			Aliases:      append([]string(nil), u.Aliases...),
			IsAdmin:      d.admins[u.ID],
			CustomerID:   "my_customer",
		}
		du.Name.FullName = u.Name
		if given, family, ok := strings.Cut(u.Name, " "); ok {
			du.Name.GivenName, du.Name.FamilyName = given, family
		} else {
			du.Name.GivenName = u.Name
		}
		d.byKey[u.ID] = du
		d.byKey[strings.ToLower(u.Email)] = du
		for _, a := range u.Aliases {
			d.byKey[strings.ToLower(a)] = du
		}
	}
	d.srv = startLoopback(http.HandlerFunc(d.serve))
	return d
}

// URL returns the base URL, "http://127.0.0.1:PORT/", usable with
// option.WithEndpoint.
func (d *Directory) URL() string { return d.srv.base + "/" }

// Close stops the server and closes its connections. It is idempotent.
func (d *Directory) Close() { d.srv.close() }

// InjectFault adds a fault (Method "users.get" or "").
func (d *Directory) InjectFault(f Fault) { d.faults.add(f) }

// ClearFaults removes all injected faults.
func (d *Directory) ClearFaults() { d.faults.clear() }

// Stats returns the current counters.
func (d *Directory) Stats() DirectoryStats {
	return DirectoryStats{Calls: d.calls.Load(), NotFound: d.notFound.Load(), Faulted: d.faulted.Load(), Unauthorized: d.unauthorized.Load()}
}

func (d *Directory) serve(w http.ResponseWriter, r *http.Request) {
	d.calls.Add(1)
	fail := func(e *apiError) {
		if e.code == 404 {
			d.notFound.Add(1)
		}
		e.write(w)
	}
	key, ok := strings.CutPrefix(requestPath(r), "/admin/directory/v1/users/")
	if !ok || r.Method != http.MethodGet {
		fail(errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	if f, ok := d.faults.match("users.get"); ok {
		if _, answered := applyHTTPFault(w, r, f, &d.faulted); answered {
			return
		}
	}
	g, ok := d.auth.verifyBearer(r)
	if !ok {
		d.unauthorized.Add(1)
		fail(errf(401, "", "Login Required."))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(errf(400, "", "Invalid query string."))
		return
	}
	for k := range q {
		if !directoryParams[k] {
			fail(errf(400, "", "Invalid parameter %q.", k))
			return
		}
	}
	key, err = url.PathUnescape(key)
	if err != nil || !validSegment(key) {
		fail(errf(400, "", "Invalid Input: userKey"))
		return
	}
	if !hasScope(g.Scopes, ScopeAdminDirectoryUserReadonly, ScopeAdminDirectoryUser) {
		fail(errf(403, "", "Request had insufficient authentication scopes."))
		return
	}
	switch q.Get("viewType") {
	case "", "admin_view":
		if !d.admins[strings.TrimPrefix(g.User, "users/")] {
			fail(errf(403, "", "Not Authorized to access this resource/api"))
			return
		}
	case "domain_public":
	default:
		fail(errf(400, "", "Invalid Input: viewType"))
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
	writeJSON(w, u)
}
