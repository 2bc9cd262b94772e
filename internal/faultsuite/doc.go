// Package faultsuite is chat-offboard's fault-injection end-to-end suite
// (issue 8). It has no code of its own outside its test: TestFaults drives
// the real parts together and checks that nothing is lost and nothing is
// touched that was not asked for.
//
// The path of a request: the test publishes it with the real client to the
// real Pub/Sub emulator; two pushers (internal/pusher, push body and
// binary CloudEvent, real concurrency: the emulator's own push does only 2 at
// a time) pull it and POST it to the cmd/function binary, run as its own
// process; the function reads its credentials from the Secret Manager
// emulation, refreshes its access token at the OAuth emulation, removes the
// membership on the Chat emulation and publishes the result to the emulator
// through a TCP proxy; the test reads the results back with a pull
// subscription.
//
// Faults, all at once or in phases: Chat answers 10% 5xx, 5% 429 with
// Retry-After, drops 2% of connections and delays 20% of calls, and enforces
// a per-second write quota; the function process is killed with SIGKILL and
// restarted twice; Secret Manager is down while a fresh process needs the
// secret; the token endpoint is down while every access token has been
// revoked; the proxy to Pub/Sub is cut for longer than an invocation may run,
// so result publishes fail.
//
// Size: FAULTSUITE_N requests (default 300, about a minute); the outages
// scale with N up to 20 s at 5,000 (FAULTSUITE_OUTAGE overrides). Full size:
//
//	FAULTSUITE_N=5000 go test -count=1 -timeout 60m -v -run TestFaults ./internal/faultsuite/
//
// (with PUBSUB_EMULATOR_HOST set, or the emulator installed). The test logs
// its figures: requests, faults injected, results, duplicates, time.
package faultsuite
