package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// spent is where one event's time went: in Chat and Directory calls, in
// waits for the instance's budget, and in the handler as a whole. Handle
// logs it once per event ("event handled"), and the log-based metrics that
// deploy.sh creates (monitoring/metrics) read it for the dashboard. The
// views of a job share one spent; a bulk or sweep page may call from
// several goroutines, so it has a lock.
type spent struct {
	mu         sync.Mutex
	calls      int
	throttled  int
	inCalls    time.Duration
	budgetWait time.Duration
}

type spentKey struct{}

// withSpent returns a context that carries s to the API calls of one event.
func withSpent(ctx context.Context, s *spent) context.Context {
	return context.WithValue(ctx, spentKey{}, s)
}

// spentIn returns the accounting of the event ctx belongs to, or nil.
func spentIn(ctx context.Context) *spent {
	s, _ := ctx.Value(spentKey{}).(*spent)
	return s
}

// waited adds a wait for the budget.
func (s *spent) waited(d time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.budgetWait += d
	s.mu.Unlock()
}

// called adds one API attempt of duration d, answered with HTTP status
// code (0: no answer).
func (s *spent) called(d time.Duration, code int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.calls++
	s.inCalls += d
	if code == 429 {
		s.throttled++
	}
	s.mu.Unlock()
}

// log writes the event's one summary line: total handler time, time in API
// calls, time waiting for the budget, and the added latency (handler time
// less API calls and budget waits: the function's own work, the ledger and
// publishing included).
func (s *spent) log(ctx context.Context, log *slog.Logger, total time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := max(total-s.inCalls-s.budgetWait, 0)
	log.InfoContext(ctx, "event handled",
		"handlerMs", ms(total), "apiCalls", s.calls, "apiMs", ms(s.inCalls), "throttled", s.throttled,
		"budgetWaitMs", ms(s.budgetWait), "addedMs", ms(added), "redelivered", err != nil)
}

// ms is d in milliseconds, with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
