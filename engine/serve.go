package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// EventHandler serves fn over HTTP as the functions framework serves a
// CloudEvent function: a POST carrying a binary-mode or structured-mode
// CloudEvent, or a raw Pub/Sub push body (which becomes a messagePublished
// event whose data is that body), is answered 200 when fn returns nil and 500
// with the error otherwise; a request that is not an event is answered 400.
//
// Unlike the framework's CloudEvent wrapper, fn runs in the request's own
// goroutine with the request's own context. The framework's wrapper
// (cloudevents sdk-go client.NewHTTPReceiveHandler, v2.16.2) hands each request
// over an unbuffered channel shared by all requests to whichever waiting
// goroutine takes it first, so one event can run under another request's
// context, and when a request ends while its goroutine is still waiting that
// goroutine leaves and every later request is served by the next request's
// goroutine: the last one waits for traffic that may never come
// (cloudevents/sdk-go#1224). It is safe for concurrent use.
func EventHandler(fn func(context.Context, event.Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a CloudEvent or a Pub/Sub push body", http.StatusMethodNotAllowed)
			return
		}
		e, err := requestEvent(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := fn(r.Context(), *e); err != nil {
			fmt.Fprintf(os.Stderr, "Engine error: %v\n", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// requestEvent reads the CloudEvent of r: binary or structured mode when r
// says it is one (a ce-id header or a cloudevents content type), otherwise a
// raw Pub/Sub push body as the emulator's push subscriptions send it.
func requestEvent(r *http.Request) (*event.Event, error) {
	if r.Header.Get("ce-id") != "" || strings.Contains(r.Header.Get("Content-Type"), "cloudevents") {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			return nil, fmt.Errorf("not a CloudEvent: %w", err)
		}
		return e, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	var push PushBody
	if err := json.Unmarshal(body, &push); err != nil || push.Message == nil {
		return nil, fmt.Errorf("neither a CloudEvent nor a Pub/Sub push body")
	}
	e := event.New()
	e.SetType(contract.PublishedEventType)
	e.SetID(first(push.Message.ID(), "unknown"))
	e.SetSource("//pubsub.googleapis.com/" + strings.TrimPrefix(r.URL.Path, "/"))
	if err := e.SetData("application/json", json.RawMessage(bytes.TrimSpace(body))); err != nil {
		return nil, err
	}
	return &e, nil
}
