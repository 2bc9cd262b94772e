package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

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

// publishOne publishes one decision; one published again from the ledger
// keeps the time it was first processed.
func (f *Engine) publishOne(ctx context.Context, j *job, r *contract.Result) error {
	log := j.log
	if r.Membership != "" && (j.req == nil || r.Membership != j.req.Name) {
		log = log.With("membership", r.Membership)
	}
	if r.ProcessedAt.IsZero() {
		r.ProcessedAt = f.now().UTC()
	}
	msg, err := resultMessage(r)
	if err != nil {
		return err
	}
	if err := f.results.publish(ctx, msg); err != nil {
		log.WarnContext(ctx, "result not published; the event will be redelivered", "outcome", r.Outcome, "error", err.Error())
		return fmt.Errorf("publishing the %s result: %w", r.Outcome, err)
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
