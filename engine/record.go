package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// The engine's use of the ledger (docs/design.md, "The ledger"): each
// request is recorded when it arrives; each membership write has its intent
// recorded before it; each decision is recorded before it is published, and
// a delivery that finds its decision recorded publishes it again (same
// ce-id) without a Chat call. Every ledger error is transient: the event is
// redelivered, and no Chat write is made without its intent (fail closed).

// errInFlight is an intent recorded by another delivery that may still be
// writing: this delivery backs off and is redelivered.
var errInFlight = errors.New("another delivery of this request is writing this membership now; redelivering")

// ledgerError wraps a ledger failure as transient.
func ledgerError(op string, err error) error {
	return &TransientError{Op: "ledger " + op, Err: err}
}

// recordRequest records the request of j (only if absent). A request is
// owned by the delivery that recorded it: another delivery that finds it
// open, and recently touched, is redelivered later (errInFlight), so that
// two deliveries never decide the same membership at once; a request left
// open longer than any invocation runs, or released by a delivery that
// stopped at a transient failure, is taken over; a done one, or one whose
// decisions are all recorded, publishes its recorded decisions again.
func (f *Engine) recordRequest(ctx context.Context, j *job) error {
	v := j.req
	rec, created, err := f.store(j).CreateRequest(ctx, ledger.Request{
		ID: v.RequestID, ParentID: v.ParentRequestID, Kind: v.Kind.String(), Target: summary(v),
		Reason: v.Reason, RequestedBy: v.RequestedBy, DryRun: v.DryRun, Expected: decisionCount(v),
		Fingerprint: v.Fingerprint(),
	})
	switch {
	case err != nil:
		return ledgerError("request", err)
	case created:
		j.fresh = true
		return nil
	}
	if err := f.sameRequest(ctx, j, rec); err != nil {
		return err
	}
	j.prior = rec.State
	if rec.State == ledger.StateDone {
		return nil
	}
	if done, err := f.decidedAll(ctx, j); err != nil || done {
		return err
	}
	if rec.State == ledger.StateOpen && f.now().Sub(rec.UpdatedAt) <= f.cfg.EventTimeout+30*time.Second {
		return &TransientError{Op: "ledger request", Err: errInFlight}
	}
	// Released, or left open by a delivery that is gone: take it over,
	// unless another delivery does so first.
	won, err := f.store(j).TakeOver(ctx, rec)
	switch {
	case err != nil:
		return ledgerError("request", err)
	case !won:
		return &TransientError{Op: "ledger request", Err: errInFlight}
	}
	return nil
}

// decisionKeys are the memberships whose recorded decisions complete a
// request, when they are known without an API call: the membership of a
// single removal; one per person of a space+members request whose people
// are all named by user id (as a sweep's children are). Such a request is
// never marked done: its decisions say it is (one Firestore write fewer per
// removal). Requests that fan out (bulk, sweep pages), and space+members
// requests that name someone by email, have none, and are marked done.
func decisionKeys(v *request.Valid) []string {
	switch v.Kind {
	case request.KindMembership, request.KindSpaceMember:
		return []string{v.Name}
	case request.KindSpaceMembers:
		spaceID := strings.TrimPrefix(v.SpaceNames[0], "spaces/")
		keys := make([]string, 0, len(v.People))
		for _, p := range v.People {
			id := strings.TrimPrefix(p, "users/")
			if request.IsEmail(id) {
				return nil
			}
			keys = append(keys, request.MembershipName(spaceID, id))
		}
		return keys
	}
	return nil
}

// decisionCount is the number of membership decisions a request that
// does not fan out will record (nil for one that fans out): a restore
// reads it to tell a finished removal from one still at work.
func decisionCount(v *request.Valid) *int {
	n := 1
	switch v.Kind {
	case request.KindSpaceMembers, request.KindRestoreSpace:
		n = len(v.People)
	case request.KindBulk, request.KindSweep, request.KindRestore:
		return nil
	}
	return &n
}

// decidedAll reports whether the ledger holds a decision for every key of
// decisionKeys(j.req) (false when there are none): the request is finished,
// and the flow publishes its decisions again.
func (f *Engine) decidedAll(ctx context.Context, j *job) (bool, error) {
	keys := decisionKeys(j.req)
	for _, k := range keys {
		m, found, err := f.own(ctx, j, k)
		if err != nil || !found || !m.Decided() {
			return false, err
		}
	}
	return len(keys) > 0, nil
}

// settleRequest marks the request of j done once its decisions are
// recorded (only a request that decisionKeys cannot tell finished from its
// decisions), or released when the delivery stops at a transient failure
// (the next delivery takes over at once). Errors are only logged: the
// decisions are safe in the ledger, and an open request is taken over in
// time.
func (f *Engine) settleRequest(ctx context.Context, j *job, failed bool) {
	if j.req == nil || (!failed && !j.held && decisionKeys(j.req) != nil) {
		return
	}
	state := ledger.StateDone
	switch {
	case failed && j.waiting:
		state = ledger.StateWaiting
	case failed:
		state = ledger.StateReleased
	case j.held:
		state = ledger.StateHeld
	}
	if err := f.store(j).SetRequestState(ctx, j.req.RequestID, state, nil); err != nil {
		j.log.WarnContext(ctx, "the request's state could not be recorded", "state", state, "error", err.Error())
	}
}

// summary is a short human summary of what a request removes from where.
func summary(v *request.Valid) string {
	switch v.Kind {
	case request.KindMembership, request.KindSpaceMember:
		return v.Name
	case request.KindBulk:
		return fmt.Sprintf("%s from %d spaces", people(v.People), len(v.SpaceNames))
	case request.KindSweep:
		return people(v.People) + " from every space"
	case request.KindRestore:
		return "restore of " + v.Restore
	case request.KindDue, request.KindApprove, request.KindReject, request.KindCancel:
		return v.Kind.String() + " " + v.Target()
	case request.KindRestoreSpace:
		return fmt.Sprintf("restore of %d memberships of %s removed by %s", len(v.People), v.SpaceNames[0], v.Restore)
	default:
		return people(v.People) + " from " + v.SpaceNames[0]
	}
}

// people names the people of a summary: the one person, or how many.
func people(p []string) string {
	if len(p) == 1 {
		return p[0]
	}
	return fmt.Sprintf("%d people", len(p))
}

// earlier returns what an earlier delivery of j's request recorded of its
// membership, and whether there is such a record: nothing, without a read,
// when this delivery created the request's record.
func (f *Engine) earlier(ctx context.Context, j *job, membership string) (ledger.Membership, bool, error) {
	if j.fresh {
		return ledger.Membership{}, false, nil
	}
	return f.own(ctx, j, membership)
}

// own returns the ledger's record of membership in j's own request (kept
// apart for a dry run), and whether there is one.
func (f *Engine) own(ctx context.Context, j *job, membership string) (ledger.Membership, bool, error) {
	return recordOf(ctx, f.store(j), j.req.RequestID, membership)
}

// recorded returns the ledger's record of (requestID, membership) of
// another request (a restore's source), and whether there is one.
func (f *Engine) recorded(ctx context.Context, requestID, membership string) (ledger.Membership, bool, error) {
	return recordOf(ctx, f.ledger, requestID, membership)
}

func recordOf(ctx context.Context, st ledger.Store, requestID, membership string) (ledger.Membership, bool, error) {
	m, err := st.Membership(ctx, requestID, membership)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return ledger.Membership{}, false, nil
	case err != nil:
		return ledger.Membership{}, false, ledgerError("membership", err)
	}
	return m, true, nil
}

// replay is a recorded decision, to publish again as it was (same ce-id).
// It marks the decision in j so that Handle does not record it again.
func (j *job) replay(m ledger.Membership) (contract.Result, error) {
	var r contract.Result
	if err := json.Unmarshal(m.Result, &r); err != nil {
		return r, ledgerError("replay", fmt.Errorf("the recorded decision of %s is not a result: %w", m.Name, err))
	}
	j.replays[m.RequestID+"\x00"+m.Name] = true
	if r.Detail == "" {
		r.Detail = "decided by an earlier delivery of this request; published again"
	}
	j.log.Info("decision already recorded; published again", "membership", m.Name, "outcome", r.Outcome)
	return r, nil
}

// isReplay reports whether r is a decision j published again.
func (j *job) isReplay(r *contract.Result) bool { return j.replays[r.RequestID+"\x00"+r.Membership] }

// intend records the intent of a write on membership before it is made. It
// returns errInFlight when another delivery recorded one that may still be
// running, and the recorded decision (decided) when one raced ahead.
func (f *Engine) intend(ctx context.Context, j *job, membership, member, role, action string) (decided *ledger.Membership, err error) {
	v := j.req
	m, created, err := f.store(j).Intend(ctx, ledger.Intent{
		RequestID: v.RequestID, Root: ledger.RootOf(v.RequestID, v.ParentRequestID),
		Membership: membership, Member: member, Role: role, Action: action,
	})
	switch {
	case err != nil:
		return nil, ledgerError("intent", err)
	case created:
		return f.cancelledIntent(ctx, j, membership, member)
	case m.Decided():
		return &m, nil
	}
	return nil, f.staleIntent(m)
}

// staleIntent is nil when an intent without an outcome is older than any
// invocation can run (its writer is gone: recover it), else errInFlight.
func (f *Engine) staleIntent(m ledger.Membership) error {
	if f.now().Sub(m.IntendedAt) > f.cfg.EventTimeout+30*time.Second {
		return nil
	}
	return &TransientError{Op: "ledger intent", Err: errInFlight}
}

// recordDecisions records the decisions of j before Handle publishes them:
// each membership decision not replayed. Page and bulk decisions are
// recorded by their claim.
func (f *Engine) recordDecisions(ctx context.Context, j *job, decisions []contract.Result) error {
	if j.req == nil {
		return nil
	}
	root := ledger.RootOf(j.req.RequestID, j.req.ParentRequestID)
	for i := range decisions {
		r := &decisions[i]
		if r.Membership == "" || j.isReplay(r) || r.RequestID != j.req.RequestID {
			continue
		}
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding result: %w", err)
		}
		member := ""
		if r.Member != nil {
			member = r.Member.Name
		}
		if err := f.store(j).Decide(ctx, r.RequestID, r.Membership, ledger.Decision{
			Root: root, Member: member, Outcome: string(r.Outcome), Role: r.Role, Result: data,
		}); err != nil {
			return ledgerError("decision", err)
		}
	}
	return nil
}

// claimed returns the recorded decisions of a page (or bulk fan-out) that a
// delivery already claimed, and whether there is a claim.
func (f *Engine) claimed(ctx context.Context, j *job, sweepID, key string) ([]contract.Result, bool, error) {
	c, err := f.store(j).Page(ctx, sweepID, key)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, ledgerError("page", err)
	}
	var out []contract.Result
	if err := json.Unmarshal(c.Result, &out); err != nil {
		return nil, false, ledgerError("page", fmt.Errorf("the recorded decisions of %s are not results: %w", key, err))
	}
	j.log.Info("fan-out already claimed; its decisions published again", "page", key)
	return out, true, nil
}

// claim records that a page (or bulk fan-out) published its children, with
// its decisions. When another delivery claimed it first, its decisions are
// returned instead.
func (f *Engine) claim(ctx context.Context, j *job, sweepID, key string, children, expected int, decisions []contract.Result) ([]contract.Result, error) {
	for i := range decisions {
		decisions[i].ProcessedAt = f.now().UTC()
	}
	data, err := json.Marshal(decisions)
	if err != nil {
		return nil, fmt.Errorf("encoding results: %w", err)
	}
	c, created, err := f.store(j).ClaimPage(ctx, sweepID, key, ledger.PageClaim{Children: children, ExpectedResults: expected, Result: data})
	if err != nil {
		return nil, ledgerError("claim", err)
	}
	if created {
		return decisions, nil
	}
	var out []contract.Result
	if err := json.Unmarshal(c.Result, &out); err != nil {
		return nil, ledgerError("claim", err)
	}
	return out, nil
}
