package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/report"
)

func TestMain(m *testing.M) { os.Exit(firestoretest.RunMain(m)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stores runs f on a Memory ledger and on the Firestore emulator.
func stores(t *testing.T, f func(t *testing.T, s ledger.Store)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		s := ledger.NewMemory()
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("firestore", func(t *testing.T) {
		t.Parallel()
		host := firestoretest.Emulator(t)
		s, err := ledger.NewFirestore(context.Background(), firestoretest.Project(t.Name()), "", firestoretest.ClientOptions(host)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

// writer writes ledger records as the engine would, for the tests.
type writer struct {
	t *testing.T
	s ledger.Store
}

func (w writer) request(id, kind, target string) {
	w.t.Helper()
	if _, _, err := w.s.CreateRequest(ctxT(w.t), ledger.Request{ID: id, Kind: kind, Target: target, Reason: "offboarding", RequestedBy: "hr"}); err != nil {
		w.t.Fatal(err)
	}
}

// decide records r (a raw JSON map, so that outcomes and fields this
// version does not know can be written) as the decision of its membership.
func (w writer) decide(root string, r map[string]any) {
	w.t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		w.t.Fatal(err)
	}
	member := ""
	if m, ok := r["member"].(map[string]any); ok {
		member, _ = m["name"].(string)
	}
	if err := w.s.Decide(ctxT(w.t), r["requestId"].(string), r["membership"].(string), ledger.Decision{
		Root: root, Member: member, Outcome: r["outcome"].(string), Role: str(r["role"]), Result: data,
	}); err != nil {
		w.t.Fatal(err)
	}
}

func (w writer) claim(sweep, page string, expected int, rs ...map[string]any) {
	w.t.Helper()
	data, err := json.Marshal(rs)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := w.s.ClaimPage(ctxT(w.t), sweep, page, ledger.PageClaim{ExpectedResults: expected, Result: data}); err != nil {
		w.t.Fatal(err)
	}
}

func str(v any) string { s, _ := v.(string); return s }

func res(req, membership, outcome string, kv ...any) map[string]any {
	r := map[string]any{"requestId": req, "outcome": outcome, "adminAccess": true, "dryRun": false, "processedAt": "2026-12-01T10:00:00Z"}
	if membership != "" {
		r["membership"] = membership
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r[kv[i].(string)] = kv[i+1]
	}
	return r
}

func member(id string) map[string]any { return map[string]any{"name": id, "type": "HUMAN"} }

// seed writes a sweep "sw" of two pages (spaces A and B, then C) for two
// people and one the directory does not know, with one write still
// intended (users/2 in C), and an undo "undo" with outcomes of the restore
// issue, written directly.
func seed(t *testing.T, s ledger.Store) writer {
	w := writer{t, s}
	w.request("sw", "sweep", "3 people from every space")
	w.claim("sw", "sw", 5,
		res("sw/ghost@example.com", "", "failed", "parentRequestId", "sw", "member", member("users/ghost@example.com"),
			"error", map[string]any{"code": 404, "status": "NOT_FOUND", "message": "the directory does not know ghost@example.com"}),
		res("sw", "", "planned", "children", 3, "expectedResults", 5, "continued", true))
	w.claim("sw", "sw/page-0123456789ab", 2, res("sw/page-0123456789ab", "", "planned", "children", 1, "expectedResults", 2))
	w.decide("sw", res("sw/spaces/A", "spaces/A/members/1", "removed", "spaceDisplayName", "Alpha, \"the\" first", "role", "ROLE_MANAGER",
		"member", member("users/1"), "handOff", map[string]any{"successor": "users/9", "added": true, "promoted": true}))
	// The successor's hand-off record is not a result.
	if _, _, err := s.Intend(ctxT(t), ledger.Intent{RequestID: "sw/spaces/A", Root: "sw", Membership: "spaces/A/members/9", Member: "users/9", Action: ledger.ActionHandOff}); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctxT(t), "sw/spaces/A", "spaces/A/members/9", ledger.Decision{Root: "sw", Outcome: ledger.ActionHandOff, Role: "ROLE_MANAGER"}); err != nil {
		t.Fatal(err)
	}
	w.decide("sw", res("sw/spaces/A", "spaces/A/members/2", "not_member", "spaceDisplayName", "Alpha, \"the\" first"))
	w.decide("sw", res("sw/spaces/B", "spaces/B/members/1", "failed", "spaceDisplayName", "Bravo\nline",
		"error", map[string]any{"code": 403, "status": "PERMISSION_DENIED", "message": "no"}))
	w.decide("sw", res("sw/spaces/B", "spaces/B/members/2", "via_group", "spaceDisplayName", "Bravo\nline",
		"member", map[string]any{"name": "users/2", "type": "HUMAN", "email": "two@example.com"}, "viaGroups", []string{"groups/g1"},
		"detail", "still in the space through groups/g1"))
	w.decide("sw", res("sw/spaces/C", "spaces/C/members/1", "expired", "error", map[string]any{"message": "timeout"}))
	if _, _, err := s.Intend(ctxT(t), ledger.Intent{RequestID: "sw/spaces/C", Root: "sw", Membership: "spaces/C/members/2", Member: "users/2", Role: "ROLE_MEMBER", Action: ledger.ActionDelete}); err != nil {
		t.Fatal(err)
	}
	w.request("undo", "restore", "undo sw")
	w.decide("undo", res("undo", "spaces/A/members/1", "restored", "role", "ROLE_MANAGER", "member", member("users/1"), "membershipState", "JOINED"))
	w.decide("undo", res("undo", "spaces/D/members/1", "already_member", "member", member("users/1")))
	if err := s.SetRequestState(ctxT(t), "undo", ledger.StateDone, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestReportFromTheLedger(t *testing.T) {
	stores(t, func(t *testing.T, s ledger.Store) {
		w := seed(t, s)
		rep, err := report.Build(ctxT(t), s, "sw", "undo", "missing")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{} // person space request → outcome, fix
		for _, p := range rep.People {
			for _, r := range p.Rows {
				k := p.ID + " " + r.Space + " " + r.Request
				if _, dup := got[k]; dup {
					t.Errorf("%s listed twice", k)
				}
				got[k] = r.Outcome + " | " + r.Role + " | " + r.HandOff + " | " + r.SpaceDisplayName + " | " + strings.Join(r.ViaGroups, ",") + " | " + r.Fix
			}
		}
		fix := func(outcome, status, msg string) string {
			var e *contract.ErrorInfo
			if status != "" || msg != "" {
				e = &contract.ErrorInfo{Status: status, Message: msg}
			}
			return report.Fix(outcome, e)
		}
		want := map[string]string{
			"users/1 spaces/A sw":         "removed | ROLE_MANAGER | users/9 added and made owner | Alpha, \"the\" first |  | ",
			"users/1 spaces/B sw":         "failed |  |  | Bravo\nline |  | " + fix("failed", "PERMISSION_DENIED", ""),
			"users/1 spaces/C sw":         "expired |  |  |  |  | " + fix("expired", "", "timeout"),
			"users/2 spaces/A sw":         "not_member |  |  | Alpha, \"the\" first |  | ",
			"users/2 spaces/B sw":         "via_group |  |  | Bravo\nline | groups/g1 | " + fix("via_group", "", ""),
			"users/2 spaces/C sw":         "pending | ROLE_MEMBER |  |  |  | " + fix(report.Pending, "", ""),
			"users/ghost@example.com  sw": "failed |  |  |  |  | " + fix("failed", "NOT_FOUND", ""),
			"users/1 spaces/A undo":       "restored | ROLE_MANAGER |  | Alpha, \"the\" first |  | ", // named by the sweep's row,
			"users/1 spaces/D undo":       "already_member |  |  |  |  | ",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s:\n got %q\nwant %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d rows, want %d: %v", len(got), len(want), got)
		}
		for _, p := range rep.People {
			if p.ID == "users/2" && p.Email != "two@example.com" || p.ID == "users/ghost@example.com" && p.Email != "ghost@example.com" {
				t.Errorf("%s: email %q", p.ID, p.Email)
			}
		}
		if rep.Complete || rep.Requests[0].Complete || !rep.Requests[1].Complete || rep.Requests[2].Found {
			t.Errorf("completeness: report %v, requests %+v", rep.Complete, rep.Requests)
		}
		if why := rep.Requests[0].Why; !strings.Contains(why, "1 intended writes") {
			t.Errorf("sw incomplete because %q, want the pending write", why)
		}
		if rep.NeedAttention != 4 { // failed twice, expired, via_group
			t.Errorf("%d need attention, want 4", rep.NeedAttention)
		}

		// The pending write decided: the sweep is complete, 7 of 7.
		w.decide("sw", res("sw/spaces/C", "spaces/C/members/2", "removed", "role", "ROLE_MEMBER", "member", member("users/2")))
		rep, err = report.Build(ctxT(t), s, "sw", "undo")
		if err != nil {
			t.Fatal(err)
		}
		sw := rep.Requests[0]
		if !rep.Complete || !sw.Complete || sw.Expected == nil || *sw.Expected != 7 || sw.Recorded != 7 {
			t.Errorf("after the decision: complete %v, sw %+v", rep.Complete, sw)
		}
		counts := fmt.Sprint(rep.Counts)
		if want := "[{failed 2} {removed 2} {already_member 1} {expired 1} {not_member 1} {restored 1} {via_group 1}]"; counts != want {
			t.Errorf("counts %s, want %s", counts, want)
		}
	})
}

// TestCompleteness: what makes a request complete, and what not.
func TestCompleteness(t *testing.T) {
	s := ledger.NewMemory()
	w := writer{t, s}
	w.request("sweep-unclaimed", "sweep", "")
	w.request("sweep-half", "sweep", "")
	w.claim("sweep-half", "sweep-half", 0, res("sweep-half", "", "planned", "children", 1, "expectedResults", 0, "continued", true))
	w.request("sweep-short", "sweep", "")
	w.claim("sweep-short", "sweep-short", 2, res("sweep-short", "", "planned", "children", 1, "expectedResults", 2))
	w.decide("sweep-short", res("sweep-short/spaces/A", "spaces/A/members/1", "removed"))
	w.request("sweep-failed-page", "sweep", "")
	w.claim("sweep-failed-page", "sweep-failed-page", 0, res("sweep-failed-page", "", "failed", "children", 0, "expectedResults", 0,
		"error", map[string]any{"code": 403, "status": "PERMISSION_DENIED", "message": "search refused"}))
	w.request("single-open", "space+member", "spaces/A/members/1")
	w.request("single-done", "space+member", "spaces/A/members/1")
	w.decide("single-done", res("single-done", "spaces/A/members/1", "removed"))
	w.request("bare", "restore", "")
	if _, _, err := s.ClaimPage(ctxT(t), "bare", "plan", ledger.PageClaim{ExpectedResults: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctxT(t), "bare", "spaces/A/members/1", ledger.Decision{Outcome: "restored", Role: "ROLE_MEMBER"}); err != nil {
		t.Fatal(err)
	}
	w.request("bulk", "bulk", "")
	w.claim("bulk", "bulk", 2, res("bulk", "", "planned", "children", 2, "expectedResults", 2))
	w.decide("bulk", res("bulk/spaces/A", "spaces/A/members/1", "removed"))
	w.decide("bulk", res("bulk/spaces/B", "spaces/B/members/1", "not_member"))
	for id, want := range map[string]string{
		"sweep-unclaimed":   "it has not fanned out yet",
		"sweep-half":        "1 of 2 announced pages are claimed",
		"sweep-short":       "1 of 2 expected results are recorded",
		"sweep-failed-page": "",
		"single-open":       "no decision is recorded yet",
		"single-done":       "",
		"bulk":              "",
		"bare":              "", // a claim and a decision recorded without JSON
	} {
		rep, err := report.Build(ctxT(t), s, id)
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Requests[0]
		if r.Complete != (want == "") || !strings.Contains(r.Why, want) {
			t.Errorf("%s: complete %v, why %q; want %q", id, r.Complete, r.Why, want)
		}
		if id == "bare" && (len(rep.People) != 1 || rep.People[0].ID != "users/1" || rep.People[0].Rows[0].Outcome != "restored" || rep.People[0].Rows[0].Role != "ROLE_MEMBER") {
			t.Errorf("a decision without its result: %+v", rep.People)
		}
		if id == "sweep-failed-page" && (len(rep.RequestResults) != 1 || rep.NeedAttention != 1 || rep.RequestResults[0].Fix != report.Fix("failed", &contract.ErrorInfo{Status: "PERMISSION_DENIED"})) {
			t.Errorf("a failed page: %+v, %d need attention", rep.RequestResults, rep.NeedAttention)
		}
	}
}

// TestCSVRoundTrips: the CSV reads back through encoding/csv with the
// header, consistent columns and one row per (person, space), awkward text
// (commas, quotes, newlines) intact.
func TestCSVRoundTrips(t *testing.T) {
	s := ledger.NewMemory()
	seed(t, s)
	rep, err := report.Build(ctxT(t), s, "sw", "undo")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll() // ReadAll checks every record has the header's field count
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(recs[0]) != fmt.Sprint(report.CSVHeader) {
		t.Fatalf("header %q", recs[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, r := range recs[1:] {
		k := r[col["request"]] + " " + r[col["person"]] + " " + r[col["space"]]
		if seen[k] {
			t.Errorf("row %s twice", k)
		}
		seen[k] = true
		names[r[col["space_display_name"]]] = true
	}
	rows := len(rep.RequestResults)
	for _, p := range rep.People {
		rows += len(p.Rows)
	}
	if len(recs)-1 != rows || rows != 9 {
		t.Errorf("%d CSV rows, %d in the report, want 9", len(recs)-1, rows)
	}
	if !names["Alpha, \"the\" first"] || !names["Bravo\nline"] {
		t.Errorf("display names did not survive: %v", names)
	}
}

func TestTextReport(t *testing.T) {
	s := ledger.NewMemory()
	seed(t, s)
	rep, err := report.Build(ctxT(t), s, "sw", "missing")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Request sw (sweep; 3 people from every space; reason: offboarding; requested by hr): NOT complete, 6 of 7 expected results: 1 intended writes have no decision yet",
		"Request missing: not found: the ledger has no such request",
		"two@example.com (users/2)",
		"Bravo line", // the newline of a display name does not break the table
		"users/9 added and made owner",
		"      error: 403 PERMISSION_DENIED no",
		"      fix: " + report.Fix("failed", &contract.ErrorInfo{Status: "PERMISSION_DENIED"}),
		"      via groups: groups/g1",
		"  SPACE     DISPLAY NAME        OUTCOME  ROLE          HAND-OFF                      REQUEST",
		"Complete: NO; 4 need attention.",
		"Not reachable: " + report.Unreachable,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the text report lacks %q:\n%s", want, out)
		}
	}
}

func TestFix(t *testing.T) {
	for _, c := range []struct {
		outcome, status, message string
		code                     int
		want                     string // a part of the fix; "" for none
	}{
		{"removed", "", "", 0, ""},
		{"not_member", "", "", 0, ""},
		{"restored", "", "", 0, ""},
		{"failed", "PERMISSION_DENIED", "", 403, "grant access"},
		{"failed", "FAILED_PRECONDITION", "The membership cannot be deleted because it is the only owner of the space.", 400, "name a successor"},
		{"failed", "FAILED_PRECONDITION", "the successor bob is not a member of spaces/A; set \"addSuccessor\": true to add them", 400, "about the successor"},
		{"failed", "NOT_FOUND", "", 404, "check the name"},
		{"failed", "UNAUTHENTICATED", "", 401, "authorize again"},
		{"failed", "RESOURCE_EXHAUSTED", "", 429, "quota"},
		{"failed", "UNAVAILABLE", "", 503, "transient"},
		{"failed", "", "connection reset", 0, "transient"},
		{"failed", "CONFLICT", "", 409, "see the error"},
		{"refused", "", "", 0, "PROTECTED_MEMBERS"},
		{"refused", "FAILED_PRECONDITION", "the person is active again in the Directory", 400, "active again"},
		{"expired", "", "", 0, "new request"},
		{"via_group", "", "", 0, "remove them from the group"},
		{"some_new_outcome", "", "", 0, ""},
	} {
		var e *contract.ErrorInfo
		if c.status != "" || c.message != "" {
			e = &contract.ErrorInfo{Code: c.code, Status: c.status, Message: c.message}
		}
		got := report.Fix(c.outcome, e)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("Fix(%s, %s %q) = %q, want one with %q", c.outcome, c.status, c.message, got, c.want)
		}
	}
	if report.Success("via_group") || report.Success("failed") || !report.Success("already_member") {
		t.Error("Success is wrong")
	}
}
