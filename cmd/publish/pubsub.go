package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// newClient returns a Pub/Sub client for project: the emulator at
// PUBSUB_EMULATOR_HOST (read through env) when set, otherwise Google's
// endpoint with Application Default Credentials.
func newClient(ctx context.Context, project string, env func(string) string) (*pubsub.Client, error) {
	var opts []option.ClientOption
	if host := env("PUBSUB_EMULATOR_HOST"); host != "" {
		opts = append(opts,
			option.WithEndpoint(host),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			option.WithTelemetryDisabled(),
		)
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client for project %s: %w", project, err)
	}
	return c, nil
}

// publishAll publishes every item to topic and records its message id. It
// returns the errors of the messages that were not published (the others
// keep their message ids).
func publishAll(ctx context.Context, c *pubsub.Client, topic string, items []*item) error {
	p := c.Publisher(topic)
	p.PublishSettings.DelayThreshold = 5 * time.Millisecond
	defer p.Stop()
	results := make([]*pubsub.PublishResult, len(items))
	for i, it := range items {
		results[i] = p.Publish(ctx, &pubsub.Message{
			Data:       it.data,
			Attributes: map[string]string{"requestId": it.req.RequestID},
		})
	}
	var errs []error
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			if len(errs) < 5 {
				errs = append(errs, fmt.Errorf("request %s: %w", items[i].req.RequestID, err))
			} else if len(errs) == 5 {
				errs = append(errs, errors.New("…"))
			}
			continue
		}
		items[i].messageID = id
	}
	if len(errs) > 0 {
		n := 0
		for _, it := range items {
			if it.messageID == "" {
				n++
			}
		}
		return fmt.Errorf("%d of %d requests were not published to %s (those that were are listed on standard output): %w",
			n, len(items), topic, errors.Join(errs...))
	}
	return nil
}
