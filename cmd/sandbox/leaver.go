package main

import (
	"context"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/cmd/internal/console"
	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/report"
)

// leaverReport prints the leaver report (package report, as offboard report
// prints it) of the requests of all that reached the ledger: every sample
// but those answered invalid, which are never recorded. It reads the
// function's ledger in-process.
func (s *sandbox) leaverReport(w *console.Writer, all []*entry) {
	var ids []string
	seen := map[string]bool{}
	s.mu.Lock()
	for _, e := range all {
		if r := e.result; r != nil && r.Outcome != contract.Invalid && !seen[r.RequestID] {
			seen[r.RequestID] = true
			ids = append(ids, r.RequestID)
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 || s.ledger == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := report.Build(ctx, s.ledger, ids...)
	if err != nil {
		w.Printf("\nThe leaver report could not be read: %v\n", err)
		return
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		return
	}
	w.Printf("\nLeaver report (go run ./cmd/offboard report ID... prints the same from the deployed function's ledger):\n%s", b.String())
}
