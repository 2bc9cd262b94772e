// Cancel (issue 23): {"cancel": REQUEST_ID} from APPROVAL_TOPIC stops a
// sweep, bulk request or restore. Held, it is answered refused. Running,
// the cancel is recorded in the request's hold; from then on its children
// and continuation pages answer every membership not yet decided refused
// ("cancelled"), and no Chat write is intended: each write's intent is
// recorded first and the cancel read after it, so a write is made only
// when its intent was recorded before the cancel (decided ones stay).

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// cancellable are the forms (ledger request kinds) a cancel stops while
// they run.
var cancellable = []string{request.KindSweep.String(), request.KindBulk.String(), request.KindRestore.String()}

// cancel is the flow of a cancel: a held request is answered refused; a
// running sweep, bulk request or restore has the cancel recorded.
func (f *Engine) cancel(ctx context.Context, j *job) ([]contract.Result, error) {
	t := j.req.Cancel
	rec, err := f.ledger.Request(ctx, t)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return []contract.Result{f.cannotCancel(ctx, j, "the ledger knows no request "+t)}, nil
	case err != nil:
		return nil, ledgerError("request", err)
	case rec.ParentID != "":
		return []contract.Result{f.cannotCancel(ctx, j, fmt.Sprintf("%s is a child of %s: cancel %s", t, rec.ParentID, rec.ParentID))}, nil
	}
	h, err := f.ledger.Hold(ctx, t)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return nil, ledgerError("hold", err)
	case h.State == ledger.HoldHeld || (h.State == ledger.HoldCancelled && h.ReleaseID == j.req.RequestID && len(h.Result) > 0):
		return f.cancelHeld(ctx, j, h)
	}
	if !slices.Contains(cancellable, rec.Kind) {
		return []contract.Result{f.cannotCancel(ctx, j, fmt.Sprintf("%s is a %s request: only a sweep, a bulk request or a restore can be cancelled while it runs", t, rec.Kind))}, nil
	}
	h, err = f.ledger.CancelRequest(ctx, t, ledger.Cancel{ID: j.req.RequestID, By: approver(j)})
	if err != nil {
		return nil, ledgerError("cancel", err)
	}
	r := f.operatorPlan(j, "cancelled", nil)
	r.Detail = fmt.Sprintf("cancel of %s recorded at %s by %s: its memberships not decided by then are answered refused (cancelled), decided ones stay",
		t, h.CancelledAt.UTC().Format(time.RFC3339Nano), h.CancelledBy)
	j.log.WarnContext(ctx, "cancel recorded", "target", t, "cancelledAt", h.CancelledAt)
	return []contract.Result{r}, nil
}

// cancelHeld answers a held request that a cancel names refused.
func (f *Engine) cancelHeld(ctx context.Context, j *job, h ledger.Hold) ([]contract.Result, error) {
	_, data, err := f.refuseHeld(j, h, "cancelled by "+approver(j))
	if err != nil {
		return nil, err
	}
	nh, err := f.ledger.CancelRequest(ctx, h.RequestID, ledger.Cancel{ID: j.req.RequestID, By: approver(j), Result: data})
	if err != nil {
		return nil, ledgerError("cancel", err)
	}
	if nh.ReleaseID != j.req.RequestID { // released or rejected meanwhile
		return []contract.Result{f.cannotCancel(ctx, j, fmt.Sprintf("%s was %s by %s meanwhile", h.RequestID, nh.State, nh.DecidedBy))}, nil
	}
	r, err := f.heldResult(nh) // as recorded, also on a redelivery
	if err != nil {
		return nil, err
	}
	f.settleHeld(ctx, j, h.RequestID)
	return []contract.Result{f.operatorPlan(j, "cancelled", []ledger.Hold{nh}), r}, nil
}

// cannotCancel is the refusal of a cancel that cannot act.
func (f *Engine) cannotCancel(ctx context.Context, j *job, why string) contract.Result {
	r := j.decided(j.result(j.req.RequestID))
	r.Outcome = contract.Refused
	r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: why}
	r.Detail = "nothing was cancelled"
	j.log.WarnContext(ctx, "a cancel cannot act; refused", "why", why)
	return r
}

// cancelOf returns the cancel recorded for the request j's request belongs
// to (its parent), or nil: one ledger read, until one is found. Top-level
// requests are not looked up (a cancel stops their children).
func (f *Engine) cancelOf(ctx context.Context, j *job) (*ledger.Hold, error) {
	root := j.req.ParentRequestID
	if root == "" {
		return nil, nil
	}
	if j.cancelled != nil {
		return j.cancelled, nil
	}
	h, err := f.ledger.Hold(ctx, root)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, ledgerError("hold", err)
	case !h.Cancelled():
		return nil, nil
	}
	j.cancelled = &h
	return &h, nil
}

// cancelledResult is the refusal of a membership that a cancel reached
// before it was decided.
func cancelledResult(j *job, h *ledger.Hold, membership, member string) contract.Result {
	r := j.decided(j.result(j.req.RequestID))
	r.Membership, r.Outcome = membership, contract.Refused
	if member != "" {
		r.Member = &contract.Member{Name: member, Type: "HUMAN"}
	}
	r.Error = &contract.ErrorInfo{Code: http.StatusConflict, Status: "ABORTED", Message: "cancelled"}
	r.Detail = fmt.Sprintf("cancelled by %s at %s before this membership was decided: nothing was written", h.CancelledBy, h.CancelledAt.UTC().Format(time.RFC3339Nano))
	return r
}

// cancelledIntent is called once the intent of a write is recorded: when
// the request was cancelled, the membership is decided refused (recorded
// here) and returned as decided, and no write is made.
func (f *Engine) cancelledIntent(ctx context.Context, j *job, membership, member string) (*ledger.Membership, error) {
	h, err := f.cancelOf(ctx, j)
	if err != nil || h == nil {
		return nil, err
	}
	r := cancelledResult(j, h, membership, member)
	r.ProcessedAt = f.now().UTC()
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	root := ledger.RootOf(j.req.RequestID, j.req.ParentRequestID)
	if err := f.ledger.Decide(ctx, j.req.RequestID, membership, ledger.Decision{Root: root, Member: member, Outcome: string(r.Outcome), Result: data}); err != nil {
		return nil, ledgerError("decision", err)
	}
	return &ledger.Membership{RequestID: j.req.RequestID, Name: membership, Member: member, Outcome: string(r.Outcome), Result: data}, nil
}

// cancelItem is one membership of a child that a cancel may stop.
type cancelItem struct {
	membership, member string
	rec                *ledger.Membership // its record, when read
}

// stopCancelled answers a child of a cancelled request before it reads or
// writes anything: decided memberships as recorded, the others refused.
// stop is false when the request was not cancelled, and when a membership
// has an intent without a decision (an earlier delivery may have written
// before the cancel: the flow recovers it, and intends nothing new).
func (f *Engine) stopCancelled(ctx context.Context, j *job, items []cancelItem) (out []contract.Result, stop bool, err error) {
	h, err := f.cancelOf(ctx, j)
	if err != nil || h == nil {
		return nil, err != nil, err
	}
	for i, it := range items {
		if it.rec == nil {
			m, found, err := f.recorded(ctx, j.req.RequestID, it.membership)
			if err != nil {
				return nil, true, err
			}
			if found {
				items[i].rec = &m
			}
		}
		if rec := items[i].rec; rec != nil && !rec.Decided() && !rec.IntendedAt.IsZero() {
			return nil, false, nil
		}
	}
	for _, it := range items {
		if it.rec != nil && it.rec.Decided() {
			r, err := j.replay(*it.rec)
			if err != nil {
				return nil, true, err
			}
			out = append(out, r)
			continue
		}
		out = append(out, cancelledResult(j, h, it.membership, it.member))
	}
	j.log.InfoContext(ctx, "the request was cancelled: its undecided memberships are refused", "cancelledBy", h.CancelledBy)
	return out, true, nil
}

// pageCancelled stops a continuation page of a cancelled sweep or restore:
// it is claimed with no children, refused.
func (f *Engine) pageCancelled(ctx context.Context, j *job, root string) ([]contract.Result, bool, error) {
	h, err := f.cancelOf(ctx, j)
	if err != nil || h == nil {
		return nil, err != nil, err
	}
	r := j.decided(j.result(j.req.RequestID))
	zero := 0
	r.Outcome, r.Children, r.ExpectedResults = contract.Refused, &zero, &zero
	r.Error = &contract.ErrorInfo{Code: http.StatusConflict, Status: "ABORTED", Message: "cancelled"}
	r.Detail = fmt.Sprintf("cancelled by %s: this page published nothing", h.CancelledBy)
	out, err := f.claim(ctx, j, root, j.req.RequestID, 0, 0, []contract.Result{r})
	return out, true, err
}

// spaceItems are the memberships of a restore's child, as cancelItems.
func spaceItems(v *request.Valid) []cancelItem {
	spaceID := strings.TrimPrefix(v.SpaceNames[0], "spaces/")
	out := make([]cancelItem, 0, len(v.People))
	for _, p := range v.People {
		out = append(out, cancelItem{membership: request.MembershipName(spaceID, p)})
	}
	return out
}

// personItems are the people of a space+members child, as cancelItems.
func personItems(people []spacePerson) []cancelItem {
	out := make([]cancelItem, 0, len(people))
	for _, p := range people {
		out = append(out, cancelItem{membership: p.membership, member: p.id, rec: p.rec})
	}
	return out
}

// oneOf is the one decision of a single membership's flow that stopped,
// or r when there is none.
func oneOf(r contract.Result, out []contract.Result) contract.Result {
	if len(out) == 1 {
		return out[0]
	}
	return r
}
