package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	leaver "github.com/chat-offboard/chat-offboard/report"
	"github.com/chat-offboard/chat-offboard/request"
)

// What a restore checks before it writes (issue 20, docs/design.md,
// "Restore"): that the removal it undoes is finished (else it waits, and is
// delivered again); per membership, that no later request removed the
// person from that space again and that the Directory does not show them
// suspended, archived or deleted (else refused, unless the restore says
// force); and that each record it reads back from the ledger names what a
// request could name, with one of Chat's roles (else failed, no call).

// chatRoles are the roles a restore may give back: Chat's membership roles
// (an empty recorded role is a member).
var chatRoles = map[string]bool{roleMember: true, "ROLE_MANAGER": true, "ROLE_ASSISTANT_MANAGER": true}

// removalRunningError says that the removal a restore undoes is not
// finished: the restore writes nothing and is delivered again.
type removalRunningError struct{ target, why string }

func (e *removalRunningError) Error() string {
	return fmt.Sprintf("request %s, which this restore undoes, is still running (%s): the restore waits for it and is delivered again", e.target, e.why)
}

// removalRunning says why the removal of plan p is not finished ("" when
// it is): an intended write without its decision; a delivery that stopped
// and will come again, or that is at work now (its record open and touched
// within INVOCATION_TIMEOUT + 30 s, with fewer decisions than it
// expects); for a top-level request,
// what the leaver report says of its completeness (every announced page
// claimed, every expected result recorded).
func (f *Engine) removalRunning(ctx context.Context, p restorePlan) (string, error) {
	src := p.src
	expected := src.Expected
	if expected == nil && (src.Kind == request.KindMembership.String() || src.Kind == request.KindSpaceMember.String()) {
		one := 1 // a record written before requests recorded their count
		expected = &one
	}
	switch {
	case p.pending > 0:
		return fmt.Sprintf("%d intended writes have no decision yet", p.pending), nil
	case src.State == ledger.StateReleased:
		return "a delivery of it stopped at a transient failure; Pub/Sub delivers it again", nil
	case src.State == ledger.StateOpen && (expected == nil || p.decided < *expected) &&
		f.now().Sub(src.UpdatedAt) <= f.cfg.EventTimeout+30*time.Second:
		return "a delivery of it is at work since " + src.UpdatedAt.UTC().Format(time.RFC3339), nil
	case src.ParentID != "":
		return "", nil
	}
	rep, err := leaver.Build(ctx, f.ledger, src.ID)
	if err != nil {
		return "", ledgerError("report", err)
	}
	if r := rep.Requests[0]; !r.Complete {
		return r.Why, nil
	}
	return "", nil
}

// recordProblem says why a removal record read back from the ledger cannot
// be acted on ("" when it can): its membership name, its member (a user id,
// the one the name names when the name has an id) and its role must pass
// the rules a request's names pass, and its result must be a result of
// that membership.
func recordProblem(m ledger.Membership) string {
	_, seg, err := request.SplitMembership(m.Name)
	if err != nil {
		return "its membership name: " + err.Error()
	}
	id, err := request.MemberSegment("member", m.Member)
	switch {
	case err != nil:
		return "its member: " + err.Error()
	case !strings.HasPrefix(m.Member, "users/") || request.IsEmail(id) || id == "app":
		return fmt.Sprintf("its member %q is not users/{id}", request.Clip(m.Member))
	case !request.IsEmail(seg) && seg != id:
		return fmt.Sprintf("its member %s is not the member of %s", m.Member, m.Name)
	case m.Role != "" && !chatRoles[m.Role]:
		return fmt.Sprintf("its role %q is not one of Chat's membership roles", request.Clip(m.Role))
	}
	var r contract.Result
	if err := json.Unmarshal(m.Result, &r); err != nil {
		return "its result is not a result event"
	}
	if r.Membership != m.Name || r.Member == nil || r.Member.Name != m.Member {
		return "its result is not the result of " + m.Name
	}
	return ""
}

// badRecord is the decision for a ledger record that fails its check: no
// call is made; an ERROR log names the record.
func badRecord(ctx context.Context, j *job, r contract.Result, m ledger.Membership, why string) contract.Result {
	r.Outcome = contract.Failed
	r.Error = &contract.ErrorInfo{Code: http.StatusInternalServerError, Status: "DATA_LOSS",
		Message: fmt.Sprintf("the ledger's record of %s by request %s fails its check: %s; nothing was written", request.Clip(m.Name), request.Clip(m.RequestID), why)}
	j.log.ErrorContext(ctx, "a ledger record fails its check; no call made", "record", m.Key(),
		"recordRequestId", m.RequestID, "recordMembership", m.Name, "problem", why)
	return r
}

// spaceRemovals are the removals of one space that the ledger holds, by
// member (users/ID), read once per restore child and only when needed.
type spaceRemovals struct {
	read bool
	by   map[string][]ledger.Membership
}

// load reads the removals of space (ledger.Store.InSpace) once.
func (s *spaceRemovals) load(ctx context.Context, store ledger.Store, space string) error {
	if s.read {
		return nil
	}
	s.by = map[string][]ledger.Membership{}
	for m, err := range store.InSpace(ctx, space) {
		if err != nil {
			return ledgerError("memberships in space", err)
		}
		if m.Outcome == string(contract.Removed) && m.Member != "" {
			s.by[m.Member] = append(s.by[m.Member], m)
		}
	}
	s.read = true
	return nil
}

// refusal says why the restore of src (the person t.who in t.space) is
// refused ("" when it is not): a later request removed the person from the
// space again, or the Directory shows them suspended, archived or deleted.
// A forced restore refuses nothing and reads nothing for it.
func (f *Engine) refusal(ctx context.Context, j *job, t restoreTarget, src ledger.Membership, later *spaceRemovals) (string, error) {
	if j.req.Force {
		return "", nil
	}
	if err := later.load(ctx, f.ledger, t.space); err != nil {
		return "", err
	}
	var last *ledger.Membership
	for i, m := range later.by[src.Member] {
		if m.RequestID != src.RequestID && m.DecidedAt.After(src.DecidedAt) && (last == nil || m.DecidedAt.After(last.DecidedAt)) {
			last = &later.by[src.Member][i]
		}
	}
	if last != nil {
		return fmt.Sprintf("%s was removed from %s again, by request %s at %s: restore that request instead",
			src.Member, t.space, request.Clip(last.RequestID), last.DecidedAt.UTC().Format(time.RFC3339)), nil
	}
	status, err := f.directoryStatus(ctx, j, t.who)
	if err != nil || status == "" {
		return "", err
	}
	return fmt.Sprintf("the Directory shows %s %s", src.Member, status), nil
}

// directoryStatus is "suspended", "archived" or "deleted" when the
// Directory shows the person with user id who so, else "". A person it
// does not know at all (a guest from outside the organisation) is left to
// Chat. Directory refusals are transient (fail closed).
func (f *Engine) directoryStatus(ctx context.Context, j *job, who string) (string, error) {
	u, found, err := f.directoryUser(ctx, j, who)
	switch {
	case err != nil:
		return "", err
	case found && u.Archived:
		return "archived", nil
	case found && u.Suspended:
		return "suspended", nil
	case found:
		return "", nil
	}
	deleted, err := f.deletedUser(ctx, j, func(u *admin.User) bool { return u.Id == who })
	if err != nil || deleted == nil {
		return "", err
	}
	return "deleted", nil
}

// refusedRestore is the decision for a restore refused by refusal: no
// write; a WARNING log.
func refusedRestore(ctx context.Context, j *job, r contract.Result, why string) contract.Result {
	r.Outcome = contract.Refused
	r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: why}
	r.Detail = joinDetail(why+`: not added back; a new restore request with "force": true adds them anyway`, r.Detail)
	j.log.WarnContext(ctx, "a restore would add back someone it should not; refused", "membership", r.Membership, "reason", why)
	return r
}
