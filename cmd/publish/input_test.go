package main

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/clitest"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/request"
)

// decodePublished parses published message data with the function's parser.
func decodePublished(t *testing.T, data []byte) *request.Valid {
	t.Helper()
	v, err := request.Parse(data, "")
	if err != nil {
		t.Fatalf("published data %s is not a valid request: %v", data, err)
	}
	return v
}

func TestCSVWithOneBadRowPublishesNothingAndNamesTheRow(t *testing.T) {
	env, _, published := pstestEnv(t)
	ctx := context.Background()
	csv := "space,member,reason\n" +
		"spaces/ENG,alice@example.com,leaver\n" +
		"spaces/SALES,users/104,leaver\n" +
		"spaces/HR,x/../../spaces/OTHER/members/y,leaver\n" + // line 4
		"spaces/OPS,bob@example.com,leaver\n"
	inv := runCLI(t, ctx, env, "", "--from", writeFile(t, "leavers.csv", csv))
	if inv.code != exitUsage {
		t.Fatalf("exit %d, want %d", inv.code, exitUsage)
	}
	want := "line 4: invalid request: member: must be users/ID, users/EMAIL, EMAIL, ID or app"
	if !strings.Contains(inv.stderr, want) || !strings.Contains(inv.stderr, "nothing was published") {
		t.Errorf("stderr does not name the row and the problem (%q):\n%s", want, inv.stderr)
	}
	if n := len(published()); n != 0 {
		t.Fatalf("%d messages published, want 0", n)
	}

	// The same file without the bad row publishes every row.
	fixed := strings.Replace(csv, "x/../../spaces/OTHER/members/y", "carol@example.com", 1)
	inv = runCLI(t, ctx, env, "", "--from", writeFile(t, "leavers.csv", fixed))
	if inv.code != exitOK {
		t.Fatalf("exit %d, want 0", inv.code)
	}
	msgs := published()
	if len(msgs) != 4 {
		t.Fatalf("%d messages published, want 4", len(msgs))
	}
	idRE := regexp.MustCompile(`^pub-\d{8}T\d{6}Z-[0-9a-f]{8}-[2-5]$`)
	for _, m := range msgs {
		v := decodePublished(t, m.Data)
		if !idRE.MatchString(v.RequestID) || m.Attributes["requestId"] != v.RequestID {
			t.Errorf("requestId %q (attribute %q) is not a generated per-line id", v.RequestID, m.Attributes["requestId"])
		}
		if v.Reason != "leaver" || v.Kind != request.KindSpaceMember {
			t.Errorf("request %+v", v.Request)
		}
		if !strings.Contains(inv.stdout, v.RequestID) {
			t.Errorf("stdout does not list %s:\n%s", v.RequestID, inv.stdout)
		}
	}
}

func TestJSONLinesWithBadRowsPublishesNothing(t *testing.T) {
	env, _, published := pstestEnv(t)
	jsonl := `{"requestId":"hr-1","space":"spaces/ENG","member":"alice@example.com"}` + "\n" +
		"\n" + // blank lines count
		`{"requestId":"hr-2","space":"spaces/ENG","member":"bob@example.com","colour":"red"}` + "\n" +
		`{"requestId":"hr-3","membership":"spaces/HR/members/106"}` + "\n" +
		`{"requestId":"hr-4","space":"spaces/A","member":"1","member":"2"}` + "\n" +
		`{"requestId":"hr-5","space":"spaces/A","member":"app","adminAccess":true}` + "\n" +
		`not json` + "\n"
	inv := runCLI(t, context.Background(), env, jsonl, "--from", "-")
	if inv.code != exitUsage {
		t.Fatalf("exit %d, want 2", inv.code)
	}
	for _, want := range []string{
		"line 3: invalid request: colour: unknown field",
		"line 5: invalid request: member: duplicate field",
		"line 6: invalid request: adminAccess: admin access cannot remove an app membership",
		"line 7: invalid request: not valid JSON",
		"4 invalid request(s); nothing was published",
	} {
		if !strings.Contains(inv.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(inv.stderr, "line 1:") || strings.Contains(inv.stderr, "line 4:") {
		t.Errorf("valid lines reported as errors:\n%s", inv.stderr)
	}
	if n := len(published()); n != 0 {
		t.Fatalf("%d messages published, want 0", n)
	}
}

func TestCSVParsing(t *testing.T) {
	env, _, published := pstestEnv(t)
	csv := "\uFEFFRequestId, Spaces ,member,dryRun,reason,allSpaces,members,successor,addSuccessor\r\n" +
		"bulk-1,spaces/A; spaces/B;,alice@example.com,yes,\"left, on good terms\",,,,\r\n" +
		",,,,,,,,\r\n" + // an empty row (spreadsheets write them) is skipped
		"sweep-1,,,0,two words,TRUE,\"alice@example.com;\nusers/789\",bob@example.com,1\r\n" +
		"mem-1,,users/123,false,,,,,\r\n" // no target: line 6 (the quoted newline spans lines 4-5)
	inv := runCLI(t, context.Background(), env, "", "--from", writeFile(t, "x.csv", csv), "--requested-by", "workday")
	if inv.code != exitUsage || !strings.Contains(inv.stderr, "line 6: invalid request: no target") {
		t.Fatalf("exit %d; want 2 naming line 6", inv.code)
	}
	if strings.Contains(inv.stderr, "line 3") || strings.Contains(inv.stderr, "line 4") {
		t.Errorf("unexpected errors:\n%s", inv.stderr)
	}
	csv = strings.Replace(csv, "mem-1,,users/123", "mem-1,,", 1)
	csv = strings.Replace(csv, ",,,,,,,,\r\nsweep", "\r\nsweep", 1)
	csv = strings.TrimSuffix(csv, "mem-1,,,false,,,,,\r\n")
	inv = runCLI(t, context.Background(), env, "", "--from", writeFile(t, "x.csv", csv), "--requested-by", "workday", "--dry-run")
	if inv.code != exitOK {
		t.Fatalf("exit %d", inv.code)
	}
	got := map[string]request.Request{}
	for _, m := range published() {
		decodePublished(t, m.Data)
		var r request.Request
		if err := request.Decode(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		got[r.RequestID] = r
	}
	want := map[string]request.Request{
		"bulk-1": {RequestID: "bulk-1", Spaces: []string{"spaces/A", "spaces/B"}, Member: "alice@example.com",
			DryRun: true, Reason: "left, on good terms", RequestedBy: "workday"},
		"sweep-1": {RequestID: "sweep-1", AllSpaces: true, Members: []string{"alice@example.com", "users/789"},
			Successor: "bob@example.com", AddSuccessor: true, DryRun: true, Reason: "two words", RequestedBy: "workday"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("published\n%+v\nwant\n%+v", got, want)
	}
}

func TestInputErrors(t *testing.T) {
	env, _, published := pstestEnv(t)
	cases := []struct {
		name, file, content, want string
	}{
		{"unknown column", "a.csv", "space,member,colour\nspaces/A,1,red\n", `line 1: unknown column "colour"`},
		{"duplicate column", "a.csv", "space,member,Member\nspaces/A,1,2\n", `line 1: column "member" appears twice`},
		{"function-only column", "a.csv", "space,member,pageToken\nspaces/A,1,x\n", `line 1: unknown column "pageToken"`},
		{"bad boolean", "a.csv", "space,member,dryRun\nspaces/A,1,maybe\n", `line 2: column dryRun: "maybe" is not true or false`},
		{"short row", "a.csv", "space,member\nspaces/A\n", "line 2: 1 cells, but the header has 2 columns"},
		{"broken quote", "a.csv", "space,member\nspaces/A,\"1\n", "line 2: CSV:"},
		{"duplicate id", "a.csv", "requestId,space,member\nr1,spaces/A,1\nr1,spaces/B,1\n", `line 3: requestId "r1" is already used on line 2`},
		{"empty", "a.csv", "", "the CSV file is empty"},
		{"only header", "a.csv", "space,member\n", "no requests in the input"},
		{"json array", "a.json", `[{"space":"spaces/A","member":"1"}]`, "line 1: a JSON array: write JSON lines"},
		{"parent id", "a.jsonl", `{"space":"spaces/A","member":"1","parentRequestId":"p"}`, "line 1: parentRequestId is set only by the function"},
		{"detected jsonl", "a.txt", "\n  {\"space\":\"spaces/A\",\"member\":\"1\",\"x\":1}", "line 2: invalid request: x: unknown field"},
		{"missing file", "", "", "reading --from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/missing.csv"
			if c.file != "" {
				path = writeFile(t, c.file, c.content)
			}
			inv := runCLI(t, context.Background(), env, "", "--from", path)
			if inv.code != exitUsage || !strings.Contains(inv.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", inv.code, inv.stderr, c.want)
			}
		})
	}
	if n := len(published()); n != 0 {
		t.Fatalf("%d messages published, want 0", n)
	}
}

func TestFlagsToRequests(t *testing.T) {
	cases := []struct {
		args []string
		want request.Request
	}{
		{[]string{"--membership", "spaces/A/members/123"}, request.Request{Membership: "spaces/A/members/123"}},
		{[]string{"--space", "spaces/A", "--member", "alice@example.com", "--reason", "left", "--requested-by", "okta"},
			request.Request{Space: "spaces/A", Member: "alice@example.com", Reason: "left", RequestedBy: "okta"}},
		{[]string{"--spaces", "spaces/A, spaces/B", "--member", "users/1", "--dry-run", "--admin"},
			request.Request{Spaces: []string{"spaces/A", "spaces/B"}, Member: "users/1", DryRun: true, AdminAccess: true}},
		{[]string{"--all-spaces", "--members", "a@example.com,users/2", "--successor", "b@example.com", "--add-successor"},
			request.Request{AllSpaces: true, Members: []string{"a@example.com", "users/2"}, Successor: "b@example.com", AddSuccessor: true}},
		{[]string{"--space", "spaces/A", "--members", "a@example.com,users/2"},
			request.Request{Space: "spaces/A", Members: []string{"a@example.com", "users/2"}}},
		{[]string{"--all-spaces", "--member", "a@example.com", "--request-id", "hr-9"},
			request.Request{RequestID: "hr-9", AllSpaces: true, Member: "a@example.com"}},
	}
	b := newBatch(time.Now())
	for _, c := range cases {
		cfg, err := parseFlags(c.args, &syncBuffer{}, func(string) string { return "" })
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		items, err := fromFlags(cfg, b)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		got := items[0].req
		if c.want.RequestID == "" {
			if got.RequestID != b.id(1) {
				t.Errorf("%v: requestId %q, want generated %q", c.args, got.RequestID, b.id(1))
			}
			c.want.RequestID = got.RequestID
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v:\n got %+v\nwant %+v", c.args, got, c.want)
		}
		if decodePublished(t, items[0].data).RequestID != got.RequestID {
			t.Errorf("%v: data %s", c.args, items[0].data)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	env, _, published := pstestEnv(t)
	noTopic := map[string]string{"GOOGLE_CLOUD_PROJECT": "p"}
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env, nil, "no target"},
		{env, []string{"--space", "spaces/A"}, "invalid request: member: missing"},
		{env, []string{"--space", "spaces/A", "--membership", "spaces/A/members/1"}, "more than one target form"},
		{env, []string{"--from", "x.csv", "--space", "spaces/A"}, "--space cannot be combined with --from"},
		{env, []string{"--space", "spaces/A", "--member", "1", "--output", "yaml"}, "--output must be table or json"},
		{env, []string{"--space", "spaces/A", "--member", "1", "extra"}, `unexpected argument "extra"`},
		{env, []string{"--bogus"}, "flag provided but not defined"},
		{noTopic, []string{"--space", "spaces/A", "--member", "1"}, "no request topic"},
		{map[string]string{"REQUEST_TOPIC": "requests"}, []string{"--space", "spaces/A", "--member", "1"}, "no project"},
		{map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "REQUEST_TOPIC": "requests"}, []string{"--space", "spaces/A", "--member", "1", "--wait"}, "--wait needs the result topic"},
		{env, []string{"--space", "spaces/A", "--member", "1", "--topic", "projects/p/subscriptions/s"}, "is not a topic id"},
	}
	for _, c := range cases {
		inv := runCLI(t, context.Background(), c.env, "", c.args...)
		if inv.code != exitUsage || !strings.Contains(inv.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, inv.code, inv.stderr, c.want)
		}
	}
	if inv := runCLI(t, context.Background(), env, "", "--help"); inv.code != exitOK || !strings.Contains(inv.stderr, "--all-spaces") {
		t.Errorf("--help: exit %d\n%s", inv.code, inv.stderr)
	}
	if inv := runCLI(t, context.Background(), noTopic, "", "--validate-only", "--space", "spaces/A", "--member", "1"); inv.code != exitOK {
		t.Errorf("--validate-only: exit %d", inv.code)
	}
	// A topic that does not exist is a connection-class error.
	if inv := runCLI(t, context.Background(), env, "", "--space", "spaces/A", "--member", "1", "--topic", "nope", "--timeout", "10s"); inv.code != exitUsage || !strings.Contains(inv.stderr, "not published") {
		t.Errorf("missing topic: exit %d", inv.code)
	}
	if n := len(published()); n != 0 {
		t.Fatalf("%d messages published, want 0", n)
	}
}

// TestValidatorSharedWithFunction feeds requests that the function rejects
// to both: the CLI must reject each with the very reason the function puts
// in its invalid result.
func TestValidatorSharedWithFunction(t *testing.T) {
	env, ps, _ := pstestEnv(t)
	ctx := context.Background()
	f, _ := newFunction(t, ps, "test-project", "requests", "results", emulator.Default())
	bad := []string{
		`{"requestId":"v-1","space":"spaces/ENG","member":"x/../../spaces/HR/members/102"}`,
		`{"requestId":"v-2","space":"spaces/ENG","member":"alice@example.com","colour":"red"}`,
		`{"requestId":"v-3","membership":"spaces/ENG/members/1","space":"spaces/ENG","member":"1"}`,
		`{"requestId":"v-4","space":"spaces/ENG","member":"аlice@example.com"}`,
		`{"requestId":"v-5","space":"spaces/ENG","member":"app","adminAccess":true}`,
		`{"requestId":"v-6","space":"spaces/ENG","member":"1","addSuccessor":true}`,
		`{"requestId":"v-7","allSpaces":true,"member":"app"}`,
		`{"requestId":"v-8","space":"spaces/ENG","member":"1","dryRun":"yes"}`,
		`{"requestId":"v-9","space":"spaces/ENG%2F..","member":"1"}`,
	}
	got := results(t, ps, "results")
	for i, data := range bad {
		if err := f.Handle(ctx, clitest.PubSubEvent("test-project", "requests", "m", []byte(data), nil, time.Now())); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		r := next(t, got)
		if r.Outcome != contract.Invalid || r.Error == nil {
			t.Fatalf("function answered %+v", r)
		}
		inv := runCLI(t, ctx, env, data, "--from", "-")
		want := "line 1: " + r.Error.Message
		if inv.code != exitUsage || !strings.Contains(inv.stderr, want) {
			t.Errorf("request %d: CLI exit %d; stderr lacks the function's reason %q:\n%s", i, inv.code, want, inv.stderr)
		}
	}
}

// results receives the result events of the pull subscription sub until
// the test ends.
func results(t *testing.T, ps *pubsub.Client, topic string) <-chan contract.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := pubsubtest.UniqueID("results-check")
	if err := pubsubtest.CreatePullSubscription(ctx, ps, ps.Project(), sub, topic, ""); err != nil {
		t.Fatal(err)
	}
	ch := make(chan contract.Result, 100)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = ps.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			var r contract.Result
			if err := json.Unmarshal(m.Data, &r); err == nil {
				ch <- r
			}
			m.Ack()
		})
	}()
	return ch
}

// next returns the next result of ch, failing the test after 10 s.
func next(t *testing.T, ch <-chan contract.Result) contract.Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result within 10 s")
	}
	return contract.Result{}
}
