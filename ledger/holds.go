// Holds: what operators and the grace period decided about a request before
// or while it runs (issue 23). One record per top-level request that was
// held (a Workspace-started sweep in its grace period, beyond the brake, or
// a form that always waits for approval), or cancelled; and the brake's
// record of the Workspace-started sweeps of the last hour.

package ledger

import (
	"context"
	"iter"
	"time"
)

// HoldsCollection is the collection of holds, in the configured database.
// It also holds the brake's records (document ids starting "brake:"), which
// have no state and so never match a query on state.
const HoldsCollection = "holds"

// StateHeld is the state of the request record of a held request (see
// Store.SetRequestState): the next delivery takes it over at once.
const StateHeld = "held"

// Hold states.
const (
	// HoldHeld: the request waits, until DueAt (the grace period) or, when
	// DueAt is zero, for an approval.
	HoldHeld = "held"
	// HoldReleased: due, or approved; its message is about to be
	// published again, and it runs as it would have.
	HoldReleased = "released"
	// HoldDispatched: released, and its message published again.
	HoldDispatched = "dispatched"
	// HoldRejected: an approver rejected it; it was answered refused.
	HoldRejected = "rejected"
	// HoldCancelled: cancelled; while held it was answered refused, while
	// running its undecided memberships are.
	HoldCancelled = "cancelled"
)

// Why a request is held.
const (
	// HeldGrace: a Workspace-started sweep in its grace period
	// (AUTO_OFFBOARD_DELAY); it runs at DueAt.
	HeldGrace = "grace"
	// HeldBrake: a Workspace-started sweep beyond AUTO_OFFBOARD_MAX_PER_HOUR;
	// it waits for an approval.
	HeldBrake = "brake"
	// HeldApproval: a form named in APPROVAL_REQUIRED; it waits for an
	// approval.
	HeldApproval = "approval"
)

// Hold is the record of one held or cancelled request.
type Hold struct {
	RequestID string // the held request's id; required
	Kind      string // its form: "sweep", "bulk", "restore"…
	Target    string // a human summary of what it removes from where
	Why       string // HeldGrace, HeldBrake or HeldApproval; empty for a cancel of a request never held
	State     string // HoldHeld when created
	// Message is the request's message data, published again to the
	// requests topic when it is released (it then runs as it would have).
	Message []byte
	// Result is the decision published for it while held (outcome held);
	// after a reject or a cancel while held, the refused decision.
	Result []byte
	HeldAt time.Time // set by the store
	DueAt  time.Time // the end of its grace period; zero: waits for an approval
	// ReleaseID is the request that released, rejected or cancelled it:
	// an approval's requestId (all requests one approval releases share
	// it: one batch), or a due tick's.
	ReleaseID string
	DecidedBy string    // that request's requestedBy
	DecidedAt time.Time // set by the store with ReleaseID
	// CancelledAt is when a cancel of the request was recorded (zero:
	// never), held or running; CancelledBy the cancel's requestedBy.
	CancelledAt time.Time
	CancelledBy string
	ExpireAt    time.Time // set by the store
}

// Cancelled reports whether a cancel of the request was recorded.
func (h Hold) Cancelled() bool { return !h.CancelledAt.IsZero() }

// HoldChange is what ChangeHold sets; empty fields are kept as they are.
type HoldChange struct {
	State     string
	ReleaseID string // sets DecidedAt too
	DecidedBy string
	Result    []byte
}

// Cancel is what CancelRequest records.
type Cancel struct {
	ID string // the cancel's requestId; required
	By string // its requestedBy
	// Result is the refused decision of the request, recorded when it was
	// still held.
	Result []byte
}

// Holds is the part of the ledger that holds requests, releases them and
// counts Workspace-started sweeps for the brake. Every method is one
// Firestore operation (a create-if-absent, a get, a transaction or a query
// per 500 records) and safe for concurrent use; errors are as for Store.
type Holds interface {
	// CreateHold records h only if no hold of h.RequestID exists. The
	// store sets State to HoldHeld when empty, HeldAt and ExpireAt. It
	// returns the stored hold and whether this call created it.
	CreateHold(ctx context.Context, h Hold) (Hold, bool, error)

	// Hold returns the hold of requestID, or ErrNotFound.
	Hold(ctx context.Context, requestID string) (Hold, error)

	// ChangeHold applies c to the hold of requestID only if its state is
	// from: a compare-and-set (a transaction), so that of several callers
	// exactly one moves a hold on. It returns the stored hold after the
	// call and whether this call changed it; ErrNotFound if there is none.
	ChangeHold(ctx context.Context, requestID, from string, c HoldChange) (Hold, bool, error)

	// CancelRequest records a cancel of requestID: CancelledAt and
	// CancelledBy when not set yet; a held request becomes HoldCancelled
	// with ReleaseID c.ID and Result c.Result. A request with no hold gets
	// one in state HoldCancelled. One transaction; it returns the stored
	// hold.
	CancelRequest(ctx context.Context, requestID string, c Cancel) (Hold, error)

	// HoldsInState yields the holds in state, in document id order, read
	// in pages (one equality query per 500), as Memberships does.
	HoldsInState(ctx context.Context, state string) iter.Seq2[Hold, error]

	// HoldsOfRelease yields the holds whose ReleaseID is releaseID: what
	// one approval or tick released, rejected or cancelled.
	HoldsOfRelease(ctx context.Context, releaseID string) iter.Seq2[Hold, error]

	// Admit counts a start of requestID against the brake key: it admits
	// it (true) when requestID was admitted within window already, or
	// when fewer than max starts were admitted within window before now,
	// and then records it; otherwise it records nothing and returns
	// false. One transaction on one record: admissions are exact across
	// instances.
	Admit(ctx context.Context, key, requestID string, max int, window time.Duration) (bool, error)
}

// newHold fills in what the store sets on a new hold.
func newHold(h Hold, cfg Config) Hold {
	now := cfg.now()
	if h.State == "" {
		h.State = HoldHeld
	}
	h.HeldAt, h.ExpireAt = now, now.Add(cfg.Retention)
	h.DueAt, h.CancelledAt = stamp(h.DueAt), stamp(h.CancelledAt)
	h.Message, h.Result = cloneBytes(h.Message), cloneBytes(h.Result)
	return h
}

// apply applies c to h at now (the store's clock).
func (c HoldChange) apply(h Hold, now time.Time, retention time.Duration) Hold {
	if c.State != "" {
		h.State = c.State
	}
	if c.ReleaseID != "" {
		h.ReleaseID, h.DecidedAt = c.ReleaseID, now
	}
	if c.DecidedBy != "" {
		h.DecidedBy = c.DecidedBy
	}
	if c.Result != nil {
		h.Result = cloneBytes(c.Result)
	}
	h.ExpireAt = now.Add(retention)
	return h
}

// cancel applies a cancel to h (found: whether it existed) at now.
func (c Cancel) apply(h Hold, found bool, requestID string, now time.Time, retention time.Duration) Hold {
	if !found {
		h = Hold{RequestID: requestID, State: HoldCancelled, HeldAt: now}
	}
	if h.CancelledAt.IsZero() {
		h.CancelledAt, h.CancelledBy = now, c.By
	}
	if h.State == HoldHeld {
		h.State, h.ReleaseID, h.DecidedBy, h.DecidedAt = HoldCancelled, c.ID, c.By, now
		if c.Result != nil {
			h.Result = cloneBytes(c.Result)
		}
	}
	if !found {
		h.ReleaseID, h.DecidedBy, h.DecidedAt = c.ID, c.By, now
	}
	h.ExpireAt = now.Add(retention)
	return h
}

// admit is the brake's rule on the starts recorded (ids and times, oldest
// first) at now: the starts still within window, whether requestID is
// admitted, and whether that changed the starts.
func admit(ids []string, ats []time.Time, requestID string, max int, window time.Duration, now time.Time) ([]string, []time.Time, bool, bool) {
	var keepIDs []string
	var keepAts []time.Time
	for i, id := range ids {
		if now.Sub(ats[i]) < window {
			if id == requestID {
				return ids, ats, true, false
			}
			keepIDs, keepAts = append(keepIDs, id), append(keepAts, ats[i])
		}
	}
	if len(keepIDs) >= max {
		return ids, ats, false, false
	}
	return append(keepIDs, requestID), append(keepAts, now), true, true
}

// brakeDoc is the document id of a brake's record.
func brakeDoc(key string) string { return "brake:" + docID(key) }
