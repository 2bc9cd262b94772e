package main

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/cmd/internal/console"
	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// entry is one message published by the sandbox and what became of it.
type entry struct {
	sample *sample
	id     string // Pub/Sub message id
	sent   time.Time
	done   chan struct{} // closed when result is set
	result *contract.Result
	at     time.Time // when the result arrived
}

// sandbox is one run: the emulations, Pub/Sub, the function and the
// bookkeeping of what was published and what came back.
type sandbox struct {
	o       options
	ws      emulator.Workspace
	samples []sample
	out     *console.Writer // standard output
	errw    *console.Writer // standard error, sharing out's lock
	logs    *logRing        // the function's log lines, unless -v

	stack     *emulator.Stack
	pst       *pstest.Server
	ps        *pubsub.Client
	psHost    string // host:port of the emulator or of pstest
	reqTopic  string // full names
	resTopic  string
	reqSub    string // subscriptions created by this run
	resSub    string
	publisher *pubsub.Publisher
	fn        *engine.Engine
	ledger    ledger.Store // the function's ledger, for the leaver report
	// ledgerProject is the ledger's project on the Firestore emulator, or
	// "" for the in-process ledger.
	ledgerProject string
	fnURL         string
	detach        func()
	env           []envVar
	before        emulator.Workspace
	started       time.Time
	cancelBG      context.CancelFunc
	bg            sync.WaitGroup
	bgErr         chan error
	published     atomic.Int64
	received      atomic.Int64
	redelivered   atomic.Int64

	mu         sync.Mutex
	entries    map[string]*entry           // by message id
	orphans    map[string]*contract.Result // results whose publish had not returned yet
	arrived    map[string]time.Time        // arrival of the orphans
	deliveries map[string]int              // deliveries to the function, by message id
	children   map[string]int              // results of fan-out children, by parentRequestId
	live       bool                        // print results of others as they arrive
	// childOutcomes counts the children's decisions by parent and outcome
	// (undo.go).
	childOutcomes map[string]map[contract.Outcome]int
}

// envVar is one variable of the function's configuration.
type envVar struct{ k, v string }

func newSandbox(o options, ws emulator.Workspace, samples []sample, stdout, stderr io.Writer) *sandbox {
	s := &sandbox{
		o: o, ws: ws, samples: samples,
		logs:       &logRing{max: 200},
		entries:    map[string]*entry{},
		orphans:    map[string]*contract.Result{},
		arrived:    map[string]time.Time{},
		deliveries: map[string]int{},
		children:   map[string]int{},
		bgErr:      make(chan error, 2),
	}
	s.out = console.NewWriter(stdout)
	s.errw = s.out.Share(stderr) // one lock: lines of both streams never interleave
	return s
}

// handle is the CloudEvent function that engine.EventHandler serves: the
// engine's Handle, counting deliveries per message on the way.
func (s *sandbox) handle(ctx context.Context, e event.Event) error {
	id := e.ID()
	if m, err := engine.DecodeEvent(e); err == nil && m.ID != "" {
		id = m.ID
	}
	s.mu.Lock()
	s.deliveries[id]++
	n := s.deliveries[id]
	s.mu.Unlock()
	if n > 1 {
		s.redelivered.Add(1)
	}
	return s.fn.Handle(ctx, e)
}

// close stops everything that start started, in order. It is safe after a
// failed or partial start.
func (s *sandbox) close() {
	if s.cancelBG != nil {
		s.cancelBG()
		s.bg.Wait()
	}
	if s.detach != nil {
		s.detach()
	}
	if s.publisher != nil {
		s.publisher.Stop()
	}
	if s.fn != nil {
		_ = s.fn.Close()
	}
	if s.ps != nil {
		if s.pst == nil { // the emulator outlives the sandbox: tidy up
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for _, sub := range []string{s.reqSub, s.resSub} {
				if sub != "" {
					_ = s.ps.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: sub})
				}
			}
			cancel()
		}
		_ = s.ps.Close()
	}
	if s.pst != nil {
		_ = s.pst.Close()
	}
	if s.stack != nil {
		s.stack.Close()
	}
}
