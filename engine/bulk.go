package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// errNoRequestTopic stops fan-out until REQUEST_TOPIC is configured.
var errNoRequestTopic = &ConfigError{Var: "REQUEST_TOPIC", Reason: "required for bulk and sweep requests (children are published to it)"}

// planBulk is the flow of a bulk request: one child request per space,
// published to REQUEST_TOPIC, and a planned decision with their number.
func (f *Engine) planBulk(ctx context.Context, j *job) ([]contract.Result, error) {
	v := j.req
	if out, ok, err := f.claimed(ctx, j, v.RequestID, bulkKey); ok || err != nil {
		return out, err
	}
	r := j.result(v.RequestID)
	children := make([]request.Request, 0, len(v.SpaceNames))
	for _, s := range v.SpaceNames {
		children = append(children, request.Request{
			RequestID: v.RequestID + "/" + s, ParentRequestID: v.RequestID,
			Space: s, Member: v.Member,
			Successor: v.Successor, AddSuccessor: v.AddSuccessor,
			AdminAccess: v.AdminAccess, DryRun: v.DryRun, Reason: v.Reason, RequestedBy: v.RequestedBy,
		})
	}
	if err := f.publishChildren(ctx, children); err != nil {
		return nil, err
	}
	n := len(children)
	r.Outcome, r.Children, r.ExpectedResults = contract.Planned, &n, &n
	r.Detail = fmt.Sprintf("bulk: %d child requests, one per space, each answered by one result with parentRequestId %q", n, v.RequestID)
	return f.claim(ctx, j, v.RequestID, bulkKey, n, n, []contract.Result{j.decided(r)})
}

// bulkKey is the claim key of a bulk request's fan-out.
const bulkKey = "bulk"

// fanOutError is a request whose children cannot be made (a child fails
// validation, e.g. its requestId would pass the limit): it is answered
// invalid, and nothing is published.
type fanOutError struct{ err *request.Error }

func (e *fanOutError) Error() string { return "cannot fan out: " + e.err.Error() }

func (e *fanOutError) Unwrap() error { return e.err }

// publishChildren validates every child request, then publishes them all,
// returning once every one is acknowledged. A child that fails validation
// stops the fan-out before anything is published (*fanOutError).
func (f *Engine) publishChildren(ctx context.Context, children []request.Request) error {
	if f.requests == nil {
		return errNoRequestTopic
	}
	msgs := make([]*pubsub.Message, 0, len(children))
	for _, c := range children {
		if _, err := request.Validate(c); err != nil {
			re := &request.Error{Reason: err.Error()}
			errors.As(err, &re)
			return &fanOutError{err: &request.Error{Field: re.Field, Reason: fmt.Sprintf("child request for %s: %s", childTarget(c), re.Reason)}}
		}
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding child request: %w", err)
		}
		msgs = append(msgs, &pubsub.Message{
			Data:       data,
			Attributes: map[string]string{"requestId": c.RequestID, "parentRequestId": c.ParentRequestID},
		})
	}
	results := make([]*pubsub.PublishResult, 0, len(msgs))
	for _, m := range msgs {
		results = append(results, f.requests.Publish(ctx, m))
	}
	var errs []error
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &TransientError{Op: "publish children", Err: fmt.Errorf("%d of %d child requests not published: %w", len(errs), len(children), errs[0])}
	}
	return nil
}

// childTarget names what a child request is for, in an error.
func childTarget(c request.Request) string {
	if c.PageToken != "" {
		return "the next page of spaces"
	}
	return c.Space
}
