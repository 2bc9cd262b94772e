// Command publish is the integrators' tool: it publishes chat-offboard
// requests to Pub/Sub and, with --wait, follows their result events until
// every request is complete. It links the request validator and the wire
// contract, never the ledger (Firestore) nor Secret Manager; what operators
// do (the leaver report, reconciliation, status, dead letters) is
// cmd/offboard.
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
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
