package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// (cloudevents/sdk-go#1224).
//
// It reads at most MaxBodyBytes of a request body. A longer body is not read
// further: fn gets an event with the message id (the ce-id header, else
// x-goog-pubsub-message-id, else "unknown") and no data, under a context
// that says so, and Handle decides it invalid; so memory stays bounded
// whatever Pub/Sub delivers (its messages reach 10 MB). It is safe for
// concurrent use.
func EventHandler(fn func(context.Context, event.Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a CloudEvent or a Pub/Sub push body", http.StatusMethodNotAllowed)
			return
		}
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		e, err := requestEvent(r)
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			e, err = oversizeEvent(r), nil
			ctx = context.WithValue(ctx, oversizeKey{}, mbe.Limit)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := fn(ctx, *e); err != nil {
			fmt.Fprintf(os.Stderr, "Engine error: %v\n", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// MaxBodyBytes is the most EventHandler reads of a request body: 1 MiB. A
// request's message data is at most request.MaxSize (64 KiB), 86 KiB in
// base64 inside a push body, and an Admin audit LogEntry a few KiB.
const MaxBodyBytes = 1 << 20

// oversizeKey marks the context of an event whose body was longer than
// MaxBodyBytes; its value is the limit (int64).
type oversizeKey struct{}

// oversizeLimit reports whether ctx is that of an event whose body was
// not read past limit bytes.
func oversizeLimit(ctx context.Context) (limit int64, ok bool) {
	limit, ok = ctx.Value(oversizeKey{}).(int64)
	return limit, ok
}

// decodeWithin is DecodeEvent, refusing the event of a body that
// EventHandler did not read past MaxBodyBytes.
func decodeWithin(ctx context.Context, e event.Event) (Message, error) {
	if limit, ok := oversizeLimit(ctx); ok {
		return Message{}, fmt.Errorf("the request body is larger than %d bytes (1 MiB); it was not read further", limit)
	}
	return DecodeEvent(e)
}

// oversizeEvent is the event of a request whose body was too long: the
// message id from the headers (Eventarc's binary mode sets ce-id; a push
// without a wrapper sets x-goog-pubsub-message-id), else "unknown"; no data.
func oversizeEvent(r *http.Request) *event.Event {
	e := event.New()
	e.SetType(contract.PublishedEventType)
	e.SetID(first(r.Header.Get("ce-id"), r.Header.Get("x-goog-pubsub-message-id"), "unknown"))
	e.SetSource("//pubsub.googleapis.com/" + strings.TrimPrefix(r.URL.Path, "/"))
	return &e
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
