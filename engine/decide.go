package engine

import (
	"errors"
	"net/http"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
)

// The small rules that turn what the API answered into a decision, shared by
// the flows.

// onlyOwnerFix is the detail of a failed only-owner removal.
const onlyOwnerFix = "the member is the only owner (ROLE_MANAGER) of the space: name a successor (\"successor\", with \"addSuccessor\": true if they may not be a member yet) to hand ownership over, or make another member an owner first (for a sweep that a Workspace suspension, archive or deletion started: give the person a manager in the Directory, or set AUTO_OFFBOARD_SUCCESSOR)"

// afterHandOff records a hand-off's log in r and, when the hand-off failed
// (err), stops the removal: a transient err is handed back as is; any other
// decides failed, nothing removed, with the fix when the hand-off's error
// says it.
func afterHandOff(r contract.Result, log *contract.HandOffLog, err error) (_ contract.Result, stop bool, _ error) {
	r.HandOff = log
	switch {
	case err == nil:
		return r, false, nil
	case isTransient(err):
		return r, true, err
	}
	r.Outcome, r.Error = contract.Failed, handOffInfo(err)
	r.Detail = "the member is the only owner of the space and the hand-off to the successor failed; nothing was removed"
	var he *handOffError
	if errors.As(err, &he) && he.fix != "" {
		r.Detail += ": " + he.fix
	}
	return r, true, nil
}

// ownerRefused adds the fix to a refused removal of a space's only owner
// (only: as members.list said before the delete): name a successor, or, when
// the hand-off was done, see Google's error.
func ownerRefused(r contract.Result, only bool) contract.Result {
	switch {
	case !only || r.Outcome != contract.Failed:
	case r.HandOff != nil:
		r.Detail = "the successor is an owner now, yet Chat refused to remove the member: see the error, and publish a new request for this space once it is resolved"
	default:
		r.Detail = onlyOwnerFix
	}
	return r
}

// removedMember is the member of a removal as the function knows it: the
// user name it read (from members.get or members.list, recorded in the
// intent), a BOT for the calling app, else a HUMAN; nil when unknown.
func removedMember(name string) *contract.Member {
	switch name {
	case "":
		return nil
	case "users/app":
		return &contract.Member{Name: name, Type: "BOT"}
	}
	return &contract.Member{Name: name, Type: "HUMAN"}
}

// described returns r with what the Chat API said of a membership.
func described(r contract.Result, m *chat.Membership) contract.Result {
	if m == nil {
		return r
	}
	r.MembershipState = m.State
	if m.Role != "" {
		r.Role = m.Role
	}
	if m.Member != nil {
		r.Member = &contract.Member{Name: m.Member.Name, Type: m.Member.Type}
	}
	return r
}

// apiDecision turns an API error into a decision: 404 on delete is
// not_member, other 4xx are failed with Google's code, status and message
// (whatever the status, no fix is inferred from it: the flows add the
// only-owner fix from what they read). A transient error is returned as the
// error, with r unchanged.
func apiDecision(r contract.Result, err error, deleting bool) (contract.Result, error) {
	var te *TransientError
	if errors.As(err, &te) {
		return r, err
	}
	ge, ok := apiError(err)
	if !ok {
		return r, &TransientError{Op: "chat", Err: err}
	}
	if ge.Code == http.StatusNotFound && deleting {
		r.Outcome, r.MembershipState = contract.NotMember, "NOT_A_MEMBER"
		return r, nil
	}
	r.Outcome, r.Error = contract.Failed, errorInfo(err)
	return r, nil
}

// lostRemoval is the decision of a delete whose answer was lost and whose
// retry found the membership gone: removed, as the intent in recorded it.
func lostRemoval(r contract.Result, in intended) contract.Result {
	r.Outcome, r.MembershipState, r.Role = contract.Removed, "NOT_A_MEMBER", in.role
	if in.member != "" {
		typ := "HUMAN"
		if in.member == "users/app" {
			typ = "BOT"
		}
		r.Member = &contract.Member{Name: in.member, Type: typ}
	}
	r.Detail = joinDetail(r.Detail, "removed: the answer to the delete was lost (no answer, or a 5xx) after Chat had made it, and the retry found the membership gone; the role is the one recorded before the delete")
	return r
}

// lostBeforeExpiry is the detail of an expired decision whose last write
// was sent and got no answer (or a 5xx) before the event expired: no call
// may settle it any more.
const lostBeforeExpiry = "a write was sent and its answer lost (no answer, or a 5xx) before the event passed MAX_EVENT_AGE: Chat may have made it; read the membership to know"

// handOffInfo extends errorInfo with hand-off errors.
func handOffInfo(err error) *contract.ErrorInfo {
	var he *handOffError
	if errors.As(err, &he) {
		return &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: he.msg}
	}
	return errorInfo(err)
}

// isTransient reports whether err should be handed back to Pub/Sub.
func isTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}
