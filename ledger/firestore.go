package ledger

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore is the Store on Cloud Firestore (native mode). Safe for
// concurrent use; one Firestore per process is enough (it holds one gRPC
// connection pool).
type Firestore struct {
	cfg         Config
	client      *firestore.Client
	requests    *firestore.CollectionRef
	memberships *firestore.CollectionRef
	pages       *firestore.CollectionRef
}

var _ Store = (*Firestore)(nil)

// NewFirestore opens the ledger in the Firestore database of project, with
// the default Config. An empty project means $GOOGLE_CLOUD_PROJECT; an empty
// database means $FIRESTORE_DATABASE, then "(default)". Credentials and the
// endpoint come from opts and the environment as usual for Google clients:
// with FIRESTORE_EMULATOR_HOST set, the client library talks to that emulator
// (opts can still override it with option.WithGRPCConn). NewFirestore makes
// no request: an unreachable or missing database shows in the first call.
func NewFirestore(ctx context.Context, project, database string, opts ...option.ClientOption) (*Firestore, error) {
	return NewFirestoreWithConfig(ctx, project, database, Config{}, opts...)
}

// NewFirestoreWithConfig is NewFirestore with cfg (retention, clock).
func NewFirestoreWithConfig(ctx context.Context, project, database string, cfg Config, opts ...option.ClientOption) (*Firestore, error) {
	if project == "" {
		project = os.Getenv(EnvProject)
	}
	if project == "" {
		return nil, fmt.Errorf("ledger: %w: no project (set %s)", ErrInvalid, EnvProject)
	}
	if database == "" {
		database = os.Getenv(EnvDatabase)
	}
	if database == "" {
		database = DefaultDatabase
	}
	var (
		c   *firestore.Client
		err error
	)
	if database == DefaultDatabase {
		c, err = firestore.NewClient(ctx, project, opts...)
	} else {
		c, err = firestore.NewClientWithDatabase(ctx, project, database, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: firestore client for %s/%s: %w: %w", project, database, ErrUnavailable, err)
	}
	return &Firestore{
		cfg:         cfg.withDefaults(),
		client:      c,
		requests:    c.Collection(RequestsCollection),
		memberships: c.Collection(MembershipsCollection),
		pages:       c.Collection(PagesCollection),
	}, nil
}

// Close closes the Firestore client.
func (s *Firestore) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// unavailable wraps err, an error of Firestore, as ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("ledger: %s: %w: %w", op, ErrUnavailable, err)
}

// get reads ref into v. A document that does not exist is ErrNotFound; any
// other failure (including a missing database, for which the client returns
// no snapshot) is ErrUnavailable.
func get(ctx context.Context, op string, ref *firestore.DocumentRef, v any) error {
	snap, err := ref.Get(ctx)
	if err != nil {
		if snap != nil && !snap.Exists() && status.Code(err) == codes.NotFound {
			return fmt.Errorf("ledger: %s: %w", op, ErrNotFound)
		}
		return unavailable(op, err)
	}
	if err := snap.DataTo(v); err != nil {
		return unavailable(op, fmt.Errorf("decoding %s: %w", ref.Path, err))
	}
	return nil
}

// create creates ref with data if absent. It reports whether it did; when
// the document exists it reads it into existing.
func create(ctx context.Context, op string, ref *firestore.DocumentRef, data map[string]any, existing any) (bool, error) {
	_, err := ref.Create(ctx, data)
	if err == nil {
		return true, nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return false, unavailable(op, err)
	}
	if err := get(ctx, op, ref, existing); err != nil {
		if errors.Is(err, ErrNotFound) { // created and expired (TTL) in between: unlikely; retry
			return false, unavailable(op, err)
		}
		return false, err
	}
	return false, nil
}

// requestDoc is a document of the requests collection.
type requestDoc struct {
	ID          string    `firestore:"id"`
	ParentID    string    `firestore:"parentId"`
	Root        string    `firestore:"root"`
	Kind        string    `firestore:"kind"`
	Target      string    `firestore:"target"`
	Reason      string    `firestore:"reason"`
	RequestedBy string    `firestore:"requestedBy"`
	DryRun      bool      `firestore:"dryRun"`
	Fingerprint string    `firestore:"fingerprint"`
	State       string    `firestore:"state"`
	Expected    *int64    `firestore:"expected"`
	CreatedAt   time.Time `firestore:"createdAt"`
	UpdatedAt   time.Time `firestore:"updatedAt"`
	ExpireAt    time.Time `firestore:"expireAt"`
}

func (d requestDoc) request() Request {
	r := Request{
		ID: d.ID, ParentID: d.ParentID, Root: d.Root, Kind: d.Kind, Target: d.Target, Reason: d.Reason,
		RequestedBy: d.RequestedBy, DryRun: d.DryRun, Fingerprint: d.Fingerprint, State: d.State,
		CreatedAt: stamp(d.CreatedAt), UpdatedAt: stamp(d.UpdatedAt), ExpireAt: stamp(d.ExpireAt),
	}
	if d.Expected != nil {
		n := int(*d.Expected)
		r.Expected = &n
	}
	return r
}

// CreateRequest implements [Store.CreateRequest].
func (s *Firestore) CreateRequest(ctx context.Context, r Request) (Request, bool, error) {
	if r.ID == "" {
		return Request{}, false, fmt.Errorf("ledger: create request: %w: empty id", ErrInvalid)
	}
	r = newRequest(r, s.cfg)
	var expected any
	if r.Expected != nil {
		expected = int64(*r.Expected)
	}
	data := map[string]any{
		"id": r.ID, "parentId": r.ParentID, "root": r.Root, "kind": r.Kind, "target": r.Target,
		"reason": r.Reason, "requestedBy": r.RequestedBy, "dryRun": r.DryRun, "fingerprint": r.Fingerprint, "state": r.State,
		"expected": expected, "createdAt": r.CreatedAt, "updatedAt": r.UpdatedAt, "expireAt": r.ExpireAt,
	}
	var old requestDoc
	created, err := create(ctx, "create request "+r.ID, s.requests.Doc(docID(r.ID)), data, &old)
	if err != nil {
		return Request{}, false, err
	}
	if !created {
		return old.request(), false, nil
	}
	return r, true, nil
}

// Request implements [Store.Request].
func (s *Firestore) Request(ctx context.Context, id string) (Request, error) {
	if id == "" {
		return Request{}, fmt.Errorf("ledger: request: %w: empty id", ErrInvalid)
	}
	var d requestDoc
	if err := get(ctx, "request "+id, s.requests.Doc(docID(id)), &d); err != nil {
		return Request{}, err
	}
	return d.request(), nil
}

// SetRequestState implements [Store.SetRequestState]. It is an Update, which
// Firestore refuses with NotFound when the document does not exist.
func (s *Firestore) SetRequestState(ctx context.Context, requestID, state string, expected *int) error {
	if requestID == "" || state == "" {
		return fmt.Errorf("ledger: set request state: %w: empty request id or state", ErrInvalid)
	}
	op := "set state of request " + requestID
	now := s.cfg.now()
	ups := []firestore.Update{
		{Path: "state", Value: state},
		{Path: "updatedAt", Value: now},
		{Path: "expireAt", Value: now.Add(s.cfg.Retention)},
	}
	if expected != nil {
		ups = append(ups, firestore.Update{Path: "expected", Value: int64(*expected)})
	}
	if _, err := s.requests.Doc(docID(requestID)).Update(ctx, ups); err != nil {
		if status.Code(err) == codes.NotFound {
			return fmt.Errorf("ledger: %s: %w (%w)", op, ErrNotFound, err)
		}
		return unavailable(op, err)
	}
	return nil
}

// TakeOver implements [Store.TakeOver]: one transaction that reads the
// request and updates it only if its state and updatedAt are as seen.
func (s *Firestore) TakeOver(ctx context.Context, seen Request) (bool, error) {
	if seen.ID == "" {
		return false, fmt.Errorf("ledger: take over: %w: empty request id", ErrInvalid)
	}
	op := "take over request " + seen.ID
	ref := s.requests.Doc(docID(seen.ID))
	won := false
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		won = false
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var d requestDoc
		if err := snap.DataTo(&d); err != nil {
			return err
		}
		if d.State != seen.State || !stamp(d.UpdatedAt).Equal(seen.UpdatedAt) {
			return nil
		}
		now := s.cfg.now()
		won = true
		return tx.Update(ref, []firestore.Update{
			{Path: "state", Value: StateOpen},
			{Path: "updatedAt", Value: now},
			{Path: "expireAt", Value: now.Add(s.cfg.Retention)},
		})
	})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return false, fmt.Errorf("ledger: %s: %w (%w)", op, ErrNotFound, err)
		}
		return false, unavailable(op, err)
	}
	return won, nil
}

// membershipDoc is a document of the memberships collection.
type membershipDoc struct {
	RequestID  string    `firestore:"requestId"`
	Root       string    `firestore:"root"`
	Membership string    `firestore:"membership"`
	Member     string    `firestore:"member"`
	Role       string    `firestore:"role"`
	Action     string    `firestore:"action"`
	IntendedAt time.Time `firestore:"intendedAt"`
	Outcome    string    `firestore:"outcome"`
	Result     []byte    `firestore:"result"`
	DecidedAt  time.Time `firestore:"decidedAt"`
	ExpireAt   time.Time `firestore:"expireAt"`
}

func (d membershipDoc) membership() Membership {
	return Membership{
		RequestID: d.RequestID, Root: d.Root, Name: d.Membership, Member: d.Member, Role: d.Role,
		Action: d.Action, IntendedAt: stamp(d.IntendedAt), Outcome: d.Outcome, Result: cloneBytes(d.Result),
		DecidedAt: stamp(d.DecidedAt), ExpireAt: stamp(d.ExpireAt),
	}
}

// Intend implements [Store.Intend].
func (s *Firestore) Intend(ctx context.Context, in Intent) (Membership, bool, error) {
	if in.RequestID == "" || in.Membership == "" {
		return Membership{}, false, fmt.Errorf("ledger: intend: %w: empty request id or membership", ErrInvalid)
	}
	m := newIntent(in, s.cfg)
	data := map[string]any{
		"requestId": m.RequestID, "root": m.Root, "membership": m.Name, "member": m.Member,
		"role": m.Role, "action": m.Action, "intendedAt": m.IntendedAt, "expireAt": m.ExpireAt,
	}
	var old membershipDoc
	created, err := create(ctx, "intend "+in.RequestID+" "+in.Membership,
		s.memberships.Doc(docID(in.RequestID, in.Membership)), data, &old)
	if err != nil {
		return Membership{}, false, err
	}
	if !created {
		return old.membership(), false, nil
	}
	return m, true, nil
}

// Decide implements [Store.Decide]: one Set that merges the given fields into
// the record, creating it if absent.
func (s *Firestore) Decide(ctx context.Context, requestID, membership string, d Decision) error {
	if requestID == "" || membership == "" || d.Outcome == "" {
		return fmt.Errorf("ledger: decide: %w: empty request id, membership or outcome", ErrInvalid)
	}
	now := s.cfg.now()
	result := d.Result
	if result == nil {
		result = []byte{}
	}
	data := map[string]any{
		"requestId": requestID, "membership": membership, "root": RootOf(requestID, d.Root),
		"outcome": d.Outcome, "result": result, "decidedAt": now, "expireAt": now.Add(s.cfg.Retention),
	}
	if d.Member != "" {
		data["member"] = d.Member
	}
	if d.Role != "" {
		data["role"] = d.Role
	}
	if _, err := s.memberships.Doc(docID(requestID, membership)).Set(ctx, data, firestore.MergeAll); err != nil {
		return unavailable("decide "+requestID+" "+membership, err)
	}
	return nil
}

// Membership implements [Store.Membership].
func (s *Firestore) Membership(ctx context.Context, requestID, membership string) (Membership, error) {
	if requestID == "" || membership == "" {
		return Membership{}, fmt.Errorf("ledger: membership: %w: empty request id or membership", ErrInvalid)
	}
	var d membershipDoc
	if err := get(ctx, "membership "+membership+" of "+requestID,
		s.memberships.Doc(docID(requestID, membership)), &d); err != nil {
		return Membership{}, err
	}
	return d.membership(), nil
}

// pageDoc is a document of the pages collection.
type pageDoc struct {
	SweepID         string    `firestore:"sweepId"`
	PageKey         string    `firestore:"pageKey"`
	Children        int64     `firestore:"children"`
	ExpectedResults int64     `firestore:"expectedResults"`
	Result          []byte    `firestore:"result"`
	ClaimedAt       time.Time `firestore:"claimedAt"`
	ExpireAt        time.Time `firestore:"expireAt"`
}

// ClaimPage implements [Store.ClaimPage].
func (s *Firestore) ClaimPage(ctx context.Context, sweepID, pageKey string, c PageClaim) (PageClaim, bool, error) {
	if sweepID == "" || pageKey == "" {
		return PageClaim{}, false, fmt.Errorf("ledger: claim page: %w: empty sweep id or page key", ErrInvalid)
	}
	c = newClaim(sweepID, pageKey, c, s.cfg)
	result := c.Result
	if result == nil {
		result = []byte{}
	}
	data := map[string]any{
		"sweepId": sweepID, "pageKey": pageKey, "children": int64(c.Children),
		"expectedResults": int64(c.ExpectedResults), "result": result,
		"claimedAt": c.ClaimedAt, "expireAt": c.ExpireAt,
	}
	var old pageDoc
	created, err := create(ctx, "claim page "+sweepID+" "+pageKey, s.pages.Doc(docID(sweepID, pageKey)), data, &old)
	if err != nil {
		return PageClaim{}, false, err
	}
	if !created {
		return old.claim(), false, nil
	}
	return c, true, nil
}

// Page implements [Store.Page].
func (s *Firestore) Page(ctx context.Context, sweepID, pageKey string) (PageClaim, error) {
	if sweepID == "" || pageKey == "" {
		return PageClaim{}, fmt.Errorf("ledger: page: %w: empty sweep id or page key", ErrInvalid)
	}
	var d pageDoc
	if err := get(ctx, "page "+pageKey+" of "+sweepID, s.pages.Doc(docID(sweepID, pageKey)), &d); err != nil {
		return PageClaim{}, err
	}
	return d.claim(), nil
}

func (d pageDoc) claim() PageClaim {
	return PageClaim{
		SweepID: d.SweepID, PageKey: d.PageKey, Children: int(d.Children),
		ExpectedResults: int(d.ExpectedResults), Result: cloneBytes(d.Result),
		ClaimedAt: stamp(d.ClaimedAt), ExpireAt: stamp(d.ExpireAt),
	}
}

// Memberships implements [Store.Memberships]: one query per page of
// pageSize records, where root == rootID, ordered by document id (an
// equality filter and the document id order need no composite index).
func (s *Firestore) Memberships(ctx context.Context, rootID string) iter.Seq2[Membership, error] {
	if rootID == "" {
		return failed[Membership](fmt.Errorf("ledger: memberships: %w: empty root id", ErrInvalid))
	}
	return queryAll(ctx, s.memberships.Where("root", "==", rootID), "memberships of "+rootID, membershipDoc.membership)
}

// InSpace implements [Store.InSpace]: one query per page of pageSize
// records, a range of membership names (a single-field index serves it),
// ordered by membership name and document id.
func (s *Firestore) InSpace(ctx context.Context, spaceName string) iter.Seq2[Membership, error] {
	prefix, end, ok := spacePrefix(spaceName)
	if !ok {
		return failed[Membership](fmt.Errorf("ledger: memberships in space: %w: %q is not spaces/S", ErrInvalid, spaceName))
	}
	q := s.memberships.Where("membership", ">=", prefix).Where("membership", "<", end).OrderBy("membership", firestore.Asc)
	return queryAll(ctx, q, "memberships in "+spaceName, membershipDoc.membership)
}

// Pages implements [Store.Pages]: one query per page of pageSize claims,
// where sweepId == sweepID, ordered by document id.
func (s *Firestore) Pages(ctx context.Context, sweepID string) iter.Seq2[PageClaim, error] {
	if sweepID == "" {
		return failed[PageClaim](fmt.Errorf("ledger: pages: %w: empty sweep id", ErrInvalid))
	}
	return queryAll(ctx, s.pages.Where("sweepId", "==", sweepID), "pages of "+sweepID, pageDoc.claim)
}

// failed is an iteration that yields err once.
func failed[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// queryAll yields every document of q, decoded as D and converted by conv,
// in q's order and then document id order, reading pageSize documents per
// query. On an error it
// yields it once, wrapped as unavailable, and stops.
func queryAll[D, T any](ctx context.Context, q firestore.Query, op string, conv func(D) T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		var after *firestore.DocumentSnapshot
		for {
			pq := q.OrderBy(firestore.DocumentID, firestore.Asc).Limit(pageSize)
			if after != nil {
				pq = pq.StartAfter(after)
			}
			docs, err := pq.Documents(ctx).GetAll()
			if err != nil && !errors.Is(err, iterator.Done) {
				yield(zero, unavailable(op, err))
				return
			}
			for _, snap := range docs {
				var d D
				if err := snap.DataTo(&d); err != nil {
					yield(zero, unavailable(op, fmt.Errorf("decoding %s: %w", snap.Ref.Path, err)))
					return
				}
				if !yield(conv(d), nil) {
					return
				}
			}
			if len(docs) < pageSize {
				return
			}
			after = docs[len(docs)-1]
		}
	}
}
