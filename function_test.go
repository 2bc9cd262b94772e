package offboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
)

// fnBinDir holds the built cmd/function, removed by TestMain.
var fnBinDir string

func TestMain(m *testing.M) {
	unpin := firestoretest.Pin()
	code := pubsubtest.RunMain(m)
	unpin()
	if fnBinDir != "" {
		os.RemoveAll(fnBinDir)
	}
	os.Exit(code)
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer = syncbuf.Buffer

// buildFunction builds cmd/function once per test binary; TestMain removes
// it.
var buildFunction = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "chat-offboard-fn")
	if err != nil {
		return "", err
	}
	fnBinDir = dir
	bin := filepath.Join(dir, "function")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/function").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/function: %v\n%s", err, out)
	}
	return bin, nil
})

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// startFunction runs cmd/function as its own process, configured by env,
// and stops it when the test ends.
func startFunction(t *testing.T, env map[string]string) (url string, logs *syncBuffer) {
	t.Helper()
	bin, err := buildFunction()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(bin)
	// The function keeps its ledger in the real Firestore emulator, as in
	// production (cmd/function always uses Firestore).
	cmd.Env = append(os.Environ(), "PORT="+port, "LOCAL_ONLY=true", firestoretest.EnvEmulatorHost+"="+firestoretest.Emulator(t))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("function output:\n%s", logs)
		}
	})
	url = "http://127.0.0.1:" + port
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return url, logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("function did not listen on %s: %v\n%s", port, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEnd publishes requests with the real client to the real Pub/Sub
// emulator, whose push subscription delivers them to cmd/function's server;
// the functions framework turns each push into a CloudEvent; the function
// removes the membership on the emulated Chat API and publishes results,
// which a pull subscription reads back.
func TestEndToEnd(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stack, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()

	pl := pubsubtest.NewPipeline(ctx, t, host, "e2e") // the ledger's project too: one of this run's own
	ps, project, reqTopic, resTopic, resSub := pl.Client, pl.Project, pl.Requests, pl.Results, pl.ResultsSub

	url, logs := startFunction(t, map[string]string{
		"GOOGLE_CLOUD_PROJECT":    project,
		"TOKEN_SECRET":            stack.SecretName,
		"RESULT_TOPIC":            resTopic,
		"PUBSUB_EMULATOR_HOST":    host,
		"CHAT_ENDPOINT":           stack.Chat.URL(),
		"DIRECTORY_ENDPOINT":      stack.Directory.URL(),
		"SECRET_MANAGER_ENDPOINT": stack.Secrets.Addr(),
		"LOG_LEVEL":               "debug",
	})
	push := url + "/projects/" + project + "/topics/" + reqTopic
	if err := pubsubtest.CreatePushSubscription(ctx, ps, project, pubsubtest.UniqueID("requests-push"), reqTopic, push,
		pubsubtest.WithRetryPolicy(100*time.Millisecond, time.Second)); err != nil {
		t.Fatal(err)
	}

	results := make(chan contract.Result, 16)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go ps.Subscriber(resSub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		var r contract.Result
		if err := json.Unmarshal(m.Data, &r); err == nil && m.Attributes["ce-type"] == contract.ResultEventType {
			results <- r
		}
		m.Ack()
	})
	// A transient fault on the first delete: the function retries it.
	stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503, Times: 1})

	pub := ps.Publisher(reqTopic)
	defer pub.Stop()
	publish := func(data string) {
		t.Helper()
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(data)}).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	next := func() contract.Result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-ctx.Done():
			t.Fatalf("no result: %v\n%s", ctx.Err(), logs)
		}
		return contract.Result{}
	}

	publish(`{"requestId":"e2e-1","space":"spaces/ENG","member":"alice@example.com"}`)
	first := contract.Result{
		RequestID: "e2e-1", Membership: "spaces/ENG/members/alice@example.com", Outcome: contract.Removed,
		MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
		Attempts: 5, // every call counted: users.get, members.get (the role for the intent), members.list (alice is an owner: the only one?), the faulted delete and its retry
	}
	if diff := cmp.Diff(first, next(), cmpopts.IgnoreFields(contract.Result{}, "ProcessedAt", "SourceMessageID")); diff != "" {
		t.Fatalf("first (-want +got):\n%s", diff)
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "101"); ok {
		t.Error("alice still in spaces/ENG")
	}
	// The same request again: the ledger's decision, published again with
	// no Chat call.
	publish(`{"requestId":"e2e-1","space":"spaces/ENG","member":"alice@example.com"}`)
	if r := next(); r.Outcome != contract.Removed || r.Role != "ROLE_MANAGER" {
		t.Fatalf("second: %+v", r)
	}
	publish(`{"requestId":"e2e-bad","space":"spaces/ENG","member":"x/../../spaces/HR/members/102"}`)
	if r := next(); r.Outcome != contract.Invalid || r.RequestID != "e2e-bad" {
		t.Fatalf("invalid: %+v", r)
	}
	if st := stack.Chat.Stats(); st.Calls["members.delete"] != 2 {
		// one faulted 503, one success; the second request makes none
		t.Errorf("members.delete calls = %d, want 2", st.Calls["members.delete"])
	}
	if !strings.Contains(logs.String(), `"severity":"INFO"`) {
		t.Errorf("no structured log line from the function:\n%s", logs)
	}
	// Every line the function wrote is JSON with severity and message.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && (m["severity"] == nil || m["message"] == nil) {
			t.Errorf("log line lacks severity/message: %s", sc.Text())
		}
	}
}

// TestCloudEventModesToServer posts a binary-mode and a structured-mode
// CloudEvent straight to cmd/function's server, and checks that a
// misconfigured function says so and keeps the event.
func TestCloudEventModesToServer(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx := context.Background()
	stack, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	project := pubsubtest.UniqueID("ce-project")
	ps := pubsubtest.NewClient(t, host, project)
	resTopic := pubsubtest.UniqueID("results")
	if err := pubsubtest.CreateTopic(ctx, ps, project, resTopic); err != nil {
		t.Fatal(err)
	}
	url, logs := startFunction(t, map[string]string{
		"GOOGLE_CLOUD_PROJECT": project, "TOKEN_SECRET": stack.SecretName, "RESULT_TOPIC": resTopic,
		"PUBSUB_EMULATOR_HOST": host, "CHAT_ENDPOINT": stack.Chat.URL(), "DIRECTORY_ENDPOINT": stack.Directory.URL(), "SECRET_MANAGER_ENDPOINT": stack.Secrets.Addr(),
	})
	body := `{"message":{"data":"eyJzcGFjZSI6InNwYWNlcy9FTkciLCJtZW1iZXIiOiJ1c2Vycy8xMDIifQ==","messageId":"ce-1","publishTime":"` +
		time.Now().UTC().Format(time.RFC3339) + `"},"subscription":"projects/ce-project/subscriptions/s"}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", contract.PublishedEventType)
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/ce-project/topics/requests")
	req.Header.Set("ce-id", "ce-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.StatusCode, logs)
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "102"); ok {
		t.Error("users/102 still in spaces/ENG")
	}

	// Structured mode: the whole CloudEvent as one JSON document.
	structured := `{"specversion":"1.0","type":"` + contract.PublishedEventType + `","source":"//pubsub.googleapis.com/projects/ce-project/topics/requests",` +
		`"id":"ce-s1","datacontenttype":"application/json","data":{"message":{"data":"eyJzcGFjZSI6InNwYWNlcy9FTkciLCJtZW1iZXIiOiJ1c2Vycy8xMDMifQ==",` +
		`"messageId":"ce-s1","publishTime":"` + time.Now().UTC().Format(time.RFC3339) + `"},"subscription":"projects/ce-project/subscriptions/s"}}`
	resp, err = http.Post(url, "application/cloudevents+json", strings.NewReader(structured))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("structured mode: status %d\n%s", resp.StatusCode, logs)
	}
	if _, ok := stack.Chat.IsMember("spaces/ENG", "103"); ok {
		t.Error("structured mode: users/103 still in spaces/ENG")
	}

	// Misconfiguration: one clear line naming the variable, an error status
	// (so Pub/Sub keeps the message), no panic.
	url2, logs2 := startFunction(t, map[string]string{"GOOGLE_CLOUD_PROJECT": project, "RESULT_TOPIC": resTopic})
	req, _ = http.NewRequest(http.MethodPost, url2, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-type", contract.PublishedEventType)
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/ce-project/topics/requests")
	req.Header.Set("ce-id", "ce-2")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Errorf("misconfigured function answered %d, want 5xx", resp.StatusCode)
	}
	// The process's output reaches the buffer through a pipe: wait for it.
	for end := time.Now().Add(10 * time.Second); !strings.Contains(logs2.String(), "TOKEN_SECRET") && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs2.String(), `"severity":"CRITICAL"`) || !strings.Contains(logs2.String(), "TOKEN_SECRET") || strings.Contains(logs2.String(), "panic") {
		t.Errorf("misconfiguration log:\n%s", logs2)
	}
}
