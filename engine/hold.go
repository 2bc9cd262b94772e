// Holding requests back (issue 23): the grace period and the brake of
// Workspace-started sweeps, the forms that always wait for an approval,
// and the due tick that runs what its grace period released. A held
// request is answered held and makes no Chat call; its message is kept in
// the ledger's hold and published again to the requests topic when it is
// released (by a due tick or an approval), and it then runs as it would
// have (docs/design.md, "Holding requests back").

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
	"github.com/chat-offboard/chat-offboard/request"
)

// brakeKey is the brake's record of Workspace-started sweeps.
const brakeKey = "workspace"

// gate decides, before a request's flow runs, whether it runs: a request
// held, rejected or cancelled while held is answered from its hold; one
// whose form is in APPROVAL_REQUIRED is held on its first delivery. A
// Workspace-started sweep is held by holdAudit once the Directory is read.
// Children and continuations are never held (their parent was).
func (f *Engine) gate(ctx context.Context, j *job) ([]contract.Result, bool, error) {
	v := j.req
	if v.ParentRequestID != "" || v.IsOperator() {
		return nil, false, nil
	}
	if !j.fresh {
		h, err := f.ledger.Hold(ctx, v.RequestID)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return nil, true, ledgerError("hold", err)
		default:
			return f.fromHold(ctx, j, h)
		}
	}
	if j.audit == nil && f.cfg.Oversight.requires(v.Kind) {
		out, err := f.hold(ctx, j, ledger.HeldApproval, time.Time{})
		return out, true, err
	}
	return nil, false, nil
}

// fromHold answers a request from its hold: held, the held decision again;
// rejected or cancelled while held, the refused decision; released, it
// runs.
func (f *Engine) fromHold(ctx context.Context, j *job, h ledger.Hold) ([]contract.Result, bool, error) {
	switch h.State {
	case ledger.HoldReleased, ledger.HoldDispatched:
		j.released = true
		return nil, false, nil
	case ledger.HoldHeld:
		j.held = true
	case ledger.HoldCancelled, ledger.HoldRejected:
		if len(h.Result) == 0 { // cancelled while it ran: its children stop
			j.released = true
			return nil, false, nil
		}
	}
	var r contract.Result
	if err := json.Unmarshal(h.Result, &r); err != nil {
		return nil, true, ledgerError("hold", fmt.Errorf("the recorded decision of held request %s is not a result: %w", h.RequestID, err))
	}
	j.log.InfoContext(ctx, "the request is "+h.State+"; its recorded decision published again", "outcome", r.Outcome)
	return []contract.Result{r}, true, nil
}

// holdAudit holds a Workspace-started sweep about to run, unless it was
// released: beyond the brake (or with sweep in APPROVAL_REQUIRED) until an
// approval, else for its grace period. held is false when it runs now.
func (f *Engine) holdAudit(ctx context.Context, j *job) (out []contract.Result, held bool, err error) {
	o := &f.cfg.Oversight
	if j.released {
		return nil, false, nil
	}
	if o.requires(request.KindSweep) {
		out, err = f.hold(ctx, j, ledger.HeldApproval, time.Time{})
		return out, true, err
	}
	if o.MaxPerHour > 0 {
		ok, err := f.ledger.Admit(ctx, brakeKey, j.req.RequestID, o.MaxPerHour, time.Hour)
		if err != nil {
			return nil, true, ledgerError("brake", err)
		}
		if !ok {
			out, err = f.hold(ctx, j, ledger.HeldBrake, time.Time{})
			return out, true, err
		}
	}
	if o.Delay > 0 {
		out, err = f.hold(ctx, j, ledger.HeldGrace, f.now().Add(o.Delay))
		return out, true, err
	}
	return nil, false, nil
}

// hold records the hold of j's request (only if absent) and answers held:
// with the time it is due for a grace period, else waiting for an
// approval. The hold keeps the message to publish again on release.
func (f *Engine) hold(ctx context.Context, j *job, why string, due time.Time) ([]contract.Result, error) {
	v := j.req
	data := j.msg.Data
	if j.audit == nil {
		var err error
		if data, err = json.Marshal(v.Request); err != nil { // with its requestId, whatever carried it
			return nil, fmt.Errorf("encoding the held request: %w", err)
		}
	}
	r := j.decided(j.result(v.RequestID))
	r.Outcome, r.ProcessedAt = contract.Held, f.now().UTC()
	if j.audit != nil {
		r.AdminAccess = true
	}
	r.Detail = heldDetail(why, f.cfg.Oversight, due)
	if !due.IsZero() {
		d := due.UTC()
		r.DueAt = &d
	}
	res, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	h, created, err := f.ledger.CreateHold(ctx, ledger.Hold{RequestID: v.RequestID, Kind: v.Kind.String(), Target: summary(v),
		Why: why, Message: data, Result: res, DueAt: due})
	if err != nil {
		return nil, ledgerError("hold", err)
	}
	if !created {
		out, _, err := f.fromHold(ctx, j, h)
		return out, err
	}
	j.held = true
	level := slog.LevelInfo
	switch why {
	case ledger.HeldBrake:
		level = logging.LevelCritical
	case ledger.HeldApproval:
		level = slog.LevelWarn
	}
	j.log.Log(ctx, level, r.Detail, "held", why, "target", summary(v))
	return []contract.Result{r}, nil
}

// heldDetail says why a request is held and what releases it.
func heldDetail(why string, o Oversight, due time.Time) string {
	approve := "an approver publishes {\"approve\": REQUEST_ID} (or reject, or cancel) to APPROVAL_TOPIC"
	if o.ApprovalTopic == "" {
		approve = "APPROVAL_TOPIC is not set, so nobody can approve it: set it (deploy.sh does)"
	}
	switch why {
	case ledger.HeldGrace:
		return fmt.Sprintf("held for the grace period (AUTO_OFFBOARD_DELAY %s) until %s: then the Directory is read again and the sweep runs only if the person is still suspended, archived or deleted; nothing was removed", o.Delay, due.UTC().Format(time.RFC3339))
	case ledger.HeldBrake:
		return fmt.Sprintf("the brake is engaged: more than %d Workspace-started sweeps in an hour (AUTO_OFFBOARD_MAX_PER_HOUR); held until %s; nothing was removed", o.MaxPerHour, approve)
	}
	return "its form waits for an approval (APPROVAL_REQUIRED): held until " + approve + "; nothing was removed"
}

// runDue is a due tick: every held request whose grace period is over is
// released (a compare-and-set, so that each is released by one tick only,
// however many run) and its message published again; so is a released
// one whose releaser stopped before publishing it. A tick has no result
// of its own.
func (f *Engine) runDue(ctx context.Context, j *job) error {
	now := f.now()
	releaseID := "due/" + j.msg.ID
	released := 0
	for h, err := range f.ledger.HoldsInState(ctx, ledger.HoldHeld) {
		if err != nil {
			return f.transient(ctx, j, ledgerError("holds", err))
		}
		if h.DueAt.IsZero() || h.DueAt.After(now) {
			continue
		}
		_, changed, err := f.ledger.ChangeHold(ctx, h.RequestID, ledger.HoldHeld, ledger.HoldChange{State: ledger.HoldReleased, ReleaseID: releaseID, DecidedBy: "due"})
		if err != nil {
			return f.transient(ctx, j, ledgerError("release", err))
		}
		if changed {
			released++
		}
	}
	// What this tick released (an earlier delivery of it too) and has not
	// published yet.
	due, err := f.releasedBy(ctx, releaseID)
	if err != nil {
		return f.transient(ctx, j, err)
	}
	if err := f.dispatch(ctx, due); err != nil {
		return f.transient(ctx, j, err)
	}
	j.log.InfoContext(ctx, fmt.Sprintf("due tick: %d held requests released, %d published", released, len(due)), "released", released)
	return nil
}

// releasedBy are the holds that releaseID released whose message is not
// published yet: just now, or by an earlier delivery of the same tick
// that stopped between the two (Pub/Sub delivers it again because it
// failed).
func (f *Engine) releasedBy(ctx context.Context, releaseID string) ([]ledger.Hold, error) {
	var out []ledger.Hold
	for h, err := range f.ledger.HoldsOfRelease(ctx, releaseID) {
		if err != nil {
			return nil, ledgerError("holds", err)
		}
		if h.State == ledger.HoldReleased {
			out = append(out, h)
		}
	}
	return out, nil
}

// dispatch publishes the message of each released hold to the requests
// topic (with the release id as attribute releaseId: the requests one
// approval released form one batch), then marks it dispatched. A message
// published twice is one request to the ledger.
func (f *Engine) dispatch(ctx context.Context, holds []ledger.Hold) error {
	if len(holds) == 0 {
		return nil
	}
	if f.requests == nil {
		return errNoRequestTopic
	}
	results := make([]*pubsub.PublishResult, 0, len(holds))
	for _, h := range holds {
		results = append(results, f.requests.Publish(ctx, &pubsub.Message{Data: h.Message,
			Attributes: map[string]string{"requestId": h.RequestID, "releaseId": h.ReleaseID}}))
	}
	for i, res := range results {
		if _, err := res.Get(ctx); err != nil {
			return &TransientError{Op: "publish released request", Err: fmt.Errorf("%s: %w", holds[i].RequestID, err)}
		}
	}
	for _, h := range holds {
		if _, _, err := f.ledger.ChangeHold(ctx, h.RequestID, ledger.HoldReleased, ledger.HoldChange{State: ledger.HoldDispatched}); err != nil {
			return ledgerError("dispatched", err)
		}
	}
	return nil
}
