package ledger

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
)

// Memory is an in-process Store with the same semantics as [Firestore]
// (checked by the same conformance tests), for the sandbox's embedded default
// and for tests. Nothing survives the process. Safe for concurrent use.
type Memory struct {
	cfg Config

	mu          sync.Mutex
	closed      bool
	requests    map[string]Request    // by docID(id)
	memberships map[string]Membership // by docID(requestID, name)
	pages       map[string]PageClaim  // by docID(sweepID, pageKey)
	holds       memoryHolds           // holds_memory.go
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process store with the default Config.
func NewMemory() *Memory { return NewMemoryWithConfig(Config{}) }

// NewMemoryWithConfig returns an empty in-process store with cfg.
func NewMemoryWithConfig(cfg Config) *Memory {
	return &Memory{
		cfg:         cfg.withDefaults(),
		requests:    map[string]Request{},
		memberships: map[string]Membership{},
		pages:       map[string]PageClaim{},
	}
}

// begin checks ctx and the store, and locks it.
func (s *Memory) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger: %s: %w: %w", op, ErrUnavailable, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("ledger: %s: %w: store closed", op, ErrUnavailable)
	}
	return nil
}

// CreateRequest implements [Store.CreateRequest].
func (s *Memory) CreateRequest(ctx context.Context, r Request) (Request, bool, error) {
	if r.ID == "" {
		return Request{}, false, fmt.Errorf("ledger: create request: %w: empty id", ErrInvalid)
	}
	if err := s.begin(ctx, "create request "+r.ID); err != nil {
		return Request{}, false, err
	}
	defer s.mu.Unlock()
	k := docID(r.ID)
	if old, ok := s.requests[k]; ok {
		return copyRequest(old), false, nil
	}
	r = newRequest(r, s.cfg)
	s.requests[k] = copyRequest(r)
	return r, true, nil
}

// newRequest fills in what the store sets on a new request.
func newRequest(r Request, cfg Config) Request {
	now := cfg.now()
	if r.Root == "" {
		r.Root = RootOf(r.ID, r.ParentID)
	}
	if r.State == "" {
		r.State = StateOpen
	}
	r.Expected = cloneInt(r.Expected)
	r.CreatedAt, r.UpdatedAt, r.ExpireAt = now, now, now.Add(cfg.Retention)
	return r
}

func copyRequest(r Request) Request {
	r.Expected = cloneInt(r.Expected)
	return r
}

// Request implements [Store.Request].
func (s *Memory) Request(ctx context.Context, id string) (Request, error) {
	if id == "" {
		return Request{}, fmt.Errorf("ledger: request: %w: empty id", ErrInvalid)
	}
	if err := s.begin(ctx, "request "+id); err != nil {
		return Request{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.requests[docID(id)]
	if !ok {
		return Request{}, fmt.Errorf("ledger: request %s: %w", id, ErrNotFound)
	}
	return copyRequest(r), nil
}

// SetRequestState implements [Store.SetRequestState].
func (s *Memory) SetRequestState(ctx context.Context, requestID, state string, expected *int) error {
	if requestID == "" || state == "" {
		return fmt.Errorf("ledger: set request state: %w: empty request id or state", ErrInvalid)
	}
	if err := s.begin(ctx, "set state of request "+requestID); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := docID(requestID)
	r, ok := s.requests[k]
	if !ok {
		return fmt.Errorf("ledger: set state of request %s: %w", requestID, ErrNotFound)
	}
	now := s.cfg.now()
	r.State, r.UpdatedAt, r.ExpireAt = state, now, now.Add(s.cfg.Retention)
	if expected != nil {
		r.Expected = cloneInt(expected)
	}
	s.requests[k] = r
	return nil
}

// TakeOver implements [Store.TakeOver].
func (s *Memory) TakeOver(ctx context.Context, seen Request) (bool, error) {
	if seen.ID == "" {
		return false, fmt.Errorf("ledger: take over: %w: empty request id", ErrInvalid)
	}
	if err := s.begin(ctx, "take over request "+seen.ID); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	k := docID(seen.ID)
	r, ok := s.requests[k]
	if !ok {
		return false, fmt.Errorf("ledger: take over request %s: %w", seen.ID, ErrNotFound)
	}
	if r.State != seen.State || !r.UpdatedAt.Equal(seen.UpdatedAt) {
		return false, nil
	}
	now := s.cfg.now()
	r.State, r.UpdatedAt, r.ExpireAt = StateOpen, now, now.Add(s.cfg.Retention)
	s.requests[k] = r
	return true, nil
}

// Intend implements [Store.Intend].
func (s *Memory) Intend(ctx context.Context, in Intent) (Membership, bool, error) {
	if in.RequestID == "" || in.Membership == "" {
		return Membership{}, false, fmt.Errorf("ledger: intend: %w: empty request id or membership", ErrInvalid)
	}
	if err := s.begin(ctx, "intend "+in.RequestID+" "+in.Membership); err != nil {
		return Membership{}, false, err
	}
	defer s.mu.Unlock()
	k := docID(in.RequestID, in.Membership)
	if old, ok := s.memberships[k]; ok {
		return copyMembership(old), false, nil
	}
	m := newIntent(in, s.cfg)
	s.memberships[k] = m
	return copyMembership(m), true, nil
}

func newIntent(in Intent, cfg Config) Membership {
	now := cfg.now()
	return Membership{
		RequestID: in.RequestID, Root: RootOf(in.RequestID, in.Root), Name: in.Membership,
		Member: in.Member, Role: in.Role, Action: in.Action,
		IntendedAt: now, ExpireAt: now.Add(cfg.Retention),
	}
}

func copyMembership(m Membership) Membership {
	m.Result = cloneBytes(m.Result)
	return m
}

// Decide implements [Store.Decide].
func (s *Memory) Decide(ctx context.Context, requestID, membership string, d Decision) error {
	if requestID == "" || membership == "" || d.Outcome == "" {
		return fmt.Errorf("ledger: decide: %w: empty request id, membership or outcome", ErrInvalid)
	}
	if err := s.begin(ctx, "decide "+requestID+" "+membership); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := docID(requestID, membership)
	m := s.memberships[k] // the zero record if absent
	now := s.cfg.now()
	m.RequestID, m.Name, m.Root = requestID, membership, RootOf(requestID, d.Root)
	if d.Member != "" {
		m.Member = d.Member
	}
	if d.Role != "" {
		m.Role = d.Role
	}
	m.Outcome, m.Result, m.DecidedAt, m.ExpireAt = d.Outcome, cloneBytes(d.Result), now, now.Add(s.cfg.Retention)
	s.memberships[k] = m
	return nil
}

// Membership implements [Store.Membership].
func (s *Memory) Membership(ctx context.Context, requestID, membership string) (Membership, error) {
	if requestID == "" || membership == "" {
		return Membership{}, fmt.Errorf("ledger: membership: %w: empty request id or membership", ErrInvalid)
	}
	if err := s.begin(ctx, "membership "+requestID+" "+membership); err != nil {
		return Membership{}, err
	}
	defer s.mu.Unlock()
	m, ok := s.memberships[docID(requestID, membership)]
	if !ok {
		return Membership{}, fmt.Errorf("ledger: membership %s of %s: %w", membership, requestID, ErrNotFound)
	}
	return copyMembership(m), nil
}

// ClaimPage implements [Store.ClaimPage].
func (s *Memory) ClaimPage(ctx context.Context, sweepID, pageKey string, c PageClaim) (PageClaim, bool, error) {
	if sweepID == "" || pageKey == "" {
		return PageClaim{}, false, fmt.Errorf("ledger: claim page: %w: empty sweep id or page key", ErrInvalid)
	}
	if err := s.begin(ctx, "claim page "+sweepID+" "+pageKey); err != nil {
		return PageClaim{}, false, err
	}
	defer s.mu.Unlock()
	k := docID(sweepID, pageKey)
	if old, ok := s.pages[k]; ok {
		old.Result = cloneBytes(old.Result)
		return old, false, nil
	}
	c = newClaim(sweepID, pageKey, c, s.cfg)
	s.pages[k] = c
	c.Result = cloneBytes(c.Result)
	return c, true, nil
}

// Page implements [Store.Page].
func (s *Memory) Page(ctx context.Context, sweepID, pageKey string) (PageClaim, error) {
	if sweepID == "" || pageKey == "" {
		return PageClaim{}, fmt.Errorf("ledger: page: %w: empty sweep id or page key", ErrInvalid)
	}
	if err := s.begin(ctx, "page "+sweepID+" "+pageKey); err != nil {
		return PageClaim{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.pages[docID(sweepID, pageKey)]
	if !ok {
		return PageClaim{}, fmt.Errorf("ledger: page %s of %s: %w", pageKey, sweepID, ErrNotFound)
	}
	c.Result = cloneBytes(c.Result)
	return c, nil
}

func newClaim(sweepID, pageKey string, c PageClaim, cfg Config) PageClaim {
	now := cfg.now()
	c.SweepID, c.PageKey, c.ClaimedAt, c.ExpireAt = sweepID, pageKey, now, now.Add(cfg.Retention)
	c.Result = cloneBytes(c.Result)
	return c
}

// Memberships implements [Store.Memberships]: it reads pageSize records at a
// time, each page under the lock, as Firestore reads one query per page.
func (s *Memory) Memberships(ctx context.Context, rootID string) iter.Seq2[Membership, error] {
	if rootID == "" {
		return failed[Membership](fmt.Errorf("ledger: memberships: %w: empty root id", ErrInvalid))
	}
	return scanAll(ctx, s, "memberships of "+rootID, func() map[string]Membership { return s.memberships },
		func(m Membership) bool { return m.Root == rootID }, copyMembership)
}

// InSpace implements [Store.InSpace], as Memberships reads.
func (s *Memory) InSpace(ctx context.Context, spaceName string) iter.Seq2[Membership, error] {
	prefix, _, ok := spacePrefix(spaceName)
	if !ok {
		return failed[Membership](fmt.Errorf("ledger: memberships in space: %w: %q is not spaces/S", ErrInvalid, spaceName))
	}
	return scanAll(ctx, s, "memberships in "+spaceName, func() map[string]Membership { return s.memberships },
		func(m Membership) bool { return strings.HasPrefix(m.Name, prefix) }, copyMembership)
}

// Pages implements [Store.Pages], as Memberships reads.
func (s *Memory) Pages(ctx context.Context, sweepID string) iter.Seq2[PageClaim, error] {
	if sweepID == "" {
		return failed[PageClaim](fmt.Errorf("ledger: pages: %w: empty sweep id", ErrInvalid))
	}
	return scanAll(ctx, s, "pages of "+sweepID, func() map[string]PageClaim { return s.pages },
		func(c PageClaim) bool { return c.SweepID == sweepID },
		func(c PageClaim) PageClaim { c.Result = cloneBytes(c.Result); return c })
}

// scanAll yields the records of the map that records returns (read under
// the lock) that match, copied by cp, in key order, pageSize at a time.
func scanAll[T any](ctx context.Context, s *Memory, op string, records func() map[string]T, match func(T) bool, cp func(T) T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		after := ""
		for {
			if err := s.begin(ctx, op); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			var page []string
			for k, r := range records() {
				if k > after && match(r) {
					page = append(page, k)
				}
			}
			slices.Sort(page)
			if len(page) > pageSize {
				page = page[:pageSize]
			}
			rs := make([]T, len(page))
			for i, k := range page {
				rs[i] = cp(records()[k])
			}
			s.mu.Unlock()
			for _, r := range rs {
				if !yield(r, nil) {
					return
				}
			}
			if len(page) < pageSize {
				return
			}
			after = page[len(page)-1]
		}
	}
}

// Close implements [Store.Close]: later calls fail with ErrUnavailable.
func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
