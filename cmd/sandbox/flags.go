package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

// Exit codes.
const (
	exitOK          = 0
	exitUnexpected  = 1 // a request did not end as its sample expects
	exitSetup       = 2 // usage, input or start-up error
	exitInterrupted = 130
)

// Defaults of the flags.
const (
	defaultProject     = "chat-offboard-sandbox"
	defaultTopic       = "offboard-requests"
	defaultResultTopic = "offboard-results"
	defaultTimeout     = 30 * time.Second
	// invocationTimeout bounds one invocation of the function
	// (CLOUD_RUN_TIMEOUT_SECONDS): shorter than production's so that a
	// request that keeps failing is soon handed back for redelivery.
	invocationTimeout = 20
)

// options are the parsed flags.
type options struct {
	workspace   string
	requests    string
	faults      bool
	serve       bool
	json        bool
	verbose     bool
	emulator    string
	project     string
	topic       string
	resultTopic string
	protected   string
	protectedOK bool // --protected was given
	port        int
	timeout     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./cmd/sandbox [flags]

Runs chat-offboard's whole pipeline on this machine: emulated Chat API,
Directory, Secret Manager and OAuth endpoint; Pub/Sub (the emulator named by
PUBSUB_EMULATOR_HOST, else in-process); the real function behind the
functions framework. Publishes sample requests that end in every outcome and
prints the results and the memberships before and after. Exit status: 0 every
request ended as expected, 1 one did not, 2 usage or start-up error.

flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nSee docs/sandbox.md.\n")
	}
	fs.StringVar(&o.workspace, "workspace", "", "seed the Chat workspace from this JSON `file` (default: the embedded one, see docs/sandbox.md)")
	fs.StringVar(&o.requests, "requests", "", "publish the requests of this JSON-lines `file` instead of the embedded samples")
	fs.BoolVar(&o.faults, "faults", true, "inject the Chat API faults (429, 503) that the samples ask for")
	fs.BoolVar(&o.serve, "serve", false, "keep running after the samples and print how to publish more requests")
	fs.BoolVar(&o.json, "json", false, "print the result events as JSON lines (structured CloudEvents) instead of the tables")
	fs.BoolVar(&o.verbose, "v", false, "print the function's log lines (JSON) on standard error")
	fs.StringVar(&o.emulator, "emulator", os.Getenv(pubsubtest.EnvEmulatorHost), "`host:port` of a Pub/Sub emulator; empty: in-process Pub/Sub (default $PUBSUB_EMULATOR_HOST)")
	fs.StringVar(&o.project, "project", defaultProject, "Google Cloud `project` of the topics")
	fs.StringVar(&o.topic, "topic", defaultTopic, "request topic `id`")
	fs.StringVar(&o.resultTopic, "result-topic", defaultResultTopic, "result topic `id`")
	fs.StringVar(&o.protected, "protected", "", "PROTECTED_MEMBERS `list` of the function (default: the workspace's first admin and app)")
	fs.IntVar(&o.port, "port", 0, "loopback `port` of the function (default: a free one)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "give up waiting for the samples' results after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitSetup, false
	}
	fs.Visit(func(f *flag.Flag) { o.protectedOK = o.protectedOK || f.Name == "protected" })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox: unexpected argument %q (see -h)\n", fs.Arg(0))
		return o, exitSetup, false
	}
	for _, t := range []struct{ flag, v string }{{"project", o.project}, {"topic", o.topic}, {"result-topic", o.resultTopic}} {
		if t.v == "" || strings.ContainsAny(t.v, "/ ") {
			fmt.Fprintf(stderr, "sandbox: --%s %q: give an id, without '/' or spaces\n", t.flag, t.v)
			return o, exitSetup, false
		}
	}
	if o.topic == o.resultTopic {
		fmt.Fprintln(stderr, "sandbox: --topic and --result-topic must differ")
		return o, exitSetup, false
	}
	if o.port < 0 || o.port > 65535 || o.timeout <= 0 {
		fmt.Fprintln(stderr, "sandbox: --port must be 0..65535 and --timeout positive")
		return o, exitSetup, false
	}
	return o, exitOK, true
}
