package report

import (
	"strings"

	"github.com/chat-offboard/chat-offboard/contract"
)

// successes are the outcomes that leave nothing to do: the membership is
// gone (removed, not_member), nothing was meant to change (dry_run), or an
// undo put it back (restored, already_member).
var successes = map[string]bool{
	string(contract.Removed): true, string(contract.NotMember): true, string(contract.DryRun): true,
	string(contract.Restored): true, string(contract.AlreadyMember): true,
}

// Success reports whether an outcome leaves nothing to do. Every other
// outcome but Pending needs attention, those this package does not know
// included.
func Success(outcome string) bool { return successes[outcome] }

// The fixes: what to do about a result that needs attention. This table and
// Fix are the one place that maps an outcome, or Google's error status, to
// a fix; README.md ("The leaver report") shows it.
//
// A failed, refused or expired decision is recorded in the ledger, and a
// request delivered again answers from it: so every fix that acts again
// says "a new request" (a new requestId).
var (
	// byOutcome: outcomes whose fix does not depend on the error.
	byOutcome = map[string]string{
		string(contract.Refused):  "refused on purpose, the detail says why (a protected person: PROTECTED_MEMBERS; a suspension undone: the person is active again); if they really leave, change that, then publish a new request",
		string(contract.Invalid):  "correct the request as the error says and publish it again",
		string(contract.IDReused): "the requestId was used before for another request (or longer ago than REQUEST_REPLAY_WINDOW), so nothing was done: publish the request under a new requestId, one per departure event with its date (docs/integrators.md)",
		string(contract.Expired):  "it waited longer than MAX_EVENT_AGE: publish a new request (a new requestId: the same id answers from the ledger)",
		"via_group":               "the person still reaches the space through the group(s) named: remove them from the group, or the group from the space (chat-offboard changes no group; nested groups are not followed)",
		Pending:                   "wait: a delivery is deciding it, or Pub/Sub delivers the request again; report again later",
	}
	// byStatus: failed results, by Google's error status.
	byStatus = map[string]string{
		"PERMISSION_DENIED":   "grant access: the delegated user must be a Workspace admin with the Chat privilege and the token must have the chat.admin.* scopes (cmd/authorize), with adminAccess on the request; then publish a new request for this space",
		"FAILED_PRECONDITION": "fix what the error says about the successor (one who is not a member needs \"addSuccessor\": true; one who is invited must accept the invitation first, or name another), then publish a new request for this space",
		"NOT_FOUND":           "check the name: the directory or Chat does not know this person or space (a deleted space needs nothing more)",
		"UNAUTHENTICATED":     "the function's token was refused: authorize again (cmd/authorize) and store the new token (docs/operators.md, \"Rotating the token\"), then publish a new request",
		"RESOURCE_EXHAUSTED":  "a quota ran out: publish a new request later, or ask for more quota",
		"INVALID_ARGUMENT":    "correct the request as the error says and publish a new one",
		"ALREADY_EXISTS":      "the membership exists already: check the space, nothing more to do if it is as wanted",
	}
	// onlyOwner: FAILED_PRECONDITION for a space's only owner.
	onlyOwner = "name a successor (\"successor\", with \"addSuccessor\": true if they may not be a member yet) or make another member an owner, then publish a new request for this space"
	// activeAgain: a Workspace suspension whose person is active again
	// in the Directory (docs/design.md, "Offboarding that starts itself").
	activeAgain = "the person is active again in the Directory (the suspension was undone): nothing to do; if they do leave, suspend them again, or publish a sweep (a new requestId)"
	// transient: no HTTP answer, or an error worth trying again.
	transient = "a transient error: publish a new request for this space later"
	// otherwise: anything else.
	otherwise = "see the error; publish a new request for this space once it is resolved"
)

// Fix is what to do about a result with outcome and error e: empty for a
// success. Outcomes that need attention and have no fix of their own get
// the fix of their error's status.
func Fix(outcome string, e *contract.ErrorInfo) string {
	if Success(outcome) {
		return ""
	}
	if outcome == string(contract.Refused) && e != nil && e.Status == "FAILED_PRECONDITION" {
		return activeAgain
	}
	if f, ok := byOutcome[outcome]; ok {
		return f
	}
	if e == nil {
		if outcome == string(contract.Failed) {
			return otherwise
		}
		return "" // an outcome this version does not know: its detail says more
	}
	switch {
	case e.Status == "FAILED_PRECONDITION" && !strings.Contains(strings.ToLower(e.Message), "successor"):
		// Chat's answer to removing a space's only owner; a hand-off's
		// own failures name the successor.
		return onlyOwner
	case byStatus[e.Status] != "":
		return byStatus[e.Status]
	case e.Code == 0 || e.Code >= 500 || e.Code == 429 || e.Status == "UNAVAILABLE" || e.Status == "DEADLINE_EXCEEDED" || e.Status == "ABORTED":
		return transient
	}
	return otherwise
}
