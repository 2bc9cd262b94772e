package engine

import (
	"log/slog"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// job is one event on its way through the engine: what every step needs
// besides the context. Handle makes one per event; the steps of an event
// run one at a time in its goroutine, so a job needs no lock.
type job struct {
	log *slog.Logger
	msg Message
	req *request.Valid // nil until the request is valid
	// audit is the Admin audit event that started the request, for a
	// request read from a LogEntry (trigger.go); nil otherwise.
	audit *request.AuditEvent
	// deadline is the invocation's deadline less publishReserve: no API
	// call runs past it.
	deadline time.Time
	// expiry is when the event passes MAX_EVENT_AGE (zero: never): no API
	// call starts after it, and no retry waits past it.
	expiry time.Time
	// attempts counts every API attempt of the event (Chat and Directory,
	// retries included); call adds to it. The views that with makes share it.
	attempts *int
	// fresh: this delivery created the request's record, so the ledger
	// holds nothing else of the request yet, and no earlier decision or
	// intent is looked up (one Firestore read fewer per request).
	fresh bool
	// replays marks the decisions published again from the ledger, by
	// request id and membership, so that they are not recorded again.
	replays map[string]bool
	// prior is the state an earlier delivery left the request's record in
	// ("" when this delivery created it).
	prior string
	// waiting: the request waits for another to finish (a restore for its
	// removal); its record is left in ledger.StateWaiting.
	waiting bool
	// held: the request was held (or is still held); its record is left
	// in state held. released: it was held and is released, so it runs
	// and is not held again (hold.go).
	held, released bool
	// cancelled is the cancel recorded for the request's parent, once
	// read (cancel.go).
	cancelled *ledger.Hold
}

// newJob starts the job of one event.
func newJob(log *slog.Logger, msg Message) *job {
	return &job{log: log, msg: msg, attempts: new(int), replays: map[string]bool{}}
}

// decided stamps a decision with the event's attempts so far; a decision
// published again from the ledger keeps what was recorded.
func (j *job) decided(r contract.Result) contract.Result {
	if !j.isReplay(&r) {
		r.Attempts = *j.attempts
	}
	return r
}

// expiredBy reports whether the event's MAX_EVENT_AGE has passed at t.
func (j *job) expiredBy(t time.Time) bool { return !j.expiry.IsZero() && t.After(j.expiry) }

// with returns a view of j that logs with args: for one part of the event
// (one person of a space+members request). It counts into j's attempts.
func (j *job) with(args ...any) *job {
	c := *j
	c.log = j.log.With(args...)
	return &c
}

// result starts a decision of this event with what every result carries:
// the request's fields and the source message.
func (j *job) result(requestID string) contract.Result {
	r := contract.Result{RequestID: requestID, SourceMessageID: j.msg.ID}
	if v := j.req; v != nil {
		r.ParentRequestID = v.ParentRequestID
		r.AdminAccess = v.AdminAccess
		r.DryRun = v.DryRun
		r.Reason = v.Reason
		r.RequestedBy = v.RequestedBy
		r.SpaceDisplayName = v.SpaceDisplayName
	}
	return r
}
