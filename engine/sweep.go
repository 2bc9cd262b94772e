package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// Sweep constants.
const (
	// SweepQuery selects every named space of the customer; spaces.search
	// with admin access cannot see direct messages or unnamed group chats.
	// The fields are spelled as the current reference's examples spell
	// them (space_type; its earlier revisions wrote spaceType).
	SweepQuery = `customer = "customers/my_customer" AND space_type = "SPACE"`
	// sweepScopeNote goes into every sweep page's result.
	sweepScopeNote = "direct messages and unnamed group chats are out of reach of admin search and are not swept"
)

// sweepPage is the flow of one page of a sweep: on the first page it
// resolves the people to user ids (failed decisions for those the directory
// does not know), then it reads one page of spaces.search, publishes one
// child request per space and a continuation for the next page, and decides
// planned. The page's decision comes last. Every page that decides is
// claimed, a failed one too (with no children), so that the ledger holds
// what each page expects (the leaver report counts on it).
func (f *Engine) sweepPage(ctx context.Context, j *job) ([]contract.Result, error) {
	v := j.req
	root := v.RequestID
	if v.PageToken != "" && v.ParentRequestID != "" {
		root = v.ParentRequestID
	}
	// A page that a delivery already fanned out is answered from its claim:
	// no search, no children published again.
	if out, ok, err := f.claimed(ctx, j, root, v.RequestID); ok || err != nil {
		return out, err
	}
	if out, stop, err := f.pageCancelled(ctx, j, root); stop || err != nil {
		return out, err
	}
	r := j.result(v.RequestID)
	// A page's result always says how many results to expect from it, even
	// when it fails, so that a consumer counting completeness can finish.
	n, unknown := 0, 0
	r.Children, r.ExpectedResults = &n, &unknown
	people, successor := v.People, v.Successor
	var out []contract.Result
	if v.PageToken == "" {
		ids, failed, err := f.resolvePeople(ctx, j, root)
		out = failed
		if err != nil {
			return out, err
		}
		unknown, people = len(failed), ids
		if successor != "" {
			id, found, err := f.resolveUser(ctx, j, successor)
			if err != nil {
				return out, err
			}
			if !found {
				r.Outcome = contract.Failed
				r.Error = &contract.ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know the successor " + successor}
				return f.claim(ctx, j, root, v.RequestID, 0, unknown, append(out, j.decided(r)))
			}
			successor = id
		}
	}
	if len(people) == 0 {
		r.Outcome, r.Detail = contract.Planned, "nobody left to sweep: "+sweepScopeNote
		return f.claim(ctx, j, root, v.RequestID, 0, unknown, append(out, j.decided(r)))
	}
	groups, gnote, err := f.sweepGroups(ctx, j, people)
	if err != nil {
		return out, err
	}
	var page *chat.SearchSpacesResponse
	err = f.call(ctx, j, "spaces.search", read, func(ctx context.Context) error {
		var err error
		page, err = f.chat.Spaces.Search().UseAdminAccess(true).Query(SweepQuery).
			PageSize(searchPageSize).PageToken(v.PageToken).Context(ctx).Do()
		return err
	})
	if err != nil {
		if r, err = apiDecision(r, err, false); err != nil {
			return append(out, j.decided(r)), err
		}
		return f.claim(ctx, j, root, v.RequestID, 0, unknown, append(out, j.decided(r)))
	}
	found := searchedSpaces(page)
	children := pageChildren(v, root, found, page.NextPageToken, people, successor, groups)
	n = len(found)
	expected := unknown + n*len(people)
	r.Continued = page.NextPageToken != ""
	if err := f.publishChildren(ctx, children); err != nil {
		return out, err
	}
	r.Outcome, r.ExpectedResults = contract.Planned, &expected
	r.Detail = fmt.Sprintf("sweep page: %d spaces, %d people; continued: %v; %s; %s", n, len(people), r.Continued, sweepScopeNote, groupDetail(gnote))
	return f.claim(ctx, j, root, v.RequestID, len(children), expected, append(out, j.decided(r)))
}

// searchedSpaces are the spaces of one page of spaces.search: its results
// (SearchSpaceResult{space}), or, when it has none, the deprecated spaces
// field, which Google still fills beside results but may stop filling.
func searchedSpaces(page *chat.SearchSpacesResponse) []*chat.Space {
	if len(page.Results) == 0 {
		return page.Spaces
	}
	out := make([]*chat.Space, 0, len(page.Results))
	for _, r := range page.Results {
		if r != nil && r.Space != nil {
			out = append(out, r.Space)
		}
	}
	return out
}

// pageChildren are the child requests of one page of spaces.search (its
// spaces and its next page token): one space+members request per space and,
// when there is a next page, the sweep's continuation. Each carries the
// people's groups.
func pageChildren(v *request.Valid, root string, spaces []*chat.Space, next string, people []string, successor string, groups map[string][]string) []request.Request {
	child := func(c request.Request) request.Request {
		c.ParentRequestID, c.Members, c.MemberGroups = root, people, groups
		c.Successor, c.AddSuccessor = successor, v.AddSuccessor
		c.AdminAccess, c.DryRun, c.Reason, c.RequestedBy = true, v.DryRun, v.Reason, v.RequestedBy
		return c
	}
	children := make([]request.Request, 0, len(spaces)+1)
	for _, s := range spaces {
		children = append(children, child(request.Request{RequestID: root + "/" + s.Name, Space: s.Name, SpaceDisplayName: displayName(s.DisplayName)}))
	}
	if next != "" {
		h := sha256.Sum256([]byte(next))
		children = append(children, child(request.Request{
			RequestID: root + "/page-" + hex.EncodeToString(h[:6]),
			AllSpaces: true, PageToken: next,
		}))
	}
	return children
}

// displayName is a space's display name as a child request may carry it:
// control characters become spaces and it is cut to
// request.MaxSpaceDisplayName characters, so that an odd name never stops a
// sweep's fan-out.
func displayName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > request.MaxSpaceDisplayName {
		s = string(r[:request.MaxSpaceDisplayName])
	}
	return s
}

// resolvePeople turns the people of a sweep into user ids ("users/ID"), with
// a failed decision for each person the directory does not know. Protected
// people stay in the list: each space where they are a member decides
// refused for them.
func (f *Engine) resolvePeople(ctx context.Context, j *job, root string) (ids []string, failed []contract.Result, err error) {
	protected, err := f.protectedSet(ctx, j)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, p := range j.req.People {
		id, found, err := f.resolveUser(ctx, j, p)
		if err != nil {
			return nil, failed, err
		}
		if !found {
			fr := j.result(root + "/" + p)
			fr.ParentRequestID = root
			fr.Outcome = contract.Failed
			fr.Member = &contract.Member{Name: "users/" + p}
			fr.Error = &contract.ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + p}
			fr.Detail = "person not found in the directory: nothing was swept for them"
			failed = append(failed, j.decided(fr))
			continue
		}
		if protected[id] {
			j.log.WarnContext(ctx, "a sweep names a protected person; they will be refused in every space where they are a member", "member", id)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, failed, nil
}

// sweepSpace is the flow of a space+members request (a sweep's child): one
// members.list, then a write only for each real membership; one decision
// per person, not_member included. People whose decision the ledger holds
// are published again; when it holds every one, the space is not read at
// all. When the event passes MAX_EVENT_AGE on the way, the people not yet
// decided are decided expired.
func (f *Engine) sweepSpace(ctx context.Context, j *job) ([]contract.Result, error) {
	v := j.req
	space := v.SpaceNames[0]
	people, err := f.spacePeople(ctx, j)
	if err != nil {
		return f.spaceStopped(j, nil, v.People, err)
	}
	if out, all := allRecorded(j, people); all {
		return out, nil
	}
	if out, stop, err := f.stopCancelled(ctx, j, personItems(people)); stop || err != nil {
		return out, err
	}
	protected, err := f.protectedSet(ctx, j)
	if err != nil {
		return f.spaceStopped(j, nil, v.People, err)
	}
	h, err := f.listHumans(ctx, j, space, v.AdminAccess, anyGroups(v.MemberGroups, people))
	if err != nil {
		if isTransient(err) {
			return f.spaceStopped(j, nil, v.People, err)
		}
		// The space cannot be read (gone, or not ours): every person
		// gets a failed decision that says why.
		out := make([]contract.Result, 0, len(people))
		for _, p := range people {
			r := j.result(v.RequestID)
			r.Membership = p.membership
			r.Outcome, r.Error = contract.Failed, errorInfo(err)
			out = append(out, j.decided(r))
		}
		return out, nil
	}
	out := make([]contract.Result, 0, len(people))
	for i, p := range people {
		p.via = viaGroups(v.MemberGroups[p.id], h.groups)
		r, err := f.sweepPerson(ctx, j, p, protected, &h)
		if err != nil {
			return f.spaceStopped(j, out, v.People[i:], err)
		}
		if !j.isReplay(&r) {
			r = withViaGroups(r, p.via)
		}
		out = append(out, j.decided(r))
	}
	return out, nil
}

// spacePerson is one person of a space+members request, resolved.
type spacePerson struct {
	named      string // as the request names them
	id         string // "users/ID"; "" when the directory does not know them
	membership string // spaces/S/members/{id, or the name}
	rec        *ledger.Membership
	via        []string // the space's groups the person is a member of
}

// spacePeople resolves the people of a space+members request to user ids
// and reads the ledger's record of each one's membership.
func (f *Engine) spacePeople(ctx context.Context, j *job) ([]spacePerson, error) {
	spaceID := strings.TrimPrefix(j.req.SpaceNames[0], "spaces/")
	out := make([]spacePerson, 0, len(j.req.People))
	for _, p := range j.req.People {
		id, ok, err := f.resolveUser(ctx, j, p)
		if err != nil {
			return nil, err
		}
		sp := spacePerson{named: p, membership: request.MembershipName(spaceID, strings.TrimPrefix(p, "users/"))}
		if ok {
			sp.id = id
			sp.membership = request.MembershipName(spaceID, strings.TrimPrefix(id, "users/"))
		}
		rec, found, err := f.earlier(ctx, j, sp.membership)
		if err != nil {
			return nil, err
		}
		if found {
			sp.rec = &rec
		}
		out = append(out, sp)
	}
	return out, nil
}

// allRecorded returns the recorded decisions of every person, when the
// ledger holds one for each.
func allRecorded(j *job, people []spacePerson) ([]contract.Result, bool) {
	out := make([]contract.Result, 0, len(people))
	for _, p := range people {
		if p.rec == nil || !p.rec.Decided() {
			return nil, false
		}
		r, err := j.replay(*p.rec)
		if err != nil {
			return nil, false
		}
		out = append(out, r)
	}
	return out, true
}

// sweepPerson decides one person of a space+members request from the
// space's listed members; h follows the removals (an owner removed, a
// successor promoted).
func (f *Engine) sweepPerson(ctx context.Context, j *job, p spacePerson, protected map[string]bool, h *humans) (contract.Result, error) {
	v := j.req
	r := j.result(v.RequestID)
	r.Membership = p.membership
	if p.rec != nil && p.rec.Decided() {
		return j.replay(*p.rec)
	}
	pj := j.with("membership", r.Membership)
	mem, isMember := h.byUser[p.id]
	switch {
	case p.id == "":
		r.Outcome = contract.Failed
		r.Error = &contract.ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + p.named}
		return r, nil
	case !isMember && p.rec != nil:
		// Intended by an earlier delivery, and gone: that delivery
		// removed it before it could record its decision.
		if err := f.staleIntent(*p.rec); err != nil {
			return r, err
		}
		r.Outcome, r.MembershipState, r.Role = contract.Removed, "NOT_A_MEMBER", p.rec.Role
		r.Member = &contract.Member{Name: p.id, Type: "HUMAN"}
		r.Detail = "removed by an earlier delivery of this request, which stopped before its decision was recorded"
		return r, nil
	case !isMember && len(p.via) > 0:
		return viaGroupResult(r, p.id, p.via), nil
	case !isMember:
		r.Outcome, r.MembershipState = contract.NotMember, "NOT_A_MEMBER"
		return r, nil
	}
	r.Role, r.Member = mem.role, &contract.Member{Name: p.id, Type: "HUMAN"}
	prot, err := f.protectedHere(ctx, pj, strings.TrimPrefix(v.SpaceNames[0], "spaces/"), p.id, protected)
	if err != nil {
		return apiDecision(r, err, false)
	}
	switch {
	case prot:
		return refused(ctx, pj, r, p.id), nil
	case v.DryRun:
		yes := true
		r.Outcome, r.WouldRemove, r.MembershipState = contract.DryRun, &yes, "JOINED"
		return r, nil
	}
	return f.sweepRemove(ctx, pj, r, p, mem, h)
}

// sweepRemove removes one listed membership of a space+members request: the
// intent first (unless an earlier delivery's stands: the result then takes
// its role), a hand-off where the member list shows the person as the only
// owner and a successor is named, then the delete, whose refusal is
// reported as Google answered it.
func (f *Engine) sweepRemove(ctx context.Context, j *job, r contract.Result, p spacePerson, mem spaceMembership, h *humans) (contract.Result, error) {
	v := j.req
	if p.rec != nil {
		if err := f.staleIntent(*p.rec); err != nil {
			return r, err
		}
		r.Role = p.rec.Role
	} else if decided, err := f.intend(ctx, j, p.membership, p.id, mem.role, ledger.ActionDelete); err != nil || decided != nil {
		if decided != nil {
			return j.replay(*decided)
		}
		return r, err
	}
	only := mem.role == roleOwner && h.owners == 1
	if only && v.Successor != "" {
		log, err := f.handOff(ctx, j, v.SpaceNames[0], h.byUser)
		var stop bool
		if r, stop, err = afterHandOff(r, log, err); stop {
			return r, err
		}
		h.owners++
	}
	r, err := f.deleteOne(ctx, j, r, mem.name, intended{member: p.id, role: r.Role})
	if err != nil {
		return r, err
	}
	if r.Outcome == contract.Removed && mem.role == roleOwner {
		h.owners--
	}
	return ownerRefused(r, only), nil
}

// spaceStopped ends a space+members request at a transient error: once the
// event is past MAX_EVENT_AGE (or a call gave up because it would be) the
// people not yet decided are decided expired with that error, so that a
// sweep's consumer still counts one result per person; before that the
// decisions made so far are returned with the error, for redelivery.
func (f *Engine) spaceStopped(j *job, done []contract.Result, rest []string, err error) ([]contract.Result, error) {
	if !f.expired(j.msg) && !errors.Is(err, errEventExpired) {
		return done, err
	}
	exp := expiredPeople(j, rest, errorInfo(err))
	if answerLost(err) && len(exp) > 0 {
		exp[0].Detail = lostBeforeExpiry // the person whose write it was
	}
	return append(done, exp...), nil
}

// expiredPeople are the expired decisions of the given people of a
// space+members request.
func expiredPeople(j *job, people []string, info *contract.ErrorInfo) []contract.Result {
	spaceID := strings.TrimPrefix(j.req.SpaceNames[0], "spaces/")
	out := make([]contract.Result, 0, len(people))
	for _, p := range people {
		r := j.result(j.req.RequestID)
		r.Membership = request.MembershipName(spaceID, strings.TrimPrefix(p, "users/"))
		r.Outcome, r.Error = contract.Expired, info
		out = append(out, j.decided(r))
	}
	return out
}
