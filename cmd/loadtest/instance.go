package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"

	"github.com/chat-offboard/chat-offboard/engine"
)

// eventStats collects what one event spent; it travels in the context of
// Handle, which the Chat client's requests inherit.
type eventStats struct {
	mu        sync.Mutex
	chat      time.Duration
	firstCall time.Time
	lastEnd   time.Time
	ledger    time.Duration // in the ledger's Firestore RPCs
	ledgerN   int           // the ledger's Firestore RPCs
	writes    int           // the document writes they committed
}

// chargeLedger charges a ledger RPC to the event whose context made it.
func chargeLedger(ctx context.Context, _ string, d time.Duration, writes int) {
	if es, ok := ctx.Value(ctxKey{}).(*eventStats); ok {
		es.mu.Lock()
		es.ledger += d
		es.ledgerN++
		es.writes += writes
		es.mu.Unlock()
	}
}

type ctxKey struct{}

// timingTransport attributes each Chat API round trip to its event.
type timingTransport struct{ base http.RoundTripper }

func (t timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	if es, ok := r.Context().Value(ctxKey{}).(*eventStats); ok {
		d := time.Since(start)
		es.mu.Lock()
		es.chat += d
		es.lastEnd = start.Add(d)
		if es.firstCall.IsZero() {
			es.firstCall = start
		}
		es.mu.Unlock()
	}
	return resp, err
}

// durations collects the latencies of result Publish RPCs (which run in the
// publisher's own goroutines, so they cannot be charged to one event).
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func publishTimer(into *durations) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		if strings.HasSuffix(method, "/Publish") {
			d := time.Since(start)
			into.mu.Lock()
			into.d = append(into.d, d)
			into.mu.Unlock()
		}
		return err
	}
}

// sample is one event: time in Handle; in Chat round trips; before the
// first Chat call (decoding, token, the ledger's first reads and writes,
// and mostly the budget when it binds); after the last (the decision
// recorded, the result published until acknowledged, the log line); added
// = handle − chat − before; in the ledger's Firestore round trips (ledger,
// ledgerN of them, committing writes documents) wherever they fall.
type sample struct {
	handle, chat, before, after, added, ledger time.Duration
	ledgerN, writes                            int
}

// counters are shared by all instances.
type counters struct {
	inFlight, peak, acked atomic.Int64
	firstEvent            atomic.Int64 // UnixNano of the first event received
}

// instance is one function instance: an engine served as the function is,
// by engine.EventHandler (which answers 200, an ack, or 500, a redelivery),
// behind its own HTTP server.
type instance struct {
	f      *engine.Engine
	srv    *http.Server
	url    string
	c      *counters
	nacked atomic.Int64

	mu      sync.Mutex
	samples []sample
}

// serve serves the instance's engine on a free loopback port until the
// returned server is closed.
func (s *instance) serve() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.url = "http://" + l.Addr().String()
	s.srv = &http.Server{Handler: engine.EventHandler(s.handle)}
	go s.srv.Serve(l)
	return nil
}

// handle is the function engine.EventHandler serves: the engine's Handle,
// timed, with the Chat calls of the event attributed to it.
func (s *instance) handle(ctx context.Context, e event.Event) error {
	s.c.firstEvent.CompareAndSwap(0, time.Now().UnixNano())
	n := s.c.inFlight.Add(1)
	for p := s.c.peak.Load(); n > p && !s.c.peak.CompareAndSwap(p, n); p = s.c.peak.Load() {
	}
	es := &eventStats{}
	ctx = context.WithValue(ctx, ctxKey{}, es)
	start := time.Now()
	err := s.f.Handle(ctx, e)
	handle := time.Since(start)
	s.c.inFlight.Add(-1)
	if err != nil {
		s.nacked.Add(1)
		return err
	}
	s.c.acked.Add(1)
	s.record(es, start, handle)
	return nil
}

// record keeps the sample of an event handled from start, for handle.
func (s *instance) record(es *eventStats, start time.Time, handle time.Duration) {
	es.mu.Lock()
	sm := sample{handle: handle, chat: es.chat, ledger: es.ledger, ledgerN: es.ledgerN, writes: es.writes}
	if !es.firstCall.IsZero() {
		sm.before = es.firstCall.Sub(start)
		sm.after = start.Add(handle).Sub(es.lastEnd)
	}
	es.mu.Unlock()
	sm.added = handle - sm.chat - sm.before
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}
