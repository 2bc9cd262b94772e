package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/chat-offboard/chat-offboard/contract"
)

// publisher publishes one message and returns once Pub/Sub has
// acknowledged it. Implementations are safe for concurrent use.
type publisher interface {
	publish(ctx context.Context, msg *pubsub.Message) error
}

// directPublisher sends each message as its own Publish RPC through the
// client's generated API, with its retry settings (UNAVAILABLE and the like
// are retried within ctx). Each event waits for its own result, so the
// bundler of pubsub.Publisher would only add goroutine hand-offs (and, with
// a batching delay, the delay) to every event: BENCHMARKS.md measures both.
type directPublisher struct {
	c     *pubsub.Client
	topic string // full name
}

func (d *directPublisher) publish(ctx context.Context, msg *pubsub.Message) error {
	_, err := d.c.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{
		Topic:    d.topic,
		Messages: []*pubsubpb.PubsubMessage{{Data: msg.Data, Attributes: msg.Attributes}},
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", d.topic, err)
	}
	return nil
}

// resultMessage builds the Pub/Sub message of a result event.
func resultMessage(r *contract.Result) (*pubsub.Message, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return &pubsub.Message{Data: data, Attributes: r.Attributes()}, nil
}

// maxPending bounds the removals an instance remembers while their results
// wait to be published.
const maxPending = 10000

// pendingRemovals remembers removals whose result could not be published.
// The event is redelivered, the Chat API then answers 404, and the result
// would say not_member and lose the role that restoring the membership
// needs; instead the remembered removal is published (with the same ce-id
// the first attempt had). It covers publish failures, not a process that
// dies between the delete and the publish. Safe for concurrent use.
type pendingRemovals struct {
	mu sync.Mutex
	m  map[string]contract.Result
}

func pendingKey(r *contract.Result) string { return r.RequestID + "\x00" + r.Membership }

func (p *pendingRemovals) put(r *contract.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]contract.Result{}
	}
	if len(p.m) >= maxPending {
		for k := range p.m { // drop any one: the map is only a best effort
			delete(p.m, k)
			break
		}
	}
	p.m[pendingKey(r)] = *r
}

func (p *pendingRemovals) get(r *contract.Result) (contract.Result, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[pendingKey(r)]
	return v, ok
}

func (p *pendingRemovals) remove(r *contract.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, pendingKey(r))
}

// publish publishes decisions in order and returns nil once Pub/Sub has
// acknowledged each, or the first publish error (so that the event is
// redelivered and nothing is lost).
func (f *Engine) publish(ctx context.Context, j *job, decisions ...contract.Result) error {
	for i := range decisions {
		if err := f.publishOne(ctx, j, &decisions[i]); err != nil {
			return err
		}
	}
	return nil
}

// publishOne publishes one decision. A not_member that is an earlier
// delivery's removal whose result could not be published then is published
// as that removal.
func (f *Engine) publishOne(ctx context.Context, j *job, r *contract.Result) error {
	log := j.log
	if r.Membership != "" && (j.req == nil || r.Membership != j.req.Name) {
		log = log.With("membership", r.Membership)
	}
	if r.Outcome == contract.NotMember {
		if earlier, ok := f.pending.get(r); ok {
			earlier.Detail = "removed by an earlier delivery of this request, whose result could not be published then"
			r = &earlier
		}
	}
	r.ProcessedAt = f.now().UTC()
	msg, err := resultMessage(r)
	if err != nil {
		return err
	}
	if err := f.results.publish(ctx, msg); err != nil {
		if r.Outcome == contract.Removed {
			f.pending.put(r)
		}
		log.WarnContext(ctx, "result not published; the event will be redelivered", "outcome", r.Outcome, "error", err.Error())
		return fmt.Errorf("publishing the %s result: %w", r.Outcome, err)
	}
	if r.Outcome == contract.Removed {
		f.pending.remove(r)
	}
	level := slog.LevelInfo
	if r.Outcome == contract.Failed || r.Outcome == contract.Expired {
		level = slog.LevelWarn
	}
	attrs := []any{"outcome", r.Outcome}
	if r.Error != nil {
		attrs = append(attrs, "error", r.Error.Message)
	}
	log.Log(ctx, level, "decision published", attrs...)
	return nil
}
