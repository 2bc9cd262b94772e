package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
	"github.com/chat-offboard/chat-offboard/ledger"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/api/iterator"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

func TestMain(m *testing.M) {
	unpin := firestoretest.Pin() // the report's tests read a ledger on the Firestore emulator
	code := pubsubtest.RunMain(m)
	unpin()
	os.Exit(code)
}

// syncBuffer is written by run while the test reads it.
type syncBuffer = syncbuf.Buffer

// invocation is one in-process run of the command.
type invocation struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command with args, stdin and the environment env.
func runCLI(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) invocation {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	t.Logf("publish %s → exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	return invocation{code, stdout.String(), stderr.String()}
}

// writeFile writes a file in the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pstestEnv is the command's environment against an in-process pstest
// server with a request and a result topic.
func pstestEnv(t *testing.T) (map[string]string, *pubsub.Client, func() []*pubsubpb.PubsubMessage) {
	t.Helper()
	ps, srv := pubsubtest.Pstest(t)
	ctx := context.Background()
	for _, id := range []string{"requests", "results"} {
		if err := pubsubtest.CreateTopic(ctx, ps, "test-project", id); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"PUBSUB_EMULATOR_HOST": srv.Addr,
		"GOOGLE_CLOUD_PROJECT": "test-project",
		"REQUEST_TOPIC":        "requests",
		"RESULT_TOPIC":         "results",
	}
	published := func() []*pubsubpb.PubsubMessage {
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

// newFunction builds the function in-process for the workspace ws, fanning
// out to requestTopic, publishing results to
// resultTopic through ps, against the emulated Chat API and Secret Manager.
func newFunction(t *testing.T, ps *pubsub.Client, project, requestTopic, resultTopic string, ws emulator.Workspace, protected ...string) (*engine.Engine, *emulator.Stack) {
	t.Helper()
	return newFunctionWith(t, ps, project, requestTopic, resultTopic, ws, func(*engine.Config) {}, protected...)
}

// newFunctionWith is newFunction with its configuration changed by mutate.
func newFunctionWith(t *testing.T, ps *pubsub.Client, project, requestTopic, resultTopic string, ws emulator.Workspace,
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
	mutate(&cfg)
	f, err := engine.New(context.Background(), cfg, engine.WithPubSubClient(ps),
		engine.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), engine.WithLedger(ledger.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, stack
}

// pubsubEvent builds the CloudEvent that Eventarc delivers for a message.
func pubsubEvent(project, topic, id string, data []byte, attrs map[string]string, published time.Time) event.Event {
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

// serve feeds the requests of the pull subscription sub to f as Eventarc
// would, acking what f answers with nil and nacking the rest, until ctx is
// done.
func serve(ctx context.Context, t *testing.T, ps *pubsub.Client, project, topic, sub string, f *engine.Engine) {
	s := ps.Subscriber(sub)
	go func() {
		err := s.Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
			if err := f.Handle(ctx, pubsubEvent(project, topic, m.ID, m.Data, m.Attributes, m.PublishTime)); err != nil {
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

// subscriptionsOf lists the subscriptions attached to a topic.
func subscriptionsOf(t *testing.T, ps *pubsub.Client, topic string) []string {
	t.Helper()
	it := ps.TopicAdminClient.ListTopicSubscriptions(context.Background(), &pubsubpb.ListTopicSubscriptionsRequest{Topic: topic})
	var out []string
	for {
		s, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}
