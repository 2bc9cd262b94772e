package ledger

import (
	"context"
	"iter"
	"strings"
)

// DryRunSuffix ends the key under which a dry run's records are kept: the
// records of a dry run and of the real request under the same request id
// live side by side (issue 20: a dry run never uses up an id). It starts
// with a control character (U+001F), which no valid request id has, so a
// dry run's key is never another request's id.
const DryRunSuffix = "\x1fdry-run"

// DryRunKey is the key under which the records of a dry run with request
// id id are kept ("" stays "").
func DryRunKey(id string) string {
	if id == "" || strings.HasSuffix(id, DryRunSuffix) {
		return id
	}
	return id + DryRunSuffix
}

// fromDryRunKey is the request id of a dry run's key.
func fromDryRunKey(key string) string { return strings.TrimSuffix(key, DryRunSuffix) }

// DryRuns is the view of store in which dry runs are recorded: every
// request id it is given (a request's, its parent's and root's, a sweep's)
// is kept under DryRunKey, and the records it returns carry the request
// ids as given. So the engine handles a dry run exactly as a real request,
// and a report reads it the same way, without either meeting the other's
// records. Page keys are kept as given (their sweep id keeps them apart).
// The records of holds and the brake are not a request's own: those
// methods reach store as they are. It is safe for concurrent use as store
// is; Close does not close store.
func DryRuns(store Store) Store { return dryRuns{Store: store} }

// dryRuns embeds the store for the methods it does not map.
type dryRuns struct{ Store }

func (d dryRuns) CreateRequest(ctx context.Context, r Request) (Request, bool, error) {
	r.ID, r.ParentID, r.Root = DryRunKey(r.ID), DryRunKey(r.ParentID), DryRunKey(r.Root)
	got, created, err := d.Store.CreateRequest(ctx, r)
	return dryRequest(got), created, err
}

func (d dryRuns) Request(ctx context.Context, id string) (Request, error) {
	got, err := d.Store.Request(ctx, DryRunKey(id))
	return dryRequest(got), err
}

func (d dryRuns) SetRequestState(ctx context.Context, requestID, state string, expected *int) error {
	return d.Store.SetRequestState(ctx, DryRunKey(requestID), state, expected)
}

func (d dryRuns) TakeOver(ctx context.Context, seen Request) (bool, error) {
	seen.ID, seen.ParentID, seen.Root = DryRunKey(seen.ID), DryRunKey(seen.ParentID), DryRunKey(seen.Root)
	return d.Store.TakeOver(ctx, seen)
}

func (d dryRuns) Intend(ctx context.Context, in Intent) (Membership, bool, error) {
	in.RequestID, in.Root = DryRunKey(in.RequestID), DryRunKey(in.Root)
	m, created, err := d.Store.Intend(ctx, in)
	return dryMembership(m), created, err
}

func (d dryRuns) Decide(ctx context.Context, requestID, membership string, dec Decision) error {
	dec.Root = DryRunKey(dec.Root)
	return d.Store.Decide(ctx, DryRunKey(requestID), membership, dec)
}

func (d dryRuns) Membership(ctx context.Context, requestID, membership string) (Membership, error) {
	m, err := d.Store.Membership(ctx, DryRunKey(requestID), membership)
	return dryMembership(m), err
}

func (d dryRuns) ClaimPage(ctx context.Context, sweepID, pageKey string, c PageClaim) (PageClaim, bool, error) {
	got, created, err := d.Store.ClaimPage(ctx, DryRunKey(sweepID), pageKey, c)
	got.SweepID = fromDryRunKey(got.SweepID)
	return got, created, err
}

func (d dryRuns) Page(ctx context.Context, sweepID, pageKey string) (PageClaim, error) {
	got, err := d.Store.Page(ctx, DryRunKey(sweepID), pageKey)
	got.SweepID = fromDryRunKey(got.SweepID)
	return got, err
}

func (d dryRuns) Memberships(ctx context.Context, rootID string) iter.Seq2[Membership, error] {
	return func(yield func(Membership, error) bool) {
		for m, err := range d.Store.Memberships(ctx, DryRunKey(rootID)) {
			if !yield(dryMembership(m), err) {
				return
			}
		}
	}
}

// InSpace yields the dry runs' records of the space only.
func (d dryRuns) InSpace(ctx context.Context, spaceName string) iter.Seq2[Membership, error] {
	return func(yield func(Membership, error) bool) {
		for m, err := range d.Store.InSpace(ctx, spaceName) {
			if err == nil && !strings.HasSuffix(m.RequestID, DryRunSuffix) {
				continue
			}
			if !yield(dryMembership(m), err) {
				return
			}
		}
	}
}

func (d dryRuns) Pages(ctx context.Context, sweepID string) iter.Seq2[PageClaim, error] {
	return func(yield func(PageClaim, error) bool) {
		for c, err := range d.Store.Pages(ctx, DryRunKey(sweepID)) {
			c.SweepID = fromDryRunKey(c.SweepID)
			if !yield(c, err) {
				return
			}
		}
	}
}

// Close does nothing: the view does not own the store.
func (d dryRuns) Close() error { return nil }

func dryRequest(r Request) Request {
	r.ID, r.ParentID, r.Root = fromDryRunKey(r.ID), fromDryRunKey(r.ParentID), fromDryRunKey(r.Root)
	return r
}

func dryMembership(m Membership) Membership {
	m.RequestID, m.Root = fromDryRunKey(m.RequestID), fromDryRunKey(m.Root)
	return m
}
