package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

// e2e is the Pub/Sub side of an end-to-end test on the real emulator.
type e2e = clitest.E2E

// newE2E creates the topics and the subscription (clitest.NewE2E).
func newE2E(ctx context.Context, t *testing.T, host, project string) *e2e {
	t.Helper()
	return clitest.NewE2E(ctx, t, host, project)
}

// TestEndToEnd runs the CLI against the real Pub/Sub emulator and the
// function (in-process, fed from a pull subscription on the request topic
// with CloudEvents built as Eventarc builds them, publishing its results to
// the result topic): the CLI publishes a CSV, follows the results with
// --wait through its filtered temporary subscription, prints the table and
// exits 0; a run where a removal fails exits 1.
func TestEndToEnd(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newE2E(ctx, t, host, "publish-e2e")
	f, stack := e.Start(ctx, t, emulator.Default(), nil, "106") // PROTECTED_MEMBERS=users/106
	env := e.Env()
	// Someone else's result on the topic: the filter keeps it out.
	other := `{"requestId":"someone-else","space":"spaces/ENG","member":"users/103","dryRun":true}`
	if err := f.Handle(ctx, clitest.PubSubEvent(e.Project, e.ReqTopic, "other-1", []byte(other), nil, time.Now())); err != nil {
		t.Fatal(err)
	}

	csv := "space,member,dryRun\n" +
		"spaces/ENG,alice@example.com,\n" + // removed
		"spaces/SALES,bob@example.com,\n" + // not a member: not_member
		"spaces/OPS,users/103,true\n" // dry_run
	inv := runCLI(t, ctx, env, "", "--from", writeFile(t, "leavers.csv", csv), "--wait", "--timeout", "30s", "--reason", "offboarding")
	if inv.code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s", inv.code, inv.stdout)
	}
	for _, want := range []string{
		"REQUEST ID", "spaces/ENG/members/alice@example.com", "removed",
		"spaces/SALES/members/bob@example.com", "not_member",
		"spaces/OPS/members/103", "dry_run", "would remove",
	} {
		if !strings.Contains(inv.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, inv.stdout)
		}
	}
	if strings.Contains(inv.stdout, "someone-else") || strings.Contains(inv.stderr, "someone-else") {
		t.Error("a result of another request was shown")
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Error("alice is still in spaces/ENG")
	}
	if _, ok := stack.Chat.IsMember("spaces/OPS", "103"); !ok {
		t.Error("a dry run removed users/103")
	}
	if subs := subscriptionsOf(t, e.PS, pubsubtest.TopicName(e.Project, e.ResTopic)); len(subs) != 0 {
		t.Errorf("temporary subscription left behind: %v", subs)
	}

	// A bulk request: the function fans out to the request topic and
	// reports planned; the CLI counts the children.
	inv = runCLI(t, ctx, env, "", "--spaces", "spaces/OPS,spaces/SALES", "--member", "users/104", "--request-id", "bulk-1", "--wait", "--timeout", "30s")
	if inv.code != exitOK {
		t.Fatalf("bulk: exit %d, want 0\nstdout:\n%s", inv.code, inv.stdout)
	}
	for _, want := range []string{"bulk-1/spaces/OPS", "bulk-1/spaces/SALES", "planned", "children: 2"} {
		if !strings.Contains(inv.stdout, want) {
			t.Errorf("bulk table lacks %q:\n%s", want, inv.stdout)
		}
	}

	// A removal that fails (403 from the Chat API), and a protected
	// member: exit 1, and --output json streams the results.
	stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 403, Times: 1})
	inv = runCLI(t, ctx, env, "", "--space", "spaces/HR", "--member", "users/105", "--request-id", "fail-1", "--wait", "--timeout", "30s", "--output", "json")
	if inv.code != exitFailed {
		t.Fatalf("exit %d, want 1", inv.code)
	}
	var r contract.Result
	if err := json.Unmarshal([]byte(strings.TrimSpace(inv.stdout)), &r); err != nil {
		t.Fatalf("stdout is not one JSON result: %v\n%s", err, inv.stdout)
	}
	if r.RequestID != "fail-1" || r.Outcome != contract.Failed || r.Error == nil || r.Error.Code != 403 {
		t.Errorf("result %+v", r)
	}
	inv = runCLI(t, ctx, env, "", "--membership", "spaces/HR/members/106", "--wait", "--timeout", "30s")
	if inv.code != exitFailed || !strings.Contains(inv.stdout, "refused") {
		t.Errorf("protected member: exit %d, want 1 with refused\n%s", inv.code, inv.stdout)
	}
}

// TestFiveHundredRows is the acceptance case: a CSV of 500
// removals is published, followed to completion, and exits 0.
func TestFiveHundredRows(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newE2E(ctx, t, host, "publish-500")
	ws := emulator.Default()
	big := emulator.Space{Name: "spaces/BIG", DisplayName: "Everyone", SpaceType: emulator.SpaceTypeSpace,
		Members: []emulator.Member{{User: "users/100", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
	var csv strings.Builder
	csv.WriteString("membership,reason\n")
	for i := 0; i < 500; i++ {
		id := fmt.Sprint(2000 + i)
		ws.Users = append(ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com", Name: "User " + id})
		big.Members = append(big.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
		fmt.Fprintf(&csv, "spaces/BIG/members/%s,reorganisation\n", id)
	}
	ws.Spaces = append(ws.Spaces, big)
	_, stack := e.Start(ctx, t, ws, nil)
	start := time.Now()
	inv := runCLI(t, ctx, e.Env(), "", "--from", writeFile(t, "500.csv", csv.String()), "--wait", "--timeout", "45s")
	if inv.code != exitOK {
		t.Fatalf("exit %d", inv.code)
	}
	t.Logf("500 requests published and followed in %v", time.Since(start).Round(time.Millisecond))
	if n := strings.Count(inv.stdout, " removed "); n != 500 {
		t.Errorf("%d removed rows, want 500", n)
	}
	if got := stack.Chat.Stats().Calls["members.delete"]; got != 500 {
		t.Errorf("members.delete calls = %d, want 500", got)
	}
}
