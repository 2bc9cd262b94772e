// Package ledger is chat-offboard's durable ledger of decisions: what each
// request asked, which membership writes were intended before they were made,
// what was decided for each membership, and which sweep pages already fanned
// out. It lets a function that keeps no state between Pub/Sub deliveries
// make each Chat write and each decision at most once under at-least-once
// delivery (issue 13).
//
// # Store
//
// [Store] is the interface the engine uses; every method is one Firestore
// operation: a create-if-absent (followed by one read only when the record
// already exists), a merge, an update, a get, or a query per 500 records.
// Two implementations have the same semantics, checked by one conformance
// suite:
//
//   - [Firestore], the production store on Cloud Firestore (native mode)
//     through cloud.google.com/go/firestore ([NewFirestore]); it honours
//     FIRESTORE_EMULATOR_HOST as the client library does;
//   - [Memory], an in-process store for the sandbox's embedded default, which
//     must run without Java ([NewMemory]).
//
// # What is recorded
//
// Four collections in the database FIRESTORE_DATABASE (default "(default)")
// of the project GOOGLE_CLOUD_PROJECT:
//
//   - requests: one document per request and per child request: id, parentId,
//     root, kind, target (a human summary of what is removed from where),
//     reason, requestedBy, dryRun, fingerprint (what the request asks
//     for, compared when its id comes again), state ("open", then e.g. "planned" and
//     "done"), expected (the number of results the request will have, once
//     known), createdAt, updatedAt, expireAt. Created by
//     [Store.CreateRequest] only if absent; state changed by
//     [Store.SetRequestState].
//   - memberships: one document per (request id, membership name): requestId,
//     root, membership, member, role (as read before the write, or as
//     reported), action ("delete", "create" or "patch"), intendedAt, outcome,
//     result (the result event's JSON, to publish again with the same ce-id),
//     decidedAt, expireAt. [Store.Intend] creates it, only if absent, before
//     a Chat write; [Store.Decide] records the outcome after it (and creates
//     the document for decisions that need no write: not_member, refused…).
//   - pages: one document per (sweep id, page key): sweepId, pageKey,
//     children, expectedResults, result (the page's result JSON), claimedAt,
//     expireAt. [Store.ClaimPage] creates it, only if absent, before the page
//     publishes its children and continuation; [Store.Pages] lists the
//     claims of one sweep (one equality query on sweepId).
//   - holds: one document per held or cancelled request, and the brake's
//     record ([Holds], holds.go).
//
// Request ids and membership names contain '/', which Firestore document ids
// may not; so a document's id is a stable hash of its key (the first 32 hex
// digits of the SHA-256 of the key's parts joined by NUL: the request id; the
// request id and the membership name; the sweep id and the page key), and the
// readable key is stored in the document's fields. [Membership.Key] gives a
// membership record's document id.
//
// Every request and membership record carries root, the id of the root
// request (the request itself for a top-level request, its parent for a child:
// children are one level deep), so that [Store.Memberships] lists every
// membership record of a request and of its children with one equality query
// on root, in document id order, without a composite index.
//
// # Retention and secrets
//
// Every write sets expireAt to now + [Config.Retention] (default
// [DefaultRetention], 400 days); a Firestore TTL policy on the field expireAt
// of the collections deletes expired records. The records hold only
// ids, names, roles, outcomes and result events: the types have no place for
// a token or a secret, and none is ever stored.
//
// # Errors
//
// [ErrNotFound]: the record does not exist. [ErrInvalid]: the caller passed an
// empty key or outcome (a bug: retrying does not help). Any other error
// from a Store, including Firestore's Unavailable, DeadlineExceeded,
// PermissionDenied or a missing database, wraps [ErrUnavailable] (and the
// cause): the ledger cannot be trusted right now, so the engine must treat it
// as transient and let the message be redelivered, and must never make a
// Chat write without its intent record (fail closed). One exception:
// Firestore's Update answers NotFound both for a missing document and for a
// missing database, so SetRequestState reports either as ErrNotFound; call it
// only for a request that CreateRequest recorded.
//
// # Concurrency
//
// Every Store method is safe for concurrent use by any number of goroutines
// and (for Firestore) processes; the create-if-absent methods make exactly one
// caller the creator of a key, and the others get the created record back.
// The value types are plain values.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"iter"
	"strings"
	"time"
)

// Errors. Inspect them with errors.Is.
var (
	// ErrNotFound says the record asked for does not exist.
	ErrNotFound = errors.New("ledger: not found")
	// ErrInvalid says a required argument (a key, an outcome) was empty: a
	// bug of the caller, not worth a retry.
	ErrInvalid = errors.New("ledger: invalid argument")
	// ErrUnavailable is wrapped by every other error of a Store: the ledger
	// could not be read or written (Firestore down, timed out, denied, the
	// context done...). Treat it as transient: retry later, write nothing.
	ErrUnavailable = errors.New("ledger: unavailable")
)

// Request states. A request is created "open"; the engine moves it on with
// [Store.SetRequestState] (any non-empty string is accepted).
const (
	StateOpen    = "open"
	StatePlanned = "planned"
	StateDone    = "done"
	// StateReleased is a request whose delivery stopped at a transient
	// failure: the next delivery may take it over at once.
	StateReleased = "released"
	// StateWaiting is a request whose delivery found that it must wait
	// for another request to finish (a restore, for the removal it
	// undoes): the next delivery may take it over at once, as a released
	// one.
	StateWaiting = "waiting"
)

// Actions of an [Intent]: the Chat write about to be made.
const (
	ActionDelete = "delete"
	ActionCreate = "create"
	ActionPatch  = "patch"
	// ActionHandOff is the intent of a hand-off: adding the successor
	// and/or making them an owner, recorded on the successor's membership.
	ActionHandOff = "handoff"
)

// Collection names, in the configured database.
const (
	RequestsCollection    = "requests"
	MembershipsCollection = "memberships"
	PagesCollection       = "pages"
)

// Configuration.
const (
	// DefaultRetention is how long records are kept when Config.Retention is 0.
	DefaultRetention = 400 * 24 * time.Hour
	// DefaultDatabase is the Firestore database used when none is named.
	DefaultDatabase = "(default)"
	// EnvDatabase names the Firestore database; EnvProject its project.
	EnvDatabase = "FIRESTORE_DATABASE"
	EnvProject  = "GOOGLE_CLOUD_PROJECT"
	// TTLField is the field a Firestore TTL policy should expire records on.
	TTLField = "expireAt"
)

// Config adjusts a store. The zero value is the production default.
type Config struct {
	// Retention is how long a record is kept after its last write (its
	// expireAt is the time of that write plus Retention); 0 means
	// DefaultRetention.
	Retention time.Duration
	// Now is the clock (default time.Now); tests set it. It must be safe for
	// concurrent use.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// now returns the clock's time as stored: UTC, to the microsecond (the
// precision of a Firestore timestamp).
func (c Config) now() time.Time { return stamp(c.Now()) }

func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Store is the ledger. Every method is one Firestore operation (the
// create-if-absent ones read the record when it already exists; Memberships
// and Pages query once per 500 records) and is safe for concurrent use. Any error other than one wrapping ErrNotFound or
// ErrInvalid wraps ErrUnavailable and means "the ledger is unavailable: retry
// later, and make no Chat write meanwhile".
type Store interface {
	// Holds: held, released and cancelled requests, and the brake
	// (holds.go).
	Holds

	// CreateRequest records r only if no request with r.ID exists. The
	// store sets State to StateOpen when empty, Root by RootOf when empty,
	// and CreatedAt, UpdatedAt and ExpireAt. It returns the stored request
	// (the existing one when there was one) and whether this call created it.
	CreateRequest(ctx context.Context, r Request) (Request, bool, error)

	// Request returns the request with id, or ErrNotFound.
	Request(ctx context.Context, id string) (Request, error)

	// SetRequestState sets the state of the request id and, when expected
	// is not nil, the number of results it is expected to have. It returns
	// ErrNotFound if the request was never created.
	SetRequestState(ctx context.Context, requestID, state string, expected *int) error

	// TakeOver makes the caller the owner of the request seen (a request
	// released by a delivery that stopped, or left open by one that is
	// gone): it sets its state to StateOpen only if its state and
	// UpdatedAt are still those of seen, a compare-and-set, so that of
	// several deliveries taking it over at once exactly one wins. It
	// reports whether this call won.
	TakeOver(ctx context.Context, seen Request) (bool, error)

	// Intend creates, only if absent, the record of the membership
	// in.Membership of request in.RequestID, before a Chat write: member,
	// role as read, action, intendedAt. It returns the stored record and
	// true if this call created it, or the existing record (which may
	// already hold an outcome, or be an intent left without one by a
	// process that died) and false.
	Intend(ctx context.Context, in Intent) (Membership, bool, error)

	// Decide records the outcome of the membership record (requestID,
	// membership): outcome, role (kept as it is when d.Role is empty),
	// result event JSON, decidedAt. It creates the record if absent, for
	// decisions that need no write. A later Decide overwrites an earlier
	// one: check Intend's or Membership's record for an outcome first.
	Decide(ctx context.Context, requestID, membership string, d Decision) error

	// Membership returns the record (requestID, membership), or
	// ErrNotFound.
	Membership(ctx context.Context, requestID, membership string) (Membership, error)

	// ClaimPage creates, only if absent, the claim of page pageKey of sweep
	// sweepID, before the page fans out. It returns the stored claim and
	// true if this call created it, or the existing claim and false: then
	// the page has been handled, and its recorded result should be
	// published again instead.
	ClaimPage(ctx context.Context, sweepID, pageKey string, c PageClaim) (PageClaim, bool, error)

	// Page returns the claim of page pageKey of sweep sweepID, or
	// ErrNotFound: a delivery that finds it makes no Chat call.
	Page(ctx context.Context, sweepID, pageKey string) (PageClaim, error)

	// Memberships yields every membership record whose root is rootID: the
	// records of that request and of all its children, in Key order, read
	// in pages. Records written while it runs may or may not be yielded.
	// On an error it yields (Membership{}, err) once and stops. Stop early
	// by breaking out of the loop.
	Memberships(ctx context.Context, rootID string) iter.Seq2[Membership, error]

	// InSpace yields every membership record of the space spaceName
	// ("spaces/S"), of any request: those whose membership name is
	// spaces/S/members/..., in no set order, read in pages, as
	// Memberships does. A restore reads it to find later removals of the
	// people it would add back.
	InSpace(ctx context.Context, spaceName string) iter.Seq2[Membership, error]

	// Pages yields every page claim of sweepID (the claims of a sweep's
	// pages, or a bulk request's fan-out claim), in document id order,
	// read in pages, as Memberships does. The leaver report reads them to
	// count the results a request expects.
	Pages(ctx context.Context, sweepID string) iter.Seq2[PageClaim, error]

	// Close releases the store's resources. The store must not be used
	// after Close.
	Close() error
}

// Request is the record of one request or child request.
type Request struct {
	ID       string // the request id; required
	ParentID string // the parent's id; empty for a top-level request
	// Root is the id of the top-level request: ID for a top-level request,
	// ParentID for a child. Empty means RootOf(ID, ParentID).
	Root        string
	Kind        string // what kind of request: "remove", "sweep", "child"...
	Target      string // a human summary of what is removed from where
	Reason      string
	RequestedBy string
	DryRun      bool
	// Fingerprint is what the request asks the function to do, in the
	// engine's canonical form (request.Fingerprint): a later request under
	// the same id is compared with it. Empty in records written before it
	// was recorded.
	Fingerprint string
	State       string // StateOpen when created
	// Expected is the number of results the request will have, once known.
	Expected  *int
	CreatedAt time.Time // set by the store
	UpdatedAt time.Time // set by the store
	ExpireAt  time.Time // set by the store: last write + retention
}

// Intent is what Intend records before a Chat write.
type Intent struct {
	RequestID  string // required
	Root       string // empty: RootOf(RequestID, "") — children must set it
	Membership string // the membership name, spaces/S/members/M; required
	Member     string // the member's user name, users/ID
	Role       string // the role as read before the write
	Action     string // ActionDelete, ActionCreate or ActionPatch
}

// Decision is what Decide records after a decision.
type Decision struct {
	// Root of the request; empty: the request id itself. Children must set
	// it, since Decide may create the record.
	Root    string
	Member  string // kept as it is when empty
	Outcome string // the result's outcome; required
	Role    string // the role reported; kept as it is when empty
	Result  []byte // the result event's JSON (the data published)
}

// Membership is the record of one membership of one request.
type Membership struct {
	RequestID  string
	Root       string
	Name       string // the membership name, spaces/S/members/M
	Member     string
	Role       string
	Action     string    // empty when no write was intended
	IntendedAt time.Time // zero when no write was intended
	Outcome    string    // empty until decided
	Result     []byte
	DecidedAt  time.Time
	ExpireAt   time.Time
}

// Decided reports whether the record holds an outcome.
func (m Membership) Decided() bool { return m.Outcome != "" }

// Key is the record's document id: a stable hash of RequestID and Name.
// Memberships yields records in Key order.
func (m Membership) Key() string { return docID(m.RequestID, m.Name) }

// PageClaim is the claim of one sweep page, made before it fans out.
type PageClaim struct {
	SweepID         string // set by the store
	PageKey         string // set by the store
	Children        int    // child requests the page publishes
	ExpectedResults int    // results the page's children and itself will publish
	Result          []byte // the page's own result event JSON
	ClaimedAt       time.Time
	ExpireAt        time.Time
}

// RootOf returns the root request id of a request: its parent if it has one
// (children are one level deep), else the request itself.
func RootOf(requestID, parentID string) string {
	if parentID != "" {
		return parentID
	}
	return requestID
}

// docID is the Firestore document id of a key: the first 32 hex digits of the
// SHA-256 of its parts joined by NUL.
func docID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// cloneBytes copies b; empty is nil, as Firestore gives it back.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// pageSize is how many records Memberships reads per query.
const pageSize = 500

// spacePrefix is the prefix of the membership names of spaceName, and the
// first string after all of them ('0' follows '/'); ok is false for a name
// that is not spaces/S.
func spacePrefix(spaceName string) (prefix, end string, ok bool) {
	id, found := strings.CutPrefix(spaceName, "spaces/")
	if !found || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return spaceName + "/members/", spaceName + "/members0", true
}
