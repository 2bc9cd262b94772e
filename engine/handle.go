package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/logging"
	"github.com/chat-offboard/chat-offboard/request"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// Handle processes one messagePublished CloudEvent: it decodes and validates
// the request, runs the flow of its kind, and publishes the decisions the
// flow returns. It returns nil once every decision is published (permanent
// outcomes included), and an error when Pub/Sub should deliver the event
// again (docs/design.md, "Outcomes and retries"). The context's deadline
// bounds all work, retries included. It may run concurrently for many
// events. Each event ends with one "event handled" log line saying where
// its time went (spent.go).
func (f *Engine) Handle(ctx context.Context, e event.Event) error {
	start := time.Now()
	s := &spent{}
	err := f.handle(withSpent(ctx, s), e)
	s.log(ctx, f.log.With("eventId", e.ID()), time.Since(start), err)
	return err
}

// handle is Handle without the event's summary line.
func (f *Engine) handle(ctx context.Context, e event.Event) error {
	ctx, cancel := f.withDeadline(ctx)
	defer cancel()
	log := f.log.With("eventId", e.ID())

	if e.Type() == contract.ResultEventType {
		log.WarnContext(ctx, "a result event was delivered as a request; acknowledged without an answer (is a subscription of RESULT_TOPIC pushing to this function?)")
		return nil
	}
	msg, err := decodeWithin(ctx, e)
	if err != nil {
		j := newJob(log, Message{ID: e.ID()})
		return f.publish(ctx, j, rejected(j.result(e.ID()), &request.Error{Reason: err.Error()}))
	}
	if msg.Attributes["ce-type"] == contract.ResultEventType {
		log.WarnContext(ctx, "a result message arrived on the requests topic; acknowledged without an answer (results must not be published to REQUEST_TOPIC)", "messageId", msg.ID)
		return nil
	}
	j := newJob(log, msg)
	v, err := request.Parse(msg.Data, msg.ID)
	if err != nil && request.LooksLikeLogEntry(msg.Data) {
		// An Admin audit entry from the organization's log sink.
		if v, err = f.auditRequest(ctx, j); v == nil && err == nil {
			return nil
		}
	}
	if err != nil {
		j.log = log.With("requestId", looseRequestID(msg.Data, msg.ID))
		return f.publish(ctx, j, rejected(j.result(looseRequestID(msg.Data, msg.ID)), err))
	}
	j.req = v
	j.log = log.With("requestId", v.RequestID)
	if v.Name != "" {
		j.log = j.log.With("membership", v.Name)
	}
	if v.Kind == request.KindSpaceMembers || v.Kind == request.KindRestoreSpace {
		j.log = j.log.With("space", v.SpaceNames[0])
	}
	if done, err := f.operatorEntry(ctx, j); done {
		return err
	}
	if f.expired(msg) {
		info := &contract.ErrorInfo{Message: fmt.Sprintf("event published at %s is older than MAX_EVENT_AGE (%s); not acted on", msg.PublishTime.UTC().Format(time.RFC3339), f.cfg.MaxEventAge)}
		return f.publish(ctx, j, f.expiredDecisions(j, info)...)
	}
	deadline, _ := ctx.Deadline()
	j.deadline = deadline.Add(-publishReserve)
	if !msg.PublishTime.IsZero() {
		j.expiry = msg.PublishTime.Add(f.cfg.MaxEventAge)
	}
	if err := f.recordRequest(ctx, j); err != nil {
		var re *reuseError
		if errors.As(err, &re) {
			return f.reused(ctx, j, re)
		}
		return f.transient(ctx, j, err)
	}
	decisions, err := f.run(ctx, j)
	for i := range decisions {
		if decisions[i].ProcessedAt.IsZero() {
			decisions[i].ProcessedAt = f.now().UTC()
		}
	}
	if rerr := f.recordDecisions(ctx, j, decisions); rerr != nil {
		f.settleRequest(ctx, j, true)
		return f.transient(ctx, j, rerr)
	}
	if err == nil {
		f.settleRequest(ctx, j, false)
	}
	if perr := f.publish(ctx, j, decisions...); perr != nil {
		return perr
	}
	if err != nil {
		terr := f.transient(ctx, j, err)
		f.settleRequest(ctx, j, terr != nil)
		return terr
	}
	return nil
}

// run dispatches a valid request to the flow of its kind. A request that
// cannot fan out is decided invalid here, whatever its kind.
func (f *Engine) run(ctx context.Context, j *job) ([]contract.Result, error) {
	if out, stop, err := f.gate(ctx, j); stop || err != nil {
		return out, err
	}
	var out []contract.Result
	var err error
	switch j.req.Kind {
	case request.KindApprove, request.KindReject, request.KindCancel:
		out, err = f.operate(ctx, j)
	case request.KindSweep:
		if j.audit != nil {
			out, err = f.auditSweep(ctx, j)
			break
		}
		out, err = f.sweepPage(ctx, j)
	case request.KindSpaceMembers:
		out, err = f.sweepSpace(ctx, j)
	case request.KindBulk:
		out, err = f.planBulk(ctx, j)
	case request.KindRestore:
		out, err = f.restorePage(ctx, j)
	case request.KindRestoreSpace:
		out, err = f.restoreSpace(ctx, j)
	default:
		out, err = j.one(f.removeOne(ctx, j))
	}
	var fe *fanOutError
	if errors.As(err, &fe) {
		r := rejected(j.result(j.req.RequestID), fe.err)
		r.Detail = "the request cannot fan out: nothing was published and nothing was removed"
		return append(out, j.decided(r)), nil
	}
	return out, err
}

// one is the decisions of a flow that decides once, stamped with the
// event's attempts: none when it failed transiently.
func (j *job) one(r contract.Result, err error) ([]contract.Result, error) {
	if err != nil {
		return nil, err
	}
	return []contract.Result{j.decided(r)}, nil
}

// expiredDecisions answers an event that arrived past MAX_EVENT_AGE: one
// expired decision, or one per person of a space+members request (so that
// a sweep's consumer still counts one result per person).
func (f *Engine) expiredDecisions(j *job, info *contract.ErrorInfo) []contract.Result {
	if j.req.Kind == request.KindSpaceMembers || j.req.Kind == request.KindRestoreSpace {
		return expiredPeople(j, j.req.People, info)
	}
	r := j.result(j.req.RequestID)
	r.Membership = j.req.Name
	r.Outcome, r.Error = contract.Expired, info
	return []contract.Result{r}
}

// withDeadline gives ctx a deadline when it has none.
func (f *Engine) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.cfg.EventTimeout)
}

// expired reports whether the message is older than MAX_EVENT_AGE.
func (f *Engine) expired(m Message) bool {
	return !m.PublishTime.IsZero() && f.now().Sub(m.PublishTime) > f.cfg.MaxEventAge
}

// transient decides what to do with an error that Pub/Sub could retry: past
// MAX_EVENT_AGE (or when an API call gave up because the event would pass
// it) the event is answered expired with that error; otherwise a WARNING
// (CRITICAL when an operator must act) is logged and the error is returned
// for redelivery.
func (f *Engine) transient(ctx context.Context, j *job, err error) error {
	if f.expired(j.msg) || errors.Is(err, errEventExpired) {
		r := j.decided(j.result(j.req.RequestID))
		r.Membership = j.req.Name
		r.Outcome, r.Error = contract.Expired, errorInfo(err)
		if answerLost(err) {
			r.Detail = lostBeforeExpiry
		}
		r.ProcessedAt = f.now().UTC()
		if rerr := f.recordDecisions(ctx, j, []contract.Result{r}); rerr != nil && !f.expired(j.msg) {
			return rerr
		}
		return f.publish(ctx, j, r)
	}
	level := slog.LevelWarn
	var ua *unauthorizedError
	var pe *protectionError
	if tokens.IsPermanent(err) || errors.As(err, &ua) || errors.As(err, &pe) {
		level = logging.LevelCritical
	}
	j.log.Log(ctx, level, "transient failure; the event will be redelivered", "error", err.Error(), "attempts", *j.attempts)
	return err
}

// rejected is the invalid decision for a request the validator refused.
func rejected(r contract.Result, err error) contract.Result {
	r.Outcome = contract.Invalid
	r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "INVALID_ARGUMENT", Message: err.Error()}
	return r
}

// looseRequestID finds the requestId of a request that failed validation, so
// that the invalid result reaches whoever filters on it.
func looseRequestID(data []byte, fallback string) string {
	var x struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(data, &x) != nil || x.RequestID == "" || len(x.RequestID) > 512 {
		return fallback
	}
	for _, c := range x.RequestID {
		if c < 0x20 || c == 0x7f {
			return fallback
		}
	}
	return x.RequestID
}
