package ledger

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// memoryHolds are the holds and brakes of a Memory, guarded by its lock;
// made on first use.
type memoryHolds struct {
	holds  map[string]Hold // by docID(requestID)
	brakes map[string]memoryBrake
}

type memoryBrake struct {
	ids []string
	ats []time.Time
}

func copyHold(h Hold) Hold {
	h.Message, h.Result = cloneBytes(h.Message), cloneBytes(h.Result)
	return h
}

// beginHolds is begin, with the holds' maps made.
func (s *Memory) beginHolds(ctx context.Context, op string) error {
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	if s.holds.holds == nil {
		s.holds.holds, s.holds.brakes = map[string]Hold{}, map[string]memoryBrake{}
	}
	return nil
}

// CreateHold implements [Holds.CreateHold].
func (s *Memory) CreateHold(ctx context.Context, h Hold) (Hold, bool, error) {
	if h.RequestID == "" {
		return Hold{}, false, fmt.Errorf("ledger: create hold: %w: empty request id", ErrInvalid)
	}
	if err := s.beginHolds(ctx, "create hold "+h.RequestID); err != nil {
		return Hold{}, false, err
	}
	defer s.mu.Unlock()
	k := docID(h.RequestID)
	if old, ok := s.holds.holds[k]; ok {
		return copyHold(old), false, nil
	}
	h = newHold(h, s.cfg)
	s.holds.holds[k] = copyHold(h)
	return h, true, nil
}

// Hold implements [Holds.Hold].
func (s *Memory) Hold(ctx context.Context, requestID string) (Hold, error) {
	if requestID == "" {
		return Hold{}, fmt.Errorf("ledger: hold: %w: empty request id", ErrInvalid)
	}
	if err := s.beginHolds(ctx, "hold "+requestID); err != nil {
		return Hold{}, err
	}
	defer s.mu.Unlock()
	h, ok := s.holds.holds[docID(requestID)]
	if !ok {
		return Hold{}, fmt.Errorf("ledger: hold %s: %w", requestID, ErrNotFound)
	}
	return copyHold(h), nil
}

// ChangeHold implements [Holds.ChangeHold].
func (s *Memory) ChangeHold(ctx context.Context, requestID, from string, c HoldChange) (Hold, bool, error) {
	if requestID == "" || from == "" {
		return Hold{}, false, fmt.Errorf("ledger: change hold: %w: empty request id or state", ErrInvalid)
	}
	if err := s.beginHolds(ctx, "change hold "+requestID); err != nil {
		return Hold{}, false, err
	}
	defer s.mu.Unlock()
	k := docID(requestID)
	h, ok := s.holds.holds[k]
	switch {
	case !ok:
		return Hold{}, false, fmt.Errorf("ledger: change hold %s: %w", requestID, ErrNotFound)
	case h.State != from:
		return copyHold(h), false, nil
	}
	h = c.apply(h, s.cfg.now(), s.cfg.Retention)
	s.holds.holds[k] = h
	return copyHold(h), true, nil
}

// CancelRequest implements [Holds.CancelRequest].
func (s *Memory) CancelRequest(ctx context.Context, requestID string, c Cancel) (Hold, error) {
	if requestID == "" || c.ID == "" {
		return Hold{}, fmt.Errorf("ledger: cancel: %w: empty request id or cancel id", ErrInvalid)
	}
	if err := s.beginHolds(ctx, "cancel "+requestID); err != nil {
		return Hold{}, err
	}
	defer s.mu.Unlock()
	k := docID(requestID)
	h, found := s.holds.holds[k]
	h = c.apply(h, found, requestID, s.cfg.now(), s.cfg.Retention)
	s.holds.holds[k] = h
	return copyHold(h), nil
}

// HoldsInState implements [Holds.HoldsInState].
func (s *Memory) HoldsInState(ctx context.Context, state string) iter.Seq2[Hold, error] {
	if state == "" {
		return failed[Hold](fmt.Errorf("ledger: holds: %w: empty state", ErrInvalid))
	}
	return s.scanHolds(ctx, "holds in state "+state, func(h Hold) bool { return h.State == state })
}

// HoldsOfRelease implements [Holds.HoldsOfRelease].
func (s *Memory) HoldsOfRelease(ctx context.Context, releaseID string) iter.Seq2[Hold, error] {
	if releaseID == "" {
		return failed[Hold](fmt.Errorf("ledger: holds: %w: empty release id", ErrInvalid))
	}
	return s.scanHolds(ctx, "holds of release "+releaseID, func(h Hold) bool { return h.ReleaseID == releaseID })
}

func (s *Memory) scanHolds(ctx context.Context, op string, match func(Hold) bool) iter.Seq2[Hold, error] {
	return func(yield func(Hold, error) bool) {
		if err := s.beginHolds(ctx, op); err != nil {
			yield(Hold{}, err)
			return
		}
		s.mu.Unlock()
		for h, err := range scanAll(ctx, s, op, func() map[string]Hold { return s.holds.holds }, match, copyHold) {
			if !yield(h, err) {
				return
			}
		}
	}
}

// Admit implements [Holds.Admit].
func (s *Memory) Admit(ctx context.Context, key, requestID string, max int, window time.Duration) (bool, error) {
	if key == "" || requestID == "" {
		return false, fmt.Errorf("ledger: admit: %w: empty key or request id", ErrInvalid)
	}
	if err := s.beginHolds(ctx, "admit "+requestID); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	b := s.holds.brakes[key]
	ids, ats, ok, changed := admit(b.ids, b.ats, requestID, max, window, s.cfg.now())
	if changed {
		s.holds.brakes[key] = memoryBrake{ids: ids, ats: ats}
	}
	return ok, nil
}
