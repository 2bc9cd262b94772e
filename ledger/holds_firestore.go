package ledger

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// holdDoc is a document of the holds collection.
type holdDoc struct {
	RequestID   string    `firestore:"requestId"`
	Kind        string    `firestore:"kind"`
	Target      string    `firestore:"target"`
	Why         string    `firestore:"why"`
	State       string    `firestore:"state"`
	Message     []byte    `firestore:"message"`
	Result      []byte    `firestore:"result"`
	HeldAt      time.Time `firestore:"heldAt"`
	DueAt       time.Time `firestore:"dueAt"`
	ReleaseID   string    `firestore:"releaseId"`
	DecidedBy   string    `firestore:"decidedBy"`
	DecidedAt   time.Time `firestore:"decidedAt"`
	CancelledAt time.Time `firestore:"cancelledAt"`
	CancelledBy string    `firestore:"cancelledBy"`
	ExpireAt    time.Time `firestore:"expireAt"`
}

func (d holdDoc) hold() Hold {
	return Hold{
		RequestID: d.RequestID, Kind: d.Kind, Target: d.Target, Why: d.Why, State: d.State,
		Message: cloneBytes(d.Message), Result: cloneBytes(d.Result), HeldAt: stamp(d.HeldAt), DueAt: stamp(d.DueAt),
		ReleaseID: d.ReleaseID, DecidedBy: d.DecidedBy, DecidedAt: stamp(d.DecidedAt),
		CancelledAt: stamp(d.CancelledAt), CancelledBy: d.CancelledBy, ExpireAt: stamp(d.ExpireAt),
	}
}

func holdData(h Hold) map[string]any {
	nonNil := func(b []byte) []byte {
		if b == nil {
			return []byte{}
		}
		return b
	}
	return map[string]any{
		"requestId": h.RequestID, "kind": h.Kind, "target": h.Target, "why": h.Why, "state": h.State,
		"message": nonNil(h.Message), "result": nonNil(h.Result), "heldAt": h.HeldAt, "dueAt": h.DueAt,
		"releaseId": h.ReleaseID, "decidedBy": h.DecidedBy, "decidedAt": h.DecidedAt,
		"cancelledAt": h.CancelledAt, "cancelledBy": h.CancelledBy, "expireAt": h.ExpireAt,
	}
}

func (s *Firestore) holds() *firestore.CollectionRef { return s.client.Collection(HoldsCollection) }

// CreateHold implements [Holds.CreateHold].
func (s *Firestore) CreateHold(ctx context.Context, h Hold) (Hold, bool, error) {
	if h.RequestID == "" {
		return Hold{}, false, fmt.Errorf("ledger: create hold: %w: empty request id", ErrInvalid)
	}
	h = newHold(h, s.cfg)
	var old holdDoc
	created, err := create(ctx, "create hold "+h.RequestID, s.holds().Doc(docID(h.RequestID)), holdData(h), &old)
	if err != nil {
		return Hold{}, false, err
	}
	if !created {
		return old.hold(), false, nil
	}
	return h, true, nil
}

// Hold implements [Holds.Hold].
func (s *Firestore) Hold(ctx context.Context, requestID string) (Hold, error) {
	if requestID == "" {
		return Hold{}, fmt.Errorf("ledger: hold: %w: empty request id", ErrInvalid)
	}
	var d holdDoc
	if err := get(ctx, "hold "+requestID, s.holds().Doc(docID(requestID)), &d); err != nil {
		return Hold{}, err
	}
	return d.hold(), nil
}

// holdTx runs fn on the hold of requestID in one transaction; fn gets the
// hold and whether it exists, and returns the hold to write (nil: none).
func (s *Firestore) holdTx(ctx context.Context, op, requestID string, fn func(Hold, bool, time.Time) *Hold) (Hold, error) {
	ref := s.holds().Doc(docID(requestID))
	var out Hold
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		found := err == nil
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		var h Hold
		if found {
			var d holdDoc
			if err := snap.DataTo(&d); err != nil {
				return err
			}
			h = d.hold()
		}
		next := fn(h, found, s.cfg.now())
		out = h
		if next == nil {
			return nil
		}
		out = *next
		return tx.Set(ref, holdData(*next))
	})
	if err != nil {
		return Hold{}, unavailable(op, err)
	}
	return out, nil
}

// ChangeHold implements [Holds.ChangeHold].
func (s *Firestore) ChangeHold(ctx context.Context, requestID, from string, c HoldChange) (Hold, bool, error) {
	if requestID == "" || from == "" {
		return Hold{}, false, fmt.Errorf("ledger: change hold: %w: empty request id or state", ErrInvalid)
	}
	changed, missing := false, false
	h, err := s.holdTx(ctx, "change hold "+requestID, requestID, func(h Hold, found bool, now time.Time) *Hold {
		changed, missing = false, !found
		if !found || h.State != from {
			return nil
		}
		changed = true
		next := c.apply(h, now, s.cfg.Retention)
		return &next
	})
	switch {
	case err != nil:
		return Hold{}, false, err
	case missing:
		return Hold{}, false, fmt.Errorf("ledger: change hold %s: %w", requestID, ErrNotFound)
	}
	return h, changed, nil
}

// CancelRequest implements [Holds.CancelRequest].
func (s *Firestore) CancelRequest(ctx context.Context, requestID string, c Cancel) (Hold, error) {
	if requestID == "" || c.ID == "" {
		return Hold{}, fmt.Errorf("ledger: cancel: %w: empty request id or cancel id", ErrInvalid)
	}
	return s.holdTx(ctx, "cancel "+requestID, requestID, func(h Hold, found bool, now time.Time) *Hold {
		next := c.apply(h, found, requestID, now, s.cfg.Retention)
		return &next
	})
}

// HoldsInState implements [Holds.HoldsInState].
func (s *Firestore) HoldsInState(ctx context.Context, state string) iter.Seq2[Hold, error] {
	if state == "" {
		return failed[Hold](fmt.Errorf("ledger: holds: %w: empty state", ErrInvalid))
	}
	return queryAll(ctx, s.holds().Where("state", "==", state), "holds in state "+state, holdDoc.hold)
}

// HoldsOfRelease implements [Holds.HoldsOfRelease].
func (s *Firestore) HoldsOfRelease(ctx context.Context, releaseID string) iter.Seq2[Hold, error] {
	if releaseID == "" {
		return failed[Hold](fmt.Errorf("ledger: holds: %w: empty release id", ErrInvalid))
	}
	return queryAll(ctx, s.holds().Where("releaseId", "==", releaseID), "holds of release "+releaseID, holdDoc.hold)
}

// brakeRecord is the brake's document: the admitted starts of the window.
type brakeRecord struct {
	Key      string      `firestore:"key"`
	IDs      []string    `firestore:"ids"`
	Ats      []time.Time `firestore:"ats"`
	ExpireAt time.Time   `firestore:"expireAt"`
}

// admitMu serializes the brake's transactions within a process: they all
// read and write one document, and concurrent read-write transactions on
// one document wait for each other's locks (the emulator until its lock
// timeout). Across instances Firestore's transaction retries arbitrate.
var admitMu sync.Mutex

// Admit implements [Holds.Admit]: one transaction on the brake's document.
func (s *Firestore) Admit(ctx context.Context, key, requestID string, max int, window time.Duration) (bool, error) {
	if key == "" || requestID == "" {
		return false, fmt.Errorf("ledger: admit: %w: empty key or request id", ErrInvalid)
	}
	admitMu.Lock()
	defer admitMu.Unlock()
	ref := s.holds().Doc(brakeDoc(key))
	admitted := false
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		admitted = false
		var d brakeRecord
		snap, err := tx.Get(ref)
		switch {
		case err == nil:
			if err := snap.DataTo(&d); err != nil {
				return err
			}
		case status.Code(err) != codes.NotFound:
			return err
		}
		now := s.cfg.now()
		ids, ats, ok, changed := admit(d.IDs, d.Ats, requestID, max, window, now)
		admitted = ok
		if !changed {
			return nil
		}
		return tx.Set(ref, map[string]any{"key": key, "ids": ids, "ats": ats, "expireAt": now.Add(s.cfg.Retention)})
	})
	if err != nil {
		return false, unavailable("admit "+requestID, err)
	}
	return admitted, nil
}
