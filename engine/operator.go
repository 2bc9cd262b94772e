// The operator requests (issue 23): approvals, rejections and cancels,
// taken only from APPROVAL_TOPIC (which only approvers may publish to),
// and the due tick, taken from the requests topic.

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// operatorKey is the claim that records an operator request's decisions.
const operatorKey = "operator"

// fromTopic reports whether a CloudEvent source names topic
// (//pubsub.googleapis.com/projects/P/topics/T).
func fromTopic(source, topic string) bool {
	return topic != "" && strings.TrimPrefix(source, "//pubsub.googleapis.com/") == topic
}

// operatorEntry handles what must not reach the ledger: a due tick (it
// has no result and runs whatever the number of ticks), an approval,
// rejection or cancel that did not come from APPROVAL_TOPIC, and anything
// else that did (refused, nothing recorded: a request on the wrong topic
// never takes an id an approver may use). done is false when the request
// goes on as usual.
func (f *Engine) operatorEntry(ctx context.Context, j *job) (done bool, err error) {
	v := j.req
	fromApprovals := fromTopic(j.msg.Source, f.cfg.Oversight.ApprovalTopic)
	switch {
	case v.Kind == request.KindDue && !fromApprovals:
		return true, f.runDue(ctx, j)
	case v.IsOperator() && v.Kind != request.KindDue && fromApprovals:
		return false, nil
	case !v.IsOperator() && !fromApprovals:
		return false, nil
	}
	r := j.decided(j.result(v.RequestID))
	r.Outcome = contract.Refused
	if v.IsOperator() && v.Kind != request.KindDue {
		r.Error = &contract.ErrorInfo{Code: http.StatusForbidden, Status: "PERMISSION_DENIED", Message: v.Kind.String() + " is taken only from APPROVAL_TOPIC"}
		r.Detail = "nothing was done: approvals, rejections and cancels count only when published to APPROVAL_TOPIC, which only approvers may publish to"
		j.log.WarnContext(ctx, "an approval, rejection or cancel arrived on another topic than APPROVAL_TOPIC; refused", "source", j.msg.Source)
	} else {
		r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "INVALID_ARGUMENT", Message: "APPROVAL_TOPIC takes only approve, reject and cancel"}
		r.Detail = "nothing was done: publish removal requests and due ticks to the requests topic"
		j.log.WarnContext(ctx, "a request that is no approval, rejection or cancel arrived on APPROVAL_TOPIC; refused")
	}
	return true, f.publish(ctx, j, r)
}

// operate is the flow of an approval, rejection or cancel from
// APPROVAL_TOPIC. Its decisions (its own, and the refusals of what it
// rejected or cancelled while held) are recorded as one claim, so that a
// redelivery publishes them again and changes nothing.
func (f *Engine) operate(ctx context.Context, j *job) ([]contract.Result, error) {
	id := j.req.RequestID
	if out, ok, err := f.claimed(ctx, j, id, operatorKey); ok || err != nil {
		return out, err
	}
	var out []contract.Result
	var err error
	switch j.req.Kind {
	case request.KindApprove:
		out, err = f.approve(ctx, j)
	case request.KindReject:
		out, err = f.reject(ctx, j)
	default:
		out, err = f.cancel(ctx, j)
	}
	if err != nil {
		return nil, err
	}
	return f.claim(ctx, j, id, operatorKey, 0, 0, out)
}

// targets are the holds an approval or rejection acts on: the one it
// names, or every one held now ("held"); and those that an earlier
// delivery of it moved on (their ReleaseID is its id).
func (f *Engine) targets(ctx context.Context, j *job) (held, earlier []ledger.Hold, err error) {
	if t := j.req.Target(); t != request.Held {
		h, err := f.ledger.Hold(ctx, t)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return nil, nil, ledgerError("hold", err)
		case h.State == ledger.HoldHeld:
			held = append(held, h)
		}
	} else {
		for h, err := range f.ledger.HoldsInState(ctx, ledger.HoldHeld) {
			if err != nil {
				return nil, nil, ledgerError("holds", err)
			}
			held = append(held, h)
		}
	}
	for h, err := range f.ledger.HoldsOfRelease(ctx, j.req.RequestID) {
		if err != nil {
			return nil, nil, ledgerError("holds", err)
		}
		earlier = append(earlier, h)
	}
	return held, earlier, nil
}

// approve releases the held requests an approval names, as one release
// (its requestId), and publishes their messages again: each runs as it
// would have.
func (f *Engine) approve(ctx context.Context, j *job) ([]contract.Result, error) {
	held, earlier, err := f.targets(ctx, j)
	if err != nil {
		return nil, err
	}
	var released, dispatch []ledger.Hold
	for _, h := range earlier {
		released = append(released, h)
		if h.State == ledger.HoldReleased {
			dispatch = append(dispatch, h)
		}
	}
	for _, h := range held {
		nh, changed, err := f.ledger.ChangeHold(ctx, h.RequestID, ledger.HoldHeld,
			ledger.HoldChange{State: ledger.HoldReleased, ReleaseID: j.req.RequestID, DecidedBy: approver(j)})
		if err != nil {
			return nil, ledgerError("release", err)
		}
		if changed {
			released, dispatch = append(released, nh), append(dispatch, nh)
		}
	}
	if err := f.dispatch(ctx, dispatch); err != nil {
		return nil, err
	}
	if len(released) == 0 && j.req.Target() != request.Held {
		return []contract.Result{f.nothingHeld(ctx, j)}, nil
	}
	j.log.WarnContext(ctx, fmt.Sprintf("approved by %s: %d held requests released", approver(j), len(released)), "releaseId", j.req.RequestID)
	return []contract.Result{f.operatorPlan(j, "released", released)}, nil
}

// reject answers the held requests a rejection names refused, with who
// rejected them.
func (f *Engine) reject(ctx context.Context, j *job) ([]contract.Result, error) {
	held, earlier, err := f.targets(ctx, j)
	if err != nil {
		return nil, err
	}
	var out []contract.Result
	var rejected []ledger.Hold
	for _, h := range earlier {
		r, err := f.heldResult(h)
		if err != nil {
			return nil, err
		}
		out, rejected = append(out, r), append(rejected, h)
	}
	for _, h := range held {
		r, data, err := f.refuseHeld(j, h, "rejected by "+approver(j))
		if err != nil {
			return nil, err
		}
		nh, changed, err := f.ledger.ChangeHold(ctx, h.RequestID, ledger.HoldHeld,
			ledger.HoldChange{State: ledger.HoldRejected, ReleaseID: j.req.RequestID, DecidedBy: approver(j), Result: data})
		if err != nil {
			return nil, ledgerError("reject", err)
		}
		if changed {
			f.settleHeld(ctx, j, h.RequestID)
			out, rejected = append(out, r), append(rejected, nh)
		}
	}
	if len(rejected) == 0 && j.req.Target() != request.Held {
		return []contract.Result{f.nothingHeld(ctx, j)}, nil
	}
	j.log.WarnContext(ctx, fmt.Sprintf("rejected by %s: %d held requests refused", approver(j), len(rejected)), "releaseId", j.req.RequestID)
	return append([]contract.Result{f.operatorPlan(j, "rejected", rejected)}, out...), nil
}

// refuseHeld is the refused decision of a held request that an approver
// rejected or cancelled (why), built from its held decision.
func (f *Engine) refuseHeld(j *job, h ledger.Hold, why string) (contract.Result, []byte, error) {
	r, err := f.heldResult(h)
	if err != nil {
		return r, nil, err
	}
	r.Outcome, r.DueAt, r.Attempts, r.SourceMessageID = contract.Refused, nil, 0, j.msg.ID
	r.Error = &contract.ErrorInfo{Code: http.StatusConflict, Status: "ABORTED", Message: why}
	r.Detail = fmt.Sprintf("%s (%s %s) while it was held: nothing was done", why, j.req.Kind, j.req.RequestID)
	r.ProcessedAt = f.now().UTC()
	data, err := json.Marshal(r)
	if err != nil {
		return r, nil, fmt.Errorf("encoding result: %w", err)
	}
	return r, data, nil
}

// heldResult is the decision recorded in a hold.
func (f *Engine) heldResult(h ledger.Hold) (contract.Result, error) {
	var r contract.Result
	if err := json.Unmarshal(h.Result, &r); err != nil {
		return r, ledgerError("hold", fmt.Errorf("the recorded decision of held request %s is not a result: %w", h.RequestID, err))
	}
	return r, nil
}

// settleHeld marks the request record of a held request that was rejected
// or cancelled done; a failure is only logged (its hold answers it).
func (f *Engine) settleHeld(ctx context.Context, j *job, id string) {
	if err := f.ledger.SetRequestState(ctx, id, ledger.StateDone, nil); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		j.log.WarnContext(ctx, "the state of a rejected or cancelled request could not be recorded", "request", id, "error", err.Error())
	}
}

// approver is who published an approval, rejection or cancel: its
// requestedBy (APPROVAL_TOPIC lets only approvers publish), else "an
// approver".
func approver(j *job) string {
	if j.req.RequestedBy != "" {
		return j.req.RequestedBy
	}
	return "an approver"
}

// operatorPlan is an operator request's own decision: planned, children
// the requests it acted on (no results of its own to expect).
func (f *Engine) operatorPlan(j *job, verb string, holds []ledger.Hold) contract.Result {
	r := j.decided(j.result(j.req.RequestID))
	n, zero := len(holds), 0
	r.Outcome, r.Children, r.ExpectedResults = contract.Planned, &n, &zero
	ids := make([]string, 0, len(holds))
	for _, h := range holds {
		ids = append(ids, h.RequestID)
	}
	r.Detail = fmt.Sprintf("%s %d held requests by %s (release %s)", verb, n, approver(j), j.req.RequestID)
	if n > 0 {
		r.Detail += ": " + request.Clip(strings.Join(ids, ", "))
	}
	return r
}

// nothingHeld is the refusal of an approval or rejection that names a
// request that is not held.
func (f *Engine) nothingHeld(ctx context.Context, j *job) contract.Result {
	r := j.decided(j.result(j.req.RequestID))
	r.Outcome = contract.Refused
	t := j.req.Target()
	msg := "request " + t + " is not held"
	if h, err := f.ledger.Hold(ctx, t); err == nil {
		msg = fmt.Sprintf("request %s is not held: it was %s by %s", t, h.State, h.DecidedBy)
	}
	r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: msg}
	r.Detail = "nothing was done"
	j.log.WarnContext(ctx, "an approval or rejection names a request that is not held", "target", t)
	return r
}
