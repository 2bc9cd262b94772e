// Command publish publishes chat-offboard removal requests to Pub/Sub and,
// with --wait, follows their result events until every request is complete.
//
// Targets come from flags (one request) or from a file of many (--from: CSV
// with a header of request field names, or JSON lines; "-" reads standard
// input). Every request is validated first with the function's own validator
// (package request); if any is invalid nothing is published and each bad line
// is named. Messages go to REQUEST_TOPIC with Application Default Credentials,
// or to the emulator named by PUBSUB_EMULATOR_HOST.
//
// Exit codes: 0 every request ended in a success outcome (removed,
// not_member, dry_run, restored, already_member, or planned with all
// children so); 1 some ended failed, invalid, refused, expired or
// via_group; 2 usage, input, connection errors or a timeout.
//
// publish report REQUEST_ID prints the leaver report of a request from the
// function's ledger (report.go): per person, every space with its outcome,
// and whether the request is complete; --csv and --json for other programs.
// Its exit codes are its own (see publish report --help).
//
// Install it with
//
//	go install github.com/chat-offboard/chat-offboard/cmd/publish@latest
//
// (the binary is then called publish) or build it under a clearer name with
// go build -o bin/chat-offboard-publish ./cmd/publish. docs/integrators.md
// has examples.
//
// publish reconcile publishes the Workspace trigger's missed suspensions,
// archives and deletions from the Reports API (reconcile.go,
// docs/operators.md). Its exit codes are its own too.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is the signature of run and of each subcommand: it returns the
// exit code.
type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int

// subcommands are the commands besides publishing (publish NAME [flags]),
// by name; the file of each may register it in an init function.
var subcommands = map[string]command{
	"report": func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, env func(string) string) int {
		return runReport(ctx, args, stdout, stderr, env)
	},
}

// dispatch returns the command that args name and its arguments: a
// subcommand, or run.
func dispatch(args []string) (command, []string) {
	if len(args) > 0 {
		if sub, ok := subcommands[args[0]]; ok {
			return sub, args[1:]
		}
	}
	return run, args
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd, args := dispatch(os.Args[1:])
	code := cmd(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
