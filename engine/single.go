package engine

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// removeOne is the flow of one membership (membership, space+member): it
// decides refused, dry_run, removed, not_member or failed. The person is
// identified by user id before anything is decided. A decision already in
// the ledger is published again without a Chat call; a write is made only
// after its intent is recorded. It returns an error only for transient
// failures, which Handle hands back to Pub/Sub (or answers expired).
func (f *Engine) removeOne(ctx context.Context, j *job) (contract.Result, error) {
	v := j.req
	r := j.result(v.RequestID)
	r.Membership = v.Name
	rec, found, err := f.earlier(ctx, j, v.Name)
	if err != nil {
		return r, err
	}
	if found && rec.Decided() {
		return j.replay(rec)
	}
	if out, stop, err := f.stopCancelled(ctx, j, []cancelItem{{membership: v.Name, rec: &rec}}); stop || err != nil {
		return oneOf(r, out), err
	}
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
	case f.protectedAddress(seg):
		return refused(ctx, j, r, "users/"+strings.ToLower(seg)), nil
	}
	if t.who != "" {
		prot, err := f.protectedHere(ctx, j, space, t.who, protected)
		if err != nil {
			return apiDecision(r, err, false)
		}
		if prot {
			return refused(ctx, j, r, t.who), nil
		}
	}
	switch {
	case found:
		// An intent without an outcome: an earlier delivery died (or is
		// still running) between recording it and deciding.
		return f.recoverOne(ctx, j, r, rec, t)
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
	return f.writeOne(ctx, j, r, t, space)
}

// writeOne reads the membership (its role goes into the intent, so that a
// removal whose decision is lost can still be reported with it), records the
// intent, and deletes; the only owner is handed over to the successor first.
func (f *Engine) writeOne(ctx context.Context, j *job, r contract.Result, t target, space string) (contract.Result, error) {
	v := j.req
	got := t.got
	if got == nil {
		m, err := f.getMembership(ctx, j, t.name, v.AdminAccess)
		if err != nil {
			return apiDecision(r, err, false)
		}
		if m == nil {
			r.Outcome, r.MembershipState = contract.NotMember, "NOT_A_MEMBER"
			return r, nil
		}
		got = m
	}
	if decided, err := f.intend(ctx, j, v.Name, memberName(got), got.Role, ledger.ActionDelete); err != nil || decided != nil {
		if decided != nil {
			return j.replay(*decided)
		}
		return r, err
	}
	// The removal's role and member are those of the intent just recorded.
	in := intended{member: memberName(got), role: got.Role}
	r.Role, r.Member = in.role, removedMember(in.member)
	return f.deleteWithHandOff(ctx, j, r, t.name, space, in, got.Role)
}

// recoverOne continues from an intent that an earlier delivery recorded
// without a decision: if the membership is gone, that delivery removed it,
// and the removal is reported with the role recorded before the write;
// otherwise the removal goes on (the intent stands).
func (f *Engine) recoverOne(ctx context.Context, j *job, r contract.Result, rec ledger.Membership, t target) (contract.Result, error) {
	if err := f.staleIntent(rec); err != nil {
		return r, err
	}
	m, err := f.getMembership(ctx, j, t.name, j.req.AdminAccess)
	if err != nil {
		return apiDecision(r, err, false)
	}
	r.Role, r.Member = rec.Role, removedMember(rec.Member)
	if m == nil {
		r.Outcome, r.MembershipState = contract.Removed, "NOT_A_MEMBER"
		r.Detail = "removed by an earlier delivery of this request, which stopped before its decision was recorded"
		return r, nil
	}
	if r.Member == nil {
		r.Member = removedMember(memberName(m))
	}
	space, _, _ := request.SplitMembership(j.req.Name)
	in := intended{member: rec.Member, role: rec.Role}
	if in.member == "" {
		in.member = memberName(m)
	}
	return f.deleteWithHandOff(ctx, j, r, t.name, space, in, m.Role)
}

// deleteWithHandOff deletes the membership name, whose intent recorded in;
// role is the one just read. An owner's removal first asks members.list
// whether in.member is the space's only owner; if so and the request names
// a successor, ownership is handed over before the delete (a failed
// hand-off removes nothing). The delete is made in every other case, and a
// refusal is reported with Google's own code, status and message, whatever
// they are; the only-owner fix comes from what the list said, not from the
// error.
func (f *Engine) deleteWithHandOff(ctx context.Context, j *job, r contract.Result, name, space string, in intended, role string) (contract.Result, error) {
	v := j.req
	only := false
	if role == roleOwner {
		var err error
		if only, err = f.onlyOwner(ctx, j, "spaces/"+space, in.member, v.AdminAccess); err != nil {
			return apiDecision(r, err, false)
		}
	}
	if only && v.Successor != "" {
		log, err := f.handOff(ctx, j, "spaces/"+space, nil)
		var stop bool
		if r, stop, err = afterHandOff(r, log, err); stop {
			return r, err
		}
	}
	r, err := f.deleteOne(ctx, j, r, name, in)
	return ownerRefused(r, only), err
}

// intended is what a removal's intent recorded before its delete: the
// member ("users/ID") and the role, which the removal is reported with
// when the delete's answer is lost.
type intended struct{ member, role string }

// deleteOne deletes a membership, whose intent recorded in, and decides
// removed, not_member or failed. A removal's role and member are the
// intent's (the callers set them); its state is set here, NOT_A_MEMBER: the
// delete's answer is not read. A 404 met by a retry after an attempt whose
// answer was lost (no answer, or a 5xx) is that attempt's removal: removed,
// with the intent's role.
func (f *Engine) deleteOne(ctx context.Context, j *job, r contract.Result, name string, in intended) (contract.Result, error) {
	err := f.deleteMembership(ctx, j, name, j.req.AdminAccess)
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound && answerLost(err) {
		j.log.InfoContext(ctx, "a delete's answer was lost and its retry found the membership gone: removed", "role", in.role)
		return lostRemoval(r, in), nil
	}
	if err != nil {
		return apiDecision(r, err, true)
	}
	r.Outcome, r.MembershipState = contract.Removed, "NOT_A_MEMBER"
	j.log.DebugContext(ctx, "membership deleted", "role", r.Role)
	return r, nil
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
