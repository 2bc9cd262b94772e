// Package topics is the Pub/Sub side that the command-line tools share:
// a client for the emulator or Google, publishing a batch of request
// messages with their message ids, and resolving topic names from flags and
// the environment. cmd/publish (the integrators' publisher) and
// cmd/offboard (the operators' tool) both use it; it links neither
// Firestore nor Secret Manager. Every function is safe for concurrent use.
package topics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chat-offboard/chat-offboard/contract"
)

// NewClient returns a Pub/Sub client for project: the emulator at
// PUBSUB_EMULATOR_HOST (read through env) when set, otherwise Google's
// endpoint with Application Default Credentials.
func NewClient(ctx context.Context, project string, env func(string) string) (*pubsub.Client, error) {
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

// Message is one request message to publish: its data (exactly what the
// function parses), the request id (sent as the requestId attribute) and,
// once published, its message id.
type Message struct {
	RequestID string
	Data      []byte
	ID        string // set by PublishAll once published
}

// PublishAll publishes every message to topic and records its message id.
// It returns the errors of the messages that were not published (the
// others keep their message ids).
func PublishAll(ctx context.Context, c *pubsub.Client, topic string, msgs []*Message) error {
	p := c.Publisher(topic)
	p.PublishSettings.DelayThreshold = 5 * time.Millisecond
	defer p.Stop()
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.Publish(ctx, &pubsub.Message{
			Data:       m.Data,
			Attributes: map[string]string{"requestId": m.RequestID},
		})
	}
	var errs []error
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			if len(errs) < 5 {
				errs = append(errs, fmt.Errorf("request %s: %w", msgs[i].RequestID, err))
			} else if len(errs) == 5 {
				errs = append(errs, errors.New("…"))
			}
			continue
		}
		msgs[i].ID = id
	}
	if len(errs) > 0 {
		n := 0
		for _, m := range msgs {
			if m.ID == "" {
				n++
			}
		}
		return fmt.Errorf("%d of %d requests were not published to %s (those that were are listed on standard output): %w",
			n, len(msgs), topic, errors.Join(errs...))
	}
	return nil
}

// Names are resolved Pub/Sub names.
type Names struct {
	Project string // of the client (and of any temporary subscription)
	Topic   string // projects/P/topics/T
}

// Resolve resolves the project and the topic flags: project may be empty
// when topic is a full name (projects/P/topics/T), which tells it. flag
// names the topic's flag and variable in errors ("--topic or
// REQUEST_TOPIC").
func Resolve(project, topic, flag string) (Names, error) {
	n := Names{Project: strings.TrimSpace(project)}
	if strings.TrimSpace(topic) == "" {
		return n, fmt.Errorf("no request topic: set %s", flag)
	}
	if n.Project == "" {
		if p := strings.Split(strings.TrimSpace(topic), "/"); len(p) == 4 && p[0] == "projects" {
			n.Project = p[1]
		}
	}
	if n.Project == "" {
		return n, errors.New("no project: set --project or GOOGLE_CLOUD_PROJECT (or give full topic names)")
	}
	var err error
	if n.Topic, err = contract.TopicName(topic, n.Project); err != nil {
		return n, fmt.Errorf("--topic: %w", err)
	}
	return n, nil
}
