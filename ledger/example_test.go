package ledger_test

import (
	"context"
	"fmt"

	"github.com/chat-offboard/chat-offboard/ledger"
)

// Example shows the order of ledger calls around one removal: the intent
// before the Chat write, the outcome after it, and what a redelivery finds.
func Example() {
	ctx := context.Background()
	var s ledger.Store = ledger.NewMemory() // production: ledger.NewFirestore(ctx, project, database)
	defer s.Close()

	req := ledger.Request{ID: "req-1", Kind: "remove", Target: "users/1 from spaces/A"}
	if _, created, err := s.CreateRequest(ctx, req); err != nil {
		return // unavailable: a transient error, the message is redelivered
	} else if created {
		fmt.Println("request recorded")
	}

	in := ledger.Intent{RequestID: "req-1", Membership: "spaces/A/members/1", Member: "users/1",
		Role: "ROLE_MEMBER", Action: ledger.ActionDelete}
	if m, created, err := s.Intend(ctx, in); err == nil && created {
		// ... the Chat delete, then the result is published ...
		_ = s.Decide(ctx, "req-1", m.Name, ledger.Decision{Outcome: "removed", Role: m.Role,
			Result: []byte(`{"outcome":"removed"}`)})
	}

	// A redelivery finds the record decided: no Chat call, publish m.Result again.
	m, created, _ := s.Intend(ctx, in)
	fmt.Println(created, m.Decided(), m.Outcome, string(m.Result))
	// Output:
	// request recorded
	// false true removed {"outcome":"removed"}
}
