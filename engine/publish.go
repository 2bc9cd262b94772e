package offboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Outcomes of a membership decision (docs/design.md, "Outcomes and retries").
const (
	OutcomeRemoved   = "removed"
	OutcomeNotMember = "not_member"
	OutcomeDryRun    = "dry_run"
	OutcomeRefused   = "refused"
	OutcomeInvalid   = "invalid"
	OutcomeFailed    = "failed"
	OutcomePlanned   = "planned"
	OutcomeExpired   = "expired"
)

// Result event constants.
const (
	ResultEventType = "dev.chat-offboard.membership.result.v1"
	resultSource    = "//chat-offboard/RemoveMembership"
)

// Result is the data of one result event: one membership decision. Its JSON
// is the contract that consumers read (docs/design.md, schema/result.schema.json).
type Result struct {
	RequestID       string      `json:"requestId"`
	ParentRequestID string      `json:"parentRequestId,omitempty"`
	Membership      string      `json:"membership,omitempty"`
	Outcome         string      `json:"outcome"`
	MembershipState string      `json:"membershipState,omitempty"`
	Role            string      `json:"role,omitempty"`
	Member          *Member     `json:"member,omitempty"`
	WouldRemove     *bool       `json:"wouldRemove,omitempty"`
	Children        *int        `json:"children,omitempty"`
	ExpectedResults *int        `json:"expectedResults,omitempty"`
	Continued       bool        `json:"continued,omitempty"`
	Error           *ErrorInfo  `json:"error,omitempty"`
	Detail          string      `json:"detail,omitempty"`
	AdminAccess     bool        `json:"adminAccess"`
	DryRun          bool        `json:"dryRun"`
	Reason          string      `json:"reason,omitempty"`
	RequestedBy     string      `json:"requestedBy,omitempty"`
	Attempts        int         `json:"attempts,omitempty"`
	SourceMessageID string      `json:"sourceMessageId,omitempty"`
	ProcessedAt     time.Time   `json:"processedAt"`
	HandOff         *HandOffLog `json:"handOff,omitempty"`
}

// Member is the member of a membership as the Chat API named it.
type Member struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// ErrorInfo is Google's error (or the validator's reason, code 400) that
// decided a failed, invalid or expired outcome.
type ErrorInfo struct {
	Code    int    `json:"code,omitempty"`
	Status  string `json:"status,omitempty"`
	Message string `json:"message"`
}

// HandOffLog says what the function did to leave a space with a manager.
type HandOffLog struct {
	Successor string `json:"successor"`
	Added     bool   `json:"added"`
	Promoted  bool   `json:"promoted"`
}

// EventID is the deterministic ce-id of a result: a redelivered request
// yields the same id for the same decision, so consumers can drop duplicates.
func EventID(requestID, membership, outcome string) string {
	h := sha256.Sum256([]byte(requestID + "\x00" + membership + "\x00" + outcome))
	return hex.EncodeToString(h[:16])
}

// publisher publishes one message and returns once Pub/Sub has
// acknowledged it. Implementations are safe for concurrent use.
type publisher interface {
	publish(ctx context.Context, msg *pubsub.Message) error
}

// directPublisher sends each message as its own Publish RPC through the
// client's generated API, with its retry settings (UNAVAILABLE and the like
// are retried within ctx). Each event waits for its own result, so the
// bundler of pubsub.Publisher would only add goroutine hand-offs (and, with
// a batching delay, the delay) to every event: BENCHMARKS.md measures both.
type directPublisher struct {
	c     *pubsub.Client
	topic string // full name
}

func (d *directPublisher) publish(ctx context.Context, msg *pubsub.Message) error {
	_, err := d.c.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{
		Topic:    d.topic,
		Messages: []*pubsubpb.PubsubMessage{{Data: msg.Data, Attributes: msg.Attributes}},
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", d.topic, err)
	}
	return nil
}

// bundledPublisher publishes through pubsub.Publisher (benchmarks compare it).
type bundledPublisher struct{ p *pubsub.Publisher }

func (b *bundledPublisher) publish(ctx context.Context, msg *pubsub.Message) error {
	if _, err := b.p.Publish(ctx, msg).Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", b.p.String(), err)
	}
	return nil
}

// resultMessage builds the Pub/Sub message of a result event.
func resultMessage(r *Result) (*pubsub.Message, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	subject := r.Membership
	if subject == "" {
		subject = "requests/" + r.RequestID
	}
	return &pubsub.Message{
		Data: data,
		Attributes: map[string]string{
			"ce-specversion": "1.0",
			"ce-type":        ResultEventType,
			"ce-source":      resultSource,
			"ce-id":          EventID(r.RequestID, r.Membership, r.Outcome),
			"ce-time":        r.ProcessedAt.UTC().Format(time.RFC3339Nano),
			"ce-subject":     subject,
			"content-type":   "application/json",
			"outcome":        r.Outcome,
			"requestId":      r.RequestID,
		},
	}, nil
}

// maxPending bounds the removals an instance remembers while their results
// wait to be published.
const maxPending = 10000

// pendingRemovals remembers removals whose result could not be published.
// The event is redelivered, the Chat API then answers 404, and the result
// would say not_member and lose the role that restoring the membership
// needs; instead the remembered removal is published (with the same ce-id
// the first attempt had). It covers publish failures, not a process that
// dies between the delete and the publish. Safe for concurrent use.
type pendingRemovals struct {
	mu sync.Mutex
	m  map[string]Result
}

func pendingKey(r *Result) string { return r.RequestID + "\x00" + r.Membership }

func (p *pendingRemovals) put(r *Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]Result{}
	}
	if len(p.m) >= maxPending {
		for k := range p.m { // drop any one: the map is only a best effort
			delete(p.m, k)
			break
		}
	}
	p.m[pendingKey(r)] = *r
}

func (p *pendingRemovals) get(r *Result) (Result, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[pendingKey(r)]
	return v, ok
}

func (p *pendingRemovals) remove(r *Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, pendingKey(r))
}
