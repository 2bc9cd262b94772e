package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/logging"
)

// The benchmarks time the per-event path, CloudEvent in to result published
// (Pub/Sub acknowledged), against the emulations at zero latency: Chat API
// and token endpoint on loopback HTTP, Secret Manager on loopback gRPC,
// Pub/Sub in-process (pstest, gRPC over loopback). Every op is a real
// removal (members.delete answered 200). Besides ns/op, B/op and allocs/op
// (of the whole process, emulations included), they report
//
//	chat-ns/op   time inside Chat API calls (WithChatObserver), and
//	added-ns/op  ns/op minus chat-ns/op: what the function adds per event
//	             (decoding, validation, budget, result, publish, logging).
//
// BENCHMARKS.md has the figures and how to run them:
//
//	go test -run '^$' -bench BenchmarkHandle -benchmem -count 5 .

// benchEnv is an env of n removable memberships with a Chat observer that
// sums the time spent in Chat calls. publish adjusts the result publisher's
// settings before its first use.
func benchEnv(b *testing.B, n int, publish func(*env)) (*env, []event.Event, *atomic.Int64) {
	b.Helper()
	e := newEnvWith(b, crowdWorkspace(n), emulator.ChatOptions{}, func(c *Config) {
		c.WritesPerMinute = 1 << 30
		c.ReadsPerMinute = 1 << 30
	})
	var chatNS atomic.Int64
	// As WithChatObserver and WithLogger would; set before any event. Logs
	// are JSON-encoded at info (one line per decision) and thrown away.
	e.f.onChat = func(d time.Duration) { chatNS.Add(int64(d)) }
	e.f.log = logging.New(io.Discard, slog.LevelInfo)
	if publish != nil {
		publish(e)
	}
	// Warm up: the secret read, the first token, connections, the publisher.
	if err := e.f.Handle(context.Background(), pubsubEvent(`{"membership":"spaces/CROWD/members/100","dryRun":true}`, time.Now())); err != nil {
		b.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = pubsubEvent(crowdRequest(i), time.Now())
	}
	chatNS.Store(0)
	return e, evs, &chatNS
}

func report(b *testing.B, chatNS *atomic.Int64, elapsed time.Duration) {
	perOp := float64(elapsed.Nanoseconds()) / float64(b.N)
	chat := float64(chatNS.Load()) / float64(b.N)
	b.ReportMetric(chat, "chat-ns/op")
	b.ReportMetric(perOp-chat, "added-ns/op")
}

// BenchmarkHandle: one event at a time.
func BenchmarkHandle(b *testing.B) {
	for _, v := range publisherVariants {
		b.Run(v.name, func(b *testing.B) {
			e, evs, chatNS := benchEnv(b, b.N, v.set)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := e.f.Handle(ctx, evs[i]); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			report(b, chatNS, elapsed)
		})
	}
}

// BenchmarkHandleParallel: GOMAXPROCS×parallelism events at a time (use
// -cpu to vary). chat-ns/op and added-ns/op are then wall time per op, not
// latency: see cmd/loadtest for per-event latency under concurrency.
func BenchmarkHandleParallel(b *testing.B) {
	for _, v := range publisherVariants {
		b.Run(v.name, func(b *testing.B) {
			e, evs, chatNS := benchEnv(b, b.N, v.set)
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(40) // 80 goroutines on 2 cores: concurrency 80
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var handleNS atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t0 := time.Now()
					if err := e.f.Handle(ctx, evs[next.Add(1)-1]); err != nil {
						b.Error(err)
					}
					handleNS.Add(int64(time.Since(t0)))
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "wall-ns/op")
			// Per-event latency: time in Handle minus time in Chat, averaged.
			b.ReportMetric(float64(handleNS.Load()-chatNS.Load())/float64(b.N), "added-latency-ns/event")
			b.ReportMetric(float64(chatNS.Load())/float64(b.N), "chat-latency-ns/event")
		})
	}
}

// publisherVariants: the result publisher as shipped (one Publish RPC per
// result), through pubsub.Publisher's bundler with batches of one, and with
// the 1 ms batching delay it had before BENCHMARKS.md measured it.
var publisherVariants = []struct {
	name string
	set  func(*env)
}{
	{"publisher=as-shipped", nil},
	{"publisher=bundler-count-1", func(e *env) {
		p := e.ps.Publisher(e.cfg.ResultTopic)
		p.PublishSettings.CountThreshold = 1
		e.f.results = &bundledPublisher{p: p}
	}},
	{"publisher=batch-1ms", func(e *env) {
		p := e.ps.Publisher(e.cfg.ResultTopic)
		p.PublishSettings.DelayThreshold = time.Millisecond
		e.f.results = &bundledPublisher{p: p}
	}},
}

// bundledPublisher publishes through pubsub.Publisher: the variants the
// benchmark compares with the direct publisher as shipped.
type bundledPublisher struct{ p *pubsub.Publisher }

func (b *bundledPublisher) publish(ctx context.Context, msg *pubsub.Message) error {
	if _, err := b.p.Publish(ctx, msg).Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", b.p.String(), err)
	}
	return nil
}
