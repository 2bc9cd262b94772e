package pubsubtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// EmulatorOptions are the options that point a Google Cloud gRPC client
// (Pub/Sub, Secret Manager, …) at an emulator on host (host:port): plaintext
// gRPC, no credentials. Every client of an emulation dials with these.
func EmulatorOptions(host string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// ClientOptions are the options that point a Pub/Sub client at the emulator
// (or pstest) on host: EmulatorOptions, without telemetry. They do not touch
// the process environment, so clients for different emulators may be built
// concurrently.
func ClientOptions(host string) []option.ClientOption {
	return append(EmulatorOptions(host), option.WithTelemetryDisabled())
}

// NewClient returns a Pub/Sub client for project on the emulator at host,
// closed by tb.Cleanup. It fails tb if the client cannot be built. It may be
// called from parallel tests, and the client may be shared by goroutines.
func NewClient(tb testing.TB, host, project string) *pubsub.Client {
	tb.Helper()
	c, err := pubsub.NewClient(context.Background(), project, ClientOptions(host)...)
	if err != nil {
		tb.Fatalf("pubsubtest: client for %s: %v", host, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Pstest starts the in-process fake pstest and returns a client for the
// project "test-project" on it; both are closed by tb.Cleanup. Use it where no
// push delivery is involved. It may be called from parallel tests: each call
// has its own fake.
func Pstest(tb testing.TB) (*pubsub.Client, *pstest.Server) {
	tb.Helper()
	srv := pstest.NewServer()
	c, err := pubsub.NewClient(context.Background(), "test-project", ClientOptions(srv.Addr)...)
	if err != nil {
		_ = srv.Close()
		tb.Fatalf("pubsubtest: client for pstest: %v", err)
	}
	tb.Cleanup(func() {
		_ = c.Close()
		_ = srv.Close()
	})
	return c, srv
}

var idCounter atomic.Uint64

// UniqueID returns a valid topic or subscription id that starts with prefix
// (characters Pub/Sub rejects are replaced by '-') and is unique across
// calls and, with overwhelming probability, across processes: prefix, a
// counter and random hex. Safe for concurrent use.
func UniqueID(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '-', r == '_', r == '.', r == '~', r == '+':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := b.String()
	if p == "" || !(p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z') {
		p = "t" + p
	}
	if len(p) > 200 {
		p = p[:200]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s-%d-%s", p, idCounter.Add(1), hex.EncodeToString(rnd[:]))
}

// TopicName returns projects/{project}/topics/{id}; a full name is returned
// as is. Safe for concurrent use.
func TopicName(project, id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + project + "/topics/" + id
}

// SubscriptionName returns projects/{project}/subscriptions/{id}; a full name
// is returned as is. Safe for concurrent use.
func SubscriptionName(project, id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + project + "/subscriptions/" + id
}

func ignoreExists(err error) error {
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

// CreateTopic creates the topic id (or full name) in project. It is
// idempotent: a topic that already exists is not an error. Safe for
// concurrent use.
func CreateTopic(ctx context.Context, c *pubsub.Client, project, id string) error {
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: TopicName(project, id)})
	if err = ignoreExists(err); err != nil {
		return fmt.Errorf("pubsubtest: create topic %s: %w", TopicName(project, id), err)
	}
	return nil
}

// SubscriptionOption adjusts a subscription before it is created. The options
// made here have no state and may be shared and used concurrently.
type SubscriptionOption func(*pubsubpb.Subscription)

// WithAckDeadline sets the subscription's ack deadline (default 10 s; the
// emulator's push waits this long for an answer).
func WithAckDeadline(d time.Duration) SubscriptionOption {
	return func(s *pubsubpb.Subscription) { s.AckDeadlineSeconds = int32(d / time.Second) }
}

// WithRetryPolicy sets the redelivery backoff of the subscription.
func WithRetryPolicy(minBackoff, maxBackoff time.Duration) SubscriptionOption {
	return func(s *pubsubpb.Subscription) {
		s.RetryPolicy = &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(minBackoff),
			MaximumBackoff: durationpb.New(maxBackoff),
		}
	}
}

// WithSubscription lets the caller change any field of the subscription.
func WithSubscription(f func(*pubsubpb.Subscription)) SubscriptionOption { return f }

func createSubscription(ctx context.Context, c *pubsub.Client, s *pubsubpb.Subscription, opts []SubscriptionOption) error {
	for _, o := range opts {
		o(s)
	}
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, s)
	if err = ignoreExists(err); err != nil {
		return fmt.Errorf("pubsubtest: create subscription %s: %w", s.Name, err)
	}
	return nil
}

// CreatePullSubscription creates the pull subscription id (or full name) in
// project on topic (id or full name), with filter if not empty and an ack
// deadline of 10 s unless opts say otherwise. An existing subscription is not
// an error (its settings are not compared). Safe for concurrent use.
func CreatePullSubscription(ctx context.Context, c *pubsub.Client, project, id, topic, filter string, opts ...SubscriptionOption) error {
	return createSubscription(ctx, c, &pubsubpb.Subscription{
		Name:               SubscriptionName(project, id),
		Topic:              TopicName(project, topic),
		Filter:             filter,
		AckDeadlineSeconds: 10,
	}, opts)
}

// CreatePushSubscription creates the push subscription id (or full name) in
// project on topic (id or full name) that POSTs the wrapped push body to
// endpoint, with an ack deadline of 10 s unless opts say otherwise. The
// function (engine.EventHandler) takes the path of endpoint, such as
// /projects/P/topics/T, as the source of the event it makes of the push
// body. An existing subscription is not an error (its settings are not
// compared). Safe for concurrent use.
func CreatePushSubscription(ctx context.Context, c *pubsub.Client, project, id, topic, endpoint string, opts ...SubscriptionOption) error {
	return createSubscription(ctx, c, &pubsubpb.Subscription{
		Name:               SubscriptionName(project, id),
		Topic:              TopicName(project, topic),
		PushConfig:         &pubsubpb.PushConfig{PushEndpoint: endpoint},
		AckDeadlineSeconds: 10,
	}, opts)
}

// Pipeline is a project of its own on an emulator with the function's two
// topics and a pull subscription of the results topic: what an end-to-end
// test of the function needs before it starts one.
type Pipeline struct {
	Client   *pubsub.Client
	Project  string
	Requests string // the requests topic's id
	Results  string // the results topic's id
	// ResultsSub is the id of the pull subscription of Results.
	ResultsSub string
}

// NewPipeline creates a Pipeline on the emulator at host, with ids made
// unique by UniqueID from prefix; tb fails when anything cannot be
// created. Safe for concurrent use.
func NewPipeline(ctx context.Context, tb testing.TB, host, prefix string) Pipeline {
	tb.Helper()
	p := Pipeline{Project: UniqueID(prefix + "-project"), Requests: UniqueID("requests"),
		Results: UniqueID("results"), ResultsSub: UniqueID("results-pull")}
	p.Client = NewClient(tb, host, p.Project)
	for _, id := range []string{p.Requests, p.Results} {
		if err := CreateTopic(ctx, p.Client, p.Project, id); err != nil {
			tb.Fatal(err)
		}
	}
	if err := CreatePullSubscription(ctx, p.Client, p.Project, p.ResultsSub, p.Results, ""); err != nil {
		tb.Fatal(err)
	}
	return p
}
