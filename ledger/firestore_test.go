package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// TestFirestoreUnreachable: a Firestore that does not answer (the client
// pointed, through FIRESTORE_EMULATOR_HOST, at a closed loopback port) gives
// errors that wrap ErrUnavailable and never ErrNotFound, within the context's
// deadline: the engine retries and writes nothing to Chat.
func TestFirestoreUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv(firestoretest.EnvEmulatorHost, addr)

	s, err := ledger.NewFirestore(context.Background(), "unreachable", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := map[string]func(ctx context.Context) error{
		"Membership": func(ctx context.Context) error { _, err := s.Membership(ctx, "r", "spaces/A/members/1"); return err },
		"Request":    func(ctx context.Context) error { _, err := s.Request(ctx, "r"); return err },
		"Intend": func(ctx context.Context) error {
			_, _, err := s.Intend(ctx, ledger.Intent{RequestID: "r", Membership: "spaces/A/members/1"})
			return err
		},
		"Decide": func(ctx context.Context) error {
			return s.Decide(ctx, "r", "spaces/A/members/1", ledger.Decision{Outcome: "removed"})
		},
		"CreateRequest": func(ctx context.Context) error {
			_, _, err := s.CreateRequest(ctx, ledger.Request{ID: "r"})
			return err
		},
		"SetRequestState": func(ctx context.Context) error {
			return s.SetRequestState(ctx, "r", ledger.StateDone, nil)
		},
		"TakeOver": func(ctx context.Context) error {
			_, err := s.TakeOver(ctx, ledger.Request{ID: "r"})
			return err
		},
		"ClaimPage": func(ctx context.Context) error {
			_, _, err := s.ClaimPage(ctx, "s", "p", ledger.PageClaim{})
			return err
		},
		"Page": func(ctx context.Context) error {
			_, err := s.Page(ctx, "s", "p")
			return err
		},
		"Memberships": func(ctx context.Context) error {
			for _, err := range s.Memberships(ctx, "r") {
				if err != nil {
					return err
				}
			}
			return fmt.Errorf("no error")
		},
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		err := call(ctx)
		cancel()
		if err == nil || errors.Is(err, ledger.ErrNotFound) || !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("%s: %v, want an ErrUnavailable error", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v with a 1 s deadline", name, d)
		}
		t.Logf("%s: %v", name, err)
	}
}

// BenchmarkIntendDecide measures one membership's ledger cost, an Intend and
// a Decide (two Firestore writes), on the emulator, one at a time.
func BenchmarkIntendDecide(b *testing.B) {
	s := firestoreStore(b, ledger.Config{})
	ctx := context.Background()
	result := []byte(`{"requestId":"bench","membership":"spaces/A/members/1","outcome":"removed","role":"ROLE_MEMBER"}`)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("spaces/A/members/%d", i)
		if _, _, err := s.Intend(ctx, ledger.Intent{RequestID: "bench", Membership: name, Member: "users/1",
			Role: "ROLE_MEMBER", Action: ledger.ActionDelete}); err != nil {
			b.Fatal(err)
		}
		if err := s.Decide(ctx, "bench", name, ledger.Decision{Outcome: "removed", Result: result}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
