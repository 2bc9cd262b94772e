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
// not_member, other 4xx are failed. A transient error is returned as the
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
	if r.Error.Status == "FAILED_PRECONDITION" {
		r.Detail = onlyOwnerFix
	}
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
