package engine

import (
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// summaries returns the "event handled" lines logged so far, in order.
func summaries(t *testing.T, e *env) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logLines(t, e.logs) {
		if l["message"] == "event handled" {
			out = append(out, l)
		}
	}
	return out
}

// TestEventSummaryLine: every event ends with one "event handled" line that
// counts its API attempts (the result's attempts) and splits its time into
// API calls, budget waits and the rest, which the dashboard's log-based
// metrics read (monitoring/metrics).
func TestEventSummaryLine(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, crowdWorkspace(2), emulator.ChatOptions{})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503, Times: 1})
	if err := e.send(t, crowdRequest(0)); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	s := summaries(t, e)
	if len(s) != 1 {
		t.Fatalf("%d summary lines, want 1", len(s))
	}
	line := s[0]
	if got := line["apiCalls"]; got != float64(r.Attempts) || r.Attempts != 3 {
		t.Errorf("apiCalls = %v, result attempts = %d, want both 3 (get, delete 503, delete)", got, r.Attempts)
	}
	handler, api, wait, added := line["handlerMs"].(float64), line["apiMs"].(float64), line["budgetWaitMs"].(float64), line["addedMs"].(float64)
	if api <= 0 || handler < api+wait {
		t.Errorf("handlerMs %v, apiMs %v, budgetWaitMs %v: want 0 < api, api + wait <= handler", handler, api, wait)
	}
	if d := handler - api - wait - added; d > 0.01 || d < -0.01 {
		t.Errorf("addedMs %v, want handlerMs - apiMs - budgetWaitMs = %v", added, handler-api-wait)
	}
	if line["severity"] != "INFO" || line["redelivered"] != false || line["throttled"] != float64(0) {
		t.Errorf("summary line %v: want INFO, not redelivered, 0 throttled", line)
	}
}

// TestEventSummaryBudgetWait: an event that waits for the instance's write
// budget says how long, apart from its API time.
func TestEventSummaryBudgetWait(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, crowdWorkspace(2), emulator.ChatOptions{}, writesPerMinute(120)) // a write every 500 ms
	for i := range 2 {
		if err := e.send(t, crowdRequest(i)); err != nil {
			t.Fatal(err)
		}
	}
	s := summaries(t, e)
	if len(s) != 2 {
		t.Fatalf("%d summary lines, want 2", len(s))
	}
	if w := s[1]["budgetWaitMs"].(float64); w <= 0 {
		t.Errorf("the second removal's budgetWaitMs = %v, want > 0 (one write every 500 ms)", w)
	}
}
