package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

func TestMain(m *testing.M) { os.Exit(firestoretest.RunMain(m)) }

// newStore makes an empty store with cfg for one test; the store is closed
// at the test's cleanup.
type newStore func(t testing.TB, cfg ledger.Config) ledger.Store

func memoryStore(t testing.TB, cfg ledger.Config) ledger.Store {
	s := ledger.NewMemoryWithConfig(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// firestoreStore opens a Firestore store on the emulator, in a project id of
// its own (the emulator keeps projects apart), cleared at cleanup.
func firestoreStore(t testing.TB, cfg ledger.Config) ledger.Store {
	host := firestoretest.Emulator(t)
	project := firestoretest.Project(t.Name())
	s, err := ledger.NewFirestoreWithConfig(context.Background(), project, "", cfg, firestoretest.ClientOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = firestoretest.Clear(ctx, host, project, "")
	})
	return s
}

func TestMemoryConformance(t *testing.T) { t.Parallel(); conformance(t, memoryStore) }

func TestFirestoreConformance(t *testing.T) {
	t.Parallel()
	firestoretest.Emulator(t) // skip (or fail in CI) once, not per case
	conformance(t, firestoreStore)
}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func getRequest(t testing.TB, s ledger.Store, id string) ledger.Request {
	t.Helper()
	r, err := s.Request(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getMembership(t testing.TB, s ledger.Store, requestID, membership string) ledger.Membership {
	t.Helper()
	m, err := s.Membership(ctxT(t), requestID, membership)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func collect(t testing.TB, s ledger.Store, root string) []ledger.Membership {
	t.Helper()
	var out []ledger.Membership
	for m, err := range s.Memberships(ctxT(t), root) {
		if err != nil {
			t.Fatalf("Memberships(%s): %v", root, err)
		}
		out = append(out, m)
	}
	return out
}

// conformance is the behaviour every Store has; each case runs on an empty
// store of its own.
func conformance(t *testing.T, mk newStore) {
	cases := []struct {
		name string
		run  func(t *testing.T, s ledger.Store, clk *clock)
	}{
		{"CreateRequestIfAbsent", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			three := 3
			first := ledger.Request{ID: "req/1", Kind: "remove", Target: "users/1 from spaces/A",
				Reason: "left", RequestedBy: "hr@example.com", DryRun: true, Expected: &three, Fingerprint: `{"form":"membership"}`}
			got, created := must2[ledger.Request](t)(s.CreateRequest(ctx, first))
			if !created || got.State != ledger.StateOpen || got.Root != "req/1" || got.CreatedAt != t0 {
				t.Fatalf("first create = %+v, %v", got, created)
			}
			clk.Add(time.Hour)
			again, created := must2[ledger.Request](t)(s.CreateRequest(ctx, ledger.Request{ID: "req/1", Reason: "other"}))
			if created {
				t.Fatal("second create reported created")
			}
			if again.Reason != "left" || again.Kind != "remove" || again.Target != first.Target ||
				!again.DryRun || again.RequestedBy != first.RequestedBy || again.Expected == nil || *again.Expected != 3 || again.Fingerprint != first.Fingerprint ||
				again.CreatedAt != t0 || again.State != ledger.StateOpen {
				t.Fatalf("second create returned %+v, want the first", again)
			}
			read := getRequest(t, s, "req/1")
			if read.Expected == nil || *read.Expected != 3 {
				t.Fatalf("Request.Expected = %v, want 3", read.Expected)
			}
			read.Expected, again.Expected = nil, nil
			if read != again {
				t.Fatalf("Request = %+v, want %+v", read, again)
			}
		}},
		{"ChildRequestRoot", func(t *testing.T, s ledger.Store, _ *clock) {
			got, _ := must2[ledger.Request](t)(s.CreateRequest(ctxT(t), ledger.Request{ID: "r/spaces/A", ParentID: "r"}))
			if got.Root != "r" || got.ParentID != "r" {
				t.Fatalf("child = %+v, want root r", got)
			}
		}},
		{"DryRunsBesideRealRecords", dryRunsBesideRealRecords},
		{"TakeOverOnce", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			r, _ := must2[ledger.Request](t)(s.CreateRequest(ctx, ledger.Request{ID: "r"}))
			clk.Add(time.Minute)
			if err := s.SetRequestState(ctx, "r", ledger.StateReleased, nil); err != nil {
				t.Fatal(err)
			}
			seen, err := s.Request(ctx, "r")
			if err != nil || seen.State != ledger.StateReleased {
				t.Fatalf("Request = %+v, %v", seen, err)
			}
			// Twenty deliveries take it over at once: one wins.
			clk.Add(time.Minute)
			var wg sync.WaitGroup
			var won atomic.Int32
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.TakeOver(ctx, seen)
					if err != nil {
						t.Error(err)
					}
					if ok {
						won.Add(1)
					}
				}()
			}
			wg.Wait()
			if n := won.Load(); n != 1 {
				t.Fatalf("%d deliveries took the request over, want 1", n)
			}
			now, err := s.Request(ctx, "r")
			if err != nil || now.State != ledger.StateOpen || !now.UpdatedAt.After(seen.UpdatedAt) {
				t.Fatalf("after the take-over: %+v, %v", now, err)
			}
			// What was seen before is stale now.
			if ok, err := s.TakeOver(ctx, seen); ok || err != nil {
				t.Fatalf("a stale take-over = %v, %v; want false", ok, err)
			}
			if ok, err := s.TakeOver(ctx, r); ok || err != nil {
				t.Fatalf("a take-over of the created request = %v, %v; want false", ok, err)
			}
		}},
		{"SetRequestState", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			must2[ledger.Request](t)(s.CreateRequest(ctx, ledger.Request{ID: "r"}))
			clk.Add(time.Minute)
			n := 7
			if err := s.SetRequestState(ctx, "r", ledger.StatePlanned, &n); err != nil {
				t.Fatal(err)
			}
			if err := s.SetRequestState(ctx, "r", ledger.StateDone, nil); err != nil {
				t.Fatal(err)
			}
			r := getRequest(t, s, "r")
			if r.State != ledger.StateDone || r.Expected == nil || *r.Expected != 7 ||
				r.CreatedAt != t0 || r.UpdatedAt != t0.Add(time.Minute) {
				t.Fatalf("request = %+v", r)
			}
			err := s.SetRequestState(ctx, "never", ledger.StateDone, nil)
			if !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("SetRequestState of an absent request: %v, want ErrNotFound", err)
			}
			if _, err := s.Request(ctx, "never"); !errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("Request of an absent request: %v, want ErrNotFound only", err)
			}
		}},
		{"IntendIfAbsent", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			in := ledger.Intent{RequestID: "r", Membership: "spaces/A/members/1", Member: "users/1",
				Role: "ROLE_MANAGER", Action: ledger.ActionDelete}
			m, created := must2[ledger.Membership](t)(s.Intend(ctx, in))
			if !created || m.Name != in.Membership || m.Root != "r" || m.IntendedAt != t0 || m.Decided() {
				t.Fatalf("first Intend = %+v, %v", m, created)
			}
			clk.Add(time.Second)
			in2 := in
			in2.Role, in2.Action = "ROLE_MEMBER", ledger.ActionPatch
			again, created := must2[ledger.Membership](t)(s.Intend(ctx, in2))
			if created || again.Role != "ROLE_MANAGER" || again.Action != ledger.ActionDelete || again.IntendedAt != t0 {
				t.Fatalf("second Intend = %+v, %v; want the first", again, created)
			}
		}},
		{"IntendConcurrent", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			var wg sync.WaitGroup
			var createdN atomic.Int32
			errs := make(chan error, 20)
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m, created, err := s.Intend(ctx, ledger.Intent{RequestID: "r", Membership: "spaces/A/members/1",
						Role: fmt.Sprint("role-", i), Action: ledger.ActionDelete})
					if err != nil {
						errs <- err
						return
					}
					if created {
						createdN.Add(1)
					}
					if m.Role == "" || m.Name != "spaces/A/members/1" {
						errs <- fmt.Errorf("goroutine %d got %+v", i, m)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := createdN.Load(); n != 1 {
				t.Fatalf("%d of 20 concurrent Intend calls created the record, want exactly 1", n)
			}
			if got := collect(t, s, "r"); len(got) != 1 {
				t.Fatalf("%d records, want 1", len(got))
			}
		}},
		{"DecideRoundTrip", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r/spaces/A", Root: "r", Membership: "spaces/A/members/1",
				Member: "users/1", Role: "ROLE_MANAGER", Action: ledger.ActionDelete}))
			clk.Add(2 * time.Second)
			result := []byte(`{"requestId":"r/spaces/A","outcome":"removed","role":"ROLE_MANAGER","x":"\u0000\u00ff"}` + "\x00\xff")
			if err := s.Decide(ctx, "r/spaces/A", "spaces/A/members/1",
				ledger.Decision{Root: "r", Outcome: "removed", Result: result}); err != nil {
				t.Fatal(err)
			}
			result[0] = 'X' // the store keeps its own copy
			m := getMembership(t, s, "r/spaces/A", "spaces/A/members/1")
			want := []byte(`{"requestId":"r/spaces/A","outcome":"removed","role":"ROLE_MANAGER","x":"\u0000\u00ff"}` + "\x00\xff")
			if !bytes.Equal(m.Result, want) {
				t.Fatalf("Result = %q, want %q", m.Result, want)
			}
			if m.Outcome != "removed" || !m.Decided() || m.Role != "ROLE_MANAGER" || m.Member != "users/1" ||
				m.Action != ledger.ActionDelete || m.IntendedAt != t0 || m.DecidedAt != t0.Add(2*time.Second) || m.Root != "r" {
				t.Fatalf("record = %+v", m)
			}
			// Intend again (a redelivery): the decided record comes back.
			again, created := must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r/spaces/A", Root: "r", Membership: "spaces/A/members/1"}))
			if created || again.Outcome != "removed" || !bytes.Equal(again.Result, want) {
				t.Fatalf("Intend after Decide = %+v, %v", again, created)
			}
		}},
		{"DecideWithoutIntent", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			if err := s.Decide(ctx, "r", "spaces/B/members/2", ledger.Decision{Member: "users/2", Outcome: "not_member",
				Result: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			m := getMembership(t, s, "r", "spaces/B/members/2")
			if m.Outcome != "not_member" || m.Member != "users/2" || m.Action != "" || !m.IntendedAt.IsZero() ||
				m.Root != "r" || m.DecidedAt != t0 || string(m.Result) != `{}` {
				t.Fatalf("record = %+v", m)
			}
			if err := s.Decide(ctx, "r", "spaces/B/members/2", ledger.Decision{Outcome: "refused", Role: "ROLE_MEMBER"}); err != nil {
				t.Fatal(err)
			}
			m = getMembership(t, s, "r", "spaces/B/members/2")
			if m.Outcome != "refused" || m.Member != "users/2" || m.Role != "ROLE_MEMBER" || m.Result != nil {
				t.Fatalf("after a second Decide: %+v", m)
			}
		}},
		{"MembershipNotFound", func(t *testing.T, s ledger.Store, _ *clock) {
			_, err := s.Membership(ctxT(t), "r", "spaces/A/members/1")
			if !errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrNotFound only", err)
			}
		}},
		{"ClaimPageOnce", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			c, created := must2[ledger.PageClaim](t)(s.ClaimPage(ctx, "sweep/1", "page-token-abc/=+", ledger.PageClaim{
				Children: 100, ExpectedResults: 101, Result: []byte(`{"outcome":"planned"}`)}))
			if !created || c.SweepID != "sweep/1" || c.PageKey != "page-token-abc/=+" || c.ClaimedAt != t0 {
				t.Fatalf("first claim = %+v, %v", c, created)
			}
			clk.Add(time.Second)
			var wg sync.WaitGroup
			var createdN atomic.Int32
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, created, err := s.ClaimPage(ctx, "sweep/1", "page-token-abc/=+", ledger.PageClaim{Children: 1})
					if err != nil {
						t.Error(err)
						return
					}
					if created {
						createdN.Add(1)
					}
					if c.Children != 100 || c.ExpectedResults != 101 || string(c.Result) != `{"outcome":"planned"}` || c.ClaimedAt != t0 {
						t.Errorf("claim again = %+v; want the first", c)
					}
				}()
			}
			wg.Wait()
			if createdN.Load() != 0 {
				t.Fatalf("a second claim was created")
			}
			if _, created := must2[ledger.PageClaim](t)(s.ClaimPage(ctx, "sweep/1", "other-page", ledger.PageClaim{})); !created {
				t.Fatal("another page's claim not created")
			}
			got, err := s.Page(ctx, "sweep/1", "page-token-abc/=+")
			if err != nil || got.Children != 100 || got.ExpectedResults != 101 || string(got.Result) != `{"outcome":"planned"}` || got.ClaimedAt != t0 {
				t.Fatalf("Page = %+v, %v; want the first claim", got, err)
			}
			if _, err := s.Page(ctx, "sweep/1", "never-claimed"); !errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("Page of an unclaimed page: %v, want ErrNotFound only", err)
			}
		}},
		{"MembershipsOfRootAndChildren", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r", Membership: "spaces/A/members/1"}))
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r/spaces/B", Root: "r", Membership: "spaces/B/members/1"}))
			if err := s.Decide(ctx, "r/spaces/C", "spaces/C/members/1", ledger.Decision{Root: "r", Outcome: "not_member"}); err != nil {
				t.Fatal(err)
			}
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "q", Membership: "spaces/A/members/2"}))
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r2", Membership: "spaces/A/members/1"}))
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "q/spaces/D", Root: "q", Membership: "spaces/D/members/1"}))
			var names []string
			for _, m := range collect(t, s, "r") {
				names = append(names, m.RequestID+" "+m.Name)
			}
			slices.Sort(names)
			want := []string{"r spaces/A/members/1", "r/spaces/B spaces/B/members/1", "r/spaces/C spaces/C/members/1"}
			if !slices.Equal(names, want) {
				t.Fatalf("Memberships(r) = %q, want %q", names, want)
			}
			if got := collect(t, s, "q"); len(got) != 2 {
				t.Fatalf("Memberships(q) = %d records, want 2", len(got))
			}
			if got := collect(t, s, "nobody"); len(got) != 0 {
				t.Fatalf("Memberships(nobody) = %+v", got)
			}
		}},
		{"MembershipsInOneSpace", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			const n = 520 // more than one query page
			want := map[string]bool{}
			for i := range n {
				req := fmt.Sprintf("r%d", i%3)
				name := fmt.Sprintf("spaces/A/members/%d", i)
				must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: req, Membership: name, Member: "users/1"}))
				want[req+" "+name] = true
			}
			if err := s.Decide(ctx, "x/spaces/A", "spaces/A/members/a@example.com", ledger.Decision{Root: "x", Outcome: "removed", Member: "users/7"}); err != nil {
				t.Fatal(err)
			}
			want["x/spaces/A spaces/A/members/a@example.com"] = true
			// Other spaces, one of them a prefix trap (spaces/AB).
			for _, name := range []string{"spaces/AB/members/1", "spaces/B/members/1", "spaces/A0/members/1"} {
				must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r0", Membership: name}))
			}
			got := map[string]bool{}
			for m, err := range s.InSpace(ctx, "spaces/A") {
				if err != nil {
					t.Fatal(err)
				}
				k := m.RequestID + " " + m.Name
				if got[k] {
					t.Fatalf("InSpace yielded %s twice", k)
				}
				got[k] = true
			}
			if len(got) != len(want) {
				t.Fatalf("InSpace(spaces/A) = %d records, want %d", len(got), len(want))
			}
			for k := range want {
				if !got[k] {
					t.Fatalf("InSpace(spaces/A) lacks %s", k)
				}
			}
			for _, bad := range []string{"", "spaces/", "spaces/A/members/1", "A"} {
				for _, err := range s.InSpace(ctx, bad) {
					if !errors.Is(err, ledger.ErrInvalid) {
						t.Fatalf("InSpace(%q): %v, want ErrInvalid", bad, err)
					}
				}
			}
		}},
		{"PagesOfOneSweep", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			const n = 1100 // more than two query pages
			work := make(chan int)
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						if _, _, err := s.ClaimPage(ctx, "s/1", fmt.Sprintf("s/1/page-%d", i), ledger.PageClaim{
							Children: i, ExpectedResults: 2 * i, Result: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for i := range n {
				work <- i
			}
			close(work)
			wg.Wait()
			must2[ledger.PageClaim](t)(s.ClaimPage(ctx, "s/2", "s/1/page-1", ledger.PageClaim{Children: 7}))
			seen := map[string]bool{}
			for c, err := range s.Pages(ctx, "s/1") {
				if err != nil {
					t.Fatal(err)
				}
				var i int
				if _, err := fmt.Sscanf(c.PageKey, "s/1/page-%d", &i); err != nil || c.SweepID != "s/1" || seen[c.PageKey] ||
					c.Children != i || c.ExpectedResults != 2*i || string(c.Result) != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("claim %+v: foreign, duplicate or changed", c)
				}
				seen[c.PageKey] = true
			}
			if len(seen) != n {
				t.Fatalf("Pages(s/1) listed %d claims, want %d", len(seen), n)
			}
			for c, err := range s.Pages(ctx, "nobody") {
				t.Fatalf("Pages(nobody) yielded %+v, %v", c, err)
			}
		}},
		{"ExpireAt", func(t *testing.T, s ledger.Store, clk *clock) {
			ctx := ctxT(t)
			const ret = 30 * 24 * time.Hour // the store under test has Retention 30 days
			r, _ := must2[ledger.Request](t)(s.CreateRequest(ctx, ledger.Request{ID: "r"}))
			m, _ := must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "r", Membership: "spaces/A/members/1"}))
			c, _ := must2[ledger.PageClaim](t)(s.ClaimPage(ctx, "s", "p", ledger.PageClaim{}))
			for what, got := range map[string]time.Time{"request": r.ExpireAt, "intent": m.ExpireAt, "claim": c.ExpireAt,
				"stored request": getRequest(t, s, "r").ExpireAt,
				"stored intent":  getMembership(t, s, "r", "spaces/A/members/1").ExpireAt} {
				if got != t0.Add(ret) {
					t.Errorf("%s expireAt = %v, want %v", what, got, t0.Add(ret))
				}
			}
			clk.Add(time.Hour) // every write pushes expireAt
			if err := s.Decide(ctx, "r", "spaces/A/members/1", ledger.Decision{Outcome: "removed"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetRequestState(ctx, "r", ledger.StateDone, nil); err != nil {
				t.Fatal(err)
			}
			if got := getMembership(t, s, "r", "spaces/A/members/1").ExpireAt; got != t0.Add(time.Hour+ret) {
				t.Errorf("decided expireAt = %v, want %v", got, t0.Add(time.Hour+ret))
			}
			if got := getRequest(t, s, "r").ExpireAt; got != t0.Add(time.Hour+ret) {
				t.Errorf("updated request expireAt = %v, want %v", got, t0.Add(time.Hour+ret))
			}
		}},
		{"DefaultRetention", func(t *testing.T, _ ledger.Store, _ *clock) {
			s := mk(t, ledger.Config{}) // production default: 400 days from time.Now
			before := time.Now()
			m, _ := must2[ledger.Membership](t)(s.Intend(ctxT(t), ledger.Intent{RequestID: "r", Membership: "m"}))
			if d := m.ExpireAt.Sub(before); d < 400*24*time.Hour-time.Second || d > 400*24*time.Hour+time.Minute {
				t.Fatalf("expireAt - now = %v, want 400 days", d)
			}
			if ledger.DefaultRetention != 400*24*time.Hour {
				t.Fatalf("DefaultRetention = %v", ledger.DefaultRetention)
			}
		}},
		{"Memberships5000", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			const n = 5000
			work := make(chan int)
			var wg sync.WaitGroup
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						req := "big"
						if i%2 == 1 {
							req = fmt.Sprintf("big/spaces/S%d", i%97)
						}
						if _, _, err := s.Intend(ctx, ledger.Intent{RequestID: req, Root: "big",
							Membership: fmt.Sprintf("spaces/S%d/members/%d", i%97, i)}); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for i := range n {
				work <- i
			}
			close(work)
			wg.Wait()
			must2[ledger.Membership](t)(s.Intend(ctx, ledger.Intent{RequestID: "other", Membership: "spaces/S1/members/1"}))
			got := collect(t, s, "big")
			if len(got) != n {
				t.Fatalf("listed %d records, want %d", len(got), n)
			}
			seen := map[string]bool{}
			for i, m := range got {
				if i > 0 && got[i-1].Key() >= m.Key() {
					t.Fatalf("records %d and %d out of Key order", i-1, i)
				}
				if m.Root != "big" || seen[m.Name] {
					t.Fatalf("record %d: %+v (duplicate or foreign)", i, m)
				}
				seen[m.Name] = true
			}
			// Breaking out of the loop stops the iteration.
			k := 0
			for _, err := range s.Memberships(ctx, "big") {
				if err != nil {
					t.Fatal(err)
				}
				if k++; k == 3 {
					break
				}
			}
		}},
		{"InvalidArguments", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx := ctxT(t)
			_, _, e1 := s.CreateRequest(ctx, ledger.Request{})
			_, _, e2 := s.Intend(ctx, ledger.Intent{RequestID: "r"})
			e3 := s.Decide(ctx, "r", "m", ledger.Decision{})
			_, _, e4 := s.ClaimPage(ctx, "", "p", ledger.PageClaim{})
			_, e5 := s.Membership(ctx, "", "m")
			e6 := s.SetRequestState(ctx, "r", "", nil)
			var e7 error
			for _, err := range s.Memberships(ctx, "") {
				e7 = err
			}
			var e8 error
			for _, err := range s.Pages(ctx, "") {
				e8 = err
			}
			for i, err := range []error{e1, e2, e3, e4, e5, e6, e7, e8} {
				if !errors.Is(err, ledger.ErrInvalid) {
					t.Errorf("call %d: %v, want ErrInvalid", i+1, err)
				}
			}
		}},
		{"ContextDone", func(t *testing.T, s ledger.Store, _ *clock) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := s.Membership(ctx, "r", "m")
			if err == nil || errors.Is(err, ledger.ErrNotFound) || !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("Membership with a done context: %v, want ErrUnavailable", err)
			}
			_, _, err = s.Intend(ctx, ledger.Intent{RequestID: "r", Membership: "m"})
			if !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("Intend with a done context: %v, want ErrUnavailable", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{t: t0}
			s := mk(t, ledger.Config{Retention: 30 * 24 * time.Hour, Now: clk.Now})
			c.run(t, s, clk)
		})
	}
}

// must2 checks the error of a (value, created, error) call.
func must2[T any](t testing.TB) func(T, bool, error) (T, bool) {
	return func(v T, created bool, err error) (T, bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v, created
	}
}

// dryRunsBesideRealRecords: a dry run and the real request under one id (and
// their children) are kept apart by ledger.DryRuns, and each reads back its
// own records under the ids it was given.
func dryRunsBesideRealRecords(t *testing.T, s ledger.Store, _ *clock) {
	ctx := ctxT(t)
	dry := ledger.DryRuns(s)
	for _, st := range []ledger.Store{dry, s} {
		isDry := st == dry
		if _, created := must2[ledger.Request](t)(st.CreateRequest(ctx, ledger.Request{ID: "hr-1", Kind: "sweep", DryRun: isDry})); !created {
			t.Fatalf("dry run %v: the request was not created beside the other", isDry)
		}
		if _, created := must2[ledger.Request](t)(st.CreateRequest(ctx, ledger.Request{ID: "hr-1/spaces/A", ParentID: "hr-1", DryRun: isDry})); !created {
			t.Fatalf("dry run %v: the child was not created beside the other", isDry)
		}
		outcome := "removed"
		if isDry {
			outcome = "dry_run"
		}
		if err := st.Decide(ctx, "hr-1/spaces/A", "spaces/A/members/1", ledger.Decision{Root: "hr-1", Outcome: outcome}); err != nil {
			t.Fatal(err)
		}
		if _, created := must2[ledger.PageClaim](t)(st.ClaimPage(ctx, "hr-1", "hr-1", ledger.PageClaim{Children: 1})); !created {
			t.Fatalf("dry run %v: the page claim was not created beside the other", isDry)
		}
	}
	for _, c := range []struct {
		st      ledger.Store
		dryRun  bool
		outcome string
	}{{dry, true, "dry_run"}, {s, false, "removed"}} {
		child := getRequest(t, c.st, "hr-1/spaces/A")
		if child.ID != "hr-1/spaces/A" || child.ParentID != "hr-1" || child.Root != "hr-1" || child.DryRun != c.dryRun {
			t.Errorf("child read through dry run %v = %+v", c.dryRun, child)
		}
		ms := collect(t, c.st, "hr-1")
		if len(ms) != 1 || ms[0].Outcome != c.outcome || ms[0].RequestID != "hr-1/spaces/A" || ms[0].Root != "hr-1" {
			t.Errorf("memberships read through dry run %v = %+v, want one %s of hr-1/spaces/A", c.dryRun, ms, c.outcome)
		}
		m := getMembership(t, c.st, "hr-1/spaces/A", "spaces/A/members/1")
		if m.Outcome != c.outcome || m.RequestID != "hr-1/spaces/A" {
			t.Errorf("membership read through dry run %v = %+v", c.dryRun, m)
		}
		n := 0
		for p, err := range c.st.Pages(ctx, "hr-1") {
			if err != nil || p.SweepID != "hr-1" {
				t.Fatalf("Pages through dry run %v: %+v, %v", c.dryRun, p, err)
			}
			n++
		}
		if n != 1 {
			t.Errorf("Pages through dry run %v: %d claims, want 1", c.dryRun, n)
		}
	}
	if _, err := s.Request(ctx, "hr-1"+ledger.DryRunSuffix); err != nil {
		t.Errorf("the dry run is not kept under DryRunKey: %v", err)
	}
	// A space's records: the dry run's alone through the view, both in the
	// store.
	for _, c := range []struct {
		st   ledger.Store
		want []string
	}{{dry, []string{"dry_run"}}, {s, []string{"dry_run", "removed"}}} {
		var got []string
		for m, err := range c.st.InSpace(ctx, "spaces/A") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Outcome)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("InSpace: %v, want %v", got, c.want)
		}
	}
}
