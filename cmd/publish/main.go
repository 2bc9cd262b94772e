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
// not_member, dry_run, or planned with all children so); 1 some
// ended failed, invalid, refused, expired or via_group; 2 usage, input,
// connection errors or a timeout.
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
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if len(os.Args) > 1 && os.Args[1] == "report" {
		code = runReport(ctx, os.Args[2:], os.Stdout, os.Stderr, os.Getenv)
	} else {
		code = run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	}
	stop()
	os.Exit(code)
}
