package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OAuth scopes of the Chat API that the emulation checks.
const (
	ScopeChatMemberships                    = "https://www.googleapis.com/auth/chat.memberships"
	ScopeChatMembershipsReadonly            = "https://www.googleapis.com/auth/chat.memberships.readonly"
	ScopeChatMembershipsApp                 = "https://www.googleapis.com/auth/chat.memberships.app"
	ScopeChatAdminMemberships               = "https://www.googleapis.com/auth/chat.admin.memberships"
	ScopeChatAdminMembershipsReadonly       = "https://www.googleapis.com/auth/chat.admin.memberships.readonly"
	ScopeChatAdminSpaces                    = "https://www.googleapis.com/auth/chat.admin.spaces"
	ScopeChatAdminSpacesReadonly            = "https://www.googleapis.com/auth/chat.admin.spaces.readonly"
	ScopeAdminDirectoryUser                 = "https://www.googleapis.com/auth/admin.directory.user"
	ScopeAdminDirectoryUserReadonly         = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	defaultChatWindow                       = time.Minute
	defaultPageSize, maxPageSize            = 100, 1000
	maxRequestBody                    int64 = 1 << 20
)

// ChatOptions configures a Chat emulation. The zero value means no quotas
// and no added latency.
//
// Quotas use fixed windows aligned to the server's start: window k covers
// [start+k*Window, start+(k+1)*Window). A call beyond a quota is answered
// 429 RESOURCE_EXHAUSTED with Retry-After set to the whole seconds until the
// window ends (at least 1) and does not consume quota. Writes are
// members.delete, members.create and members.patch; reads are members.get,
// members.list and spaces.search. Calls answered 401 or 400 (bad name or
// parameters) before the quota check consume no quota either.
type ChatOptions struct {
	// WritesPerWindow limits writes per window; 0 = unlimited.
	WritesPerWindow int
	// ReadsPerWindow limits reads per window; 0 = unlimited.
	ReadsPerWindow int
	// Window is the quota window; 0 means 1 minute.
	Window time.Duration
	// PerSpaceReadsPerSecond limits members.get and members.list per space
	// per (fixed, start-aligned) second; 0 = unlimited.
	PerSpaceReadsPerSecond int
	// Latency is added to every call before it is processed.
	Latency time.Duration
}

// ChatStats are the counters of a Chat emulation.
type ChatStats struct {
	// Calls counts calls per method ("members.delete", "members.get",
	// "members.list", "members.create", "members.patch", "spaces.search",
	// "unknown" for unrouted requests), whatever their outcome.
	Calls map[string]int64
	// ByStatus counts answers per HTTP status (0 = dropped connection).
	ByStatus map[int]int64
	// Throttled counts calls answered 429 by a quota (not by a Fault).
	Throttled int64
	// Faulted counts calls answered or dropped by a Fault.
	Faulted int64
	// AdminAccessCalls counts calls with useAdminAccess=true.
	AdminAccessCalls int64
	// Unauthorized counts calls answered 401.
	Unauthorized int64
}

// CallInfo describes one finished Chat API call, for OnCall hooks.
type CallInfo struct {
	// Method is the API method, as in ChatStats.Calls.
	Method string
	// Name is the resource the call addressed as sent: the membership name
	// for get/delete/patch, the parent space for list/create, "" for
	// spaces.search.
	Name string
	// Status is the HTTP status answered (0 = connection dropped).
	Status int
	// Duration is the server-side duration of the call.
	Duration time.Duration
	// AdminAccess reports useAdminAccess=true.
	AdminAccess bool
}

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

type memberState struct {
	id      string // user id, or "app"
	typ     string
	role    string
	seq     int64
	created string // RFC 3339
}

type spaceState struct {
	name, displayName, spaceType string
	seq                          int64
	members                      map[string]*memberState
	list                         []*memberState // by seq
	managers, humans             int
}

// Chat emulates the Google Chat API membership surface on a loopback HTTP
// server, as google.golang.org/api/chat/v1 calls it (option.WithEndpoint(URL())).
// All methods are safe for concurrent use, also while the server handles
// requests (which it does concurrently).
//
// Routes: DELETE, GET and PATCH /v1/spaces/{space}/members/{member}
// (members.delete, members.get, members.patch with updateMask=role only),
// GET and POST /v1/spaces/{space}/members (members.list, members.create) and
// GET /v1/spaces:search. Anything else is 404.
//
// Each call is checked in this order: ChatOptions.Latency; routing (404);
// injected faults; the Bearer token through OAuth.Verify (401
// UNAUTHENTICATED); query parameters (unknown parameters, bad
// useAdminAccess: 400); the resource name (400 INVALID_ARGUMENT unless
// exactly spaces/{space}/members/{member} with each segment of
// [A-Za-z0-9._+@'-], not "." or ".."); quotas (429 RESOURCE_EXHAUSTED with
// Retry-After); then the method's own checks:
//
//   - Scopes (403 PERMISSION_DENIED when missing): writes need
//     chat.memberships (chat.memberships.app when the member is "app"), or
//     chat.admin.memberships with useAdminAccess; reads accept
//     chat.memberships or chat.memberships.readonly, or with useAdminAccess
//     chat.admin.memberships or chat.admin.memberships.readonly;
//     spaces.search needs chat.admin.spaces or chat.admin.spaces.readonly.
//   - useAdminAccess=true: the caller must be in Workspace.Admins (403), the
//     space must be a SPACE (400), the member can't be "app" (400), and
//     members.list needs a filter with member.type = "HUMAN" or
//     member.type != "BOT" (400). spaces.search requires it (400).
//   - Roles as Chat has them since October 2025: ROLE_MANAGER is a space
//     owner, ROLE_ASSISTANT_MANAGER a manager, ROLE_MEMBER a member.
//   - Without admin access the caller must be a member of the space (403);
//     adding others needs an owner or a manager, deleting others an owner
//     (a manager may delete plain members only), changing roles an owner
//     (403), except that anyone may leave and, in a GROUP_CHAT, any member
//     may add people. Memberships of a DIRECT_MESSAGE can't be created or
//     deleted (400); roles exist in SPACEs only (400).
//   - {member} in a path is the user id, or "app"; members.get and
//     members.delete also take the user's primary email as an alias
//     (case-insensitive), as Google documents for those two methods only.
//     members.patch takes only the server-assigned name
//     spaces/{space}/members/{user id} (400 for an email). Secondary
//     addresses (Directory aliases) are not accepted anywhere in Chat (404
//     NOT_FOUND): Google documents "the user's email", and the emulation
//     stays on the strict side. members.create takes member.name
//     users/{id} or users/{primary email}. Answers always name the id
//     (spaces/S/members/ID, or spaces/S/members/app with member users/app,
//     BOT). An unknown email or a non-member is 404 NOT_FOUND.
//   - Deleting the only owner (ROLE_MANAGER) of a SPACE while other humans
//     remain, or changing the only owner's role, is 400
//     FAILED_PRECONDITION; assistant managers do not count as owners.
//   - members.delete answers the deleted Membership (state NOT_A_MEMBER,
//     the role it had); get, create and patch answer state JOINED.
//     Creating an existing membership is 409 ALREADY_EXISTS.
//   - members.list supports filter (member.type and role with = and !=,
//     AND, OR, parentheses), pageSize (default 100, max 1000) and opaque
//     page tokens bound to the space, filter and useAdminAccess; deletes
//     between pages neither skip nor repeat members. showGroups and
//     showInvited are accepted and have no effect.
//   - spaces.search needs a query with customer = "customers/my_customer"
//     and spaceType = "SPACE" (optionally AND displayName:"text"); it
//     returns SPACE spaces only, in seed order, paged like members.list;
//     orderBy is accepted and ignored.
type Chat struct {
	srv    *loopbackServer
	auth   *OAuth
	opts   ChatOptions
	start  time.Time
	faults faultSet
	hook   atomic.Pointer[func(CallInfo)]

	mu        sync.RWMutex
	customer  string
	admins    map[string]bool // user ids
	adminList []string        // as seeded
	users     []User
	byEmail   map[string]string // lower-case primary email -> id
	spaces    map[string]*spaceState
	order     []*spaceState // by seq
	seq       int64
	createdAt string

	qmu      sync.Mutex
	qWindow  int64
	qWrites  int
	qReads   int
	perSpace map[string]*secondCounter

	calls                                        [nMethods]atomic.Int64
	byStatus                                     [600]atomic.Int64
	throttled, faulted, adminCalls, unauthorized atomic.Int64
}

type secondCounter struct {
	sec int64
	n   int
}

// NewChat starts a Chat emulation seeded with a deep copy of ws, checking
// access tokens with auth. It panics if ws is invalid (see
// Workspace.Validate) or no loopback port is available.
func NewChat(ws Workspace, auth *OAuth, opts ChatOptions) *Chat {
	if err := ws.Validate(); err != nil {
		panic(err)
	}
	if opts.Window <= 0 {
		opts.Window = defaultChatWindow
	}
	c := &Chat{
		auth:     auth,
		opts:     opts,
		start:    time.Now(),
		perSpace: map[string]*secondCounter{},
	}
	c.load(ws.Clone())
	c.srv = startLoopback(http.HandlerFunc(c.serveHTTP))
	return c
}

func (c *Chat) load(ws Workspace) {
	c.customer = ws.Customer
	if c.customer == "" {
		c.customer = DefaultCustomer
	}
	c.createdAt = c.start.UTC().Format(time.RFC3339Nano)
	c.admins = map[string]bool{}
	c.adminList = ws.Admins
	for _, a := range ws.Admins {
		c.admins[strings.TrimPrefix(a, "users/")] = true
	}
	c.users = ws.Users
	c.byEmail = map[string]string{}
	for _, u := range ws.Users {
		// Primary addresses only: Chat documents "the user's email" as an
		// alias, not the Directory's further addresses.
		c.byEmail[strings.ToLower(u.Email)] = u.ID
	}
	c.spaces = map[string]*spaceState{}
	for _, s := range ws.Spaces {
		c.seq++
		st := &spaceState{name: s.Name, displayName: s.DisplayName, spaceType: s.SpaceType, seq: c.seq, members: map[string]*memberState{}}
		if st.spaceType == "" {
			st.spaceType = SpaceTypeSpace
		}
		for _, m := range s.Members {
			id := strings.TrimPrefix(m.User, "users/")
			ms := &memberState{id: id, typ: m.Type, role: m.Role, created: c.createdAt}
			if ms.typ == "" {
				ms.typ = MemberTypeHuman
				if id == "app" {
					ms.typ = MemberTypeBot
				}
			}
			if ms.role == "" {
				ms.role = RoleMember
			}
			c.addMemberLocked(st, ms)
		}
		c.spaces[s.Name] = st
		c.order = append(c.order, st)
	}
}

func (c *Chat) addMemberLocked(s *spaceState, m *memberState) {
	c.seq++
	m.seq = c.seq
	s.members[m.id] = m
	s.list = append(s.list, m)
	if m.typ == MemberTypeHuman {
		s.humans++
	}
	if m.role == RoleManager {
		s.managers++
	}
}

func (c *Chat) removeMemberLocked(s *spaceState, m *memberState) {
	delete(s.members, m.id)
	i := sort.Search(len(s.list), func(i int) bool { return s.list[i].seq >= m.seq })
	if i < len(s.list) && s.list[i] == m {
		s.list = append(s.list[:i], s.list[i+1:]...)
	}
	if m.typ == MemberTypeHuman {
		s.humans--
	}
	if m.role == RoleManager {
		s.managers--
	}
}

// URL returns the base URL, "http://127.0.0.1:PORT/", usable with
// option.WithEndpoint.
func (c *Chat) URL() string { return c.srv.base + "/" }

// Close stops the server and closes its connections. It is idempotent.
func (c *Chat) Close() { c.srv.close() }

// InjectFault adds a fault; faults are matched in the order added.
func (c *Chat) InjectFault(f Fault) { c.faults.add(f) }

// ClearFaults removes all injected faults.
func (c *Chat) ClearFaults() { c.faults.clear() }

// OnCall sets a hook called synchronously after every call, from the
// server's goroutines (so possibly concurrently with itself); it must be
// cheap and safe for concurrent use. nil removes the hook.
func (c *Chat) OnCall(f func(CallInfo)) {
	if f == nil {
		c.hook.Store(nil)
		return
	}
	c.hook.Store(&f)
}

// Stats returns a copy of the current counters.
func (c *Chat) Stats() ChatStats {
	s := ChatStats{
		Calls:            map[string]int64{},
		ByStatus:         map[int]int64{},
		Throttled:        c.throttled.Load(),
		Faulted:          c.faulted.Load(),
		AdminAccessCalls: c.adminCalls.Load(),
		Unauthorized:     c.unauthorized.Load(),
	}
	for i := range c.calls {
		if n := c.calls[i].Load(); n != 0 {
			s.Calls[methodNames[i]] = n
		}
	}
	for i := range c.byStatus {
		if n := c.byStatus[i].Load(); n != 0 {
			s.ByStatus[i] = n
		}
	}
	return s
}

// ResetStats zeroes all counters (not the quotas).
func (c *Chat) ResetStats() {
	for i := range c.calls {
		c.calls[i].Store(0)
	}
	for i := range c.byStatus {
		c.byStatus[i].Store(0)
	}
	c.throttled.Store(0)
	c.faulted.Store(0)
	c.adminCalls.Store(0)
	c.unauthorized.Store(0)
}

// Snapshot returns a deep copy of the current state as a Workspace, spaces
// and members in creation order.
func (c *Chat) Snapshot() Workspace {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws := Workspace{Customer: c.customer, Admins: append([]string(nil), c.adminList...)}
	ws.Users = make([]User, len(c.users))
	for i, u := range c.users {
		u.Aliases = append([]string(nil), u.Aliases...)
		ws.Users[i] = u
	}
	ws.Spaces = make([]Space, 0, len(c.order))
	for _, s := range c.order {
		sp := Space{Name: s.name, DisplayName: s.displayName, SpaceType: s.spaceType, Members: make([]Member, 0, len(s.list))}
		for _, m := range s.list {
			sp.Members = append(sp.Members, Member{User: "users/" + m.id, Type: m.typ, Role: m.role})
		}
		ws.Spaces = append(ws.Spaces, sp)
	}
	return ws
}

// IsMember reports the role of user in space. user may be "users/ID", "ID",
// a primary email, "app" or "users/app"; space is "spaces/X".
func (c *Chat) IsMember(space, user string) (role string, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.spaces[space]
	if s == nil {
		return "", false
	}
	id, known := c.resolveLocked(strings.TrimPrefix(user, "users/"))
	if !known {
		return "", false
	}
	m := s.members[id]
	if m == nil {
		return "", false
	}
	return m.role, true
}

// resolveLocked turns a member segment (id, primary email, "app") into a
// user id; an unknown email reports false.
func (c *Chat) resolveLocked(seg string) (string, bool) {
	if strings.IndexByte(seg, '@') < 0 {
		return seg, true
	}
	id, ok := c.byEmail[strings.ToLower(seg)]
	return id, ok
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
	if h := c.hook.Load(); h != nil {
		(*h)(CallInfo{Method: methodNames[rq.m], Name: rq.name, Status: status, Duration: time.Since(start), AdminAccess: rq.admin})
	}
}

// serve answers one call and returns the HTTP status it answered.
func (c *Chat) serve(w http.ResponseWriter, r *http.Request, rq *request) int {
	fail := func(e *apiError) int {
		e.write(w)
		return e.code
	}
	if !sleepCtx(r.Context(), c.opts.Latency) {
		return 499
	}
	if rq.m == mUnknown {
		return fail(errf(404, "", "The requested URL %s was not found on this server.", r.URL.Path))
	}
	if f, ok := c.faults.match(methodNames[rq.m]); ok {
		if st, answered := applyHTTPFault(w, r, f, &c.faulted); answered {
			return st
		}
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

// takeQuota consumes one unit of the quotas that apply to m, or answers
// 429.
func (c *Chat) takeQuota(m method, space string) *apiError {
	write := m.write()
	limit := c.opts.ReadsPerWindow
	if write {
		limit = c.opts.WritesPerWindow
	}
	perSpace := 0
	if m == mGet || m == mList {
		perSpace = c.opts.PerSpaceReadsPerSecond
	}
	if limit <= 0 && perSpace <= 0 {
		return nil
	}
	now := time.Since(c.start)
	c.qmu.Lock()
	defer c.qmu.Unlock()
	win := int64(now / c.opts.Window)
	if win != c.qWindow {
		c.qWindow, c.qWrites, c.qReads = win, 0, 0
	}
	used := &c.qReads
	kind := "Read"
	if write {
		used, kind = &c.qWrites, "Write"
	}
	if limit > 0 && *used >= limit {
		e := errf(429, "", "Quota exceeded for quota metric '%s requests' and limit '%s requests per minute per project' of service 'chat.googleapis.com'.", kind, kind)
		e.retryAfter = time.Duration(win+1)*c.opts.Window - now
		return e
	}
	if perSpace > 0 {
		sec := int64(now / time.Second)
		sc := c.perSpace[space]
		if sc == nil {
			sc = &secondCounter{sec: sec}
			c.perSpace[space] = sc
		}
		if sc.sec != sec {
			sc.sec, sc.n = sec, 0
		}
		if sc.n >= perSpace {
			e := errf(429, "", "Quota exceeded for quota metric 'Read requests per space' and limit 'Read requests per space per second' of service 'chat.googleapis.com'.")
			e.retryAfter = time.Duration(sec+1)*time.Second - now
			return e
		}
		sc.n++
	}
	if limit > 0 {
		*used++
	}
	return nil
}

type userJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type membershipJSON struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Role       string    `json:"role,omitempty"`
	Member     *userJSON `json:"member,omitempty"`
	CreateTime string    `json:"createTime,omitempty"`
	DeleteTime string    `json:"deleteTime,omitempty"`
}

func membershipOf(space string, m *memberState, state string) *membershipJSON {
	return &membershipJSON{
		Name:       space + "/members/" + m.id,
		State:      state,
		Role:       m.role,
		Member:     &userJSON{Name: "users/" + m.id, Type: m.typ},
		CreateTime: m.created,
	}
}

var (
	errNoSpace  = func(s string) *apiError { return errf(404, "", "Space %s not found.", s) }
	errNoMember = func(n string) *apiError { return errf(404, "", "Membership %s not found.", n) }
)

// authorize checks scopes and admin status common to membership methods.
// userScopes / adminScopes are the accepted scopes without / with admin
// access.
func (c *Chat) authorize(rq *request, userScopes, adminScopes []string) *apiError {
	if rq.admin {
		if !hasScope(rq.scopes, adminScopes...) {
			return errf(403, "", "Request had insufficient authentication scopes for useAdminAccess (needs one of %s).", strings.Join(adminScopes, ", "))
		}
		c.mu.RLock()
		isAdmin := c.admins[rq.caller]
		c.mu.RUnlock()
		if !isAdmin {
			return errf(403, "", "The caller is not a Google Workspace administrator with the Chat and Google Meet privilege, so it can't use admin access.")
		}
		return nil
	}
	if !hasScope(rq.scopes, userScopes...) {
		return errf(403, "", "Request had insufficient authentication scopes (needs one of %s).", strings.Join(userScopes, ", "))
	}
	return nil
}

// Scopes accepted by the membership methods, without and with admin access.
var (
	readScopes       = []string{ScopeChatMemberships, ScopeChatMembershipsReadonly}
	adminReadScopes  = []string{ScopeChatAdminMemberships, ScopeChatAdminMembershipsReadonly}
	adminWriteScopes = []string{ScopeChatAdminMemberships}
)

// authorizeRead checks the scopes of members.get and members.list.
func (c *Chat) authorizeRead(rq *request) *apiError {
	return c.authorize(rq, readScopes, adminReadScopes)
}

// authorizeWrite checks a members.create or members.delete call. An app
// membership (users/app) needs chat.memberships.app instead of
// chat.memberships, and admin access cannot be used for it: the error then
// says that useAdminAccess can't be used to appAction.
func (c *Chat) authorizeWrite(rq *request, isApp bool, appAction string) *apiError {
	if isApp && rq.admin {
		return errf(400, "", "useAdminAccess can't be used to %s.", appAction)
	}
	userScopes := []string{ScopeChatMemberships}
	if isApp {
		userScopes = []string{ScopeChatMembershipsApp}
	}
	return c.authorize(rq, userScopes, adminWriteScopes)
}

// memberLocked resolves the member segment seg (id, primary email, "app") and
// returns the user id (empty for an unknown email) and that user's
// membership of s, or nil.
func (c *Chat) memberLocked(s *spaceState, seg string) (string, *memberState) {
	id, known := c.resolveLocked(seg)
	if !known {
		return id, nil
	}
	return id, s.members[id]
}

// spaceForLocked finds the space and checks the caller's access to it:
// with admin access it must be a SPACE; without, the caller must be a
// member. It returns the caller's membership (nil with admin access).
func (c *Chat) spaceForLocked(rq *request) (*spaceState, *memberState, *apiError) {
	s := c.spaces[rq.space]
	if s == nil {
		return nil, nil, errNoSpace(rq.space)
	}
	if rq.admin {
		if s.spaceType != SpaceTypeSpace {
			return nil, nil, errf(400, "", "useAdminAccess is only supported for spaces of type SPACE; %s is a %s.", s.name, s.spaceType)
		}
		return s, nil, nil
	}
	me := s.members[rq.caller]
	if me == nil {
		return nil, nil, errf(403, "", "The caller is not a member of %s.", s.name)
	}
	return s, me, nil
}

func (c *Chat) deleteMember(rq *request) (any, *apiError) {
	if e := c.authorizeWrite(rq, rq.member == "app", "delete app memberships"); e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, me, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	if s.spaceType == SpaceTypeDirectMessage {
		return nil, errf(400, "", "Memberships of direct messages can't be deleted.")
	}
	id, m := c.memberLocked(s, rq.member)
	if me != nil && id != rq.caller && me.role != RoleManager && me.role != RoleAssistantManager {
		return nil, errf(403, "", "The caller doesn't have permission to delete memberships of %s: only space owners and managers can remove other members.", s.name)
	}
	if m == nil {
		return nil, errNoMember(rq.name)
	}
	if me != nil && id != rq.caller && me.role == RoleAssistantManager && m.role != RoleMember {
		return nil, errf(403, "", "The caller doesn't have permission to delete %s: a space manager can remove members only.", rq.name)
	}
	if s.spaceType == SpaceTypeSpace && m.role == RoleManager && s.managers == 1 && s.humans > 1 {
		return nil, errf(400, "FAILED_PRECONDITION", "The membership cannot be deleted because it is the only owner of the space. Make another member an owner first.")
	}
	c.removeMemberLocked(s, m)
	out := membershipOf(s.name, m, "NOT_A_MEMBER")
	out.DeleteTime = time.Now().UTC().Format(time.RFC3339Nano)
	return out, nil
}

func (c *Chat) getMember(rq *request) (any, *apiError) {
	if rq.member == "app" && rq.admin {
		return nil, errf(400, "", "useAdminAccess can't be used to get app memberships.")
	}
	if e := c.authorizeRead(rq); e != nil {
		return nil, e
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, _, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	_, m := c.memberLocked(s, rq.member)
	if m == nil {
		return nil, errNoMember(rq.name)
	}
	return membershipOf(s.name, m, "JOINED"), nil
}

// pageToken is the (opaque to clients) paging state.
type pageToken struct {
	Kind   string `json:"k"`
	Parent string `json:"p,omitempty"`
	Filter string `json:"f,omitempty"`
	Admin  bool   `json:"a,omitempty"`
	After  int64  `json:"s"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkPageToken decodes tok and checks it belongs to a call like want.
func checkPageToken(tok string, want pageToken) (int64, *apiError) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var t pageToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Kind != want.Kind {
		return 0, errf(400, "", "Invalid page token.")
	}
	if t.Parent != want.Parent || t.Filter != want.Filter || t.Admin != want.Admin {
		return 0, errf(400, "", "The page token doesn't match the other parameters of the request.")
	}
	return t.After, nil
}

func parsePageSize(q url.Values) (int, *apiError) {
	v := q.Get("pageSize")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errf(400, "", "Invalid page size %q.", v)
	}
	if n == 0 {
		return defaultPageSize, nil
	}
	return min(n, maxPageSize), nil
}

func parseBoolParam(q url.Values, k string) *apiError {
	if v := q.Get(k); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return errf(400, "", "Invalid value for %s: %q", k, v)
		}
	}
	return nil
}

type listMembershipsJSON struct {
	Memberships   []*membershipJSON `json:"memberships,omitempty"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

func (c *Chat) listMembers(rq *request) (any, *apiError) {
	if e := c.authorizeRead(rq); e != nil {
		return nil, e
	}
	filterText := rq.q.Get("filter")
	filter, err := parseMemberFilter(filterText)
	if err != nil {
		return nil, errf(400, "", "Invalid filter %q: %v", filterText, err)
	}
	if rq.admin && !filter.excludesBots() {
		return nil, errf(400, "", `When useAdminAccess is true, the filter must contain member.type = "HUMAN" or member.type != "BOT".`)
	}
	size, e := parsePageSize(rq.q)
	if e != nil {
		return nil, e
	}
	for _, k := range []string{"showGroups", "showInvited"} {
		if e := parseBoolParam(rq.q, k); e != nil {
			return nil, e
		}
	}
	want := pageToken{Kind: "members", Parent: rq.space, Filter: filterText, Admin: rq.admin}
	after, e := checkPageToken(rq.q.Get("pageToken"), want)
	if e != nil {
		return nil, e
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, _, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	out := &listMembershipsJSON{}
	var lastSeq int64
	i := sort.Search(len(s.list), func(i int) bool { return s.list[i].seq > after })
	for ; i < len(s.list); i++ {
		m := s.list[i]
		if !filter.matchMember(m.typ, m.role) {
			continue
		}
		if len(out.Memberships) == size {
			want.After = lastSeq
			out.NextPageToken = want.encode()
			break
		}
		out.Memberships = append(out.Memberships, membershipOf(s.name, m, "JOINED"))
		lastSeq = m.seq
	}
	return out, nil
}

type membershipIn struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Role        string `json:"role"`
	CreateTime  string `json:"createTime"`
	DeleteTime  string `json:"deleteTime"`
	Affiliation string `json:"affiliation"`
	Member      *struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		DisplayName string `json:"displayName"`
		DomainID    string `json:"domainId"`
		Email       string `json:"email"`
		AvatarURL   string `json:"avatarUrl"`
		IsAnonymous bool   `json:"isAnonymous"`
	} `json:"member"`
	GroupMember *struct {
		Name string `json:"name"`
	} `json:"groupMember"`
}

func decodeMembership(w http.ResponseWriter, r *http.Request) (*membershipIn, *apiError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, errf(400, "", "Content-Type must be application/json.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	var m membershipIn
	if err := dec.Decode(&m); err != nil {
		return nil, errf(400, "", "Invalid JSON payload received. %v", err)
	}
	if dec.More() {
		return nil, errf(400, "", "Invalid JSON payload received. Unexpected data after the membership.")
	}
	return &m, nil
}

func (c *Chat) createMember(w http.ResponseWriter, r *http.Request, rq *request) (any, *apiError) {
	in, e := decodeMembership(w, r)
	if e != nil {
		return nil, e
	}
	if in.GroupMember != nil {
		return nil, errf(400, "", "Google Group memberships are not supported by the emulator.")
	}
	if in.Member == nil || in.Member.Name == "" {
		return nil, errf(400, "", "membership.member.name is required.")
	}
	seg, ok := strings.CutPrefix(in.Member.Name, "users/")
	if !ok || !validSegment(seg) {
		return nil, errf(400, "", "Invalid user name %q: must be users/{user}.", in.Member.Name)
	}
	isApp := seg == "app"
	typ := in.Member.Type
	switch {
	case typ == "" && isApp, typ == MemberTypeBot && isApp:
		typ = MemberTypeBot
	case typ == "" || typ == MemberTypeHuman:
		if isApp {
			return nil, errf(400, "", "users/app must have type BOT.")
		}
		typ = MemberTypeHuman
	default:
		return nil, errf(400, "", "Invalid member type %q: only HUMAN users and users/app (BOT) can be added.", typ)
	}
	if e := c.authorizeWrite(rq, isApp, "add apps"); e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, me, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	if s.spaceType == SpaceTypeDirectMessage {
		return nil, errf(400, "", "Members can't be added to direct messages.")
	}
	if me != nil && s.spaceType == SpaceTypeSpace && me.role != RoleManager && me.role != RoleAssistantManager {
		return nil, errf(403, "", "The caller doesn't have permission to add members to %s: only space owners and managers can.", s.name)
	}
	id, known := c.resolveLocked(seg)
	if !known {
		return nil, errf(404, "", "User %s not found.", in.Member.Name)
	}
	if s.members[id] != nil {
		return nil, errf(409, "", "Membership %s/members/%s already exists.", s.name, id)
	}
	m := &memberState{id: id, typ: typ, role: RoleMember, created: time.Now().UTC().Format(time.RFC3339Nano)}
	c.addMemberLocked(s, m)
	return membershipOf(s.name, m, "JOINED"), nil
}

func (c *Chat) patchMember(w http.ResponseWriter, r *http.Request, rq *request) (any, *apiError) {
	mask := rq.q.Get("updateMask")
	if mask == "" {
		return nil, errf(400, "", "updateMask is required.")
	}
	for _, f := range strings.Split(mask, ",") {
		if strings.TrimSpace(f) != "role" {
			return nil, errf(400, "", "Invalid updateMask %q: only role can be updated.", mask)
		}
	}
	in, e := decodeMembership(w, r)
	if e != nil {
		return nil, e
	}
	if in.Role != RoleMember && in.Role != RoleManager && in.Role != RoleAssistantManager {
		return nil, errf(400, "", "Invalid role %q: must be ROLE_MEMBER, ROLE_ASSISTANT_MANAGER or ROLE_MANAGER.", in.Role)
	}
	if rq.member == "app" {
		return nil, errf(400, "", "The role of an app membership can't be changed.")
	}
	if strings.Contains(rq.member, "@") {
		// Google documents the email alias for members.get and
		// members.delete only; patch takes "the resource name of the
		// membership, assigned by the server".
		return nil, errf(400, "", "Invalid membership name %q: members.patch takes the name the server assigned, spaces/{space}/members/{member id}; an email address is not accepted.", rq.name)
	}
	if e := c.authorize(rq, []string{ScopeChatMemberships}, []string{ScopeChatAdminMemberships}); e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, me, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	if s.spaceType != SpaceTypeSpace {
		return nil, errf(400, "", "Roles can only be changed in spaces of type SPACE.")
	}
	if me != nil && me.role != RoleManager {
		return nil, errf(403, "", "The caller doesn't have permission to change roles in %s: only space owners can.", s.name)
	}
	_, m := c.memberLocked(s, rq.member)
	if m == nil {
		return nil, errNoMember(rq.name)
	}
	if m.typ != MemberTypeHuman {
		return nil, errf(400, "", "The role of an app membership can't be changed.")
	}
	if m.role == RoleManager && in.Role != RoleManager && s.managers == 1 {
		return nil, errf(400, "FAILED_PRECONDITION", "The membership cannot be changed because it is the only owner of the space. Make another member an owner first.")
	}
	if m.role != in.Role {
		if in.Role == RoleManager {
			s.managers++
		} else if m.role == RoleManager {
			s.managers--
		}
		m.role = in.Role
	}
	return membershipOf(s.name, m, "JOINED"), nil
}

type membershipCountJSON struct {
	JoinedDirectHumanUserCount int `json:"joinedDirectHumanUserCount"`
}

type spaceJSON struct {
	Name            string               `json:"name"`
	Type            string               `json:"type,omitempty"`
	DisplayName     string               `json:"displayName,omitempty"`
	SpaceType       string               `json:"spaceType"`
	Customer        string               `json:"customer,omitempty"`
	MembershipCount *membershipCountJSON `json:"membershipCount,omitempty"`
}

type searchSpacesJSON struct {
	Spaces        []*spaceJSON `json:"spaces,omitempty"`
	NextPageToken string       `json:"nextPageToken,omitempty"`
	TotalSize     int          `json:"totalSize"`
}

func (c *Chat) searchSpaces(rq *request) (any, *apiError) {
	if !rq.admin {
		return nil, errf(400, "", "spaces.search requires useAdminAccess=true.")
	}
	if e := c.authorize(rq, nil, []string{ScopeChatAdminSpaces, ScopeChatAdminSpacesReadonly}); e != nil {
		return nil, e
	}
	query := rq.q.Get("query")
	sq, err := parseSpaceQuery(query)
	if err != nil {
		return nil, errf(400, "", "Invalid query %q: %v", query, err)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if sq.customer != DefaultCustomer && sq.customer != c.customer {
		return nil, errf(400, "", "Invalid customer %q in query: must be customers/my_customer.", sq.customer)
	}
	size, e := parsePageSize(rq.q)
	if e != nil {
		return nil, e
	}
	want := pageToken{Kind: "spaces", Filter: query + "\x00" + rq.q.Get("orderBy"), Admin: true}
	after, e := checkPageToken(rq.q.Get("pageToken"), want)
	if e != nil {
		return nil, e
	}
	out := &searchSpacesJSON{}
	var last int64
	for _, s := range c.order {
		if s.spaceType != SpaceTypeSpace {
			continue
		}
		if sq.displayName != "" && !strings.Contains(strings.ToLower(s.displayName), sq.displayName) {
			continue
		}
		out.TotalSize++
		if s.seq <= after {
			continue
		}
		if len(out.Spaces) == size {
			if out.NextPageToken == "" {
				want.After = last
				out.NextPageToken = want.encode()
			}
			continue
		}
		out.Spaces = append(out.Spaces, &spaceJSON{
			Name: s.name, Type: "ROOM", DisplayName: s.displayName, SpaceType: s.spaceType, Customer: c.customer,
			MembershipCount: &membershipCountJSON{JoinedDirectHumanUserCount: s.humans},
		})
		last = s.seq
	}
	return out, nil
}

// String returns a short description for debugging (the base URL).
func (c *Chat) String() string { return fmt.Sprintf("emulator.Chat(%s)", c.srv.base) }
