package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
	"github.com/chat-offboard/chat-offboard/report"

	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/request"
)

func TestMain(m *testing.M) { os.Exit(pubsubtest.RunMain(m)) }

// want is what each embedded sample must end in: outcome, and the note (or
// a part of it) where it tells more.
var want = map[string]struct {
	outcome contract.Outcome
	note    string
}{
	"remove-alice-eng":      {contract.Removed, "was ROLE_MANAGER"},
	"remove-alice-sales":    {contract.Removed, "was ROLE_MEMBER"},
	"remove-alice-hr":       {contract.NotMember, ""},
	"dry-run-carol-ops":     {contract.DryRun, "wouldRemove=true"},
	"dry-run-erin-ops":      {contract.DryRun, "wouldRemove=false"},
	"remove-admin-eng":      {contract.Refused, "PROTECTED_MEMBERS"},
	"remove-app-eng":        {contract.Refused, "PROTECTED_MEMBERS"},
	"path-trick":            {contract.Invalid, "member"},
	"two-targets":           {contract.Invalid, "target"},
	"remove-alice-solo":     {contract.Failed, "400 FAILED_PRECONDITION"},
	"remove-frank-secret":   {contract.Failed, "403 PERMISSION_DENIED"},
	"remove-dave-ops-503":   {contract.Removed, "was ROLE_MEMBER"},
	"remove-erin-sales-429": {contract.Removed, "was ROLE_MEMBER"},
	// Admin audit LogEntries as the organization's sink publishes them:
	// frank's suspension becomes a sweep (6 spaces, 6 results), erin's
	// (she is active again) is refused.
	"workspace-1796117400250-4711": {contract.Planned, "sweep: 6 spaces, 6 results"},
	"workspace-1796117460500-4712": {contract.Refused, "400 FAILED_PRECONDITION"},
	// After the others: a sweep of bob (a member of ENG and SOLO, an owner
	// of OPS), then its undo.
	"sweep-bob":      {contract.Planned, "sweep: 6 spaces, 6 results"},
	"undo-sweep-bob": {contract.Planned, "restore: 3 spaces, 3 results"},
}

// wantAfter are the memberships of the default workspace after the default
// run (* = manager).
var wantAfter = map[string]string{
	"spaces/ENG":    "admin* carol app bob", // alice removed; the admin and the app are protected; bob swept and restored
	"spaces/SALES":  "admin* dave*",         // alice and erin (after a 429) removed
	"spaces/HR":     "admin* erin",          // alice was not a member; frank's suspension swept him
	"spaces/OPS":    "admin* carol bob*",    // dave removed after a 503; carol only dry-run; frank swept; bob swept and restored as owner
	"spaces/SOLO":   "alice* carol bob",     // alice is the only manager; bob swept and restored
	"spaces/SECRET": "dave*",                // the admin has no access (403), but the sweep has admin access
	"spaces/GROUP":  "alice bob carol",
	"spaces/DM":     "alice bob",
}

var cellSep = regexp.MustCompile(`\s{2,}`)

// table returns the rows of the tabwriter table whose header starts with
// first, as maps from column name to cell.
func table(t *testing.T, out, first string) []map[string]string {
	t.Helper()
	var head []string
	var rows []map[string]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, " ")
		if head == nil {
			if strings.HasPrefix(line, first+" ") {
				head = cellSep.Split(line, -1)
			}
			continue
		}
		if line == "" {
			break
		}
		cells := cellSep.Split(line, -1)
		row := map[string]string{}
		for i, h := range head {
			if i < len(cells) {
				row[h] = cells[i]
			}
		}
		rows = append(rows, row)
	}
	if head == nil {
		t.Fatalf("no table %q in:\n%s", first, out)
	}
	return rows
}

func runSandbox(t *testing.T, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String(), time.Since(start)
}

func checkMemberships(t *testing.T, out string, want map[string]string) {
	t.Helper()
	rows := table(t, out, "SPACE")
	if len(rows) != len(want) {
		t.Errorf("%d spaces in the memberships table, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if w, ok := want[r["SPACE"]]; !ok || r["AFTER"] != w {
			t.Errorf("%s after = %q, want %q", r["SPACE"], r["AFTER"], w)
		}
	}
}

// TestDefaultRun is `go run ./cmd/sandbox` with the in-process Pub/Sub:
// every sample ends in its outcome, the transient faults are retried to
// success, and the memberships are right afterwards.
func TestDefaultRun(t *testing.T) {
	code, out, errs, took := runSandbox(t, "--emulator=")
	t.Logf("took %s\n%s%s", took, out, errs)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	rows := table(t, out, "REQUEST")
	if len(rows) != len(want) {
		t.Errorf("%d result rows, want %d", len(rows), len(want))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		id := r["REQUEST"]
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected row %v", r)
			continue
		}
		seen[id] = true
		if r["OUTCOME"] != string(w.outcome) || r["CHECK"] != "ok" || !strings.Contains(r["NOTE"], w.note) {
			t.Errorf("%s: %v, want outcome %s, check ok, note with %q", id, r, w.outcome, w.note)
		}
		if r["DELIVERIES"] != "1" {
			t.Errorf("%s: %s deliveries, want 1", id, r["DELIVERIES"])
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("no row for %s", id)
		}
	}
	// The faults: 503 then 200 on the delete, after the Directory's
	// users.get (dave is named by email) and members.get (the role the
	// ledger's intent records); 429 with Retry-After 1s, then 200, after
	// the members.get.
	for _, r := range rows {
		switch r["REQUEST"] {
		case "remove-dave-ops-503":
			if r["ATTEMPTS"] != "4" {
				t.Errorf("remove-dave-ops-503: %s attempts, want 4 (users.get, members.get, 503, 200)", r["ATTEMPTS"])
			}
		case "remove-erin-sales-429":
			if r["ATTEMPTS"] != "3" {
				t.Errorf("remove-erin-sales-429: %s attempts, want 3 (members.get, 429, 200)", r["ATTEMPTS"])
			}
		}
	}
	for _, want := range []string{"sweep-bob: 3 not_member, 3 removed", "undo-sweep-bob: 3 restored"} {
		if !strings.Contains(out, want) {
			t.Errorf("the fan-outs do not say %q", want)
		}
	}
	if !strings.Contains(out, "17 requests, 17 results, 17 of 17 expectations met") ||
		!strings.Contains(out, "2 faults injected, 2 retried within the invocation") {
		t.Error("summary lines missing or wrong")
	}
	checkMemberships(t, out, wantAfter)
	checkLeaverReport(t, out)
	if errs != "" {
		t.Errorf("standard error (not a terminal) should be empty, got:\n%s", errs)
	}
	if took > 30*time.Second {
		t.Errorf("the default run took %s", took)
	}
}

// TestNoFaults: --faults=false publishes the same requests without
// injecting anything.
func TestNoFaults(t *testing.T) {
	code, out, errs, _ := runSandbox(t, "--emulator=", "--faults=false")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, r := range table(t, out, "REQUEST") {
		if r["REQUEST"] == "remove-erin-sales-429" && r["ATTEMPTS"] != "2" { // members.get, delete
			t.Errorf("without faults: %v", r)
		}
	}
	if !strings.Contains(out, "0 faults injected, 0 retried") {
		t.Errorf("summary:\n%s", out)
	}
}

// TestEmulatorRun is the default run through the real Pub/Sub emulator and
// a push subscription to the function, with --json.
func TestEmulatorRun(t *testing.T) {
	host := pubsubtest.Emulator(t)
	code, out, errs, took := runSandbox(t, "--emulator="+host, "--json",
		"--topic="+pubsubtest.UniqueID("sandbox-req"), "--result-topic="+pubsubtest.UniqueID("sandbox-res"))
	t.Logf("took %s\n%s", took, errs)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	got := map[string]contract.Outcome{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct {
			SpecVersion string          `json:"specversion"`
			Type        string          `json:"type"`
			ID          string          `json:"id"`
			Data        contract.Result `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		if e.SpecVersion != "1.0" || e.Type != contract.ResultEventType ||
			e.ID != e.Data.EventID() {
			t.Errorf("event %s", sc.Text())
		}
		got[e.Data.RequestID] = e.Data.Outcome
	}
	for id, w := range want {
		if got[id] != w.outcome {
			t.Errorf("%s: outcome %q, want %q", id, got[id], w.outcome)
		}
	}
	if !strings.Contains(errs, "push subscription") {
		t.Errorf("not through the emulator's push subscription? %s", errs)
	}
	checkMemberships(t, errs, wantAfter)
}

// syncBuffer is written by run while the test reads it.
type syncBuffer = syncbuf.Buffer

// TestServe follows what --serve prints: it posts the binary CloudEvent of
// its curl command to the function and sees the result arrive; cancelling
// (Ctrl-C) ends the run with status 0.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	reqs := filepath.Join(dir, "requests.jsonl")
	if err := os.WriteFile(reqs, []byte(`{"sandbox":{"expect":"removed"},"requestId":"one","space":"spaces/ENG","member":"users/103"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--emulator=", "--serve", "--requests", reqs}, &out, &errb) }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s\nstderr:\n%s", what, out.String(), errb.String())
			}
		}
	}
	waitFor("Results as they arrive")
	o := out.String()
	for _, s := range []string{"go run ./cmd/publish --project chat-offboard-sandbox --topic offboard-requests --result-topic offboard-results",
		"gcloud and curl cannot reach the in-process Pub/Sub", "go run ./cmd/function", "TOKEN_SECRET=projects/emulator-project/secrets/chat-offboard-token",
		"go run ./cmd/offboard report"} {
		if !strings.Contains(o, s) {
			t.Errorf("instructions lack %q", s)
		}
	}
	m := regexp.MustCompile(`curl -sS -X POST (http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(o)
	if m == nil {
		t.Fatalf("no curl command in:\n%s", o)
	}
	// bob is the first plain member left (carol went with the sample).
	data := base64.StdEncoding.EncodeToString([]byte(`{"requestId":"manual-1","space":"spaces/ENG","member":"bob@example.com"}`))
	if !strings.Contains(o, data) {
		t.Errorf("the curl command does not carry %s", data)
	}
	body := fmt.Sprintf(`{"message":{"messageId":"manual-1","data":%q},"subscription":"projects/chat-offboard-sandbox/subscriptions/manual"}`, data)
	req, _ := http.NewRequest(http.MethodPost, m[1]+"/", strings.NewReader(body))
	for k, v := range map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "manual-1",
		"ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "ce-source": "//pubsub.googleapis.com/projects/chat-offboard-sandbox/topics/offboard-requests"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the function answered %d", resp.StatusCode)
	}
	live := regexp.MustCompile(`\d\d:\d\d:\d\d +manual-1 +spaces/ENG/members/bob@example.com +removed`)
	for deadline := time.Now().Add(30 * time.Second); !live.MatchString(out.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no live result line in:\n%s", out.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after Ctrl-C in --serve", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	o = out.String()
	i := strings.Index(o, "Memberships at the start and now")
	if i < 0 {
		t.Fatalf("no final memberships:\n%s", o)
	}
	for _, r := range table(t, o[i:], "SPACE") {
		if r["SPACE"] == "spaces/ENG" && (r["AFTER"] != "admin* alice* app" || r["CHANGE"] != "-bob -carol") {
			t.Errorf("spaces/ENG at the end: %v", r)
		}
	}
}

// TestCustomFiles runs --workspace and --requests files: lines without
// expectations are reported, not checked; a line that is not JSON is
// published as it is (and ends invalid).
func TestCustomFiles(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws.json")
	reqs := filepath.Join(dir, "reqs.jsonl")
	if err := os.WriteFile(ws, []byte(`{"admins":["users/1"],
		"users":[{"id":"1","email":"root@corp.test"},{"id":"2","email":"x@corp.test"}],
		"spaces":[{"name":"spaces/A","displayName":"A","members":[{"user":"users/1","role":"ROLE_MANAGER"},{"user":"users/2"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqs, []byte(`{"requestId":"r1","space":"spaces/A","member":"x@corp.test","sandbox":{"expect":"removed"}}

not json
{"requestId":"r3","space":"spaces/A","member":"users/1"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs, _ := runSandbox(t, "--emulator=", "--workspace", ws, "--requests", reqs)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	rows := table(t, out, "REQUEST")
	if len(rows) != 3 || rows[0]["REQUEST"] != "r1" || rows[0]["OUTCOME"] != "removed" || rows[0]["CHECK"] != "ok" ||
		rows[1]["OUTCOME"] != "invalid" || rows[1]["CHECK"] != "-" || rows[2]["OUTCOME"] != "refused" {
		t.Errorf("rows: %v", rows)
	}
	checkMemberships(t, out, map[string]string{"spaces/A": "root*"})
}

// TestUnexpected: a request that does not end as expected makes the exit
// status 1 and says which.
func TestUnexpected(t *testing.T) {
	reqs := filepath.Join(t.TempDir(), "reqs.jsonl")
	if err := os.WriteFile(reqs, []byte(`{"sandbox":{"expect":"removed"},"requestId":"nope","space":"spaces/HR","member":"users/101"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs, _ := runSandbox(t, "--emulator=", "--requests", reqs)
	if code != exitUnexpected || !strings.Contains(out, "NOT AS EXPECTED: line 1: want removed") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if !strings.Contains(errs, "The function's last") {
		t.Errorf("no function logs on failure:\n%s", errs)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-h"}, exitOK, "usage: go run ./cmd/sandbox"},
		{[]string{"--nope"}, exitSetup, "flag provided but not defined"},
		{[]string{"extra"}, exitSetup, "unexpected argument"},
		{[]string{"--topic", "a/b"}, exitSetup, "--topic"},
		{[]string{"--workspace", filepath.Join(dir, "missing.json")}, exitSetup, "--workspace"},
		{[]string{"--workspace", write("bad.json", `{"users":[],"spaces":[{"name":"spaces/a/b","members":[]}]}`)}, exitSetup, "is not spaces/{space}"},
		{[]string{"--workspace", write("unknown.json", `{"users":[],"spaces":[],"extra":1}`)}, exitSetup, "unknown field"},
		{[]string{"--workspace", write("noadmin.json", `{"users":[],"spaces":[]}`)}, exitSetup, "needs at least one admin"},
		{[]string{"--requests", write("badmeta.jsonl", `{"sandbox":{"expect":"gone"},"space":"spaces/A","member":"x"}`)}, exitSetup, `line 1: "sandbox" member: expect "gone"`},
		{[]string{"--requests", write("badfault.jsonl", `{"sandbox":{"faults":[{"method":"token","status":503}]}}`)}, exitSetup, "fault method"},
	} {
		code, out, errs, _ := runSandbox(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.msg) {
			t.Errorf("%v: exit %d, output:\n%s%s\nwant exit %d and %q", c.args, code, out, errs, c.code, c.msg)
		}
	}
}

func TestSplitSandbox(t *testing.T) {
	for _, c := range []struct{ in, data, expect string }{
		{`{"b":1,"sandbox":{"expect":"removed"},"a":2,"b":3}`, `{"b":1,"a":2,"b":3}`, "removed"},
		{`{"sandbox":{"expect":"dry_run","wouldRemove":false}, "x" : [1, 2]}`, `{"x":[1, 2]}`, "dry_run"},
		{`{"a":1,  "b":2}`, `{"a":1,  "b":2}`, ""}, // untouched without "sandbox"
		{`not json`, `not json`, ""},                               // published as it is
		{`{"sandbox":{}} trailing`, `{"sandbox":{}} trailing`, ""}, // not one object: as it is
		{`["sandbox"]`, `["sandbox"]`, ""},
	} {
		data, m, err := splitSandbox([]byte(c.in))
		if err != nil || string(data) != c.data || m.Expect != c.expect {
			t.Errorf("splitSandbox(%s) = %s, %+v, %v; want %s, expect %q", c.in, data, m, err, c.data, c.expect)
		}
	}
	for _, in := range []string{
		`{"sandbox":{"expect":"removed","typo":1}}`,
		`{"sandbox":{"wouldRemove":true}}`,
		`{"sandbox":{},"sandbox":{}}`,
		`{"sandbox":{"faults":[{"method":"members.delete"}]}}`,
		`{"sandbox":{"faults":[{"method":"members.delete","status":200}]}}`,
		`{"sandbox":{"faults":[{"method":"members.delete","status":429,"retryAfter":"soon"}]}}`,
	} {
		if _, _, err := splitSandbox([]byte(in)); err == nil {
			t.Errorf("splitSandbox(%s): no error", in)
		}
	}
}

// TestEmbeddedSamples keeps the embedded samples and the test's table in
// step, and checks that they cover every outcome the issue names.
func TestEmbeddedSamples(t *testing.T) {
	s, err := parseSamples(bytes.NewReader(defaultSamples))
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[contract.Outcome]bool{}
	faults := 0
	for _, smp := range s {
		var r struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(smp.data, &r); err != nil {
			t.Fatal(err)
		}
		if request.LooksLikeLogEntry(smp.data) { // its request id derives from the entry
			ev, err := request.ParseAuditEntry(smp.data)
			if err != nil {
				t.Fatalf("line %d: %v", smp.line, err)
			}
			r.RequestID = ev.RequestID()
		}
		if w, ok := want[r.RequestID]; !ok || string(w.outcome) != smp.meta.Expect {
			t.Errorf("sample %s expects %q; the test wants %q", r.RequestID, smp.meta.Expect, w.outcome)
		}
		if strings.Contains(string(smp.data), `"`+sandboxKey+`":`) {
			t.Errorf("sample %s still has its %q member", r.RequestID, sandboxKey)
		}
		outcomes[contract.Outcome(smp.meta.Expect)] = true
		faults += len(smp.meta.Faults)
	}
	for _, o := range []contract.Outcome{contract.Removed, contract.NotMember, contract.DryRun,
		contract.Refused, contract.Invalid, contract.Failed} {
		if !outcomes[o] {
			t.Errorf("no sample ends %s", o)
		}
	}
	if len(s) != len(want) || faults != 2 {
		t.Errorf("%d samples with %d faults", len(s), faults)
	}
}

// checkLeaverReport: the run ends with the leaver report of the samples that
// reached the ledger (every request of the results table but the invalid
// ones), read in-process from the function's ledger: alice grouped under her
// user id with her email, each of her spaces once, the only-owner failure
// with its fix, and the note on what no API reaches.
func checkLeaverReport(t *testing.T, out string) {
	t.Helper()
	recorded := map[string]bool{}
	for _, r := range table(t, out, "REQUEST") {
		if r["OUTCOME"] != "invalid" {
			recorded[r["REQUEST"]] = true
		}
	}
	_, rep, ok := strings.Cut(out, "\nLeaver report ")
	if !ok {
		t.Fatalf("no leaver report at the end:\n%s", out)
	}
	for _, want := range []string{
		"Request remove-alice-solo (space+member; spaces/SOLO/members/alice@example.com; requested by sandbox): complete, 1 result.",
		"alice@example.com (users/101)",
		"spaces/SOLO: failed",
		"fix: name a successor",
		"Outcomes: removed ",
		"Complete: yes; ",
		"Request workspace-1796117400250-4711 (sweep; frank@example.com from every space; reason: Google Workspace SUSPEND_USER",
		"complete, 6 of 6 expected results.",
		"fix: the person is active again in the Directory",
		report.Unreachable,
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("the leaver report lacks %q:\n%s", want, rep)
		}
	}
	if strings.Contains(rep, "path-trick") || strings.Count(rep, "\nRequest ") != len(recorded) {
		t.Errorf("the leaver report should list the %d recorded requests, not the invalid ones:\n%s", len(recorded), rep)
	}
	alice := rep[strings.Index(rep, "alice@example.com (users/101)"):]
	alice = alice[:strings.Index(alice, "\n\n")]
	for _, space := range []string{"spaces/ENG ", "spaces/SALES ", "spaces/SOLO "} {
		if strings.Count(alice, "  "+space) != 1 {
			t.Errorf("alice's %s is not listed once:\n%s", space, alice)
		}
	}
}
