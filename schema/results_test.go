package schema

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// TestGoResultsValidate marshals contract.Result values of every outcome
// and validates them.
func TestGoResultsValidate(t *testing.T) {
	_, res := compiled(t)
	yes, two := true, 2
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, r := range []contract.Result{
		{RequestID: "r1", Membership: "spaces/A/members/1", Outcome: contract.Removed, Role: "ROLE_MEMBER",
			Member: &contract.Member{Name: "users/1", Type: "HUMAN"}, Attempts: 1, SourceMessageID: "m", ProcessedAt: now},
		{RequestID: "r2", Membership: "spaces/A/members/a@example.com", Outcome: contract.NotMember, MembershipState: "NOT_A_MEMBER", ProcessedAt: now},
		{RequestID: "r3", Membership: "spaces/A/members/1", Outcome: contract.DryRun, WouldRemove: &yes, DryRun: true, ProcessedAt: now},
		{RequestID: "r4", Membership: "spaces/A/members/1", Outcome: contract.Refused, Detail: "member is in PROTECTED_MEMBERS", ProcessedAt: now},
		{RequestID: "r5", Outcome: contract.Invalid, Error: &contract.ErrorInfo{Code: 400, Status: "INVALID_ARGUMENT", Message: "invalid request: no target"}, ProcessedAt: now},
		{RequestID: "r6", Membership: "spaces/A/members/1", Outcome: contract.Failed, Error: &contract.ErrorInfo{Code: 403, Status: "PERMISSION_DENIED", Message: "no"}, ProcessedAt: now},
		{RequestID: "r7", Membership: "spaces/A/members/1", Outcome: contract.Expired, Error: &contract.ErrorInfo{Message: "too old"}, ProcessedAt: now},
		{RequestID: "r8", Outcome: contract.Planned, Children: &two, ExpectedResults: &two, Continued: true, AdminAccess: true, ProcessedAt: now},
		{RequestID: "u/spaces/A", ParentRequestID: "u", Membership: "spaces/A/members/1", Outcome: contract.Restored, Role: "ROLE_MANAGER", MembershipState: "INVITED",
			Member: &contract.Member{Name: "users/1", Type: "HUMAN"}, AdminAccess: true, ProcessedAt: now},
		{RequestID: "u/spaces/A", ParentRequestID: "u", Membership: "spaces/A/members/2", Outcome: contract.AlreadyMember, Role: "ROLE_MEMBER", MembershipState: "JOINED", ProcessedAt: now},
		{RequestID: "u/spaces/A", ParentRequestID: "u", Membership: "spaces/A/members/3", Outcome: contract.DryRun, WouldRestore: &yes, DryRun: true, ProcessedAt: now},
		{RequestID: "r9/spaces/A", ParentRequestID: "r9", Membership: "spaces/A/members/1", Outcome: contract.Removed,
			HandOff: &contract.HandOffLog{Successor: "users/2", Added: true, Promoted: true}, Reason: "offboarding", RequestedBy: "workday", ProcessedAt: now},
		{RequestID: "r10/spaces/A", ParentRequestID: "r10", Membership: "spaces/A/members/1", Outcome: contract.ViaGroup,
			Member: &contract.Member{Name: "users/1", Type: "HUMAN"}, ViaGroups: []string{"groups/g1"}, AdminAccess: true, ProcessedAt: now},
		{RequestID: "r11/spaces/A", ParentRequestID: "r11", Membership: "spaces/A/members/1", Outcome: contract.Removed,
			ViaGroups: []string{"groups/g1", "groups/g2"}, AdminAccess: true, ProcessedAt: now},
	} {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(res, data); err != nil {
			t.Errorf("%s: %v\n%s", r.Outcome, err, data)
		}
	}
	// And what the schema refuses.
	for _, bad := range []string{
		`{"requestId":"r","outcome":"deleted","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","outcome":"planned","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","outcome":"invalid","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","outcome":"removed","adminAccess":false,"dryRun":false,"processedAt":"yesterday"}`,
		`{"requestId":"r","outcome":"removed","membership":"spaces/A","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"outcome":"removed","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","membership":"spaces/A/members/1","outcome":"via_group","adminAccess":true,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","membership":"spaces/A/members/1","outcome":"removed","viaGroups":["users/1"],"adminAccess":true,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","outcome":"restored","membership":"spaces/A/members/1","adminAccess":false,"dryRun":false,"processedAt":"2026-11-28T10:00:00Z"}`,
		`{"requestId":"r","outcome":"dry_run","membership":"spaces/A/members/1","wouldRemove":true,"wouldRestore":true,"adminAccess":false,"dryRun":true,"processedAt":"2026-11-28T10:00:00Z"}`,
	} {
		if validate(res, []byte(bad)) == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}

// TestFunctionResultsValidate runs the function in-process (pstest for
// Pub/Sub, the emulated Chat API and Secret Manager) on requests that end in
// different outcomes, bulk fan-out included, and validates every result it
// publishes, as published.
func TestFunctionResultsValidate(t *testing.T) {
	_, res := compiled(t)
	ps, srv := pubsubtest.Pstest(t)
	ctx := context.Background()
	const project = "test-project"
	for _, id := range []string{"requests", "results"} {
		if err := pubsubtest.CreateTopic(ctx, ps, project, id); err != nil {
			t.Fatal(err)
		}
	}
	stack, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	f, err := engine.New(ctx, engine.Config{
		Project: project, TokenSecret: stack.SecretName + "/versions/latest",
		ResultTopic: "projects/" + project + "/topics/results", RequestTopic: "projects/" + project + "/topics/requests",
		Protected: []string{"106"}, MaxEventAge: time.Hour, WritesPerMinute: 60000, ReadsPerMinute: 60000,
		ChatEndpoint: stack.Chat.URL(), DirectoryEndpoint: stack.Directory.URL(), SecretManagerEndpoint: stack.Secrets.Addr(),
		EventTimeout: 20 * time.Second,
	}, engine.WithPubSubClient(ps), engine.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), engine.WithLedger(ledger.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 403, Times: 1})

	handle := func(id string, data []byte) {
		e := event.New()
		e.SetID(id)
		e.SetType(contract.PublishedEventType)
		e.SetSource("//pubsub.googleapis.com/projects/" + project + "/topics/requests")
		e.SetTime(time.Now())
		_ = e.SetData("application/json", map[string]any{"message": map[string]any{
			"data": base64.StdEncoding.EncodeToString(data), "messageId": id,
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		}})
		if err := f.Handle(ctx, e); err != nil {
			t.Logf("Handle(%s): %v (a transient error; not a result)", data, err)
		}
	}
	for i, data := range []string{
		`{"requestId":"s-failed","space":"spaces/HR","member":"users/105"}`,
		`{"requestId":"s-removed","space":"spaces/ENG","member":"alice@example.com","reason":"offboarding","requestedBy":"workday"}`,
		`{"requestId":"s-not-member","membership":"spaces/SALES/members/102"}`,
		`{"requestId":"s-dry-run","space":"spaces/OPS","member":"users/103","dryRun":true}`,
		`{"requestId":"s-refused","membership":"spaces/HR/members/106"}`,
		`{"requestId":"s-invalid","space":"spaces/ENG","member":"x/../y"}`,
		`not json`,
		`{"requestId":"s-bulk","spaces":["spaces/OPS","spaces/SOLO"],"member":"users/103"}`,
	} {
		handle(fmt.Sprint("m", i), []byte(data))
	}
	// Feed the children that fan-out published back to the function.
	done := map[string]bool{}
	for round := 0; round < 5; round++ {
		n := 0
		for _, m := range srv.Messages() {
			if strings.HasSuffix(m.Topic, "/topics/requests") && !done[m.ID] {
				done[m.ID] = true
				handle(m.ID, m.Data)
				n++
			}
		}
		if n == 0 {
			break
		}
	}
	outcomes := map[contract.Outcome]int{}
	for _, m := range srv.Messages() {
		if !strings.HasSuffix(m.Topic, "/topics/results") {
			continue
		}
		var r contract.Result
		_ = json.Unmarshal(m.Data, &r)
		outcomes[r.Outcome]++
		if err := validate(res, m.Data); err != nil {
			t.Errorf("a result the function published does not validate: %v\n%s", err, m.Data)
		}
	}
	t.Logf("outcomes validated: %v", outcomes)
	for _, o := range []contract.Outcome{contract.Removed, contract.NotMember, contract.DryRun,
		contract.Refused, contract.Invalid, contract.Failed} {
		if outcomes[o] == 0 {
			t.Errorf("no %s result among %v", o, outcomes)
		}
	}
}
