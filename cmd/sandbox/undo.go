package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
)

// Samples that follow another request (issue 14: a sweep, then its undo).
// Lines whose "sandbox" member has "after": "REQUEST_ID" are published
// after all other lines, one at a time in file order, each once the request
// REQUEST_ID (an earlier line) has answered and its children too; wait
// waits for their own children, so that the memberships printed at the end
// include what they did.

// requestIDOf is the requestId of a sample's message data ("" if none).
func requestIDOf(data []byte) string {
	var r struct {
		RequestID string `json:"requestId"`
	}
	_ = json.Unmarshal(data, &r)
	return r.RequestID
}

// runAfter publishes the "after" samples one at a time. It stops at the
// deadline (the report then shows what is missing).
func (s *sandbox) runAfter(ctx context.Context, earlier []*entry, samples []*sample, deadline <-chan time.Time) ([]*entry, error) {
	var out []*entry
	for _, smp := range samples {
		for _, e := range append(earlier, out...) {
			if requestIDOf(e.sample.data) == smp.meta.After {
				if err := s.wait(ctx, []*entry{e}, deadline); err != nil {
					return out, err
				}
			}
		}
		es, err := s.publish(ctx, []*sample{smp})
		out = append(out, es...)
		if err != nil {
			return out, err
		}
		if err := s.wait(ctx, es, deadline); err != nil {
			return out, err
		}
	}
	return out, nil
}

// countChild counts one child decision by its parent and outcome; s.mu is
// held.
func (s *sandbox) countChild(r *contract.Result) {
	if s.childOutcomes == nil {
		s.childOutcomes = map[string]map[contract.Outcome]int{}
	}
	if s.childOutcomes[r.ParentRequestID] == nil {
		s.childOutcomes[r.ParentRequestID] = map[contract.Outcome]int{}
	}
	s.childOutcomes[r.ParentRequestID][r.Outcome]++
}

// printTrees prints, for each sample whose children answered, what they
// decided, e.g. "undo-sweep-alice: 1 restored".
func (s *sandbox) printTrees(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for i := range s.samples {
		id := requestIDOf(s.samples[i].data)
		n := s.childOutcomes[id]
		if id == "" || len(n) == 0 {
			continue
		}
		parts := make([]string, 0, len(n))
		for o, k := range n {
			parts = append(parts, fmt.Sprintf("%d %s", k, o))
		}
		sort.Strings(parts)
		lines = append(lines, fmt.Sprintf("  %s: %s\n", id, strings.Join(parts, ", ")))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "Fanned out (the children's decisions):\n%s\n", strings.Join(lines, ""))
	}
}
