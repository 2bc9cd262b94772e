package main

import (
	"context"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/cmd/internal/topics"
)

// publishAll publishes every item to topic and records its message id. It
// returns the errors of the messages that were not published (the others
// keep their message ids).
func publishAll(ctx context.Context, c *pubsub.Client, topic string, items []*item) error {
	msgs := make([]*topics.Message, len(items))
	for i, it := range items {
		msgs[i] = &topics.Message{RequestID: it.req.RequestID, Data: it.data}
	}
	err := topics.PublishAll(ctx, c, topic, msgs)
	for i, m := range msgs {
		items[i].messageID = m.ID
	}
	return err
}
