// Package faultsuite is chat-offboard's fault-injection end-to-end suite
// (issues 8 and 13). It has no code of its own outside its test: TestFaults
// drives the real parts together and checks that nothing is lost, nothing
// is decided or written twice, and nothing is touched that was not asked
// for.
//
// The path of a request: the test publishes it with the real client to the
// real Pub/Sub emulator; three pushers (internal/pusher, real concurrency:
// the emulator's own push does only 2 at a time) pull it from two
// subscriptions of the requests topic, so that every message is delivered
// at least twice, and POST it (push body or binary CloudEvent) to the
// cmd/function binary, run as its own process; the function reads its
// credentials from the Secret Manager emulation, refreshes its access token
// at the OAuth emulation, records its ledger in the Firestore emulator
// through a TCP proxy, removes memberships on the Chat emulation through a
// reverse proxy (the Chat front) and publishes results, and the children of
// bulk requests, to the emulator through another TCP proxy; the test reads
// the results back with a pull subscription.
//
// The load: single removals in four target forms, dry runs, protected
// members, people not in the space, hostile names, space + members requests
// and bulk requests; a share of them published two or three times.
//
// Faults, all at once or in phases: Chat makes 6% of its writes (deletes,
// creates, patches) and then loses the answer (2% each dropped, 500, 503:
// emulator.Fault AfterApply), answers 10% 5xx, 5% 429 with Retry-After,
// drops 2% of connections and delays 20% of calls, and enforces a
// per-second write quota; the function process is killed with SIGKILL and
// restarted four times (at random, and armed by the Chat front between an
// intent and its delete and between a delete and its decision); Secret
// Manager is down while a fresh process needs the secret; the token endpoint
// is down while every access token has been revoked; the proxy to Firestore
// is cut under load; the proxy to Pub/Sub is cut for longer than an
// invocation may run, so result publishes fail.
//
// Size: FAULTSUITE_N requests (default 300, about two minutes); the outages
// scale with N up to 20 s at 5,000 (FAULTSUITE_OUTAGE and
// FAULTSUITE_FIRESTORE_OUTAGE override). Full size:
//
//	FAULTSUITE_N=5000 go test -count=1 -timeout 60m -v -run TestFaults ./internal/faultsuite/
//
// (with PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST set, or the
// emulators installed). The test logs its figures: requests, copies, faults
// injected, writes whose answer was lost, results, lost, duplicated
// decisions, repeated writes, roleLost, time. docs/guarantees.md lists them.
package faultsuite
