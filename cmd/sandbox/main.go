// Command sandbox runs chat-offboard's whole pipeline on one machine, with no
// Google account and no configuration:
//
//	go run ./cmd/sandbox
//
// It starts the emulated Chat API, Directory, Secret Manager and OAuth token
// endpoint of internal/emulator (seeded with emulator.Default, or
// --workspace FILE), a Pub/Sub (the real emulator when PUBSUB_EMULATOR_HOST
// is set, with a push subscription to the function as in production;
// otherwise the in-process pstest and a pusher that delivers each message as
// the binary-mode CloudEvent that Eventarc sends), and the real function
// behind the functions framework on a loopback port. It then publishes sample
// requests that end in every outcome (--requests FILE for others), prints the
// results and the memberships before and after, and exits 0 when every
// request ended as its sample expects, 1 when one did not, 2 on a usage or
// start-up error.
//
// --serve keeps everything running afterwards and prints the commands that
// publish more requests; --json prints the result events as JSON lines. See
// docs/sandbox.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
