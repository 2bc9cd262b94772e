package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
)

// logRing keeps the last max lines written to it (the function's logs), to
// show them when a request did not end as expected. Safe for concurrent use.
type logRing struct {
	mu    sync.Mutex
	max   int
	lines [][]byte
	part  []byte
}

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.part = append(r.part, p...)
	for {
		i := bytes.IndexByte(r.part, '\n')
		if i < 0 {
			break
		}
		r.lines = append(r.lines, append([]byte(nil), r.part[:i+1]...))
		r.part = r.part[i+1:]
		if len(r.lines) > r.max {
			r.lines = r.lines[len(r.lines)-r.max:]
		}
	}
	return len(p), nil
}

// dump writes the last n lines to w.
func (r *logRing) dump(w io.Writer, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) == 0 {
		return
	}
	lines := r.lines[max(0, len(r.lines)-n):]
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nThe function's last %d log lines:\n", len(lines))
	for _, l := range lines {
		b.Write(l)
	}
	_, _ = w.Write(b.Bytes())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// note is a short explanation of a result for the table.
func note(r *contract.Result) string {
	var parts []string
	if r.WouldRemove != nil {
		parts = append(parts, fmt.Sprintf("wouldRemove=%t", *r.WouldRemove))
	}
	switch {
	case r.Outcome == contract.Invalid && r.Error != nil:
		parts = append(parts, strings.TrimPrefix(r.Error.Message, "invalid request: "))
	case r.Error != nil:
		parts = append(parts, fmt.Sprintf("%d %s", r.Error.Code, r.Error.Status))
	case r.Outcome == contract.Refused && r.Detail != "":
		parts = append(parts, r.Detail)
	case r.Outcome == contract.Removed && r.Role != "":
		parts = append(parts, "was "+r.Role)
	case r.Outcome == contract.Planned && r.Children != nil && r.ExpectedResults != nil:
		kind := "sweep"
		if strings.HasPrefix(r.Detail, "restore of ") {
			kind = "restore"
		}
		parts = append(parts, fmt.Sprintf("%s: %d spaces, %d results", kind, *r.Children, *r.ExpectedResults))
	}
	return clip(strings.Join(parts, "; "), 44)
}

// report prints the results (a table, or nothing more with --json: the
// events went out as they arrived), the memberships before and after and a
// summary. It reports whether every request ended as expected.
func (s *sandbox) report(all []*entry, elapsed time.Duration) bool {
	w := s.out
	if s.o.json {
		w = s.errw
	}
	var b bytes.Buffer
	good, checked, failures := 0, 0, []string{}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tMEMBERSHIP\tOUTCOME\tATTEMPTS\tDELIVERIES\tTIME\tCHECK\tNOTE")
	s.mu.Lock()
	for i := range s.samples {
		smp := &s.samples[i]
		var e *entry
		for _, x := range all {
			if x.sample == smp {
				e = x
				break
			}
		}
		var r *contract.Result
		if e != nil {
			r = e.result
		}
		verdict, ok := smp.meta.verdict(r)
		if smp.meta.Expect != "" {
			checked++
		}
		if ok && smp.meta.Expect != "" {
			good++
		}
		if !ok {
			failures = append(failures, fmt.Sprintf("line %d: %s", smp.line, verdict))
		}
		if r == nil {
			fmt.Fprintf(tw, "(line %d)\t-\t-\t-\t-\t-\t%s\t%s\n", smp.line, verdict, clip(string(smp.data), 60))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", clip(r.RequestID, 32), dash(r.Membership), r.Outcome,
			r.Attempts, s.deliveries[e.id], e.at.Sub(e.sent).Round(time.Millisecond), verdict, note(r))
	}
	s.mu.Unlock()
	_ = tw.Flush()
	if !s.o.json {
		w.Printf("Results (ATTEMPTS: Chat API calls within the invocation; DELIVERIES: Pub/Sub deliveries to the function):\n%s\n", b.String())
	}
	s.printTrees(w)
	w.Printf("Memberships (* = owner):\n")
	s.printMemberships(w, s.before, s.stack.Chat.Snapshot())
	mode := "in-process Pub/Sub (pstest) + pusher, binary CloudEvents"
	if s.pst == nil {
		mode = "Pub/Sub emulator " + s.psHost + ", push subscription"
	}
	st := s.stack.Chat.Stats()
	var calls int64
	for _, n := range st.Calls {
		calls += n
	}
	w.Printf("\n%d requests, %d results, %d of %d expectations met in %s.\n", len(s.samples), s.received.Load(), good, checked, elapsed.Round(10*time.Millisecond))
	w.Printf("Chat API: %d calls, %d faults injected, %d retried within the invocation; %d redeliveries; %s.\n",
		calls, st.Faulted, s.fn.Retries(), s.redelivered.Load(), mode)
	for _, f := range failures {
		w.Printf("NOT AS EXPECTED: %s\n", f)
	}
	if len(failures) > 0 && s.o.workspace != "" && s.o.requests == "" {
		w.Printf("(the embedded samples are written for the default workspace: with --workspace, give --requests too)\n")
	}
	s.leaverReport(w, all)
	return len(failures) == 0
}

// printMemberships prints one line per space: its members before and after,
// and who left or joined.
func (s *sandbox) printMemberships(w io.Writer, before, after emulator.Workspace) {
	names := map[string]string{emulator.AppUser: "app"}
	for _, u := range s.ws.Users {
		local, _, _ := strings.Cut(u.Email, "@")
		names["users/"+u.ID] = local
	}
	name := func(m emulator.Member) string {
		n := names[m.User]
		if n == "" {
			n = strings.TrimPrefix(m.User, "users/")
		}
		if m.Role == emulator.RoleManager {
			n += "*"
		}
		return n
	}
	list := func(sp *emulator.Space) (string, map[string]emulator.Member) {
		if sp == nil {
			return "(none)", nil
		}
		set := map[string]emulator.Member{}
		var ns []string
		for _, m := range sp.Members {
			ns = append(ns, name(m))
			set[m.User] = m
		}
		if len(ns) == 0 {
			return "(empty)", set
		}
		return strings.Join(ns, " "), set
	}
	afterBy := map[string]*emulator.Space{}
	for i := range after.Spaces {
		afterBy[after.Spaces[i].Name] = &after.Spaces[i]
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPACE\tNAME\tBEFORE\tAFTER\tCHANGE")
	for i := range before.Spaces {
		sb := &before.Spaces[i]
		sa := afterBy[sb.Name]
		lb, setB := list(sb)
		la, setA := list(sa)
		var change []string
		for _, m := range sb.Members {
			if _, ok := setA[m.User]; !ok {
				change = append(change, "-"+strings.TrimSuffix(name(m), "*"))
			}
		}
		if sa != nil {
			for _, m := range sa.Members {
				if _, ok := setB[m.User]; !ok {
					change = append(change, "+"+strings.TrimSuffix(name(m), "*"))
				} else if setB[m.User].Role != m.Role {
					change = append(change, "~"+name(m))
				}
			}
		}
		disp := sb.DisplayName
		if disp == "" {
			disp = strings.ToLower(strings.ReplaceAll(sb.SpaceType, "_", " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sb.Name, disp, lb, la, dash(strings.Join(change, " ")))
	}
	_ = tw.Flush()
	_, _ = w.Write(b.Bytes())
}

// structuredEvent is a result event in the CloudEvents JSON format.
type structuredEvent struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Time            string          `json:"time,omitempty"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// printEvent prints a result event (Pub/Sub binding, binary mode) as one
// line of structured-mode CloudEvent JSON.
func (s *sandbox) printEvent(m *pubsub.Message) {
	a := m.Attributes
	b, err := json.Marshal(structuredEvent{
		SpecVersion: a["ce-specversion"], Type: a["ce-type"], Source: a["ce-source"], ID: a["ce-id"],
		Time: a["ce-time"], Subject: a["ce-subject"], DataContentType: a["content-type"], Data: m.Data,
	})
	if err != nil {
		return
	}
	s.out.Printf("%s\n", b)
}

// example returns a request for the instructions: a plain member of a
// space, as the workspace is now (the first that is neither protected nor a
// manager), or bob in spaces/ENG.
func (s *sandbox) example() (space, member string) {
	protected := map[string]bool{}
	for _, p := range strings.Split(s.getenv("PROTECTED_MEMBERS"), ",") {
		protected[strings.TrimSpace(p)] = true
	}
	email := map[string]string{}
	for _, u := range s.ws.Users {
		email["users/"+u.ID] = u.Email
	}
	for _, sp := range s.stack.Chat.Snapshot().Spaces {
		if sp.SpaceType != "" && sp.SpaceType != emulator.SpaceTypeSpace {
			continue
		}
		for _, m := range sp.Members {
			if m.Role == emulator.RoleManager || m.Type == emulator.MemberTypeBot || protected[m.User] || email[m.User] == "" {
				continue
			}
			return sp.Name, email[m.User]
		}
	}
	return "spaces/ENG", "bob@example.com"
}

// instructions are what --serve prints: how to publish more requests, and
// the environment for running one's own copy of the function.
func (s *sandbox) instructions() string {
	space, member := s.example()
	req := fmt.Sprintf(`{"requestId":"manual-1","space":%q,"member":%q}`, space, member)
	data := base64.StdEncoding.EncodeToString([]byte(req))
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\nServing: the function at %s, Pub/Sub at %s (%s). Ctrl-C stops.\n", s.fnURL, s.psHost, map[bool]string{true: "in-process pstest", false: "emulator"}[s.pst != nil])
	p("Publish more requests with any of these; their results are printed below as they arrive.\n\n")
	p("# the project's publisher (validates, publishes, waits for the results):\n")
	p("PUBSUB_EMULATOR_HOST=%s go run ./cmd/publish --project %s --topic %s --result-topic %s \\\n    --space %s --member %s --wait\n\n",
		s.psHost, s.o.project, s.o.topic, s.o.resultTopic, space, member)
	if s.pst == nil {
		p("# gcloud, against the emulator:\n")
		p("CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=http://%s/ CLOUDSDK_AUTH_ACCESS_TOKEN=emulator \\\n  gcloud pubsub topics publish %s --project=%s --message='%s'\n\n",
			s.psHost, s.o.topic, s.o.project, req)
		p("# the emulator's REST API (data is the request, base64):\n")
		p("curl -sS -X POST http://%s/v1/projects/%s/topics/%s:publish -H 'Content-Type: application/json' \\\n    -d '{\"messages\":[{\"data\":\"%s\"}]}'\n\n",
			s.psHost, s.o.project, s.o.topic, data)
	} else {
		p("# gcloud and curl cannot reach the in-process Pub/Sub (pstest speaks gRPC only; Go clients such as\n")
		p("# cmd/publish can). For them, start the Pub/Sub emulator and run the sandbox with PUBSUB_EMULATOR_HOST\n")
		p("# set; meanwhile post the CloudEvent below straight to the function.\n\n")
	}
	p("# curl, a binary-mode CloudEvent straight to the function, as Eventarc sends it\n")
	p("# (data is the request, base64: printf '%%s' '%s' | base64):\n", req)
	p("curl -sS -X POST %s/ -H 'Content-Type: application/json' \\\n", s.fnURL)
	p("    -H 'ce-specversion: 1.0' -H 'ce-type: %s' \\\n", pusher.CloudEventType)
	p("    -H 'ce-source: //pubsub.googleapis.com/%s' -H 'ce-id: manual-1' \\\n", s.reqTopic)
	p("    -d '{\"message\":{\"messageId\":\"manual-1\",\"data\":\"%s\"},\"subscription\":\"projects/%s/subscriptions/manual\"}'\n\n",
		data, s.o.project)
	if s.ledgerProject != "" {
		p("# the operators' tool, on this run's ledger (the Firestore emulator): the leaver report, what is in flight\n")
		p("FIRESTORE_EMULATOR_HOST=%s GOOGLE_CLOUD_PROJECT=%s go run ./cmd/offboard report manual-1\n\n",
			os.Getenv("FIRESTORE_EMULATOR_HOST"), s.ledgerProject)
	} else {
		p("# the operators' tool (go run ./cmd/offboard report ID) reads a Firestore ledger: run the sandbox with\n")
		p("# FIRESTORE_EMULATOR_HOST set to use it; this run's ledger is in-process (its leaver report ends the run).\n\n")
	}
	p("# your own copy of the function on port 8080, against the same emulations:\n")
	p("PORT=8080 LOCAL_ONLY=true \\\n")
	for _, e := range s.env {
		p("%s=%s \\\n", e.k, shellQuote(e.v))
	}
	p("  go run ./cmd/function\n\n")
	p("Results as they arrive (time, request, membership, outcome, note):\n")
	return b.String()
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,@") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
