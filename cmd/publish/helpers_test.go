package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"

	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

func TestMain(m *testing.M) { os.Exit(pubsubtest.RunMain(m)) }

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
// server with a request and a result topic (clitest.PstestEnv).
func pstestEnv(t *testing.T) (map[string]string, *pubsub.Client, func() []*pubsubpb.PubsubMessage) {
	t.Helper()
	return clitest.PstestEnv(t)
}

// newFunction builds the function in-process (clitest.NewFunction).
func newFunction(t *testing.T, ps *pubsub.Client, project, requestTopic, resultTopic string, ws emulator.Workspace, protected ...string) (*engine.Engine, *emulator.Stack) {
	t.Helper()
	return clitest.NewFunction(t, ps, project, requestTopic, resultTopic, ws, nil, protected...)
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
