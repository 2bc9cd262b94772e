package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Message is the Pub/Sub message carried by a messagePublished CloudEvent.
type Message struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	PublishTime time.Time
	// Subscription is the push subscription that delivered it, if told.
	Subscription string
	// Source is the CloudEvent's source: for a message of a Pub/Sub
	// topic, //pubsub.googleapis.com/projects/P/topics/T.
	Source string
}

// PushBody is the data of a messagePublished CloudEvent, and the body of a
// raw Pub/Sub push request (what internal/pusher sends too).
type PushBody struct {
	Message      *PushMessage `json:"message"`
	Subscription string       `json:"subscription"`
}

// PushMessage is the message of a push body. Pub/Sub, its emulator and
// Eventarc set both the camelCase and the snake_case names of the id and
// the publish time.
type PushMessage struct {
	Data             []byte            `json:"data"`
	Attributes       map[string]string `json:"attributes"`
	MessageID        string            `json:"messageId"`
	MessageIDSnake   string            `json:"message_id"`
	PublishTime      string            `json:"publishTime"`
	PublishTimeSnake string            `json:"publish_time"`
	OrderingKey      string            `json:"orderingKey,omitempty"`
	DeliveryAttempt  *int              `json:"deliveryAttempt,omitempty"`
}

// ID is the message id, whichever spelling carried it.
func (m *PushMessage) ID() string { return first(m.MessageID, m.MessageIDSnake) }

// DecodeEvent extracts the Pub/Sub message from a CloudEvent in binary or
// structured mode (the CloudEvents SDK has already undone the mode; what is
// left is the event's data). The publish time falls back to the event's time
// and the message id to the event's id.
func DecodeEvent(e event.Event) (Message, error) {
	var m Message
	if e.Type() != "" && e.Type() != contract.PublishedEventType {
		return m, fmt.Errorf("event type %q is not %s", request.Clip(e.Type()), contract.PublishedEventType)
	}
	var b PushBody
	if err := json.Unmarshal(e.Data(), &b); err != nil {
		return m, fmt.Errorf("event data is not a Pub/Sub message: %w", err)
	}
	if b.Message == nil {
		return m, errors.New("event data has no \"message\"")
	}
	m.Data = b.Message.Data
	m.Attributes = b.Message.Attributes
	m.ID = first(b.Message.ID(), e.ID())
	m.Subscription = b.Subscription
	m.Source = e.Source()
	if ts := first(b.Message.PublishTime, b.Message.PublishTimeSnake); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return m, fmt.Errorf("message publishTime %q is not RFC 3339", request.Clip(ts))
		}
		m.PublishTime = t
	} else {
		m.PublishTime = e.Time()
	}
	return m, nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
