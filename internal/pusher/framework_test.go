package pusher

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	cloudevents "github.com/cloudevents/sdk-go/v2"
)

var (
	ffOnce   sync.Once
	ffAddr   string
	ffErr    error
	ffEvents = make(chan cloudevents.Event, 100)
)

// functionsFramework serves, once per test binary, the real functions
// framework with a CloudEvent function at "/" that records its events. The
// framework cannot be stopped; its listener ends with the test binary.
func functionsFramework(t *testing.T) string {
	t.Helper()
	ffOnce.Do(func() {
		ffErr = funcframework.RegisterCloudEventFunctionContext(context.Background(), "/",
			func(_ context.Context, e cloudevents.Event) error { ffEvents <- e; return nil })
		if ffErr != nil {
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ffErr = err
			return
		}
		ffAddr = l.Addr().String()
		l.Close()
		host, port, _ := net.SplitHostPort(ffAddr)
		go func() { ffErr = funcframework.StartHostPort(host, port) }()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if c, err := net.Dial("tcp", ffAddr); err == nil {
				c.Close()
				return
			}
		}
		ffErr = context.DeadlineExceeded
	})
	if ffErr != nil {
		t.Fatalf("functions framework: %v", ffErr)
	}
	return "http://" + ffAddr
}

// TestFunctionsFramework checks that both modes reach a CloudEvent function
// served by the real functions framework as the same messagePublished event.
// (Observed: converting a push body, the framework drops "subscription" from
// the event data; a binary CloudEvent keeps it.)
func TestFunctionsFramework(t *testing.T) {
	base := functionsFramework(t)
	c, _ := pubsubtest.Pstest(t)
	for _, mode := range []Mode{PushBody, CloudEventBinary} {
		t.Run(mode.String(), func(t *testing.T) {
			topic, sub := setup(t, c)
			start(t, Config{Client: c, Subscription: sub, Topic: topic, Target: base, Mode: mode, Concurrency: 2})
			ids := publish(t, c, topic, &pubsub.Message{Data: []byte(`{"requestId":"x"}`), Attributes: map[string]string{"a": "b"}})
			var e cloudevents.Event
			select {
			case e = <-ffEvents:
			case <-time.After(30 * time.Second):
				t.Fatal("the function got no event")
			}
			if e.ID() != ids[0] || e.Type() != CloudEventType || e.Source() != "//pubsub.googleapis.com/"+topic || e.SpecVersion() != "1.0" ||
				time.Since(e.Time()) > time.Minute {
				t.Errorf("event = %v", e)
			}
			var data struct {
				Message struct {
					Data       []byte            `json:"data"`
					Attributes map[string]string `json:"attributes"`
					MessageID  string            `json:"messageId"`
				} `json:"message"`
				Subscription string `json:"subscription"`
			}
			if err := json.Unmarshal(e.Data(), &data); err != nil {
				t.Fatalf("event data %s: %v", e.Data(), err)
			}
			if string(data.Message.Data) != `{"requestId":"x"}` || data.Message.Attributes["a"] != "b" || data.Message.MessageID != ids[0] {
				t.Errorf("event data = %s", e.Data())
			}
			t.Logf("event data: %s", e.Data())
		})
	}
}
