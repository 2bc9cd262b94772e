package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// The budget tests assert orderings ("no call before the pause ends",
// "returns before its deadline"), never speed: on a loaded machine
// everything may be late, and lateness only makes them pass more surely.

// crowdWorkspace is a workspace with one SPACE, spaces/CROWD, managed by the
// admin (users/100) and holding n more members users/1000… .
func crowdWorkspace(n int) emulator.Workspace {
	ws := emulator.Workspace{
		Customer: emulator.DefaultCustomer,
		Admins:   []string{"users/100"},
		Users:    []emulator.User{{ID: "100", Email: "admin@example.com"}},
	}
	s := emulator.Space{Name: "spaces/CROWD", SpaceType: emulator.SpaceTypeSpace,
		Members: []emulator.Member{{User: "users/100", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
	for i := range n {
		id := fmt.Sprint(1000 + i)
		ws.Users = append(ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
		s.Members = append(s.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
	}
	ws.Spaces = []emulator.Space{s}
	return ws
}

func crowdRequest(i int) string {
	return fmt.Sprintf(`{"requestId":"burst-%d","membership":"spaces/CROWD/members/%d"}`, i, 1000+i)
}

func writesPerMinute(n int) envOption { return func(c *Config) { c.WritesPerMinute = n } }

// TestBudgetBurstDrainsWithoutThrottling: three quota windows' worth of
// removals arrive at once; with CHAT_WRITES_PER_MINUTE equal to the quota the
// emulation enforces (time scaled: 30 writes per 3 s window is 600 a
// minute), every one is removed and the Chat API never answers 429. (The
// budget's 2 % headroom absorbs 2 % of a window of lateness between two
// calls: 60 ms here, 1.2 s with Google's one-minute windows.)
func TestBudgetBurstDrainsWithoutThrottling(t *testing.T) {
	t.Parallel()
	const (
		quota  = 30
		window = 3 * time.Second
		n      = 3 * quota
	)
	e := newEnvWith(t, crowdWorkspace(n), emulator.ChatOptions{WritesPerWindow: quota, Window: window},
		writesPerMinute(quota*int(time.Minute/window)))
	start := time.Now()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- e.f.Handle(context.Background(), pubsubEvent(crowdRequest(i), time.Now())) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	drain := time.Since(start)
	st := e.stack.Chat.Stats()
	if st.Throttled != 0 || st.ByStatus[429] != 0 {
		t.Errorf("the Chat API answered 429 %d times; want none with the budget at the quota", st.Throttled)
	}
	if got := st.Calls["members.delete"]; got != n {
		t.Errorf("members.delete calls = %d, want %d (one per removal)", got, n)
	}
	removed := 0
	for _, r := range e.results(t) {
		if r.Outcome == contract.Removed {
			removed++
		}
	}
	if removed != n {
		t.Errorf("%d removed results, want %d", removed, n)
	}
	for i := range n {
		if _, ok := e.stack.Chat.IsMember("spaces/CROWD", fmt.Sprint(1000+i)); ok {
			t.Errorf("users/%d is still a member", 1000+i)
		}
	}
	// Not asserted (a loaded machine is slow), but worth seeing.
	t.Logf("%d removals drained in %v; ideal N/Q = %v", n, drain.Round(time.Millisecond), time.Duration(n/quota)*window)
}

// TestBudget429SlowsTheInstance: a 429 with Retry-After 2s pauses every
// event of the instance (no Chat call reaches the API until it has passed),
// halves the budget's rate, and successes then restore it.
func TestBudget429SlowsTheInstance(t *testing.T) {
	t.Parallel()
	const retryAfter = 2 * time.Second
	e := newEnvWith(t, crowdWorkspace(60), emulator.ChatOptions{}, writesPerMinute(6000))
	type call struct {
		start  time.Time // when the API began to serve it (at the latest)
		status int
	}
	var mu sync.Mutex
	var calls []call
	e.stack.Chat.OnCall(func(ci emulator.CallInfo) {
		if ci.Method != "members.delete" {
			return // the reads before each delete spend the other budget
		}
		c := call{time.Now().Add(-ci.Duration), ci.Status}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 429, RetryAfter: retryAfter, Times: 1})
	target := e.f.writes.limit()

	first := make(chan error, 1)
	go func() { first <- e.f.Handle(context.Background(), pubsubEvent(crowdRequest(0), time.Now())) }()
	// Wait until the instance has taken the 429 in.
	for waited := time.Duration(0); e.f.writes.limit() == target; waited += 5 * time.Millisecond {
		if waited > 20*time.Second {
			t.Fatal("the budget's rate did not drop after a 429")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.f.writes.limit(); got > target/2 {
		t.Errorf("rate after a 429 = %v/s, want at most half of %v/s", got, target)
	}
	// Concurrent events during the pause wait for it.
	const others = 8
	errs := make(chan error, others)
	for i := 1; i <= others; i++ {
		go func() { errs <- e.f.Handle(context.Background(), pubsubEvent(crowdRequest(i), time.Now())) }()
	}
	if err := <-first; err != nil {
		t.Fatalf("the throttled event: %v", err)
	}
	for range others {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	got := append([]call(nil), calls...)
	mu.Unlock()
	sort.Slice(got, func(i, j int) bool { return got[i].start.Before(got[j].start) })
	if len(got) != others+2 || got[0].status != 429 {
		t.Fatalf("calls = %+v; want one 429 then %d deletes", got, others+1)
	}
	// The client took the 429 in after the API began to serve it, so its
	// pause ends at least retryAfter after got[0].start. (A 50 ms allowance
	// covers the hook's own clock reading.)
	for _, c := range got[1:] {
		if gap := c.start.Sub(got[0].start); gap < retryAfter-50*time.Millisecond {
			t.Errorf("a call reached the API %v after the 429, inside its Retry-After of %v", gap, retryAfter)
		}
	}
	if n := e.f.Retries(); n != 1 {
		t.Errorf("Retries() = %d, want 1", n)
	}

	// Successes restore the rate, at most 25 % a second: keep removing
	// until it is back (about 4 s).
	for i := others + 1; e.f.writes.limit() < target; i++ {
		if i >= 60 {
			t.Fatalf("rate still %v/s after %d successes, want %v/s", e.f.writes.limit(), i, target)
		}
		if err := e.f.Handle(context.Background(), pubsubEvent(crowdRequest(i), time.Now())); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestBudgetBeyondDeadlineReturnsAtOnce: an event whose write could only go
// out after its deadline returns a *TransientError at once (Pub/Sub
// redelivers it later) and calls nothing.
func TestBudgetBeyondDeadlineReturnsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, crowdWorkspace(2), emulator.ChatOptions{}, writesPerMinute(1)) // one write a minute
	if err := e.send(t, crowdRequest(0)); err != nil {
		t.Fatal(err) // the one write of this minute
	}
	const timeout = 15 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := e.f.Handle(ctx, pubsubEvent(crowdRequest(1), time.Now()))
	took := time.Since(start)
	var te *TransientError
	if !errors.As(err, &te) || !errors.Is(err, errBudget) {
		t.Fatalf("Handle = %v, want a *TransientError for the budget", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Handle returned after its deadline (%v), not at once", took)
	}
	if got := e.stack.Chat.Stats().Calls["members.delete"]; got != 1 {
		t.Errorf("members.delete calls = %d, want 1", got)
	}
	if rs := e.results(t); len(rs) != 1 {
		t.Errorf("%d results, want only the first event's", len(rs))
	}
}

// TestBudgetPauseBeyondDeadline: while a Retry-After pause outlasts an
// event's deadline, the event does not wait for it.
func TestBudgetPauseBeyondDeadline(t *testing.T) {
	t.Parallel()
	b := newBudget(6000, time.Now)
	b.throttled(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	if err := b.wait(context.Background(), deadline); !errors.Is(err, errBudget) {
		t.Fatalf("wait = %v, want errBudget", err)
	}
	if time.Now().After(deadline) {
		t.Error("wait returned after the deadline, not at once")
	}
}

// TestBudgetRequeuesBehindPause: callers already waiting when a 429 arrives
// go out after the pause, spaced at the halved rate, not all at once when
// it ends (which would earn the next 429).
func TestBudgetRequeuesBehindPause(t *testing.T) {
	t.Parallel()
	b := newBudget(120, time.Now) // ~2/s: a slot every ~0.5 s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.wait(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err) // the bucket's one token
	}
	const waiters = 6
	released := make(chan time.Time, waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.wait(ctx, time.Now().Add(time.Minute)) == nil {
				released <- time.Now()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them queue (their first slot is ~0.5 s away)
	b.throttled(300 * time.Millisecond)
	b.mu.Lock()
	pauseEnd, rate := b.pauseUntil, b.lim.Limit()
	b.mu.Unlock()
	// Watch one slot of the halved rate past the end of the pause.
	slot := time.Duration(float64(time.Second) / float64(rate))
	time.Sleep(time.Until(pauseEnd.Add(slot - 20*time.Millisecond)))
	cancel()
	wg.Wait()
	close(released)
	var before, first int
	for at := range released {
		switch {
		case at.Before(pauseEnd):
			before++
		case at.Before(pauseEnd.Add(slot - 20*time.Millisecond)):
			first++
		}
	}
	if before != 0 {
		t.Errorf("%d callers went out during the pause", before)
	}
	if first > 1 {
		t.Errorf("%d callers went out in the first slot after the pause, want at most 1", first)
	}
}

// TestBudgetRecovery: the rate halves once per burst of 429s, never below a
// twentieth of the target, and climbs back 25 % per second of successes.
func TestBudgetRecovery(t *testing.T) {
	t.Parallel()
	b := newBudget(600, time.Now)
	target := b.limit()
	b.throttled(0)
	b.throttled(0) // same burst: halves once
	if got := b.limit(); got != target/2 {
		t.Fatalf("after one burst of 429s rate = %v, want %v", got, target/2)
	}
	b.succeeded() // within the second: no change yet
	if got := b.limit(); got != target/2 {
		t.Fatalf("rate moved within a second: %v", got)
	}
	for i := 0; i < 40; i++ { // pretend a second passes between 429s
		b.mu.Lock()
		b.lastChange = b.lastChange.Add(-2 * time.Second)
		b.mu.Unlock()
		b.throttled(0)
	}
	if got := b.limit(); got != target/20 {
		t.Fatalf("floor = %v, want %v", got, target/20)
	}
	steps := 0
	for b.limit() < target {
		prev := b.limit()
		b.mu.Lock()
		b.lastChange = b.lastChange.Add(-2 * time.Second)
		b.mu.Unlock()
		b.succeeded()
		if got := b.limit(); got > prev*1.25+1e-9 || got <= prev {
			t.Fatalf("step from %v to %v, want ×1.25 (capped at %v)", prev, got, target)
		}
		steps++
	}
	if steps != 14 { // 1.25^14 ≈ 22.7 > 20
		t.Errorf("recovered in %d steps, want 14", steps)
	}
	if !b.full.Load() {
		t.Error("full not set after recovery")
	}
}
