// Package report builds the leaver report of one or more requests from the
// ledger (package ledger): per person, every space with its outcome, the role
// removed, the hand-off, and for failures Google's error and what to do
// about it; the counts per outcome; and whether each request is complete,
// that is whether every result it expects is recorded. `offboard report`
// (cmd/offboard) prints it as text, CSV or JSON; the sandbox ends with one.
//
// # Where the report comes from
//
// Only the ledger: the request records ([ledger.Store.Request]; a dry run
// under the same id is reported beside the request, read through
// [ledger.DryRuns]), every
// membership record of a request and of its children
// ([ledger.Store.Memberships]: each decision's result event JSON) and the
// claims of its sweep pages or bulk fan-out ([ledger.Store.Pages]: what each
// page expects, and the page's own decisions, such as a person the
// directory does not know). No Chat or Directory call is made.
//
// Outcomes are read as strings: an outcome this package does not name
// (restored, already_member, via_group, or a later one) is listed and
// counted like the others, under its own name; anything that is not a known
// success counts as needing attention ([Success]).
//
// # Completeness
//
// A request that fanned out (a bulk request, a sweep) is complete when
// every page it announced is claimed (the first, and one more for each
// page whose result says continued) and the decided results reach the sum
// of the claims' expected results, with no write left intended but
// undecided. Any other request is complete when it has a decision and no
// undecided intent, or when its record says done.
//
// Everything here is safe for concurrent use; a Report is a plain value.
package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// Unreachable is what no API reaches, stated in every report: unnamed
// spaces, and the person's pending invitations (members.list shows invited
// memberships only with showInvited, which needs user authentication, so
// admin access cannot list them).
const Unreachable = "Direct messages and group chats (unnamed spaces) cannot be listed by an admin: spaces.search " +
	"sees only named spaces, so a sweep cannot reach them and they are not in this report. Nor are the person's " +
	"pending invitations to spaces: members.list shows invitations only with showInvited, which needs user " +
	"authentication, so admin access cannot list a departing person's invitations (a sweep finds them not_member " +
	"where they are only invited). Suspending or deleting the person's account is what ends their access to them."

// Pending is the outcome the report gives a membership whose write was
// intended but whose decision is not recorded yet: a delivery is still
// running, or died and Pub/Sub will deliver the request again.
const Pending = "pending"

// Report is the leaver report of one or more requests.
type Report struct {
	// Requests are the requests asked for, in the order asked.
	Requests []Request `json:"requests"`
	// People are the people of the results, sorted by email, else id.
	People []Person `json:"people"`
	// RequestResults are results about a whole request rather than a
	// person and a space: a failed sweep page.
	RequestResults []Row `json:"requestResults,omitempty"`
	// Counts are the number of rows per outcome (RequestResults
	// included), most common first.
	Counts []Count `json:"counts"`
	// Complete: every request asked for is complete.
	Complete bool `json:"complete"`
	// NeedAttention is the number of rows whose outcome is neither a
	// success nor pending: failed, refused, invalid, expired, via_group…
	NeedAttention int `json:"needAttention"`
	// Note says what no API reaches (Unreachable).
	Note string `json:"note"`
}

// Request is the ledger's record of one request asked for, with its
// completeness.
type Request struct {
	ID          string    `json:"id"`
	Found       bool      `json:"found"` // false: the ledger has no such request
	Kind        string    `json:"kind,omitempty"`
	Target      string    `json:"target,omitempty"`
	State       string    `json:"state,omitempty"`
	DryRun      bool      `json:"dryRun,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	CreatedAt   time.Time `json:"createdAt,omitzero"`
	// Expected is the number of results the request expects, once its
	// claims tell it (fanned-out requests only).
	Expected *int `json:"expected,omitempty"`
	// Recorded is the number of decided results in the ledger.
	Recorded int  `json:"recorded"`
	Complete bool `json:"complete"`
	// Why says what is missing when the request is not complete.
	Why string `json:"why,omitempty"`
}

// Person is one person's results.
type Person struct {
	// ID is the member's user name, users/{id}; users/{email} for a
	// person the directory does not know.
	ID    string `json:"id"`
	Email string `json:"email,omitempty"` // when a result carries one
	Rows  []Row  `json:"spaces"`
}

// Row is one result: a person in a space, or a result about a whole request.
type Row struct {
	Request          string              `json:"request"`          // the request asked for
	ChildRequest     string              `json:"childRequest"`     // the request that decided
	Person           string              `json:"person,omitempty"` // users/{id}
	Email            string              `json:"email,omitempty"`  // when the result carries one
	Space            string              `json:"space,omitempty"`  // spaces/{space}
	SpaceDisplayName string              `json:"spaceDisplayName,omitempty"`
	Membership       string              `json:"membership,omitempty"`
	Outcome          string              `json:"outcome"`
	Role             string              `json:"role,omitempty"` // the role removed (or restored)
	HandOff          string              `json:"handOff,omitempty"`
	ViaGroups        []string            `json:"viaGroups,omitempty"`
	Error            *contract.ErrorInfo `json:"error,omitempty"`
	Fix              string              `json:"fix,omitempty"`
	Detail           string              `json:"detail,omitempty"`
	DecidedAt        time.Time           `json:"decidedAt,omitzero"`
}

// Count is the number of rows with one outcome.
type Count struct {
	Outcome string `json:"outcome"`
	N       int    `json:"n"`
}

// Build reads the report of the requests ids from store. A request the
// ledger does not know is reported with Found false (and makes the report
// incomplete). Errors are the store's (they wrap ledger.ErrUnavailable).
func Build(ctx context.Context, store ledger.Store, ids ...string) (*Report, error) {
	if len(ids) == 0 {
		return nil, errors.New("report: no request id")
	}
	rep := &Report{Note: Unreachable, Complete: true}
	people := map[string]*Person{}
	for _, id := range ids {
		reqs, rows, err := buildBoth(ctx, store, id)
		if err != nil {
			return nil, err
		}
		for _, req := range reqs {
			rep.Requests = append(rep.Requests, req)
			rep.Complete = rep.Complete && req.Complete
		}
		for _, row := range rows {
			if row.Person == "" {
				rep.RequestResults = append(rep.RequestResults, row)
				continue
			}
			p := people[row.Person]
			if p == nil {
				p = &Person{ID: row.Person}
				people[row.Person] = p
			}
			p.Rows = append(p.Rows, row)
			if p.Email == "" {
				p.Email = row.Email
			}
		}
	}
	rep.finish(people)
	return rep, nil
}

// finish sorts the people and their rows, names every space that any row
// of the report names (a single removal learns no display name; a sweep
// does), and counts the outcomes.
func (rep *Report) finish(people map[string]*Person) {
	names := map[string]string{}
	for _, p := range people {
		for _, r := range p.Rows {
			if r.SpaceDisplayName != "" {
				names[r.Space] = r.SpaceDisplayName
			}
		}
	}
	counts := map[string]int{}
	count := func(r Row) {
		counts[r.Outcome]++
		if !Success(r.Outcome) && r.Outcome != Pending {
			rep.NeedAttention++
		}
	}
	for _, p := range people {
		slices.SortFunc(p.Rows, func(a, b Row) int {
			return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Request, b.Request), cmp.Compare(a.ChildRequest, b.ChildRequest))
		})
		for i := range p.Rows {
			p.Rows[i].Email = p.Email
			p.Rows[i].SpaceDisplayName = cmp.Or(p.Rows[i].SpaceDisplayName, names[p.Rows[i].Space])
			count(p.Rows[i])
		}
		rep.People = append(rep.People, *p)
	}
	slices.SortFunc(rep.People, func(a, b Person) int {
		return cmp.Or(cmp.Compare(personKey(a), personKey(b)), cmp.Compare(a.ID, b.ID))
	})
	for _, r := range rep.RequestResults {
		count(r)
	}
	for o, n := range counts {
		rep.Counts = append(rep.Counts, Count{Outcome: o, N: n})
	}
	slices.SortFunc(rep.Counts, func(a, b Count) int { return cmp.Or(b.N-a.N, cmp.Compare(a.Outcome, b.Outcome)) })
}

func personKey(p Person) string { return strings.ToLower(cmp.Or(p.Email, p.ID)) }

// buildBoth reads the request id and the dry run under the same id (kept
// apart by ledger.DryRuns): each one found, or the request not found.
func buildBoth(ctx context.Context, store ledger.Store, id string) ([]Request, []Row, error) {
	var reqs []Request
	var rows []Row
	for _, st := range []ledger.Store{store, ledger.DryRuns(store)} { // the request first, then its dry run
		req, r, err := buildOne(ctx, st, id)
		if err != nil {
			return nil, nil, err
		}
		if req.Found {
			reqs, rows = append(reqs, req), append(rows, r...)
		}
	}
	if len(reqs) == 0 {
		req, _, err := buildOne(ctx, store, id)
		return []Request{req}, nil, err
	}
	return reqs, rows, nil
}

// buildOne reads one request: its record, its membership records and its
// claims.
func buildOne(ctx context.Context, store ledger.Store, id string) (Request, []Row, error) {
	req := Request{ID: id}
	rec, err := store.Request(ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		req.Why = "the ledger has no such request (a request rejected as invalid is never recorded; records expire after the retention)"
		return req, nil, nil
	case err != nil:
		return req, nil, fmt.Errorf("report: request %s: %w", id, err)
	}
	req.Found, req.Kind, req.Target, req.State = true, rec.Kind, rec.Target, rec.State
	req.DryRun, req.Reason, req.RequestedBy, req.CreatedAt = rec.DryRun, rec.Reason, rec.RequestedBy, rec.CreatedAt
	rows, pending, err := membershipRows(ctx, store, id)
	if err != nil {
		return req, nil, err
	}
	claimed, err := claims(ctx, store, id)
	if err != nil {
		return req, nil, err
	}
	rows = append(rows, claimed.rows...)
	req.Recorded = len(rows) - pending - claimed.pageFailures - reusedAnswers(rows)
	req.Complete, req.Why = complete(rec, claimed, req.Recorded, pending)
	if claimed.pages > 0 {
		req.Expected = &claimed.expected
	}
	return req, rows, nil
}

// reusedAnswers counts the id_reused answers among rows: a later request
// refused under this one's id, not one of its results.
func reusedAnswers(rows []Row) int {
	n := 0
	for _, r := range rows {
		if r.Outcome == string(contract.IDReused) {
			n++
		}
	}
	return n
}

// complete decides whether a request is complete, and says why not.
func complete(rec ledger.Request, c claimSum, recorded, pending int) (bool, string) {
	fanOut := c.pages > 0 || rec.Kind == "sweep" || rec.Kind == "bulk"
	switch {
	case pending > 0:
		return false, fmt.Sprintf("%d intended writes have no decision yet (a delivery is running, or Pub/Sub will deliver again)", pending)
	case fanOut && c.pages == 0:
		return false, "it has not fanned out yet: no page is claimed"
	case fanOut && c.pages < 1+c.continued:
		return false, fmt.Sprintf("%d of %d announced pages are claimed", c.pages, 1+c.continued)
	case fanOut && recorded < c.expected:
		return false, fmt.Sprintf("%d of %d expected results are recorded", recorded, c.expected)
	case fanOut:
		return true, ""
	case recorded > 0 || rec.State == ledger.StateDone:
		return true, ""
	}
	return false, "no decision is recorded yet (state " + rec.State + ")"
}

// extras are result fields that the contract does not have (yet): read
// from the JSON so that the report needs no change when they come.
type extras struct {
	Member *struct {
		Email string `json:"email"`
	} `json:"member"`
}

// membershipRows are the rows of the membership records of root (and of its
// children), and how many of them are pending. Hand-off records (on the
// successor's membership) are not results: the hand-off shows on the
// departing person's row.
func membershipRows(ctx context.Context, store ledger.Store, root string) ([]Row, int, error) {
	var rows []Row
	pending := 0
	for m, err := range store.Memberships(ctx, root) {
		if err != nil {
			return nil, 0, fmt.Errorf("report: memberships of %s: %w", root, err)
		}
		if m.Action == ledger.ActionHandOff || m.Outcome == ledger.ActionHandOff {
			continue
		}
		if !m.Decided() {
			pending++
			rows = append(rows, fill(Row{
				Request: root, ChildRequest: m.RequestID, Person: m.Member, Membership: m.Name, Role: m.Role,
				Outcome: Pending, Detail: fmt.Sprintf("a %s was intended at %s; its decision is not recorded yet", m.Action, m.IntendedAt.Format(time.RFC3339)),
			}))
			continue
		}
		row := Row{Request: root} // a decision recorded without its result event: what the record says
		if len(m.Result) > 0 {
			var err error
			if row, err = resultRow(root, m.Result); err != nil {
				return nil, 0, fmt.Errorf("report: the record of %s in %s: %w", m.Name, m.RequestID, err)
			}
		}
		row.ChildRequest, row.Membership, row.Outcome = m.RequestID, m.Name, m.Outcome
		if m.Outcome == string(contract.IDReused) {
			row.Membership = "" // the record is named by the refused request, not a membership
		}
		row.Person = cmp.Or(row.Person, m.Member)
		row.Role = cmp.Or(row.Role, m.Role)
		row.DecidedAt = m.DecidedAt
		rows = append(rows, fill(row))
	}
	return rows, pending, nil
}

// resultRow is the row of one result event's JSON.
func resultRow(root string, data []byte) (Row, error) {
	var r contract.Result
	var x extras
	if err := json.Unmarshal(data, &r); err != nil {
		return Row{}, err
	}
	if err := json.Unmarshal(data, &x); err != nil {
		return Row{}, err
	}
	row := Row{
		Request: root, ChildRequest: r.RequestID, Membership: r.Membership, Outcome: string(r.Outcome), Role: r.Role,
		SpaceDisplayName: r.SpaceDisplayName, ViaGroups: r.ViaGroups, Error: r.Error, Detail: r.Detail, DecidedAt: r.ProcessedAt,
	}
	if r.Member != nil {
		row.Person = r.Member.Name
	}
	if x.Member != nil {
		row.Email = x.Member.Email
	}
	if h := r.HandOff; h != nil {
		row.HandOff = handOff(h)
	}
	return row, nil
}

// fill derives what a row lacks from its membership name: the space, the
// person (spaces/S/members/ID is users/ID) and, when the request named the
// person by email (spaces/S/members/EMAIL), the email; an email id is the
// email.
func fill(row Row) Row {
	if rest, ok := strings.CutPrefix(row.Membership, "spaces/"); ok {
		space, member, _ := strings.Cut(rest, "/members/")
		row.Space = "spaces/" + space
		if row.Person == "" && member != "" {
			row.Person = "users/" + member
		}
		if row.Email == "" && strings.Contains(member, "@") {
			row.Email = member
		}
	}
	if id := strings.TrimPrefix(row.Person, "users/"); row.Email == "" && strings.Contains(id, "@") {
		row.Email = id
	}
	row.Fix = Fix(row.Outcome, row.Error)
	return row
}

// handOff says what a hand-off did.
func handOff(h *contract.HandOffLog) string {
	switch {
	case h.Added && h.Promoted:
		return h.Successor + " added and made owner"
	case h.Promoted:
		return h.Successor + " made owner"
	case h.Added:
		return h.Successor + " added"
	}
	return h.Successor + " was already an owner"
}

// claimSum is what the claims of a request say.
type claimSum struct {
	pages, continued, expected int
	pageFailures               int   // rows about a whole page, not a result a page expects
	rows                       []Row // the claims' decisions that are not page results
}

// claims reads the claims of root: its sweep pages or bulk fan-out.
func claims(ctx context.Context, store ledger.Store, root string) (claimSum, error) {
	var c claimSum
	for claim, err := range store.Pages(ctx, root) {
		if err != nil {
			return c, fmt.Errorf("report: pages of %s: %w", root, err)
		}
		c.pages++
		c.expected += claim.ExpectedResults
		var rs []json.RawMessage
		if len(claim.Result) == 0 {
			continue // a claim without decisions: it expects, it says nothing itself
		}
		if err := json.Unmarshal(claim.Result, &rs); err != nil {
			return c, fmt.Errorf("report: the claim of %s: %w", claim.PageKey, err)
		}
		for _, data := range rs {
			var r contract.Result
			if err := json.Unmarshal(data, &r); err != nil {
				return c, fmt.Errorf("report: the claim of %s: %w", claim.PageKey, err)
			}
			if r.Continued {
				c.continued++
			}
			if r.Outcome == contract.Planned {
				continue
			}
			row, err := resultRow(root, data)
			if err != nil {
				return c, fmt.Errorf("report: the claim of %s: %w", claim.PageKey, err)
			}
			if r.ExpectedResults != nil { // about the page itself
				row.Person, row.Email = "", ""
				c.pageFailures++
			}
			c.rows = append(c.rows, fill(row))
		}
	}
	return c, nil
}
