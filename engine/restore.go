package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// The restore flows (issue 14): undo what an earlier request removed, from
// the ledger's records of its removals (docs/design.md, "Restore").
//
// A restore request {"restore": "hr-7"} is answered page by page, as sweeps
// are: a page reads the removed memberships of hr-7 and of its children
// (ledger.Store.Memberships, by root), groups them by space, publishes one
// child per space (restore + space + members) for at most
// restorePageSpaces spaces, and a continuation page when more remain, and
// answers planned with the number of results to expect. A child restores
// its space's memberships one by one: members.get (already_member when the
// person is back), the intent, members.create, and members.patch to the
// recorded role when it is not ROLE_MEMBER (a create always makes a
// member). So one invocation handles at most one space's memberships (at
// most 100, the most people one removal request names) or one page of
// children, whatever the size of the restore.

const (
	// restorePageSpaces bounds the children one restore page publishes.
	restorePageSpaces = 1000
	// roleMember is the role members.create gives.
	roleMember = "ROLE_MEMBER"
)

// restorePage is the flow of a restore request and of its continuation
// pages: the planned decision first (and a failed one per app membership
// the removal took, which a restore does not add back). A request the
// ledger does not know, or that removed nobody, is answered invalid.
func (f *Engine) restorePage(ctx context.Context, j *job) ([]contract.Result, error) {
	v := j.req
	root := v.RequestID
	if v.ParentRequestID != "" {
		root = v.ParentRequestID
	}
	if out, ok, err := f.claimed(ctx, j, root, v.RequestID); ok || err != nil {
		return out, err
	}
	if out, stop, err := f.pageCancelled(ctx, j, root); stop || err != nil {
		return out, err
	}
	p, why, err := f.restorePlan(ctx, v.Restore)
	if err != nil {
		return nil, err
	}
	if p.found && v.PageToken == "" {
		// The first page waits for the removal to finish; its
		// continuations come after it.
		running, err := f.removalRunning(ctx, p)
		if err != nil {
			return nil, err
		}
		if running != "" {
			j.waiting = true
			return nil, &TransientError{Op: "restore", Err: &removalRunningError{target: v.Restore, why: running}}
		}
	}
	if why != "" {
		r := rejected(j.result(v.RequestID), &request.Error{Field: "restore", Reason: why})
		r.Detail = "nothing to restore: nothing was published and nothing was written"
		return []contract.Result{j.decided(r)}, nil
	}
	groups, continued := p.page(v.PageToken)
	children, expected := restoreChildren(v, root, groups, continued)
	var apps []contract.Result
	if v.PageToken == "" {
		apps = p.firstPageFailures(ctx, j, root)
		expected += len(apps)
	}
	if err := f.publishChildren(ctx, children); err != nil {
		return nil, err
	}
	r := j.result(v.RequestID)
	n := len(children)
	r.Outcome, r.Children, r.ExpectedResults, r.Continued = contract.Planned, &n, &expected, continued
	r.Detail = fmt.Sprintf("restore of %s: %d removed memberships in %d spaces; this page: %d spaces; continued: %v",
		v.Restore, p.removed, len(p.groups), len(groups), continued)
	if p.handOffs > 0 {
		r.Detail += fmt.Sprintf("; %d hand-offs are not reverted: each successor keeps the role it was given", p.handOffs)
	}
	if j.prior == ledger.StateWaiting {
		r.Detail += fmt.Sprintf("; it waited for request %s to finish first", v.Restore)
	}
	return f.claim(ctx, j, root, v.RequestID, n, expected, append([]contract.Result{j.decided(r)}, apps...))
}

// restoreGroup is the removed memberships of one space.
type restoreGroup struct {
	space  string // spaces/S
	source string // the request whose records they are (the removal, or its child for the space)
	// displayName is the space's display name as the removal's results
	// carried it (sweeps), for the restore's results.
	displayName string
	// members are the member segments of the removal's membership names
	// (a user id, or the email a single or bulk removal named).
	members []string
}

// restorePlan is what a restore finds in the ledger.
type restorePlan struct {
	found    bool                // the ledger holds the removal's request
	src      ledger.Request      // the removal's request record
	groups   []restoreGroup      // by space name
	apps     []ledger.Membership // app memberships removed: not restored
	bad      []ledger.Membership // removal records that fail their check: not restored
	removed  int                 // memberships removed, apps and bad records included
	handOffs int                 // hand-offs the removal made
	pending  int                 // intended writes without a decision
	decided  int                 // decisions recorded
}

// firstPageFailures are the failed decisions the first page of a restore
// publishes: one per app membership the removal took (a restore does not
// add the app back) and one per removal record that fails its check. Each
// is named as the space's child would be, so that counting consumers find
// it below the restore (as a sweep's unknown person is).
func (p restorePlan) firstPageFailures(ctx context.Context, j *job, root string) []contract.Result {
	var out []contract.Result
	child := func(m ledger.Membership) contract.Result {
		a := j.result(root)
		if space, _, err := request.SplitMembership(m.Name); err == nil {
			a.RequestID, a.ParentRequestID, a.Membership = root+"/spaces/"+space, root, m.Name
		}
		return a
	}
	for _, m := range p.apps {
		a := child(m)
		a.Outcome, a.Role = contract.Failed, m.Role
		a.Member = &contract.Member{Name: "users/app", Type: "BOT"}
		a.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: "the calling app's membership is not restored: add the app back in Chat"}
		out = append(out, j.decided(a))
	}
	for _, m := range p.bad {
		out = append(out, j.decided(badRecord(ctx, j, child(m), m, recordProblem(m))))
	}
	return out
}

// restorePlan reads the removed memberships of request target and of its
// children. why is set when there is nothing to restore.
func (f *Engine) restorePlan(ctx context.Context, target string) (p restorePlan, why string, err error) {
	src, err := f.ledger.Request(ctx, target)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		if _, derr := ledger.DryRuns(f.ledger).Request(ctx, target); derr == nil {
			return p, fmt.Sprintf("request %q removed nobody: nothing to restore (it was a dry run)", target), nil
		}
		return p, fmt.Sprintf("the ledger holds no request %q (unknown, or older than LEDGER_RETENTION)", target), nil
	case err != nil:
		return p, "", ledgerError("request", err)
	}
	p.found, p.src = true, src
	root := src.Root
	if root == "" {
		root = ledger.RootOf(src.ID, src.ParentID)
	}
	bySpace := map[string]*restoreGroup{}
	for m, err := range f.ledger.Memberships(ctx, root) {
		if err != nil {
			return p, "", ledgerError("memberships", err)
		}
		if src.ParentID != "" && m.RequestID != src.ID {
			continue // a child was named: only its own records
		}
		switch {
		case m.Outcome == ledger.ActionHandOff:
			p.handOffs++
		case m.Decided() && m.Outcome != string(contract.IDReused): // a refused reuse of the id is no decision of it
			p.decided++
		case m.Action != "":
			p.pending++
		}
		if m.Outcome != string(contract.Removed) {
			continue
		}
		p.removed++
		space, seg, _ := request.SplitMembership(m.Name)
		if seg == "app" || m.Member == "users/app" {
			p.apps = append(p.apps, m)
			continue
		}
		if recordProblem(m) != "" {
			p.bad = append(p.bad, m)
			continue
		}
		// A removal request acts on each space through one request (itself,
		// or its child for that space), so a space has one source.
		g := bySpace["spaces/"+space]
		if g == nil {
			g = &restoreGroup{space: "spaces/" + space, source: m.RequestID, displayName: displayName(recordedDisplayName(m))}
			bySpace[g.space] = g
		}
		g.members = append(g.members, seg)
	}
	if p.removed == 0 {
		why = fmt.Sprintf("request %q removed nobody: nothing to restore", target)
		if src.DryRun {
			why += " (it was a dry run)"
		}
		return p, why, nil
	}
	for _, g := range bySpace {
		p.groups = append(p.groups, *g)
	}
	sort.Slice(p.groups, func(a, b int) bool { return p.groups[a].space < p.groups[b].space })
	return p, "", nil
}

// recordedDisplayName is the space's display name in a recorded result
// ("" when it has none).
func recordedDisplayName(m ledger.Membership) string {
	var r struct {
		SpaceDisplayName string `json:"spaceDisplayName"`
	}
	if json.Unmarshal(m.Result, &r) != nil {
		return ""
	}
	return r.SpaceDisplayName
}

// page returns the groups of the page that follows the space after ("" for
// the first page), and whether more follow.
func (p restorePlan) page(after string) ([]restoreGroup, bool) {
	i := sort.Search(len(p.groups), func(i int) bool { return p.groups[i].space > after })
	rest := p.groups[i:]
	if len(rest) > restorePageSpaces {
		return rest[:restorePageSpaces], true
	}
	return rest, false
}

// restoreChildren are the child requests of one restore page: one per
// space, and the continuation when more spaces follow. expected counts the
// memberships they restore.
func restoreChildren(v *request.Valid, root string, groups []restoreGroup, continued bool) (children []request.Request, expected int) {
	child := func(c request.Request) request.Request {
		c.ParentRequestID, c.DryRun, c.Reason, c.RequestedBy, c.Force = root, v.DryRun, v.Reason, v.RequestedBy, v.Force
		return c
	}
	for _, g := range groups {
		children = append(children, child(request.Request{RequestID: root + "/" + g.space, Restore: g.source, Space: g.space, Members: g.members, SpaceDisplayName: g.displayName}))
		expected += len(g.members)
	}
	if continued {
		last := groups[len(groups)-1].space
		h := sha256.Sum256([]byte(last))
		children = append(children, child(request.Request{RequestID: root + "/page-" + hex.EncodeToString(h[:6]), Restore: v.Restore, PageToken: last}))
	}
	return children, expected
}

// restoreSpace is the flow of a restore's child: the removed memberships of
// one space, one decision each. When the event passes MAX_EVENT_AGE on the
// way, the memberships not yet decided are decided expired.
func (f *Engine) restoreSpace(ctx context.Context, j *job) ([]contract.Result, error) {
	v := j.req
	spaceID := strings.TrimPrefix(v.SpaceNames[0], "spaces/")
	if out, stop, err := f.stopCancelled(ctx, j, spaceItems(v)); stop || err != nil {
		return out, err
	}
	out := make([]contract.Result, 0, len(v.People))
	later := &spaceRemovals{}
	for i, seg := range v.People {
		name := request.MembershipName(spaceID, seg)
		r, err := f.restoreOne(ctx, j.with("membership", name), spaceID, name, later)
		if err != nil {
			return f.spaceStopped(j, out, v.People[i:], err)
		}
		out = append(out, j.decided(r))
	}
	return out, nil
}

// restoreOne restores the membership name that request j.req.Restore
// removed: a decision already recorded is published again; a removal
// record that fails its check is failed; the person found a member already
// is already_member (no write); one the restore must not add back is
// refused (refusal); otherwise the intent, then members.create and
// members.patch to the recorded role.
func (f *Engine) restoreOne(ctx context.Context, j *job, spaceID, name string, later *spaceRemovals) (contract.Result, error) {
	v := j.req
	r := j.result(v.RequestID)
	r.Membership = name
	own, intended, err := f.own(ctx, j, name)
	if err != nil || (intended && own.Decided()) {
		if err != nil {
			return r, err
		}
		return j.replay(own)
	}
	src, ok, err := f.recorded(ctx, v.Restore, name)
	if err != nil {
		return r, err
	}
	if !ok || src.Outcome != string(contract.Removed) || !strings.HasPrefix(src.Member, "users/") {
		r.Outcome = contract.Failed
		r.Error = &contract.ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: fmt.Sprintf("the ledger holds no removal of %s by request %s", name, v.Restore)}
		return r, nil
	}
	if why := recordProblem(src); why != "" {
		return badRecord(ctx, j, r, src, why), nil
	}
	var removal contract.Result
	if err := json.Unmarshal(src.Result, &removal); err != nil {
		return r, ledgerError("restore", fmt.Errorf("the recorded removal of %s is not a result: %w", name, err))
	}
	t := restoreTarget{space: "spaces/" + spaceID, who: strings.TrimPrefix(src.Member, "users/"), role: src.Role, admin: removal.AdminAccess}
	if t.role == "" {
		t.role = roleMember
	}
	r.AdminAccess, r.Role, r.Member = t.admin, t.role, &contract.Member{Name: src.Member, Type: "HUMAN"}
	if h := removal.HandOff; h != nil && (h.Added || h.Promoted) {
		r.Detail = fmt.Sprintf("the removal's hand-off is not reverted: the successor %s keeps the owner role it was given", h.Successor)
	}
	cur, err := f.getMembership(ctx, j, request.MembershipName(spaceID, t.who), t.admin)
	if err != nil {
		return apiDecision(r, err, false)
	}
	switch {
	case intended:
		// An intent without a decision: an earlier delivery stopped
		// between it and the decision (or is still at work).
		if err := f.staleIntent(own); err != nil {
			return r, err
		}
		if cur != nil {
			return f.restoreRole(ctx, j, r, t, cur)
		}
	case cur != nil && v.DryRun:
		return restoreDryRun(r, t, cur), nil
	case cur != nil:
		return alreadyMember(r, t, cur), nil
	default:
		if why, err := f.refusal(ctx, j, t, src, later); err != nil || why != "" {
			if err != nil {
				return r, err
			}
			return refusedRestore(ctx, j, r, why), nil
		}
		if v.DryRun {
			return restoreDryRun(r, t, cur), nil
		}
		if decided, err := f.intend(ctx, j, name, src.Member, t.role, ledger.ActionCreate); err != nil || decided != nil {
			if decided != nil {
				return j.replay(*decided)
			}
			return r, err
		}
	}
	return f.restoreCreate(ctx, j, r, t)
}

// restoreTarget is what a restore puts back: who, where, the role, and
// whether admin access is used (as the removal used it).
type restoreTarget struct {
	space, who, role string
	admin            bool
}

// restoreCreate adds the person back (members.create), then sets the role.
// A 409 (someone added them since the read) is already_member; but a 409
// met by a retry after an attempt whose answer was lost is that attempt's
// membership: read, and given the recorded role.
func (f *Engine) restoreCreate(ctx context.Context, j *job, r contract.Result, t restoreTarget) (contract.Result, error) {
	created, err := f.createMembership(ctx, j, t.space, t.who, t.admin)
	if ge, ok := apiError(err); ok && ge.Code == http.StatusConflict {
		m, gerr := f.getMembership(ctx, j, request.MembershipName(strings.TrimPrefix(t.space, "spaces/"), t.who), t.admin)
		if gerr != nil {
			return apiDecision(r, gerr, false)
		}
		if m != nil && answerLost(err) {
			r.Detail = joinDetail(r.Detail, "the answer to the create was lost (no answer, or a 5xx) after Chat had made it; its retry met ALREADY_EXISTS")
			return f.restoreRole(ctx, j, r, t, m)
		}
		if m != nil {
			return alreadyMember(r, t, m), nil
		}
	}
	if err != nil {
		return apiDecision(r, err, false)
	}
	return f.restoreRole(ctx, j, r, t, created)
}

// restoreRole decides restored for the membership m (as the server named
// it) once it has the recorded role: members.patch when it has another.
func (f *Engine) restoreRole(ctx context.Context, j *job, r contract.Result, t restoreTarget, m *chat.Membership) (contract.Result, error) {
	r.Outcome, r.MembershipState, r.Role = contract.Restored, m.State, m.Role
	if m.Role == t.role {
		return r, nil
	}
	patched, err := f.setRole(ctx, j, m.Name, t.role, t.admin)
	if err != nil {
		if isTransient(err) {
			return r, err
		}
		keep := r.Detail
		r, _ = apiDecision(r, err, false)
		r.Detail = joinDetail(fmt.Sprintf("added back as %s (%s), but the role %s could not be set", m.Role, m.State, t.role), keep)
		return r, nil
	}
	r.Role = patched.Role
	if patched.State != "" {
		r.MembershipState = patched.State
	}
	return r, nil
}

// alreadyMember is the decision for a person a restore finds a member: no
// write; role and state as the API answered.
func alreadyMember(r contract.Result, t restoreTarget, m *chat.Membership) contract.Result {
	r.Outcome, r.MembershipState, r.Role = contract.AlreadyMember, m.State, m.Role
	note := "already a member: nothing was written"
	if m.Role != t.role {
		note = fmt.Sprintf("already a member as %s (the removal recorded %s): nothing was written", m.Role, t.role)
	}
	r.Detail = joinDetail(note, r.Detail)
	return r
}

// restoreDryRun is the decision of a dry run: would the person be added
// back?
func restoreDryRun(r contract.Result, t restoreTarget, cur *chat.Membership) contract.Result {
	yes := cur == nil
	r.Outcome, r.WouldRestore = contract.DryRun, &yes
	if yes {
		r.MembershipState = "NOT_A_MEMBER"
		r.Detail = joinDetail(fmt.Sprintf("would add users/%s back to %s as %s", t.who, t.space, t.role), r.Detail)
		return r
	}
	r.MembershipState, r.Role = cur.State, cur.Role
	r.Detail = joinDetail("already a member: nothing would be written", r.Detail)
	return r
}

// joinDetail joins non-empty details with "; ".
func joinDetail(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
