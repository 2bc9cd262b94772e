package offboard

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/request"
)

// removeOne decides one membership: refused, dry_run, removed, not_member or
// failed, filling r. The person is identified by user id before anything is
// decided: an email through the Directory (aliases included) or, for
// someone the directory does not know (a guest), through members.get with
// the email alias. It returns an error only for transient failures, which
// the caller hands back to Pub/Sub (or answers expired).
func (f *Function) removeOne(ctx context.Context, sc *scope, v *request.Valid, r *Result) error {
	protected, n, err := f.protectedSet(ctx, sc)
	r.Attempts += n
	if err != nil {
		return err
	}
	space, seg, _ := request.SplitMembership(v.Name)
	t, err := f.identify(ctx, sc, v, r, space, seg)
	if err != nil {
		return err
	}
	if t.who != "" && protected[t.who] {
		refuseProtected(ctx, sc, r, t.who)
		return nil
	}
	if !t.found {
		if v.DryRun {
			no := false
			r.Outcome, r.WouldRemove = OutcomeDryRun, &no
		} else {
			r.Outcome = OutcomeNotMember
		}
		r.MembershipState = "NOT_A_MEMBER"
		return nil
	}
	if v.DryRun {
		got := t.got
		if got == nil {
			m, n, err := f.getMembership(ctx, sc, t.name, v.AdminAccess)
			r.Attempts += n
			if err != nil {
				return f.permanent(r, err, false)
			}
			got = m
		}
		r.describe(got)
		yes := got != nil
		r.Outcome, r.WouldRemove = OutcomeDryRun, &yes
		if !yes {
			r.MembershipState = "NOT_A_MEMBER"
		}
		return nil
	}
	if err := f.deleteMembership(ctx, sc, v, r, t.name); err != nil {
		return err
	}
	if r.Outcome != OutcomeFailed || v.Successor == "" || r.Error == nil || r.Error.Status != "FAILED_PRECONDITION" {
		return nil
	}
	// The only owner: hand the role over to the successor, then try again.
	failure := *r.Error
	if err := f.handOff(ctx, sc, "spaces/"+space, v, r, nil); err != nil {
		var te *TransientError
		if errors.As(err, &te) {
			return err
		}
		r.Error = handOffInfo(err)
		r.Detail = "the member is the only owner of the space and the hand-off to the successor failed; nothing was removed"
		return nil
	}
	r.Error, r.Detail = nil, ""
	if err := f.deleteMembership(ctx, sc, v, r, t.name); err != nil {
		return err
	}
	if r.Outcome == OutcomeFailed && r.Error == nil {
		r.Error = &failure
	}
	return nil
}

// target is the person and membership a single removal acts on.
type target struct {
	who   string           // "users/ID" or "users/app"; "" when unknown
	name  string           // the membership to act on: spaces/S/members/{id or app}
	found bool             // false: the person is known not to be a member (or not to exist)
	got   *chat.Membership // the membership when it was read on the way
}

// identify resolves the member of a single removal to a user id. An id or
// "app" is taken as is; an email is looked up in the Directory (which also
// answers for aliases), and for someone the directory does not know (a
// guest from outside the organisation), read with members.get and the email
// alias, which Google documents for get and delete.
func (f *Function) identify(ctx context.Context, sc *scope, v *request.Valid, r *Result, space, seg string) (target, error) {
	switch {
	case seg == "app":
		return target{who: "users/app", name: v.Name, found: true}, nil
	case !request.IsEmail(seg):
		return target{who: "users/" + seg, name: v.Name, found: true}, nil
	}
	id, known, n, err := f.lookupUser(ctx, sc, seg)
	r.Attempts += n
	if err != nil {
		return target{}, err
	}
	if known {
		if r.Member == nil {
			r.Member = &Member{Name: id, Type: "HUMAN"}
		}
		return target{who: id, name: request.MembershipName(space, strings.TrimPrefix(id, "users/")), found: true}, nil
	}
	m, n, err := f.getMembership(ctx, sc, v.Name, v.AdminAccess)
	r.Attempts += n
	if err != nil {
		return target{}, f.permanent(r, err, false)
	}
	if m == nil {
		return target{name: v.Name}, nil
	}
	r.describe(m)
	return target{who: memberName(m), name: m.Name, found: true, got: m}, nil
}

// getMembership reads a membership; a 404 yields (nil, n, nil).
func (f *Function) getMembership(ctx context.Context, sc *scope, name string, admin bool) (*chat.Membership, int, error) {
	var m *chat.Membership
	n, err := f.call(ctx, sc, "members.get", read, func(ctx context.Context) error {
		var err error
		m, err = f.chat.Spaces.Members.Get(name).UseAdminAccess(admin).Context(ctx).Do()
		return err
	})
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound {
		return nil, n, nil
	}
	return m, n, err
}

// permanent turns a Chat API error into an outcome: 404 on delete is
// not_member, other 4xx are failed. A transient error is returned.
func (f *Function) permanent(r *Result, err error, deleting bool) error {
	var te *TransientError
	if errors.As(err, &te) {
		r.Error = errorInfo(err)
		return err
	}
	ge, ok := apiError(err)
	if !ok {
		return &TransientError{Op: "chat", Err: err}
	}
	if ge.Code == http.StatusNotFound && deleting {
		r.Outcome = OutcomeNotMember
		r.MembershipState = "NOT_A_MEMBER"
		return nil
	}
	r.Outcome = OutcomeFailed
	r.Error = errorInfo(err)
	if r.Error.Status == "FAILED_PRECONDITION" {
		r.Detail = onlyOwnerFix
	}
	return nil
}

// describe copies what the Chat API said of a membership into r.
func (r *Result) describe(m *chat.Membership) {
	if m == nil {
		return
	}
	r.MembershipState = m.State
	if m.Role != "" {
		r.Role = m.Role
	}
	if m.Member != nil {
		r.Member = &Member{Name: m.Member.Name, Type: m.Member.Type}
	}
}

func memberName(m *chat.Membership) string {
	if m == nil || m.Member == nil {
		return ""
	}
	return m.Member.Name
}
