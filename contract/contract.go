// Package contract is chat-offboard's wire contract with the systems around
// it: the result event that every decision publishes (its data, Result, and
// its Pub/Sub attributes), the typed outcomes, and the topic names that the
// function and the publisher CLI share. It imports nothing of the engine, so
// that an integrator's program (cmd/publish) links only this and request/.
// docs/design.md and schema/result.schema.json describe the same contract.
//
// Everything here is a plain value or a pure function: safe for concurrent
// use.
package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Outcome is the decision a result event reports (docs/design.md, "Outcomes
// and retries").
type Outcome string

// The outcomes.
const (
	Removed   Outcome = "removed"
	NotMember Outcome = "not_member"
	DryRun    Outcome = "dry_run"
	Refused   Outcome = "refused"
	Invalid   Outcome = "invalid"
	Failed    Outcome = "failed"
	Planned   Outcome = "planned"
	Expired   Outcome = "expired"
	// ViaGroup is a sweep's person who is no direct member of a space but
	// still reaches it through a Google Group (Result.ViaGroups): nothing
	// is removed, the group is not the function's to change.
	ViaGroup Outcome = "via_group"
	// Restored: a membership that a restore added back (issue 14), with
	// the role it had and the state the API answered (JOINED, or INVITED
	// when the person must accept).
	Restored Outcome = "restored"
	// AlreadyMember: a restore found the person a member already and
	// wrote nothing.
	AlreadyMember Outcome = "already_member"
	// Held: the request waits and nothing was done yet (issue 23): a
	// Workspace-started sweep in its grace period (DueAt says until
	// when), or a request that waits for an approval (DueAt absent). Not
	// final: the request's other results follow once it is released, or
	// refused when it is rejected or cancelled.
	Held Outcome = "held"
	// IDReused: the request's requestId was used before for a different
	// request, or for this one longer ago than REQUEST_REPLAY_WINDOW
	// (issue 20). Nothing was done; Error (409 ALREADY_EXISTS) says when
	// the id was used and what differs. A new request needs a new
	// requestId.
	IDReused Outcome = "id_reused"
)

// Outcomes lists every outcome, in the order docs/design.md gives them.
var Outcomes = []Outcome{Removed, NotMember, DryRun, Refused, Invalid, Failed, Planned, Expired, ViaGroup, Restored, AlreadyMember, Held, IDReused}

// Result event constants.
const (
	// ResultEventType is the ce-type of every result event.
	ResultEventType = "dev.chat-offboard.membership.result.v1"
	// ResultSource is the ce-source of every result event.
	ResultSource = "//chat-offboard/RemoveMembership"
	// PublishedEventType is the CloudEvent type of a Pub/Sub message
	// delivered by Eventarc: what the function receives.
	PublishedEventType = "google.cloud.pubsub.topic.v1.messagePublished"
)

// Result is the data of one result event: one membership decision. Its JSON
// is the contract that consumers read (docs/design.md,
// schema/result.schema.json).
type Result struct {
	RequestID       string `json:"requestId"`
	ParentRequestID string `json:"parentRequestId,omitempty"`
	Membership      string `json:"membership,omitempty"`
	// SpaceDisplayName is the space's display name when the request carried
	// one (a sweep's space+members children do); empty otherwise.
	SpaceDisplayName string      `json:"spaceDisplayName,omitempty"`
	Outcome          Outcome     `json:"outcome"`
	MembershipState  string      `json:"membershipState,omitempty"`
	Role             string      `json:"role,omitempty"`
	Member           *Member     `json:"member,omitempty"`
	WouldRemove      *bool       `json:"wouldRemove,omitempty"`
	WouldRestore     *bool       `json:"wouldRestore,omitempty"`
	Children         *int        `json:"children,omitempty"`
	ExpectedResults  *int        `json:"expectedResults,omitempty"`
	Continued        bool        `json:"continued,omitempty"`
	Error            *ErrorInfo  `json:"error,omitempty"`
	Detail           string      `json:"detail,omitempty"`
	AdminAccess      bool        `json:"adminAccess"`
	DryRun           bool        `json:"dryRun"`
	Reason           string      `json:"reason,omitempty"`
	RequestedBy      string      `json:"requestedBy,omitempty"`
	Attempts         int         `json:"attempts,omitempty"`
	SourceMessageID  string      `json:"sourceMessageId,omitempty"`
	ProcessedAt      time.Time   `json:"processedAt"`
	HandOff          *HandOffLog `json:"handOff,omitempty"`
	// ViaGroups are the Google Groups ("groups/ID") through which a
	// sweep's person is still in the space after this decision: set with
	// outcome via_group, and beside any other outcome of a person who was
	// also a direct member.
	ViaGroups []string `json:"viaGroups,omitempty"`
	// DueAt is when a held request's grace period ends (outcome held); a
	// request held for an approval has none.
	DueAt *time.Time `json:"dueAt,omitempty"`
}

// Member is the member of a membership as the Chat API named it.
type Member struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// ErrorInfo is Google's error (or the validator's reason, code 400) that
// decided a failed, invalid or expired outcome.
type ErrorInfo struct {
	Code    int    `json:"code,omitempty"`
	Status  string `json:"status,omitempty"`
	Message string `json:"message"`
}

// HandOffLog says what the function did to leave a space with an owner.
type HandOffLog struct {
	Successor string `json:"successor"`
	Added     bool   `json:"added"`
	Promoted  bool   `json:"promoted"`
}

// EventID is the deterministic ce-id of a result of a request that is not a
// dry run: a redelivered request yields the same id for the same decision,
// so consumers can drop duplicates. [Result.EventID] is the ce-id of any
// result.
func EventID(requestID, membership string, outcome Outcome) string {
	h := sha256.Sum256([]byte(requestID + "\x00" + membership + "\x00" + string(outcome)))
	return hex.EncodeToString(h[:16])
}

// EventID is r's ce-id: EventID of its request id, membership and outcome,
// with two distinctions so that a consumer dropping duplicates drops no
// answer: a dry run's results are told apart from the real request's under
// the same id (a planned result of each, say), and an id_reused answer is
// one per request message (a different request may reuse the id again).
func (r *Result) EventID() string {
	id, membership := r.RequestID, r.Membership
	if r.DryRun {
		id += "\x00dry-run"
	}
	if r.Outcome == IDReused {
		membership = "message/" + r.SourceMessageID
	}
	return EventID(id, membership, r.Outcome)
}

// Attributes are the Pub/Sub attributes of r's result event: the CloudEvent
// binary-mode attributes (ce-*), and outcome and requestId for subscription
// filters.
func (r *Result) Attributes() map[string]string {
	subject := r.Membership
	if subject == "" {
		subject = "requests/" + r.RequestID
	}
	return map[string]string{
		"ce-specversion": "1.0",
		"ce-type":        ResultEventType,
		"ce-source":      ResultSource,
		"ce-id":          r.EventID(),
		"ce-time":        r.ProcessedAt.UTC().Format(time.RFC3339Nano),
		"ce-subject":     subject,
		"content-type":   "application/json",
		"outcome":        string(r.Outcome),
		"requestId":      r.RequestID,
	}
}

// TopicName expands a topic id to projects/P/topics/ID in project and checks
// a full name; an empty value stays empty. The function and the publisher
// CLI both use it.
func TopicName(v, project string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if !strings.HasPrefix(v, "projects/") {
		v = "projects/" + project + "/topics/" + v
	}
	p := strings.Split(v, "/")
	if len(p) != 4 || p[2] != "topics" || p[1] == "" || p[3] == "" {
		return "", fmt.Errorf("%q is not a topic id or projects/P/topics/T", v)
	}
	return v, nil
}
