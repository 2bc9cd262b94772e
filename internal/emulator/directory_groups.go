// groups.list of the Directory emulation.

package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Scopes of the Directory's groups methods.
const (
	ScopeAdminDirectoryGroup         = "https://www.googleapis.com/auth/admin.directory.group"
	ScopeAdminDirectoryGroupReadonly = "https://www.googleapis.com/auth/admin.directory.group.readonly"
)

// maxGroupsPage is the largest (and default) maxResults of groups.list.
const maxGroupsPage = 200

type directoryGroup struct {
	Kind               string `json:"kind"`
	ID                 string `json:"id"`
	Email              string `json:"email"`
	Name               string `json:"name,omitempty"`
	DirectMembersCount int64  `json:"directMembersCount,string"`
	AdminCreated       bool   `json:"adminCreated"`
}

type directoryGroups struct {
	Kind          string            `json:"kind"`
	Groups        []*directoryGroup `json:"groups,omitempty"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

// groupIndex holds the groups of a Directory, by email, and each user's
// direct groups. It is read-only after newGroupIndex.
type groupIndex struct {
	all    []*directoryGroup            // by email
	ofUser map[string][]*directoryGroup // user id → direct groups, by email
}

func newGroupIndex(groups []Group) groupIndex {
	ix := groupIndex{ofUser: map[string][]*directoryGroup{}}
	for _, g := range groups {
		dg := &directoryGroup{Kind: "admin#directory#group", ID: g.ID, Email: g.Email, Name: g.Name, AdminCreated: true}
		for _, m := range g.Members {
			dg.DirectMembersCount++
			if id, ok := strings.CutPrefix(m, "users/"); ok {
				ix.ofUser[id] = append(ix.ofUser[id], dg)
			}
		}
		ix.all = append(ix.all, dg)
	}
	byEmail := func(a, b *directoryGroup) int {
		return strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email))
	}
	slices.SortFunc(ix.all, byEmail)
	for _, l := range ix.ofUser {
		slices.SortFunc(l, byEmail)
	}
	return ix
}

// groupsListParams are the query parameters groups.list takes.
var groupsListParams = map[string]bool{
	"alt": true, "prettyPrint": true, "fields": true, "key": true, "quotaUser": true,
	"$.xgafv": true, "callback": true, "upload_protocol": true, "uploadType": true,
	"customer": true, "domain": true, "maxResults": true, "orderBy": true, "pageToken": true,
	"query": true, "sortOrder": true, "userKey": true,
}

// serveGroups answers GET /admin/directory/v1/groups (groups.list): faults,
// the token (401), the query parameters (400), then groupsList.
func (d *Directory) serveGroups(w http.ResponseWriter, r *http.Request) {
	d.groupsCalls.Add(1)
	if r.Method != http.MethodGet {
		d.fail(w, errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path))
		return
	}
	g, ok := faultOrBearer(w, r, &d.faults, "groups.list", &d.faulted, &d.unauthorized, d.auth)
	if !ok {
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		d.fail(w, errf(400, "", "Invalid query string."))
		return
	}
	for k := range q {
		if !groupsListParams[k] {
			d.fail(w, errf(400, "", "Invalid parameter %q.", k))
			return
		}
	}
	d.groupsList(w, g, q)
}

// fail answers e, counting a 404.
func (d *Directory) fail(w http.ResponseWriter, e *apiError) {
	if e.code == 404 {
		d.notFound.Add(1)
	}
	e.write(w)
}

// user finds a user who is not deleted by id, primary email or alias (any
// letter case).
func (d *Directory) user(key string) *directoryUser {
	if u := d.byKey[key]; u != nil {
		return u
	}
	return d.byKey[strings.ToLower(key)]
}

// groupsPageToken is the (opaque to clients) paging state of groups.list,
// bound to the call's other parameters.
type groupsPageToken struct {
	Call   string `json:"c"`
	Offset int    `json:"o"`
}

// groupsList answers groups.list. Either userKey (a user id, primary email
// or alias, any letter case: that user's direct groups only, nested groups
// are not followed; 404 for a user the Directory does not know) or customer
// (my_customer: every group) or domain (the groups of that domain) is
// required, and userKey cannot be used with customer (400). The token needs
// admin.directory.group.readonly or admin.directory.group (403) and the
// caller must be a Workspace admin (403). maxResults is 1 to 200 (default
// 200; 400 otherwise); groups come by email, descending with
// orderBy=email&sortOrder=DESCENDING; page tokens are bound to the other
// parameters (400). query is not emulated (400).
func (d *Directory) groupsList(w http.ResponseWriter, g Grant, q url.Values) {
	if !hasScope(g.Scopes, ScopeAdminDirectoryGroupReadonly, ScopeAdminDirectoryGroup) {
		d.fail(w, errf(403, "", "Request had insufficient authentication scopes."))
		return
	}
	if !d.admins[strings.TrimPrefix(g.User, "users/")] {
		d.fail(w, errf(403, "", "Not Authorized to access this resource/api"))
		return
	}
	groups, e := d.selectGroups(q)
	if e != nil {
		d.fail(w, e)
		return
	}
	size := maxGroupsPage
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxGroupsPage {
			d.fail(w, errf(400, "", "Invalid Input: maxResults must be between 1 and %d", maxGroupsPage))
			return
		}
		size = n
	}
	call := q.Get("userKey") + "\x00" + q.Get("customer") + "\x00" + q.Get("domain") + "\x00" + q.Get("orderBy") + "\x00" + q.Get("sortOrder")
	offset := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		var t groupsPageToken
		if err == nil {
			err = json.Unmarshal(b, &t)
		}
		if err != nil || t.Call != call || t.Offset < 0 {
			d.fail(w, errf(400, "", "Invalid Input: pageToken"))
			return
		}
		offset = t.Offset
	}
	out := &directoryGroups{Kind: "admin#directory#groups"}
	if offset < len(groups) {
		end := min(offset+size, len(groups))
		out.Groups = groups[offset:end]
		if end < len(groups) {
			b, _ := json.Marshal(groupsPageToken{Call: call, Offset: end})
			out.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
		}
	}
	writeJSON(w, out)
}

// selectGroups returns the groups a groups.list call asks for, in the
// order it asks for.
func (d *Directory) selectGroups(q url.Values) ([]*directoryGroup, *apiError) {
	userKey, customer, domain := q.Get("userKey"), q.Get("customer"), q.Get("domain")
	switch {
	case q.Get("query") != "":
		return nil, errf(400, "", "Invalid Input: query (the emulation does not support group queries)")
	case userKey != "" && customer != "":
		return nil, errf(400, "", "Invalid Input: userKey cannot be used with customer")
	case userKey == "" && customer == "" && domain == "":
		return nil, errf(400, "", "Invalid Input: give customer, domain or userKey")
	case customer != "" && customer != "my_customer":
		return nil, errf(400, "", "Invalid Input: customer")
	}
	if o := q.Get("orderBy"); o != "" && o != "email" {
		return nil, errf(400, "", "Invalid Input: orderBy")
	}
	desc := false
	switch q.Get("sortOrder") {
	case "", "ASCENDING":
	case "DESCENDING":
		desc = q.Get("orderBy") == "email"
	default:
		return nil, errf(400, "", "Invalid Input: sortOrder")
	}
	all := d.groups.all
	if userKey != "" {
		u := d.user(userKey)
		if u == nil {
			return nil, errf(404, "", "Resource Not Found: userKey")
		}
		all = d.groups.ofUser[u.ID]
	}
	var out []*directoryGroup
	for _, g := range all {
		if _, dom, _ := strings.Cut(g.Email, "@"); domain == "" || strings.EqualFold(dom, domain) {
			out = append(out, g)
		}
	}
	if desc {
		slices.Reverse(out)
	}
	return out, nil
}
