package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/report"
)

// runReportCLI runs offboard report in-process with args and env.
func runReportCLI(t *testing.T, env map[string]string, args ...string) invocation {
	t.Helper()
	return offboard(t, context.Background(), env, append([]string{"report"}, args...)...)
}

// decided records a decision of a single removal, as the function does.
func decided(t *testing.T, s ledger.Store, id, membership, outcome, result string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.CreateRequest(ctx, ledger.Request{ID: id, Kind: "space+member", Target: membership}); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, id, membership, ledger.Decision{Outcome: outcome, Result: []byte(result)}); err != nil {
		t.Fatal(err)
	}
}

// TestReportCommand: offboard report reads the ledger on the Firestore
// emulator (as the function finds it, through GOOGLE_CLOUD_PROJECT and
// FIRESTORE_EMULATOR_HOST) and prints text, CSV or JSON, with an exit code
// for each state of the requests.
func TestReportCommand(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", firestoretest.Emulator(t))
	project := firestoretest.Project("offboard-report")
	store, err := ledger.NewFirestore(context.Background(), project, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	decided(t, store, "clean", "spaces/ENG/members/101", "removed",
		`{"requestId":"clean","membership":"spaces/ENG/members/101","outcome":"removed","role":"ROLE_MEMBER","member":{"name":"users/101","type":"HUMAN"},"adminAccess":false,"dryRun":false,"processedAt":"2026-12-01T10:00:00Z"}`)
	decided(t, store, "bad", "spaces/SOLO/members/101", "failed",
		`{"requestId":"bad","membership":"spaces/SOLO/members/101","outcome":"failed","error":{"code":400,"status":"FAILED_PRECONDITION","message":"The membership cannot be deleted because it is the only owner of the space."},"adminAccess":true,"dryRun":false,"processedAt":"2026-12-01T10:00:00Z"}`)
	if _, _, err := store.CreateRequest(context.Background(), ledger.Request{ID: "running", Kind: "sweep"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": project}

	inv := runReportCLI(t, env, "clean")
	if inv.code != reportOK || !regexp.MustCompile(`spaces/ENG +- +removed +ROLE_MEMBER`).MatchString(inv.stdout) || !strings.Contains(inv.stdout, report.Unreachable) || strings.Contains(inv.stdout, "REQUEST") {
		t.Errorf("clean: exit %d, want 0 with the row (no request column: one request) and the note:\n%s", inv.code, inv.stdout)
	}

	inv = runReportCLI(t, env, "--csv", "clean", "bad")
	recs, err := csv.NewReader(strings.NewReader(inv.stdout)).ReadAll()
	if inv.code != reportAttention || err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(report.CSVHeader, ",") {
		t.Errorf("--csv: exit %d (want 1), %v, records %q", inv.code, err, recs)
	}
	if !strings.Contains(inv.stderr, "clean complete (results: 1); bad complete (results: 1); 1 need attention") {
		t.Errorf("--csv: the summary on stderr is %q", inv.stderr)
	}

	inv = runReportCLI(t, env, "bad", "--json") // flags after the id too
	var rep report.Report
	if err := json.Unmarshal([]byte(inv.stdout), &rep); err != nil || inv.code != reportAttention {
		t.Fatalf("--json: exit %d, %v\n%s", inv.code, err, inv.stdout)
	}
	if r := rep.People[0].Rows[0]; r.Outcome != "failed" || !strings.Contains(r.Fix, "name a successor") || !rep.Complete {
		t.Errorf("--json: %+v", rep)
	}

	if inv = runReportCLI(t, env, "clean", "running"); inv.code != reportIncomplete || !strings.Contains(inv.stdout, "NOT complete") {
		t.Errorf("a sweep not fanned out yet: exit %d, want 3\n%s", inv.code, inv.stdout)
	}
	if inv = runReportCLI(t, env, "clean", "nobody"); inv.code != reportNotFound || !strings.Contains(inv.stdout, "Request nobody: not found") {
		t.Errorf("an unknown request: exit %d, want 4\n%s", inv.code, inv.stdout)
	}
	for _, args := range [][]string{{}, {"--csv", "--json", "clean"}, {"--bogus", "clean"}} {
		if inv = runReportCLI(t, env, args...); inv.code != reportUsage {
			t.Errorf("offboard report %q: exit %d, want 2", args, inv.code)
		}
	}
	if inv = runReportCLI(t, map[string]string{}, "clean"); inv.code != reportUsage || !strings.Contains(inv.stderr, "no project") {
		t.Errorf("without a project: exit %d, want 2: %s", inv.code, inv.stderr)
	}
}

// TestReportLedgerDown: a ledger that cannot be reached is exit 2 within
// --timeout, with the ledger's error.
func TestReportLedgerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	start := time.Now()
	inv := runReportCLI(t, map[string]string{"GOOGLE_CLOUD_PROJECT": "p"}, "--timeout", "2s", "clean")
	if inv.code != reportUsage || !strings.Contains(inv.stderr, "unavailable") || time.Since(start) > 20*time.Second {
		t.Errorf("ledger down: exit %d after %v, want 2 with the error: %s", inv.code, time.Since(start), inv.stderr)
	}
}
