package emulator

import (
	"fmt"
	"net/http"
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
	// Search says which fields of SearchSpacesResponse spaces.search
	// fills; the zero value, SearchBoth, answers as the current reference
	// describes.
	Search SearchFields
	// OnlyOwnerRefusal is how members.delete refuses a space's only owner:
	// Google's guide says only that it can't be done, not with which error.
	// The zero value is 400 FAILED_PRECONDITION.
	OnlyOwnerRefusal Refusal
	// EmptyDeleteAnswer makes members.delete answer an empty Membership
	// ({}): Google documents the answer as the Membership without saying
	// what it holds, so nothing may depend on its fields.
	EmptyDeleteAnswer bool
}

// Refusal is an error answer: an HTTP code and Google's status for it (""
// for the code's canonical status).
type Refusal struct {
	Code   int
	Status string
}

// SearchFields says which fields of SearchSpacesResponse spaces.search fills
// with the spaces found.
type SearchFields int

const (
	// SearchBoth fills results (SearchSpaceResult{space}) and the
	// deprecated spaces, with the same spaces: the reference (Chat
	// revision 20261107) calls spaces "Deprecated: Please use the new
	// results field instead" and still documents it as populated with
	// admin access.
	SearchBoth SearchFields = iota
	// SearchResultsOnly fills results only: Google once it stops filling
	// the deprecated field.
	SearchResultsOnly
	// SearchSpacesOnly fills the deprecated spaces only, as Google did
	// before results was added.
	SearchSpacesOnly
)

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
	// AnswersLost counts the calls of Faulted that a Fault with AfterApply
	// served (a write applied) before it dropped or replaced the answer.
	AnswersLost int64
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
	// Served is the status the call was served with: the same as Status,
	// except when a Fault with AfterApply lost the answer (AnswerLost):
	// then the call's effects are Served's (200: the write applied) and
	// Status is what the client got (0, or the fault's status).
	Served int
	// AnswerLost reports that a Fault with AfterApply served the call and
	// then dropped or replaced its answer.
	AnswerLost bool
	// Duration is the server-side duration of the call.
	Duration time.Duration
	// AdminAccess reports useAdminAccess=true.
	AdminAccess bool
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
// injected faults (one with AfterApply only after the method has been
// served: see Fault); the Bearer token through OAuth.Verify (401
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
//   - Deleting the only owner (ROLE_MANAGER) of a SPACE, whoever else is in
//     it (Google's guide: the only owner can't be removed), or changing the
//     only owner's role, is 400 FAILED_PRECONDITION (the code is a guess:
//     Google documents none, and ChatOptions.OnlyOwnerRefusal changes it
//     for the delete); assistant managers do not count as owners.
//   - members.delete answers the deleted Membership (state NOT_A_MEMBER,
//     the role it had; {} with ChatOptions.EmptyDeleteAnswer); get, create
//     and patch answer the membership's state: JOINED, or INVITED for a
//     person whose auto-accept is off (User.AutoAcceptOff), whom
//     members.create invites rather than adds, and who never accepts here.
//     Creating an existing membership is 409 ALREADY_EXISTS. Making an
//     INVITED membership an owner (members.patch to ROLE_MANAGER) is 400
//     FAILED_PRECONDITION: an assumption, Google documents no such rule.
//   - members.create ignores a role in its body ("can only be used as
//     input in UpdateMembership"): a new membership is ROLE_MEMBER. With
//     useAdminAccess it cannot add apps (400) nor people outside the
//     organisation, i.e. not in Workspace.Users (400). A deleted user
//     (User.Deleted) cannot be added (404).
//   - members.list supports filter (member.type and role with = and !=,
//     AND, OR, parentheses), pageSize (default 100, max 1000) and opaque
//     page tokens bound to the space, filter and useAdminAccess; deletes
//     between pages neither skip nor repeat members. With showGroups=true
//     the Google Groups that are members of the space (Space.Groups) are
//     listed too: name spaces/{space}/members/{group id}, groupMember
//     groups/{group id}, no member and no role, so that a filter
//     member.type != "BOT" keeps them and member.type = "HUMAN" or any
//     role = … drops them ("If a filter is set, Google Group memberships
//     that don't match the filter criteria aren't returned"). Page tokens
//     are bound to showGroups too. members.get, delete and patch do not
//     address group memberships here (404). Invited memberships are
//     listed only with showInvited=true, which requires user
//     authentication (400 with useAdminAccess).
//   - spaces.search needs a query with customer = "customers/my_customer"
//     and space_type = "SPACE" (optionally AND display_name:"text"); the
//     fields may be spelled as the current reference spells them
//     (space_type, display_name) or as its earlier revisions did
//     (spaceType, displayName). It returns SPACE spaces only, in seed
//     order, paged like members.list, in results and the deprecated
//     spaces (ChatOptions.Search); orderBy is accepted and ignored.
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
	groups    []Group           // as seeded
	byEmail   map[string]string // lower-case primary email -> id
	byID      map[string]User   // the organisation's people, by id
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
	answersLost                                  atomic.Int64
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
		AnswersLost:      c.answersLost.Load(),
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
	c.answersLost.Store(0)
	c.adminCalls.Store(0)
	c.unauthorized.Store(0)
}

// String returns a short description for debugging (the base URL).
func (c *Chat) String() string { return fmt.Sprintf("emulator.Chat(%s)", c.srv.base) }
