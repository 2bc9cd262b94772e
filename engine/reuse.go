package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// A request id means one request (issue 20; docs/design.md, "One request
// per id"). The ledger records each request's fingerprint
// (request.Valid.Fingerprint); a later request under the same id is
// answered from the ledger only when it asks for the same within
// REQUEST_REPLAY_WINDOW of the id's first use. Otherwise it is answered
// id_reused, loudly, with no Chat call and no change to what is recorded.
// A dry run's records are kept apart (ledger.DryRuns), so a dry run never
// uses up the id of the real request.

// reusedRecordPrefix starts the name of the record of an id_reused answer,
// kept beside the memberships of the request that holds the id (so that its
// leaver report counts it) and named by the fingerprint of the refused
// request: never a membership name.
const reusedRecordPrefix = "id-reused/"

// store is the ledger of j's own records: the dry-run view for a dry run.
// Reads of another request's records (a restore's source) use f.ledger.
func (f *Engine) store(j *job) ledger.Store {
	if j.req != nil && j.req.DryRun {
		return ledger.DryRuns(f.ledger)
	}
	return f.ledger
}

// reuseError is a request whose id the ledger holds for another request,
// or for this one since before the replay window.
type reuseError struct {
	held        ledger.Request // the record that holds the id
	differences []string       // how the request differs; none: the window passed
}

func (e *reuseError) Error() string {
	return "request id " + e.held.ID + " was already used on " + e.held.CreatedAt.UTC().Format(time.DateOnly)
}

// sameRequest checks the request of j against rec, the record that holds
// its id: nil when j is that request (a redelivery, or the publisher's
// retry, within the window), else a *reuseError. A child (bulk, sweep,
// restore) is the request its parent published when it has the same parent:
// its id is derived from the parent's, which was checked, and what the
// parent derives (group lists, display names, a restore's members) may
// differ between two deliveries of the parent. A request that an Admin
// audit entry started is named by the audit activity, so it has no window;
// nor has a request released from a hold.
func (f *Engine) sameRequest(ctx context.Context, j *job, rec ledger.Request) error {
	v := j.req
	if rec.ParentID != v.ParentRequestID {
		return &reuseError{held: rec, differences: []string{fmt.Sprintf("parent request: %s then, %s now", shownID(rec.ParentID), shownID(v.ParentRequestID))}}
	}
	if v.ParentRequestID != "" {
		return nil
	}
	if d := request.Differences(rec.Fingerprint, v.Fingerprint()); len(d) > 0 {
		return &reuseError{held: rec, differences: d}
	}
	if j.audit == nil && f.now().Sub(rec.CreatedAt) > f.replayWindow() && !f.released(ctx, j) {
		return &reuseError{held: rec}
	}
	return nil
}

// released reports whether the request of j was held and then released
// (issue 23): its message is published again under its id when an
// approval or the end of its grace period releases it, which may be after
// the window. A hold that cannot be read counts as none.
func (f *Engine) released(ctx context.Context, j *job) bool {
	if j.req.DryRun {
		return false
	}
	h, err := f.ledger.Hold(ctx, j.req.RequestID)
	return err == nil && (h.State == ledger.HoldReleased || h.State == ledger.HoldDispatched)
}

// replayWindow is REQUEST_REPLAY_WINDOW (DefaultReplayWindow when the
// Config was built without LoadConfig).
func (f *Engine) replayWindow() time.Duration {
	if f.cfg.ReplayWindow > 0 {
		return f.cfg.ReplayWindow
	}
	return DefaultReplayWindow
}

func shownID(id string) string {
	if id == "" {
		return "none"
	}
	return request.Clip(id)
}

// reused answers a request whose id is held by another (e): one id_reused
// decision, logged at WARNING, recorded beside the records of the request
// that holds the id (which do not change) so that its leaver report counts
// it, then published. No Chat call is made.
func (f *Engine) reused(ctx context.Context, j *job, e *reuseError) error {
	v := j.req
	used := e.held.CreatedAt.UTC().Format(time.DateOnly)
	r := j.result(v.RequestID)
	r.Outcome = contract.IDReused
	msg := fmt.Sprintf("requestId %s was already used on %s for a different request (%s): nothing was done", request.Clip(v.RequestID), used, strings.Join(e.differences, "; "))
	if len(e.differences) == 0 {
		msg = fmt.Sprintf("requestId %s was already used on %s, longer ago than REQUEST_REPLAY_WINDOW (%s): nothing was done", request.Clip(v.RequestID), used, f.replayWindow())
	}
	r.Error = &contract.ErrorInfo{Code: http.StatusConflict, Status: "ALREADY_EXISTS", Message: msg}
	r.Detail = "a new departure needs a new requestId (one per departure event, with its date: docs/integrators.md); the decisions recorded under this id are unchanged"
	r.ProcessedAt = f.now().UTC()
	j.log.WarnContext(ctx, "request id already used for another request; answered id_reused, nothing done", "usedOn", used, "differences", e.differences)
	h := sha256.Sum256([]byte(v.Fingerprint()))
	data, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	if err := f.store(j).Decide(ctx, e.held.ID, reusedRecordPrefix+hex.EncodeToString(h[:8]), ledger.Decision{
		Root: e.held.Root, Outcome: string(r.Outcome), Result: data,
	}); err != nil {
		err = ledgerError("id_reused decision", err)
		j.log.WarnContext(ctx, "transient failure; the event will be redelivered", "error", err.Error())
		return err
	}
	return f.publish(ctx, j, r)
}
