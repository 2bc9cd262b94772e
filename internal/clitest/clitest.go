// Package clitest is test plumbing for the command-line tools' tests
// (cmd/publish, cmd/offboard): the function built in-process against the
// emulated Workspace and fed from a Pub/Sub pull subscription as Eventarc
// feeds it, and the Pub/Sub topics around it (the real emulator or
// in-process pstest). Production code never imports it.
package clitest

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// PstestEnv is a tool's environment against an in-process pstest server
// in project "test-project" with the topics "requests" (REQUEST_TOPIC) and
// "results" (RESULT_TOPIC); published lists what was published to the
// requests topic.
func PstestEnv(t *testing.T) (env map[string]string, ps *pubsub.Client, published func() []*pubsubpb.PubsubMessage) {
	t.Helper()
	ps, srv := pubsubtest.Pstest(t)
	ctx := context.Background()
	for _, id := range []string{"requests", "results"} {
		if err := pubsubtest.CreateTopic(ctx, ps, "test-project", id); err != nil {
			t.Fatal(err)
		}
	}
	env = map[string]string{
		"PUBSUB_EMULATOR_HOST": srv.Addr,
		"GOOGLE_CLOUD_PROJECT": "test-project",
		"REQUEST_TOPIC":        "requests",
		"RESULT_TOPIC":         "results",
	}
	published = func() []*pubsubpb.PubsubMessage {
		var out []*pubsubpb.PubsubMessage
		for _, m := range srv.Messages() {
			if strings.HasSuffix(m.Topic, "/topics/requests") {
				out = append(out, &pubsubpb.PubsubMessage{Data: m.Data, Attributes: m.Attributes, MessageId: m.ID})
			}
		}
		return out
	}
	return env, ps, published
}

// NewFunction builds the function in-process for the workspace ws, fanning
// out to requestTopic and publishing results to resultTopic through ps,
// against the emulated Chat API and Secret Manager, with an in-process
// ledger; mutate (may be nil) changes its configuration first.
func NewFunction(t *testing.T, ps *pubsub.Client, project, requestTopic, resultTopic string, ws emulator.Workspace,
	mutate func(*engine.Config), protected ...string) (*engine.Engine, *emulator.Stack) {
	t.Helper()
	return NewFunctionOn(t, ps, ledger.NewMemory(), project, requestTopic, resultTopic, ws, mutate, protected...)
}

// NewFunctionOn is NewFunction keeping its ledger in store (the Firestore
// emulator's, say), which it does not close.
func NewFunctionOn(t *testing.T, ps *pubsub.Client, store ledger.Store, project, requestTopic, resultTopic string, ws emulator.Workspace,
	mutate func(*engine.Config), protected ...string) (*engine.Engine, *emulator.Stack) {
	t.Helper()
	stack, err := emulator.StartAll(ws, emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	cfg := engine.Config{
		Project:               project,
		TokenSecret:           stack.SecretName + "/versions/latest",
		ResultTopic:           "projects/" + project + "/topics/" + resultTopic,
		RequestTopic:          "projects/" + project + "/topics/" + requestTopic,
		Protected:             protected,
		MaxEventAge:           time.Hour,
		WritesPerMinute:       60000,
		ReadsPerMinute:        60000,
		ChatEndpoint:          stack.Chat.URL(),
		DirectoryEndpoint:     stack.Directory.URL(),
		SecretManagerEndpoint: stack.Secrets.Addr(),
		EventTimeout:          20 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f, err := engine.New(context.Background(), cfg, engine.WithPubSubClient(ps),
		engine.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), engine.WithLedger(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, stack
}

// PubSubEvent builds the CloudEvent that Eventarc delivers for a message.
func PubSubEvent(project, topic, id string, data []byte, attrs map[string]string, published time.Time) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(contract.PublishedEventType)
	e.SetSource("//pubsub.googleapis.com/projects/" + project + "/topics/" + topic)
	e.SetTime(published)
	if attrs == nil {
		attrs = map[string]string{}
	}
	_ = e.SetData("application/json", map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString(data),
			"attributes":  attrs,
			"messageId":   id,
			"publishTime": published.UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/" + project + "/subscriptions/requests-eventarc",
	})
	return e
}

// Serve feeds the requests of the pull subscription sub to f as Eventarc
// would, acking what f answers with nil and nacking the rest, until ctx is
// done.
func Serve(ctx context.Context, t *testing.T, ps *pubsub.Client, project, topic, sub string, f *engine.Engine) {
	s := ps.Subscriber(sub)
	go func() {
		err := s.Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
			if err := f.Handle(ctx, PubSubEvent(project, topic, m.ID, m.Data, m.Attributes, m.PublishTime)); err != nil {
				m.Nack()
				return
			}
			m.Ack()
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("receiving requests: %v", err)
		}
	}()
}

// E2E is the Pub/Sub side of an end-to-end test on the real emulator: a
// client, the request and result topics, and the pull subscription on the
// request topic from which the function is fed.
type E2E struct {
	Host, Project              string
	PS                         *pubsub.Client
	ReqTopic, ResTopic, ReqSub string
}

// NewE2E creates the topics and the subscription in project on the
// emulator at host.
func NewE2E(ctx context.Context, t *testing.T, host, project string) *E2E {
	t.Helper()
	e := &E2E{
		Host: host, Project: project, PS: pubsubtest.NewClient(t, host, project),
		ReqTopic: pubsubtest.UniqueID("requests"), ResTopic: pubsubtest.UniqueID("results"),
	}
	for _, id := range []string{e.ReqTopic, e.ResTopic} {
		if err := pubsubtest.CreateTopic(ctx, e.PS, project, id); err != nil {
			t.Fatal(err)
		}
	}
	e.ReqSub = pubsubtest.UniqueID("function")
	if err := pubsubtest.CreatePullSubscription(ctx, e.PS, project, e.ReqSub, e.ReqTopic, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// Start starts the function on workspace ws (its configuration changed by
// mutate, which may be nil), never removing protected, fed from the
// request subscription until ctx is done.
func (e *E2E) Start(ctx context.Context, t *testing.T, ws emulator.Workspace, mutate func(*engine.Config), protected ...string) (*engine.Engine, *emulator.Stack) {
	t.Helper()
	f, stack := NewFunction(t, e.PS, e.Project, e.ReqTopic, e.ResTopic, ws, mutate, protected...)
	Serve(ctx, t, e.PS, e.Project, e.ReqTopic, e.ReqSub, f)
	return f, stack
}

// Env is a tool's environment for these topics.
func (e *E2E) Env() map[string]string {
	return map[string]string{
		"PUBSUB_EMULATOR_HOST": e.Host,
		"GOOGLE_CLOUD_PROJECT": e.Project,
		"REQUEST_TOPIC":        e.ReqTopic,
		"RESULT_TOPIC":         e.ResTopic,
	}
}
