// Routing and serving of the Chat emulation: which method a request calls,
// and the checks every call goes through before the method runs.

package emulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type method int

const (
	mUnknown method = iota
	mDelete
	mGet
	mList
	mCreate
	mPatch
	mSearch
	nMethods
)

var methodNames = [nMethods]string{"unknown", "members.delete", "members.get", "members.list", "members.create", "members.patch", "spaces.search"}

func (m method) write() bool { return m == mDelete || m == mCreate || m == mPatch }

// allowed query parameters per method, besides the standard ones.
var methodParams = [nMethods]map[string]bool{
	mDelete: {"useAdminAccess": true},
	mGet:    {"useAdminAccess": true},
	mList:   {"useAdminAccess": true, "pageSize": true, "pageToken": true, "filter": true, "showGroups": true, "showInvited": true},
	mCreate: {"useAdminAccess": true},
	mPatch:  {"useAdminAccess": true, "updateMask": true},
	mSearch: {"useAdminAccess": true, "query": true, "pageSize": true, "pageToken": true, "orderBy": true},
}

var standardParams = map[string]bool{
	"alt": true, "prettyPrint": true, "fields": true, "key": true, "quotaUser": true,
	"$.xgafv": true, "callback": true, "upload_protocol": true, "uploadType": true,
}

// request is one routed Chat API call.
type request struct {
	m       method
	name    string // resource name as sent (see CallInfo.Name)
	space   string // "spaces/X"
	member  string // member segment as sent
	badName string // non-empty: why the name is invalid
	admin   bool
	q       url.Values
	caller  string // user id
	scopes  []string
	// lost: a Fault with AfterApply served the call (with status served)
	// and then dropped or replaced its answer.
	lost   bool
	served int
}

func route(r *http.Request) request {
	rest, ok := strings.CutPrefix(requestPath(r), "/v1/")
	if !ok {
		return request{}
	}
	if rest == "spaces:search" {
		if r.Method == http.MethodGet {
			return request{m: mSearch}
		}
		return request{}
	}
	if !strings.HasPrefix(rest, "spaces/") {
		return request{}
	}
	segs := strings.Split(rest, "/")
	switch {
	case len(segs) == 2 && r.Method != http.MethodGet:
		return request{} // spaces.delete, spaces.patch, spaces.completeImport: not emulated
	case len(segs) >= 3 && segs[2] != "members" && segs[2] != "" && segs[2] != "." && segs[2] != "..":
		return request{} // another collection or method of a space (messages, attachments:upload, …): not emulated
	}
	rq := request{}
	switch r.Method {
	case http.MethodDelete:
		rq.m = mDelete
	case http.MethodPatch:
		rq.m = mPatch
	case http.MethodPost:
		rq.m = mCreate
	case http.MethodGet:
		if len(segs) == 2 {
			return request{} // spaces.get is not emulated
		}
		rq.m = mGet
		if segs[len(segs)-1] == "members" {
			rq.m = mList
		}
	default:
		return request{}
	}
	want := 4
	if rq.m == mList || rq.m == mCreate {
		want = 3
	}
	switch {
	case len(segs) != want || segs[2] != "members":
		rq.badName = "must be exactly spaces/{space}/members/{member}"
		if want == 3 {
			rq.badName = "parent must be exactly spaces/{space}"
		}
	case !validSegment(segs[1]):
		rq.badName = "invalid space id"
	case want == 4 && !validSegment(segs[3]):
		rq.badName = "invalid member id"
	}
	if want == 4 {
		rq.name = rest
	} else {
		rq.name = strings.TrimSuffix(rest, "/members")
	}
	if rq.badName == "" {
		rq.space = "spaces/" + segs[1]
		if want == 4 {
			rq.member = segs[3]
		}
	}
	return rq
}

func (c *Chat) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rq := route(r)
	status := c.serve(w, r, &rq)
	c.calls[rq.m].Add(1)
	if status >= 0 && status < len(c.byStatus) {
		c.byStatus[status].Add(1)
	}
	served := status
	if rq.lost {
		served = rq.served
	}
	if h := c.hook.Load(); h != nil {
		(*h)(CallInfo{Method: methodNames[rq.m], Name: rq.name, Status: status, Served: served, AnswerLost: rq.lost, Duration: time.Since(start), AdminAccess: rq.admin})
	}
}

// serve answers one call and returns the HTTP status it answered.
func (c *Chat) serve(w http.ResponseWriter, r *http.Request, rq *request) int {
	if !sleepCtx(r.Context(), c.opts.Latency) {
		return 499
	}
	if rq.m == mUnknown {
		e := errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path)
		e.write(w)
		return e.code
	}
	f, ok := c.faults.match(methodNames[rq.m])
	switch {
	case ok && f.AfterApply && (f.Drop || f.Status != 0):
		// Served (a write applies), then the answer is lost.
		if !sleepCtx(r.Context(), f.Latency) {
			return 499
		}
		rq.served, rq.lost = c.serveCall(discardResponse{h: http.Header{}}, r, rq), true
		c.answersLost.Add(1)
		f.Latency = 0
		st, _ := applyHTTPFault(w, r, f, &c.faulted)
		return st
	case ok:
		if st, answered := applyHTTPFault(w, r, f, &c.faulted); answered {
			return st
		}
	}
	return c.serveCall(w, r, rq)
}

// serveCall answers one routed call past its faults: the bearer token,
// parameters, name, quota and the method itself; it returns the HTTP status
// it answered.
func (c *Chat) serveCall(w http.ResponseWriter, r *http.Request, rq *request) int {
	fail := func(e *apiError) int {
		e.write(w)
		return e.code
	}
	g, ok := c.auth.verifyBearer(r)
	if !ok {
		c.unauthorized.Add(1)
		return fail(errf(401, "", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."))
	}
	rq.caller = strings.TrimPrefix(g.User, "users/")
	rq.scopes = g.Scopes
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return fail(errf(400, "", "Invalid query string: %v", err))
	}
	rq.q = q
	for k := range q {
		if !standardParams[k] && !methodParams[rq.m][k] {
			return fail(errf(400, "", "Invalid JSON payload received. Unknown name %q: Cannot bind query parameter. Field %q could not be found in request message.", k, k))
		}
	}
	if a := q.Get("alt"); a != "" && a != "json" {
		return fail(errf(400, "", "alt=%s is not supported", a))
	}
	if v := q.Get("useAdminAccess"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fail(errf(400, "", "Invalid value at 'use_admin_access' (TYPE_BOOL), %q", v))
		}
		rq.admin = b
	}
	if rq.admin {
		c.adminCalls.Add(1)
	}
	if rq.badName != "" {
		return fail(errf(400, "", "Invalid resource name %q: %s", rq.name, rq.badName))
	}
	if e := c.takeQuota(rq.m, rq.space); e != nil {
		c.throttled.Add(1)
		return fail(e)
	}
	var resp any
	var e *apiError
	switch rq.m {
	case mDelete:
		resp, e = c.deleteMember(rq)
	case mGet:
		resp, e = c.getMember(rq)
	case mList:
		resp, e = c.listMembers(rq)
	case mCreate:
		resp, e = c.createMember(w, r, rq)
	case mPatch:
		resp, e = c.patchMember(w, r, rq)
	case mSearch:
		resp, e = c.searchSpaces(rq)
	}
	if e != nil {
		return fail(e)
	}
	return writeJSON(w, resp)
}

// discardResponse is where a call is served when a Fault with AfterApply
// will lose its answer: the call's effects apply, its answer goes nowhere.
type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}
