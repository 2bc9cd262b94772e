package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/report"
)

// TestFileReusingAnIDIsRefused: a file that gives one request id to two
// requests is refused line by line (nothing is published), each error
// saying whether it is a repeat or a different request, and what differs.
func TestFileReusingAnIDIsRefused(t *testing.T) {
	env, _, published := pstestEnv(t)
	jsonl := `{"requestId":"term-1","space":"spaces/ENG","member":"alice@example.com"}` + "\n" +
		`{"requestId":"term-1","allSpaces":true,"member":"bob@example.com"}` + "\n" +
		`{"requestId":"term-2","space":"spaces/ENG","member":"carol@example.com"}` + "\n" +
		`{"requestId":"term-2","membership":"spaces/ENG/members/Carol@example.com","reason":"again"}` + "\n"
	inv := runCLI(t, context.Background(), env, jsonl, "--from", "-")
	if inv.code != exitUsage {
		t.Fatalf("exit %d, want 2", inv.code)
	}
	for _, want := range []string{
		`line 2: requestId "term-1" is already used on line 1, for a different request (form: membership then, sweep now;`,
		"the function would answer this one id_reused and do nothing",
		`line 4: requestId "term-2" is already used on line 3, for the same request: publish it once`,
	} {
		if !strings.Contains(inv.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := len(published()); n != 0 {
		t.Errorf("%d messages published, want 0", n)
	}
}

// TestReusedIDEndToEnd: the CLI against the real Pub/Sub emulator and the
// function keeping its ledger in the real Firestore emulator, protecting
// carol by an address the Directory no longer knows (she was deleted). A
// dry run, then the real request under the same id: the real one removes
// (the unknown protected address halts nothing). Then a sweep of another
// person under that id: no Chat call, id_reused, exit 1; and publish
// report of the id (offboard report's) shows the dry run, the removal and
// the refused reuse, needing attention. Carol is still refused.
func TestReusedIDEndToEnd(t *testing.T) {
	host := pubsubtest.Emulator(t)
	fsHost := firestoretest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	project := firestoretest.Project("publish-reuse")
	store, err := ledger.NewFirestore(ctx, project, ledger.DefaultDatabase, firestoretest.ClientOptions(fsHost)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := clitest.NewE2E(ctx, t, host, project)
	ws := emulator.Default()
	for i := range ws.Users {
		if ws.Users[i].ID == "103" {
			ws.Users[i].Deleted = true
		}
	}
	f, stack := clitest.NewFunctionOn(t, e.PS, store, e.Project, e.ReqTopic, e.ResTopic, ws, nil, "carol@example.com")
	clitest.Serve(ctx, t, e.PS, e.Project, e.ReqTopic, e.ReqSub, f)
	env := e.Env()
	const id = "hr-2026-12-08-alice"
	inv := runCLI(t, ctx, env, "", "--space", "spaces/ENG", "--member", "alice@example.com", "--request-id", id, "--dry-run", "--wait", "--timeout", "30s")
	if inv.code != exitOK || !strings.Contains(inv.stdout, "dry_run") {
		t.Fatalf("dry run: exit %d\n%s", inv.code, inv.stdout)
	}
	inv = runCLI(t, ctx, env, "", "--space", "spaces/ENG", "--member", "alice@example.com", "--request-id", id, "--wait", "--timeout", "30s")
	if inv.code != exitOK || !strings.Contains(inv.stdout, "removed") {
		t.Fatalf("real request: exit %d\n%s", inv.code, inv.stdout)
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Fatal("the real request after the dry run did not remove alice")
	}
	before := stack.Chat.Stats().Calls
	inv = runCLI(t, ctx, env, "", "--all-spaces", "--member", "bob@example.com", "--request-id", id, "--wait", "--timeout", "30s")
	if inv.code != exitFailed || !strings.Contains(inv.stdout, "id_reused") {
		t.Fatalf("another request under the id: exit %d, want 1 with id_reused\n%s", inv.code, inv.stdout)
	}
	after := stack.Chat.Stats().Calls
	for method, n := range after {
		if n != before[method] {
			t.Errorf("%s: %d Chat calls for the reused id, want 0", method, n-before[method])
		}
	}
	inv = runCLI(t, ctx, env, "", "--space", "spaces/OPS", "--member", "users/103", "--request-id", "carol-ops", "--wait", "--timeout", "30s")
	if inv.code != exitFailed || !strings.Contains(inv.stdout, "refused") {
		t.Errorf("carol, protected by an address the Directory does not know: exit %d, want 1 with refused\n%s", inv.code, inv.stdout)
	}
	if _, ok := stack.Chat.IsMember("spaces/OPS", "103"); !ok {
		t.Error("carol was removed from spaces/OPS")
	}
	// The leaver report of the id (what publish's operators' twin, offboard
	// report, prints), from the Firestore emulator's ledger.
	rep, err := report.Build(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requests) != 2 || !rep.Requests[0].Complete || !rep.Requests[1].DryRun || rep.NeedAttention != 1 {
		t.Errorf("report: requests %+v, %d need attention: want the removal, its dry run, and the id_reused answer", rep.Requests, rep.NeedAttention)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dry run", "dry_run", "removed", "id_reused", "already used on"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, text.String())
		}
	}
}
