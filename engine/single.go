package engine

import (
	"context"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// removeOne is the flow of one membership (membership, space+member): it
// decides refused, dry_run, removed, not_member or failed. The person is
// identified by user id before anything is decided. It returns an error
// only for transient failures, which Handle hands back to Pub/Sub (or
// answers expired).
func (f *Engine) removeOne(ctx context.Context, j *job) (contract.Result, error) {
	v := j.req
	r := j.result(v.RequestID)
	r.Membership = v.Name
	protected, err := f.protectedSet(ctx, j)
	if err != nil {
		return r, err
	}
	space, seg, _ := request.SplitMembership(v.Name)
	t, r, err := f.identify(ctx, j, r, space, seg)
	if err != nil {
		return r, err
	}
	switch {
	case t.decided:
		return r, nil
	case t.who != "" && protected[t.who]:
		return refused(ctx, j, r, t.who), nil
	case !t.found && v.DryRun:
		no := false
		r.Outcome, r.WouldRemove, r.MembershipState = contract.DryRun, &no, "NOT_A_MEMBER"
		return r, nil
	case !t.found:
		r.Outcome, r.MembershipState = contract.NotMember, "NOT_A_MEMBER"
		return r, nil
	case v.DryRun:
		return f.dryRunOne(ctx, j, r, t)
	}
	r, err = f.deleteOne(ctx, j, r, t.name)
	if err != nil || r.Outcome != contract.Failed || v.Successor == "" || r.Error == nil || r.Error.Status != "FAILED_PRECONDITION" {
		return r, err
	}
	// The only owner: hand ownership over to the successor, then try again.
	failure := *r.Error
	log, err := f.handOff(ctx, j, "spaces/"+space, nil)
	r.HandOff = log
	if err != nil {
		if isTransient(err) {
			return r, err
		}
		r.Error = handOffInfo(err)
		r.Detail = "the member is the only owner of the space and the hand-off to the successor failed; nothing was removed"
		return r, nil
	}
	r.Error, r.Detail = nil, ""
	r, err = f.deleteOne(ctx, j, r, t.name)
	if err == nil && r.Outcome == contract.Failed && r.Error == nil {
		r.Error = &failure
	}
	return r, err
}

// deleteOne deletes a membership and decides removed, not_member or failed.
func (f *Engine) deleteOne(ctx context.Context, j *job, r contract.Result, name string) (contract.Result, error) {
	m, err := f.deleteMembership(ctx, j, name, j.req.AdminAccess)
	if err != nil {
		return apiDecision(r, err, true)
	}
	r.Outcome = contract.Removed
	j.log.DebugContext(ctx, "membership deleted", "role", m.Role)
	return described(r, m), nil
}

// dryRunOne decides a dry run of a known person: would the removal happen?
func (f *Engine) dryRunOne(ctx context.Context, j *job, r contract.Result, t target) (contract.Result, error) {
	got := t.got
	if got == nil {
		m, err := f.getMembership(ctx, j, t.name, j.req.AdminAccess)
		if err != nil {
			return apiDecision(r, err, false)
		}
		got = m
	}
	r = described(r, got)
	yes := got != nil
	r.Outcome, r.WouldRemove = contract.DryRun, &yes
	if !yes {
		r.MembershipState = "NOT_A_MEMBER"
	}
	return r, nil
}

// target is the person and membership a single removal acts on.
type target struct {
	who   string           // "users/ID" or "users/app"; "" when unknown
	name  string           // the membership to act on: spaces/S/members/{id or app}
	found bool             // false: known not to be a member (or not to exist)
	got   *chat.Membership // the membership when it was read on the way
	// decided: the look-up itself met a permanent error, and the result
	// already holds the failed decision.
	decided bool
}

// identify resolves the member of a single removal to a user id. An id or
// "app" is taken as is; an email is looked up in the Directory (which also
// answers for aliases), and for someone the directory does not know (a
// guest from outside the organisation), read with members.get and the email
// alias, which Google documents for get and delete.
func (f *Engine) identify(ctx context.Context, j *job, r contract.Result, space, seg string) (target, contract.Result, error) {
	v := j.req
	switch {
	case seg == "app":
		return target{who: "users/app", name: v.Name, found: true}, r, nil
	case !request.IsEmail(seg):
		return target{who: "users/" + seg, name: v.Name, found: true}, r, nil
	}
	id, known, err := f.lookupUser(ctx, j, seg)
	if err != nil {
		return target{}, r, err
	}
	if known {
		r.Member = &contract.Member{Name: id, Type: "HUMAN"}
		return target{who: id, name: request.MembershipName(space, strings.TrimPrefix(id, "users/")), found: true}, r, nil
	}
	m, err := f.getMembership(ctx, j, v.Name, v.AdminAccess)
	if err != nil {
		r, err = apiDecision(r, err, false)
		return target{decided: true}, r, err
	}
	if m == nil {
		return target{name: v.Name}, r, nil
	}
	return target{who: memberName(m), name: m.Name, found: true, got: m}, described(r, m), nil
}
