package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chat-offboard/chat-offboard/cmd/internal/topics"
	"github.com/chat-offboard/chat-offboard/contract"
)

// Exit codes.
const (
	exitOK      = 0 // every request ended in a success outcome
	exitFailed  = 1 // some request ended failed, invalid, refused, expired or via_group
	exitUsage   = 2 // usage, input or connection error, timeout, interrupt
	maxShownErr = 50
)

// moved are the subcommands publish had before they became cmd/offboard's.
var moved = map[string]bool{"report": true, "reconcile": true}

// config is the parsed command line.
type config struct {
	// One request from flags.
	membership, space, member, successor string
	spaces, members                      string
	allSpaces, addSuccessor              bool
	requestID                            string
	restoreFlags

	// Many requests from a file.
	from string

	// Applied to every request.
	dryRun, admin       bool
	reason, requestedBy string

	project, topic, resultTopic string
	wait, validateOnly          bool
	timeout                     time.Duration
	output                      string

	set map[string]bool // flags given on the command line
}

const usageHead = `Usage: publish [flags]

Publishes chat-offboard removal requests to Pub/Sub (REQUEST_TOPIC) and, with
--wait, follows their results (RESULT_TOPIC) until every request is complete.

One request from flags:
  publish --membership spaces/AAAA/members/123456
  publish --space spaces/AAAA --member alice@example.com [--successor bob@example.com]
  publish --spaces spaces/AAAA,spaces/BBBB --member alice@example.com
  publish --all-spaces --members alice@example.com,users/789 [--successor bob@example.com --add-successor]
  publish --restore hr-7 --wait     (undo what request hr-7 removed)

Many requests from a file (CSV with a header of request field names, lists
separated by ';'; or JSON lines, one request object per line; "-" is stdin):
  publish --from leavers.csv --wait
  publish --from requests.jsonl --dry-run --wait --output json

Exit codes: 0 all requests succeeded (removed, not_member, dry_run, restored,
already_member), 1 some ended failed/invalid/refused/expired,
2 usage, input or connection errors, or --timeout.

Flags:
`

func parseFlags(args []string, stderr io.Writer, env func(string) string) (*config, error) {
	c := &config{set: map[string]bool{}}
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.membership, "membership", "", "target: the membership `spaces/S/members/M`")
	fs.StringVar(&c.space, "space", "", "target: one space `spaces/S` (with --member)")
	fs.StringVar(&c.spaces, "spaces", "", "target: comma-separated `spaces/A,spaces/B` (bulk, with --member)")
	fs.BoolVar(&c.allSpaces, "all-spaces", false, "target: every space of the customer (sweep, with --member or --members; uses admin access)")
	fs.StringVar(&c.member, "member", "", "the person: `users/ID`, users/EMAIL, EMAIL, ID, or app")
	fs.StringVar(&c.members, "members", "", "comma-separated people for --all-spaces (up to 100)")
	fs.StringVar(&c.successor, "successor", "", "make this `person` an owner where the leaver is a space's only owner")
	fs.BoolVar(&c.addSuccessor, "add-successor", false, "add the successor to such a space first if needed")
	c.addRestoreFlags(fs)
	fs.StringVar(&c.requestID, "request-id", "", "request id (default: generated, pub-<time>-<random>-<n>)")
	fs.StringVar(&c.from, "from", "", "read many requests from `FILE` (CSV or JSON lines; - for stdin)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "ask for dry_run results only: nothing is removed (forces dryRun on every request)")
	fs.BoolVar(&c.admin, "admin", false, "use admin access (forces adminAccess on every request)")
	fs.StringVar(&c.reason, "reason", "", "reason recorded in the results (default for rows without one)")
	fs.StringVar(&c.requestedBy, "requested-by", "", "who asks, recorded in the results (default for rows without one)")
	fs.StringVar(&c.project, "project", env("GOOGLE_CLOUD_PROJECT"), "Google Cloud `project` of the topics and the temporary subscription")
	fs.StringVar(&c.topic, "topic", env("REQUEST_TOPIC"), "request `topic` id or projects/P/topics/T")
	fs.StringVar(&c.resultTopic, "result-topic", env("RESULT_TOPIC"), "result `topic` id or projects/P/topics/T (for --wait)")
	fs.BoolVar(&c.wait, "wait", false, "follow the results until every request is complete")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up (exit 2) after this long")
	fs.StringVar(&c.output, "output", "table", "`format` of standard output: table or json (JSON lines)")
	fs.BoolVar(&c.validateOnly, "validate-only", false, "validate the requests and exit without publishing")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	if fs.NArg() > 0 {
		if moved[fs.Arg(0)] {
			return nil, fmt.Errorf("%q is an operator's command now: go run ./cmd/offboard %s (see docs/operators.md)", fs.Arg(0), fs.Arg(0))
		}
		return nil, fmt.Errorf("unexpected argument %q (every input is a flag; see --help)", fs.Arg(0))
	}
	if c.output != "table" && c.output != "json" {
		return nil, fmt.Errorf("--output must be table or json, not %q", c.output)
	}
	if c.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	if c.from != "" {
		for _, f := range []string{"membership", "space", "spaces", "all-spaces", "member", "members", "request-id", "restore", "force"} {
			if c.set[f] {
				return nil, fmt.Errorf("--%s cannot be combined with --from: put it in a column of the file", f)
			}
		}
	} else if !c.set["membership"] && !c.set["space"] && !c.set["spaces"] && !c.set["all-spaces"] && !c.set["restore"] {
		return nil, errors.New("no target: give --membership, --space, --spaces, --all-spaces, --restore or --from (see --help)")
	}
	return c, nil
}

// run is the whole command: it returns the exit code. ctx cancels it (the
// signal handler in main), env replaces os.Getenv, and nothing else of the
// process is read, so tests drive it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c, err := parseFlags(args, stderr, env)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return exitUsage
	}
	batch := newBatch(time.Now())
	var items []*item
	if c.from != "" {
		items, err = readFile(c, stdin, batch)
	} else {
		items, err = fromFlags(c, batch)
	}
	if err != nil {
		reportInputError(stderr, err)
		return exitUsage
	}
	if len(items) == 0 {
		fmt.Fprintln(stderr, "publish: no requests in the input")
		return exitUsage
	}
	if c.validateOnly {
		fmt.Fprintf(stderr, "publish: %d requests are valid; nothing published (--validate-only)\n", len(items))
		return exitOK
	}
	dest, err := resolveDestinations(c)
	if err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	client, err := topics.NewClient(ctx, dest.project, env)
	if err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return exitUsage
	}
	defer client.Close()

	var f *follower
	if c.wait {
		f, err = startFollowing(ctx, client, dest, items, stdout, stderr, c.output == "json")
		if err != nil {
			fmt.Fprintf(stderr, "publish: %v\n", err)
			return exitUsage
		}
		defer f.cleanup(ctx)
	}
	if err := publishAll(ctx, client, dest.topic, items); err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		printPublished(stdout, items, c.output)
		return exitUsage
	}
	fmt.Fprintf(stderr, "publish: published %d request(s) to %s\n", len(items), dest.topic)
	if !c.wait {
		printPublished(stdout, items, c.output)
		return exitOK
	}
	return f.wait(ctx, c.timeout)
}

// reportInputError prints the line errors of the input, or err itself.
func reportInputError(w io.Writer, err error) {
	var le lineErrors
	if !errors.As(err, &le) {
		fmt.Fprintf(w, "publish: %v\n", err)
		return
	}
	fmt.Fprintf(w, "publish: %d invalid request(s); nothing was published:\n", len(le))
	for i, e := range le {
		if i == maxShownErr {
			fmt.Fprintf(w, "  … and %d more\n", len(le)-maxShownErr)
			break
		}
		fmt.Fprintf(w, "  %v\n", e)
	}
}

// printPublished lists the published requests and their message ids.
func printPublished(w io.Writer, items []*item, output string) {
	if output == "json" {
		enc := json.NewEncoder(w)
		for _, it := range items {
			if it.messageID != "" {
				_ = enc.Encode(map[string]string{"requestId": it.req.RequestID, "messageId": it.messageID})
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tTARGET\tMESSAGE ID")
	for _, it := range items {
		if it.messageID != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", it.req.RequestID, it.target, it.messageID)
		}
	}
	tw.Flush()
}

// destinations are the resolved Pub/Sub names.
type destinations struct {
	project     string // of the client and the temporary subscription
	topic       string // projects/P/topics/T
	resultTopic string // projects/P/topics/T, or "" without --wait
}

func resolveDestinations(c *config) (destinations, error) {
	n, err := topics.Resolve(c.project, c.topic, "--topic or REQUEST_TOPIC")
	if err != nil {
		return destinations{project: n.Project}, err
	}
	d := destinations{project: n.Project, topic: n.Topic}
	if c.wait {
		if strings.TrimSpace(c.resultTopic) == "" {
			return d, errors.New("--wait needs the result topic: set --result-topic or RESULT_TOPIC")
		}
		if d.resultTopic, err = contract.TopicName(c.resultTopic, d.project); err != nil {
			return d, fmt.Errorf("--result-topic: %w", err)
		}
	}
	return d, nil
}
