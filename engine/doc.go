// Package engine is chat-offboard's removal engine: it turns one Pub/Sub
// message (a messagePublished CloudEvent) into membership decisions on the
// Google Chat API and publishes one result event per decision.
//
// An event travels down, never back up:
//
//	serve.go    EventHandler: HTTP (CloudEvent or raw push body) -> Handle
//	handle.go   Handle: decode, validate, MAX_EVENT_AGE, dispatch, publish
//	            the decisions a flow returns (publish.go)
//	single.go   flow: one membership (space+member, membership)
//	bulk.go     flow: one child request per space (spaces+member)
//	sweep.go    flows: a page of spaces.search, and one space for several
//	            people (space+members)
//	trigger.go  flow: an Admin audit LogEntry (a person suspended, archived
//	            or deleted) read from the Directory, then swept
//	groups.go   access through Google Groups: a sweep's Directory
//	            groups.list per person, via_group decisions
//	restore.go  flows: a page of a restore (what a request removed, from
//	            the ledger), and one space's memberships put back
//	members.go  membership operations: read, list, delete, add, hand-off,
//	            Directory look-ups
//	protect.go  PROTECTED_MEMBERS resolved to user ids
//	retry.go    every API call: budget, 401 refresh, backoff, MAX_EVENT_AGE
//	budget.go   the instance's client-side rate limits
//
// A job (job.go) carries what every step of one event needs besides its
// context: the logger, the message, the request, the deadline and expiry,
// and the count of API attempts. Flows return their decisions; only Handle
// publishes them.
//
// docs/design.md holds the contract: configuration, request and result
// schemas, and the outcome table that Handle applies.
package engine
