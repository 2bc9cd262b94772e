package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/cmd/internal/topics"
	"github.com/chat-offboard/chat-offboard/request"
)

func init() {
	register(command{name: "approve", summary: "release a held request (or every one: held), by publishing to APPROVAL_TOPIC", run: operatorCommand("approve")})
	register(command{name: "reject", summary: "refuse a held request (or every one: held), by publishing to APPROVAL_TOPIC", run: operatorCommand("reject")})
	register(command{name: "cancel", summary: "stop a held or running sweep, bulk request or restore, by publishing to APPROVAL_TOPIC", run: operatorCommand("cancel")})
}

const operatorUsage = `Usage: offboard %[1]s [--by WHO] [--reason TEXT] REQUEST_ID%[2]s

Publishes {"requestId": ID, "%[1]s": REQUEST_ID, "requestedBy": WHO} to
APPROVAL_TOPIC, the topic only approvers may publish to (deploy.sh
--approvers; docs/operators.md, "Grace period, brake and approvals"). The
function acts on it only from that topic: %[3]s. Its answer is a result on the
results topic with the printed request id: planned (children: how many
requests it acted on), or refused (why, in error.message).

Exit codes: 0 published; 2 usage or Pub/Sub errors.

Flags:
`

// operatorCommand is offboard approve, reject or cancel.
func operatorCommand(verb string) runFunc {
	return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, env func(string) string) int {
		fs := flag.NewFlagSet("offboard "+verb, flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() {
			fmt.Fprintf(stderr, operatorUsage, verb, heldArg(verb), operatorEffect(verb))
			fs.PrintDefaults()
		}
		by := fs.String("by", env("USER"), "who approves (requestedBy, named in the results); default $USER")
		reason := fs.String("reason", "", "why (reason, copied into the results)")
		topic := fs.String("topic", env("APPROVAL_TOPIC"), "APPROVAL_TOPIC: topic id or `projects/P/topics/T`")
		project := fs.String("project", env("GOOGLE_CLOUD_PROJECT"), "Google Cloud `project` of the topic")
		timeout := fs.Duration("timeout", time.Minute, "give up (exit 2) after this long")
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		data, id, err := operatorRequest(verb, fs.Args(), *by, *reason)
		if err != nil {
			fmt.Fprintf(stderr, "offboard %s: %v\n", verb, err)
			return exitUsage
		}
		names, err := topics.Resolve(*project, *topic, "--topic or APPROVAL_TOPIC")
		if err != nil {
			fmt.Fprintf(stderr, "offboard %s: %v\n", verb, err)
			return exitUsage
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		c, err := topics.NewClient(ctx, names.Project, env)
		if err != nil {
			fmt.Fprintf(stderr, "offboard %s: %v\n", verb, err)
			return exitUsage
		}
		defer c.Close()
		msg := &topics.Message{RequestID: id, Data: data}
		if err := topics.PublishAll(ctx, c, names.Topic, []*topics.Message{msg}); err != nil {
			fmt.Fprintf(stderr, "offboard %s: %v\n", verb, err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "published %s of %s as request %s (message %s) to %s\n", verb, fs.Arg(0), id, msg.ID, names.Topic)
		return exitOK
	}
}

// operatorRequest is the request an operator command publishes, checked
// by the function's own validator, and its request id.
func operatorRequest(verb string, args []string, by, reason string) ([]byte, string, error) {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return nil, "", fmt.Errorf("give one REQUEST_ID%s (see --help)", heldArg(verb))
	}
	if strings.TrimSpace(by) == "" {
		return nil, "", errors.New("say who you are: --by (requestedBy, named in the results)")
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	r := request.Request{RequestID: fmt.Sprintf("%s-%s-%s", verb, time.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(b[:])),
		RequestedBy: by, Reason: reason}
	switch verb {
	case "approve":
		r.Approve = args[0]
	case "reject":
		r.Reject = args[0]
	default:
		r.Cancel = args[0]
	}
	if _, err := request.Validate(r); err != nil {
		return nil, "", err
	}
	data, err := json.Marshal(r)
	return data, r.RequestID, err
}

// heldArg names the "held" argument of the commands that take it.
func heldArg(verb string) string {
	if verb == "cancel" {
		return ""
	}
	return " | held"
}

// operatorEffect says what the function does with the request.
func operatorEffect(verb string) string {
	switch verb {
	case "approve":
		return "a held request runs as it would have; held releases every request held at that moment, as one release"
	case "reject":
		return "a held request is answered refused, naming WHO as who rejected it"
	}
	return "held, the request is answered refused; running, its memberships not yet decided are answered refused (cancelled) and no further write is made"
}
