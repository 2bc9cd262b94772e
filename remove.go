package offboard

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/request"
)

// removeOne decides one membership: refused, dry_run, removed, not_member or
// failed, filling r. It returns an error only for transient failures, which
// the caller hands back to Pub/Sub (or answers expired).
func (f *Function) removeOne(ctx context.Context, log *slog.Logger, v *request.Valid, r *Result, deadline time.Time) error {
	_, seg, _ := request.SplitMembership(v.Name)
	if f.protected[strings.ToLower(seg)] {
		r.Outcome = OutcomeRefused
		r.Detail = "member is in PROTECTED_MEMBERS"
		return nil
	}
	var got *chat.Membership
	if v.DryRun || f.needsID(seg) {
		m, n, err := f.getMembership(ctx, v.Name, v.AdminAccess, deadline)
		r.Attempts += n
		if err != nil {
			return f.permanent(r, err, false)
		}
		got = m
		r.describe(m)
		if id, ok := strings.CutPrefix(memberName(m), "users/"); ok && f.protected[strings.ToLower(id)] {
			r.Outcome = OutcomeRefused
			r.Detail = "member is in PROTECTED_MEMBERS"
			return nil
		}
	}
	if v.DryRun {
		yes := got != nil
		r.Outcome, r.WouldRemove = OutcomeDryRun, &yes
		if !yes {
			r.MembershipState = "NOT_A_MEMBER"
		}
		return nil
	}
	if got == nil && f.needsID(seg) {
		r.Outcome, r.MembershipState = OutcomeNotMember, "NOT_A_MEMBER"
		return nil
	}
	if err := f.deleteMembership(ctx, log, v, r, v.Name, deadline); err != nil {
		return err
	}
	if r.Outcome != OutcomeFailed || v.Successor == "" || r.Error == nil || r.Error.Status != "FAILED_PRECONDITION" {
		return nil
	}
	// The only manager: hand the role over to the successor, then try again.
	space, _, _ := strings.Cut(strings.TrimPrefix(v.Name, "spaces/"), "/")
	failure := *r.Error
	if err := f.handOff(ctx, "spaces/"+space, v, r, nil, deadline); err != nil {
		if _, ok := err.(*TransientError); ok {
			return err
		}
		r.Error = handOffInfo(err)
		r.Detail = "the member is the only manager and the hand-off to the successor failed; nothing was removed"
		return nil
	}
	r.Error, r.Detail = nil, ""
	if err := f.deleteMembership(ctx, log, v, r, v.Name, deadline); err != nil {
		return err
	}
	if r.Outcome == OutcomeFailed && r.Error == nil {
		r.Error = &failure
	}
	return nil
}

// needsID reports whether the protected list holds user ids that a member
// named by email could match: then one read tells its id before any write.
func (f *Function) needsID(seg string) bool {
	if !request.IsEmail(seg) || len(f.protected) == 0 {
		return false
	}
	for p := range f.protected {
		if !request.IsEmail(p) && p != "app" {
			return true
		}
	}
	return false
}

// getMembership reads a membership; a 404 yields (nil, n, nil).
func (f *Function) getMembership(ctx context.Context, name string, admin bool, deadline time.Time) (*chat.Membership, int, error) {
	var m *chat.Membership
	n, err := f.call(ctx, "members.get", read, deadline, func(ctx context.Context) error {
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
	if _, ok := err.(*TransientError); ok {
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
		r.Detail = "the member is the only manager of the space: name a successor (\"successor\") to hand the manager role over, or promote another member first"
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
