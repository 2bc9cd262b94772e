package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/tokens"
)

func TestMain(m *testing.M) {
	unpin := firestoretest.Pin()
	code := pubsubtest.RunMain(m)
	unpin()
	os.Exit(code)
}

const testProject = "test-project"

// syncBuffer collects log lines from concurrent events.
type syncBuffer = syncbuf.Buffer

// logLines decodes the JSON log lines in s.
func logLines(t *testing.T, s *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// env is one Engine wired to the emulations and an in-process Pub/Sub.
type env struct {
	stack *emulator.Stack
	ps    *pubsub.Client
	psrv  *pstest.Server
	cfg   Config
	f     *Engine
	logs  *syncBuffer
	skew  atomic.Int64 // added to time.Now by the Engine's clock
	store ledger.Store // the Engine's ledger
}

type envOption func(*Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, emulator.Default(), emulator.ChatOptions{}, opts...)
}

// newEnvWith is newEnv on a workspace of the test's own.
func newEnvWith(t testing.TB, ws emulator.Workspace, chatOpts emulator.ChatOptions, opts ...envOption) *env {
	t.Helper()
	stack, err := emulator.StartAll(ws, chatOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	ps, psrv := pubsubtest.Pstest(t)
	ctx := context.Background()
	for _, id := range []string{"results", "requests"} {
		if err := pubsubtest.CreateTopic(ctx, ps, testProject, id); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{stack: stack, ps: ps, psrv: psrv, logs: &syncBuffer{}}
	e.cfg = Config{
		Project:               testProject,
		TokenSecret:           stack.SecretName + "/versions/latest",
		ResultTopic:           "projects/" + testProject + "/topics/results",
		RequestTopic:          "projects/" + testProject + "/topics/requests",
		MaxEventAge:           time.Hour,
		WritesPerMinute:       60000,
		ReadsPerMinute:        60000,
		ChatEndpoint:          stack.Chat.URL(),
		DirectoryEndpoint:     stack.Directory.URL(),
		SecretManagerEndpoint: stack.Secrets.Addr(),
		EventTimeout:          20 * time.Second,
		LogLevel:              -4,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	clock := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	e.store = ledgerFor(t)
	if e.store == nil {
		e.store = ledger.NewMemoryWithConfig(ledger.Config{Now: clock})
	}
	e.f, err = New(ctx, e.cfg, WithPubSubClient(ps), WithLogger(logging.New(e.logs, e.cfg.LogLevel)), WithClock(clock), WithLedger(e.store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.f.Close() })
	return e
}

var msgSeq struct {
	sync.Mutex
	n int
}

// pubsubEvent builds the CloudEvent that Eventarc delivers for a message.
func pubsubEvent(data string, published time.Time) event.Event {
	msgSeq.Lock()
	msgSeq.n++
	id := fmt.Sprintf("msg-%d", msgSeq.n)
	msgSeq.Unlock()
	e := event.New()
	e.SetID(id)
	e.SetType(contract.PublishedEventType)
	e.SetSource("//pubsub.googleapis.com/projects/" + testProject + "/topics/requests")
	e.SetTime(published)
	_ = e.SetData("application/json", map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString([]byte(data)),
			"attributes":  map[string]string{"origin": "test"},
			"messageId":   id,
			"publishTime": published.UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/" + testProject + "/subscriptions/requests-push",
	})
	return e
}

// send delivers one request and returns what Handle returned.
func (e *env) send(t testing.TB, data string) error {
	t.Helper()
	return e.f.Handle(context.Background(), pubsubEvent(data, time.Now()))
}

// results returns every result event published so far, in order.
func (e *env) results(t testing.TB) []published {
	t.Helper()
	var out []published
	for _, m := range e.psrv.Messages() {
		if m.Topic != e.cfg.ResultTopic {
			continue
		}
		var r contract.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("result is not JSON: %s", m.Data)
		}
		out = append(out, published{Result: r, Attrs: m.Attributes})
	}
	return out
}

type published struct {
	contract.Result
	Attrs map[string]string
}

// only returns the single result published, failing otherwise.
func (e *env) only(t *testing.T) published {
	t.Helper()
	rs := e.results(t)
	if len(rs) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

func (e *env) chatCalls() int64 {
	var n int64
	for _, c := range e.stack.Chat.Stats().Calls {
		n += c
	}
	return n
}

func TestRemoved(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"hr-1","space":"spaces/ENG","member":"users/101","reason":"offboarding","requestedBy":"workday"}`); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	// The result carries what restores the membership (state, role, member)
	// and the request's own fields. Attempts: members.get (the role),
	// members.list (alice is an owner: is she the only one?), the delete.
	wantResult := contract.Result{
		RequestID: "hr-1", Membership: "spaces/ENG/members/101", Outcome: contract.Removed,
		MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
		Reason: "offboarding", RequestedBy: "workday", Attempts: 3,
	}
	if diff := resultDiff(wantResult, r.Result, nil); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if r.SourceMessageID == "" || r.ProcessedAt.IsZero() {
		t.Errorf("result lacks sourceMessageId or processedAt: %+v", r.Result)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Error("users/101 is still a member of spaces/ENG")
	}
	want := map[string]string{
		"ce-specversion": "1.0", "ce-type": contract.ResultEventType, "ce-subject": "spaces/ENG/members/101",
		"content-type": "application/json", "outcome": "removed", "requestId": "hr-1",
		"ce-id": contract.EventID("hr-1", "spaces/ENG/members/101", "removed"),
	}
	for k, v := range want {
		if r.Attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, r.Attrs[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Attrs["ce-time"]); err != nil {
		t.Errorf("ce-time %q: %v", r.Attrs["ce-time"], err)
	}
	if r.Attrs["ce-source"] == "" {
		t.Error("no ce-source")
	}

	// The same request again (a redelivery, or the same requestId sent
	// again) makes no Chat call and publishes the recorded decision again,
	// with the same ce-id.
	before := e.chatCalls()
	if err := e.send(t, `{"requestId":"hr-1","space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if got := rs[1]; got.Outcome != contract.Removed || got.Attrs["ce-id"] != r.Attrs["ce-id"] || got.Role != r.Role {
		t.Errorf("second result = %+v %v, want the first decision again", got.Result, got.Attrs)
	}
	if n := e.chatCalls() - before; n != 0 {
		t.Errorf("the second delivery made %d Chat calls", n)
	}
}

func TestMemberForms(t *testing.T) {
	cases := []struct{ member, space, user string }{
		{`"users/101"`, "spaces/ENG", "101"},
		{`"users/alice@example.com"`, "spaces/ENG", "101"},
		{`"alice@example.com"`, "spaces/ENG", "101"},
		{`"ali@example.com"`, "spaces/ENG", "101"}, // an alias
		{`"101"`, "spaces/ENG", "101"},
		{`"app"`, "spaces/ENG", "app"},
	}
	for _, c := range cases {
		t.Run(c.member, func(t *testing.T) {
			e := newEnv(t)
			if _, ok := e.stack.Chat.IsMember(c.space, c.user); !ok {
				t.Fatalf("seed: %s is not in %s", c.user, c.space)
			}
			if err := e.send(t, fmt.Sprintf(`{"space":%q,"member":%s}`, c.space, c.member)); err != nil {
				t.Fatal(err)
			}
			if r := e.only(t); r.Outcome != contract.Removed {
				t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
			}
			if _, ok := e.stack.Chat.IsMember(c.space, c.user); ok {
				t.Errorf("%s still in %s", c.user, c.space)
			}
		})
	}
}

func TestMembershipForm(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"membership":"spaces/ENG/members/102"}`); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t); r.Outcome != contract.Removed || r.RequestID == "" {
		t.Fatalf("result = %+v", r.Result)
	}
}

func TestDryRun(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/106","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	rs := e.results(t)
	if len(rs) != 2 {
		t.Fatalf("%d results", len(rs))
	}
	// The request ids are the message ids (the requests name none).
	member := contract.Result{
		Membership: "spaces/ENG/members/101", Outcome: contract.DryRun, MembershipState: "JOINED", Role: "ROLE_MANAGER",
		Member: &contract.Member{Name: "users/101", Type: "HUMAN"}, WouldRemove: ptr(true), DryRun: true, Attempts: 1,
	}
	if diff := resultDiff(member, rs[0].Result, []string{"RequestID"}); diff != "" {
		t.Errorf("member (-want +got):\n%s", diff)
	}
	nonMember := contract.Result{
		Membership: "spaces/ENG/members/106", Outcome: contract.DryRun, MembershipState: "NOT_A_MEMBER", WouldRemove: ptr(false), DryRun: true, Attempts: 1,
	}
	if diff := resultDiff(nonMember, rs[1].Result, []string{"RequestID"}); diff != "" {
		t.Errorf("non-member (-want +got):\n%s", diff)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); !ok {
		t.Error("a dry run removed users/101")
	}
	if n := e.stack.Chat.Stats().Calls["members.delete"]; n != 0 {
		t.Errorf("dry run made %d deletes", n)
	}
}

func TestRefusedProtected(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Protected = []string{"102", "carol@example.com", "app"} })
	for _, d := range []string{
		`{"space":"spaces/ENG","member":"users/102"}`,
		`{"space":"spaces/ENG","member":"bob@example.com"}`, // protected by id, named by email
		`{"space":"spaces/ENG","member":"CAROL@example.com"}`,
		`{"space":"spaces/ENG","member":"app"}`,
	} {
		if err := e.send(t, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range e.results(t) {
		if r.Outcome != contract.Refused {
			t.Errorf("%s: outcome %s", r.Membership, r.Outcome)
		}
	}
	if n := e.stack.Chat.Stats().Calls["members.delete"]; n != 0 {
		t.Errorf("%d deletes of protected members", n)
	}
	for _, u := range []string{"102", "103", "app"} {
		if _, ok := e.stack.Chat.IsMember("spaces/ENG", u); !ok {
			t.Errorf("protected %s removed", u)
		}
	}
}

func TestInvalidMakesNoChatCall(t *testing.T) {
	e := newEnv(t)
	bad := []string{
		`not json`,
		`{"space":"spaces/ENG","member":"users/101","extra":1}`,
		`{"membership":"spaces/ENG/members/101","space":"spaces/ENG","member":"101"}`,
		`{"space":"spaces/ENG","member":"x/../../spaces/OTHER/members/y"}`,
		`{"membership":"spaces/ENG/members/..%2f..%2fspaces%2fHR"}`,
		`{"space":"spaces/ENG","member":"app","adminAccess":true}`,
		`{"space":"spaces/ENG","member":101}`,
		`{"space":"spaces/ENG","member":"users/101","dryRun":"false"}`,
		`{"requestId":"bulk-1","spaces":["spaces/ENG","spaces/x/y"],"member":"users/101"}`,
		`{"requestId":"sweep-1","allSpaces":true,"members":["users/101","app"]}`,
	}
	for _, d := range bad {
		if err := e.send(t, d); err != nil {
			t.Fatalf("%s: Handle returned %v, want nil (invalid is permanent)", d, err)
		}
	}
	rs := e.results(t)
	if len(rs) != len(bad) {
		t.Fatalf("%d results for %d requests", len(rs), len(bad))
	}
	// Each is invalid with the validator's reason (its text checked below
	// and by the request package's tests).
	invalid := contract.Result{Outcome: contract.Invalid, Error: &contract.ErrorInfo{Code: 400, Status: "INVALID_ARGUMENT"}}
	for i, r := range rs {
		if diff := resultDiff(invalid, r.Result, []string{"RequestID"}, ignoreErrorMessage); diff != "" {
			t.Errorf("%s (-want +got):\n%s", bad[i], diff)
		}
		if r.Error != nil && r.Error.Message == "" {
			t.Errorf("%s: no reason given: %+v", bad[i], r.Result)
		}
	}
	if rs[8].RequestID != "bulk-1" || !strings.Contains(rs[8].Error.Message, "spaces[1]") {
		t.Errorf("bulk: %+v", rs[8].Result)
	}
	if n := e.chatCalls(); n != 0 {
		t.Errorf("%d Chat API calls for invalid requests", n)
	}
}

func TestFailedIsPermanent(t *testing.T) {
	e := newEnv(t)
	// alice is the only manager of spaces/SOLO; the admin may not manage spaces/SECRET.
	for _, d := range []string{`{"space":"spaces/SOLO","member":"users/101","adminAccess":true}`, `{"space":"spaces/SECRET","member":"users/106"}`} {
		if err := e.send(t, d); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	rs := e.results(t)
	// members.get, members.list (the only owner), the delete Chat refuses.
	onlyManager := contract.Result{
		Membership: "spaces/SOLO/members/101", Outcome: contract.Failed, AdminAccess: true, Attempts: 3,
		Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
		Error:  &contract.ErrorInfo{Code: 400, Status: "FAILED_PRECONDITION"},
		Detail: onlyOwnerFix,
	}
	if diff := resultDiff(onlyManager, rs[0].Result, []string{"RequestID"}, ignoreErrorMessage); diff != "" {
		t.Errorf("only manager (-want +got):\n%s", diff)
	}
	if !strings.Contains(rs[0].Detail, "successor") {
		t.Errorf("only manager: detail %q does not name the fix", rs[0].Detail)
	}
	forbidden := contract.Result{
		Membership: "spaces/SECRET/members/106", Outcome: contract.Failed, Attempts: 1,
		Error: &contract.ErrorInfo{Code: 403, Status: "PERMISSION_DENIED"},
	}
	if diff := resultDiff(forbidden, rs[1].Result, []string{"RequestID"}, ignoreErrorMessage); diff != "" {
		t.Errorf("forbidden (-want +got):\n%s", diff)
	}
}

func TestTransientRetriedWithinInvocation(t *testing.T) {
	e := newEnv(t)
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503, Times: 2})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 429, RetryAfter: time.Second, Times: 1})
	start := time.Now()
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	// members.get (the role for the intent), members.list (alice is an
	// owner: the only one?), then three deletes answered 503, 503 and 429,
	// and the one that succeeds.
	if r.Outcome != contract.Removed || r.Attempts != 6 {
		t.Errorf("outcome %s after %d attempts, want removed after 6", r.Outcome, r.Attempts)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("finished in %v: Retry-After of 1 s not honoured", el)
	}
}

func TestTransientReturnsErrorWithoutResult(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventTimeout = 4 * time.Second })
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503})
	start := time.Now()
	err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`)
	var te *TransientError
	if !errors.As(err, &te) {
		t.Fatalf("Handle = %v, want a *TransientError", err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("retries outlived the deadline: %v", el)
	}
	if n := len(e.results(t)); n != 0 {
		t.Errorf("%d results for a transient failure", n)
	}
	if !strings.Contains(e.logs.String(), `"severity":"WARNING"`) {
		t.Error("no WARNING line")
	}
	// A dropped connection is transient too.
	e.stack.Chat.ClearFaults()
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Drop: true})
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); !errors.As(err, &te) {
		t.Fatalf("dropped connection: Handle = %v", err)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); !ok {
		t.Error("membership changed by a faulted call")
	}
}

func TestExpired(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-2 * time.Hour)
	if err := e.f.Handle(context.Background(), pubsubEvent(`{"space":"spaces/ENG","member":"users/101"}`, old)); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t); r.Outcome != contract.Expired || r.Error == nil {
		t.Errorf("result = %+v", r.Result)
	}
	if e.chatCalls() != 0 {
		t.Error("an expired event reached the Chat API")
	}
}

func TestExpiredWithLastError(t *testing.T) {
	// An event that fails transiently past MAX_EVENT_AGE is answered with
	// the error it met, and acknowledged.
	e := newEnv(t, func(c *Config) { c.EventTimeout = 3 * time.Second })
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503})
	// The event is young when it arrives and two hours old when its
	// retries run out.
	e.stack.Chat.OnCall(func(ci emulator.CallInfo) {
		if ci.Method == "members.delete" {
			e.skew.Store(int64(2 * time.Hour))
		}
	})
	ev := pubsubEvent(`{"space":"spaces/ENG","member":"users/101"}`, time.Now())
	if err := e.f.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle = %v, want nil", err)
	}
	// The error's text counts the attempts, which depend on timing. A
	// 503 does not say whether the delete was made.
	want := contract.Result{
		Membership: "spaces/ENG/members/101", Outcome: contract.Expired,
		Error:  &contract.ErrorInfo{Code: 503, Status: "UNAVAILABLE"},
		Detail: lostBeforeExpiry,
	}
	if diff := resultDiff(want, e.only(t).Result, []string{"RequestID", "Attempts"}, ignoreErrorMessage); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestConcurrentEventsShareOneRefresh(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.send(t, `{"space":"spaces/ENG","member":"users/106","dryRun":true}`)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.results(t)); n != 50 {
		t.Fatalf("%d results", n)
	}
	if st := e.stack.OAuth.Stats(); st.Refreshes != 1 {
		t.Errorf("%d refreshes for 50 concurrent events, want 1", st.Refreshes)
	}
	if st := e.stack.Secrets.Stats(); st.Accesses != 1 {
		t.Errorf("%d secret reads, want 1", st.Accesses)
	}
	if st := e.f.TokenStats(); st.Refreshes != 1 || st.SecretReads != 1 {
		t.Errorf("token stats %+v", st)
	}
}

func TestAccessTokenRejectedIsRefreshedOnce(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/106","dryRun":true}`); err != nil {
		t.Fatal(err)
	}
	e.stack.OAuth.ExpireAccessTokens() // the API now answers 401
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	if r := e.results(t)[1]; r.Outcome != contract.Removed {
		t.Errorf("after 401: %+v", r.Result)
	}
	if st := e.stack.OAuth.Stats(); st.Refreshes != 2 {
		t.Errorf("%d refreshes, want 2", st.Refreshes)
	}
}

func TestInvalidGrantThenRotatedSecret(t *testing.T) {
	e := newEnv(t)
	s := e.stack
	s.OAuth.RevokeRefreshToken(s.RefreshToken)
	err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`)
	if !errors.Is(err, tokens.ErrInvalidGrant) {
		t.Fatalf("Handle = %v, want ErrInvalidGrant", err)
	}
	if !strings.Contains(e.logs.String(), `"severity":"CRITICAL"`) {
		t.Error("no CRITICAL line after invalid_grant")
	}
	if len(e.results(t)) != 0 {
		t.Error("a result was published for a retryable failure")
	}
	reads := s.Secrets.Stats().Accesses
	if reads != 2 {
		t.Errorf("%d secret reads, want 2 (the first, and one re-read after invalid_grant)", reads)
	}

	// An operator rotates the secret: the next delivery succeeds.
	rt := s.OAuth.IssueRefreshToken(s.ClientID, "users/100", emulator.StackScopes)
	s.Secrets.AddVersion(s.Project, secretID(s.SecretName), emulator.AuthorizedUserJSON(s.ClientID, s.ClientSecret, rt, s.OAuth.TokenURL()))
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if r := e.only(t); r.Outcome != contract.Removed {
		t.Errorf("after rotation: %+v", r.Result)
	}
}

func secretID(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// A rollback by disabling the newest secret version breaks the function:
// versions/latest names the newest version, disabled or not. The event is
// redelivered, nothing is removed, and the function logs CRITICAL with the
// fix; adding a version (the documented rollback) mends it.
func TestDisabledNewestSecretVersionIsCritical(t *testing.T) {
	e := newEnv(t)
	s := e.stack
	cred := emulator.AuthorizedUserJSON(s.ClientID, s.ClientSecret, s.RefreshToken, s.OAuth.TokenURL())
	v2 := s.Secrets.AddVersion(s.Project, secretID(s.SecretName), cred)
	if err := s.Secrets.SetVersionEnabled(v2, false); err != nil {
		t.Fatal(err)
	}
	err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`)
	if !errors.Is(err, tokens.ErrSecretVersionDisabled) {
		t.Fatalf("Handle = %v, want ErrSecretVersionDisabled", err)
	}
	var critical string
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"severity":"CRITICAL"`) && strings.Contains(line, "add a new version") {
			critical = line
		}
	}
	if critical == "" || !strings.Contains(critical, "gcloud secrets versions enable") {
		t.Errorf("no CRITICAL line with the fix (enable it, or add a new version):\n%s", e.logs.String())
	}
	if len(e.results(t)) != 0 || s.Chat.Stats().Calls["members.delete"] != 0 {
		t.Error("something was decided or removed without a credential")
	}
	s.Secrets.AddVersion(s.Project, secretID(s.SecretName), cred)
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatalf("after adding a version: %v", err)
	}
	if r := e.only(t); r.Outcome != contract.Removed {
		t.Errorf("after adding a version: %+v", r.Result)
	}
}

func TestSecretReadOncePerInstance(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		if err := e.send(t, `{"space":"spaces/ENG","member":"users/106","dryRun":true}`); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.stack.Secrets.Stats().Accesses; n != 1 {
		t.Errorf("%d secret reads for 5 events", n)
	}
}

func TestSecretManagerOutageIsTransient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventTimeout = 3 * time.Second })
	e.stack.Secrets.InjectFault(emulator.Fault{Status: 503})
	err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`)
	var te *TransientError
	if !errors.As(err, &te) || tokens.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a transient error", err)
	}
	e.stack.Secrets.ClearFaults()
	// The refresh that met the outage may still be backing off: give the
	// next delivery a longer deadline, as a later redelivery would have.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.f.Handle(ctx, pubsubEvent(`{"space":"spaces/ENG","member":"users/101"}`, time.Now())); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestTokenEndpointOutageIsTransient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventTimeout = 3 * time.Second })
	e.stack.OAuth.InjectFault(emulator.Fault{Status: 503})
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err == nil || tokens.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a transient error", err)
	}
	e.stack.OAuth.ClearFaults()
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestOAuthTokenURLOverride(t *testing.T) {
	// The secret names a token_uri that does not answer; OAUTH_TOKEN_URL wins.
	e := newEnv(t, func(c *Config) { c.OAuthTokenURL = "" })
	s := e.stack
	s.Secrets.AddVersion(s.Project, secretID(s.SecretName), emulator.AuthorizedUserJSON(s.ClientID, s.ClientSecret, s.RefreshToken, "http://127.0.0.1:1/token"))
	f2, err := New(context.Background(), func() Config { c := e.cfg; c.OAuthTokenURL = s.OAuth.TokenURL(); return c }(), WithPubSubClient(e.ps), WithLogger(logging.New(io.Discard, slog.LevelInfo)), WithLedger(ledger.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := f2.Handle(context.Background(), pubsubEvent(`{"space":"spaces/ENG","member":"users/101"}`, time.Now())); err != nil {
		t.Fatal(err)
	}
}

func TestPublishFailureReturnsError(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ResultTopic = "projects/" + testProject + "/topics/missing" })
	err := e.send(t, `{"space":"spaces/ENG","member":"users/101"}`)
	if err == nil || !strings.Contains(err.Error(), "publishing") {
		t.Fatalf("Handle = %v, want a publish error", err)
	}
}

func TestLogLinesCarryEventContext(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"hr-9","space":"spaces/ENG","member":"users/101"}`); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range logLines(t, e.logs) {
		if l["message"] == "decision published" {
			found = true
			// The event's context, compared as a whole; the eventId
			// is the message id, which differs between runs.
			want := map[string]any{"requestId": "hr-9", "membership": "spaces/ENG/members/101", "severity": "INFO", "eventId": true}
			got := map[string]any{"requestId": l["requestId"], "membership": l["membership"], "severity": l["severity"], "eventId": l["eventId"] != nil}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision line %v (-want +got):\n%s", l, diff)
			}
		}
	}
	if !found {
		t.Error("no decision line")
	}
}

func TestDecodeStructuredAndBinary(t *testing.T) {
	// The same messagePublished event, sent over HTTP to EventHandler in
	// binary mode (attributes in ce-* headers, the data as the body) and in
	// structured mode (the whole event as one JSON document), is decoded to
	// the same Pub/Sub message; so is the event handed over directly.
	published := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev := pubsubEvent(`{"space":"spaces/A","member":"1"}`, published)
	want := Message{
		ID:           ev.ID(),
		Data:         []byte(`{"space":"spaces/A","member":"1"}`),
		Attributes:   map[string]string{"origin": "test"},
		PublishTime:  published,
		Subscription: "projects/" + testProject + "/subscriptions/requests-push",
		Source:       "//pubsub.googleapis.com/projects/" + testProject + "/topics/requests",
	}
	direct, err := DecodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, direct); diff != "" {
		t.Errorf("decoded event (-want +got):\n%s", diff)
	}

	decoded := make(chan Message, 1)
	srv := httptest.NewServer(EventHandler(func(_ context.Context, e event.Event) error {
		m, err := DecodeEvent(e)
		if err != nil {
			return err
		}
		decoded <- m
		return nil
	}))
	defer srv.Close()
	for _, mode := range []struct {
		name        string
		force       func(context.Context) context.Context
		contentType string
		ceID        string // the ce-id header: set in binary mode only
	}{
		{"binary", binding.WithForceBinary, "application/json", ev.ID()},
		{"structured", binding.WithForceStructured, "application/cloudevents+json", ""},
	} {
		t.Run(mode.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := cehttp.WriteRequest(mode.force(context.Background()), binding.ToMessage(&ev), req); err != nil {
				t.Fatal(err)
			}
			// The request really is in this mode.
			if got := req.Header.Get("Content-Type"); !strings.HasPrefix(got, mode.contentType) {
				t.Fatalf("Content-Type %q, want %s", got, mode.contentType)
			}
			if got := req.Header.Get("ce-id"); got != mode.ceID {
				t.Fatalf("ce-id header %q, want %q", got, mode.ceID)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			select {
			case m := <-decoded:
				if diff := cmp.Diff(want, m); diff != "" {
					t.Errorf("decoded message (-want +got):\n%s", diff)
				}
			default:
				t.Fatal("the handler answered 200 without decoding an event")
			}
		})
	}

	bad := event.New()
	bad.SetID("x")
	bad.SetType("com.example.other")
	bad.SetSource("s")
	if _, err := DecodeEvent(bad); err == nil {
		t.Error("accepted another event type")
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_SECRET": "chat-token", "RESULT_TOPIC": "results",
		"PROTECTED_MEMBERS": "users/1, boss@example.com,app", "MAX_EVENT_AGE": "2h", "CHAT_WRITES_PER_MINUTE": "120",
	}
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Project: "p", TokenSecret: "projects/p/secrets/chat-token/versions/latest", ResultTopic: "projects/p/topics/results",
		Protected: []string{"1", "boss@example.com", "app"}, MaxEventAge: 2 * time.Hour,
		WritesPerMinute: 120, ReadsPerMinute: DefaultReadsPerMinute, LogLevel: slog.LevelInfo, EventTimeout: 9 * time.Minute,
		FirestoreDatabase: ledger.DefaultDatabase, LedgerRetention: ledger.DefaultRetention, ReplayWindow: DefaultReplayWindow,
		Oversight: Oversight{Delay: DefaultAutoOffboardDelay, MaxPerHour: DefaultAutoOffboardMaxPerHour},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{
		"GOOGLE_CLOUD_PROJECT": "", "TOKEN_SECRET": "projects/p/secrets", "RESULT_TOPIC": "projects/p/subs/x",
		"MAX_EVENT_AGE": "soon", "CHAT_WRITES_PER_MINUTE": "-1", "LOG_LEVEL": "loud", "PROTECTED_MEMBERS": "x/../y",
		"REQUEST_REPLAY_WINDOW": "1h", // shorter than MAX_EVENT_AGE
	} {
		bad := map[string]string{}
		for k2, v2 := range env {
			bad[k2] = v2
		}
		bad[k] = v
		_, err := LoadConfig(func(k string) string { return bad[k] })
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != k {
			t.Errorf("%s=%q: error %v, want one naming %s", k, v, err, k)
		}
	}
}

func TestSecretManagerEndpointMustBeLoopback(t *testing.T) {
	cfg := Config{Project: "p", TokenSecret: "projects/p/secrets/s/versions/1", ResultTopic: "projects/p/topics/r", SecretManagerEndpoint: "10.1.2.3:443"}
	_, err := New(context.Background(), cfg, WithLogger(logging.New(io.Discard, slog.LevelInfo)))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("New = %v, want a loopback refusal", err)
	}
}

func TestRemovalSurvivesAFailedResultPublish(t *testing.T) {
	// The first delivery removes the membership but cannot publish its
	// result; the redelivery meets a 404 and must still report the removal,
	// with the role that restoring the membership would need.
	e := newEnv(t, func(c *Config) { c.ResultTopic = "projects/" + testProject + "/topics/late-results" })
	req := `{"requestId":"hr-late","space":"spaces/ENG","member":"users/101"}`
	if err := e.send(t, req); err == nil {
		t.Fatal("Handle = nil with no result topic, want an error")
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Fatal("the first delivery did not remove the membership")
	}
	if err := pubsubtest.CreateTopic(context.Background(), e.ps, testProject, "late-results"); err != nil {
		t.Fatal(err)
	}
	if err := e.send(t, req); err != nil {
		t.Fatal(err)
	}
	r := e.only(t)
	// The detail's text is checked on its own below.
	want := contract.Result{
		RequestID: "hr-late", Membership: "spaces/ENG/members/101", Outcome: contract.Removed,
		MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
		Attempts: 3,
	}
	if diff := resultDiff(want, r.Result, []string{"Detail"}); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.Detail, "earlier delivery") {
		t.Fatalf("detail %q does not say the removal was an earlier delivery's", r.Detail)
	}
	if r.Attrs["ce-id"] != contract.EventID("hr-late", "spaces/ENG/members/101", contract.Removed) {
		t.Error("the late result's ce-id differs from the removal's")
	}
	// The ledger keeps it: a third delivery publishes the same decision
	// again, with the same ce-id.
	if err := e.send(t, req); err != nil {
		t.Fatal(err)
	}
	if rs := e.results(t); len(rs) != 2 || rs[1].Outcome != contract.Removed || rs[1].Attrs["ce-id"] != r.Attrs["ce-id"] {
		t.Errorf("third delivery: %+v", rs)
	}
}
