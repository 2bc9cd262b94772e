// Offboarding that starts itself: an Admin audit LogEntry (a person
// suspended, archived or deleted in Google Workspace), published to the
// requests topic by an organization log sink, becomes a sweep for that
// person (docs/design.md, "Offboarding that starts itself").

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// AutoOffboard is the configuration of sweeps started by Admin audit
// entries. With no Domains the trigger is off: entries are acknowledged
// with a WARNING and nothing else. A plain value, read-only once loaded:
// any number of events may read it at once.
type AutoOffboard struct {
	// Domains are the email domains (lower case) whose people an audit
	// entry may sweep: AUTO_OFFBOARD_DOMAINS.
	Domains []string
	// OrgUnits, when set, further limit them to these organizational
	// units and those below: AUTO_OFFBOARD_ORG_UNITS.
	OrgUnits []string
	// Successor takes over spaces the person is the only owner of when
	// the Directory names no manager: AUTO_OFFBOARD_SUCCESSOR.
	Successor string
	// AddSuccessor lets the hand-off add the manager (or Successor) to a
	// space they are not a member of: AUTO_OFFBOARD_ADD_SUCCESSOR.
	AddSuccessor bool
}

// loadAutoOffboard reads AUTO_OFFBOARD_DOMAINS, AUTO_OFFBOARD_ORG_UNITS,
// AUTO_OFFBOARD_SUCCESSOR and AUTO_OFFBOARD_ADD_SUCCESSOR.
func (c *Config) loadAutoOffboard(getenv func(string) string) error {
	a := &c.AutoOffboard
	for _, d := range splitList(getenv("AUTO_OFFBOARD_DOMAINS")) {
		d = strings.ToLower(d)
		if seg, err := request.MemberSegment("AUTO_OFFBOARD_DOMAINS", "x@"+d); err != nil || !request.IsEmail(seg) {
			return &ConfigError{"AUTO_OFFBOARD_DOMAINS", fmt.Sprintf("%q is not a domain such as example.com", d)}
		}
		a.Domains = append(a.Domains, d)
	}
	for _, p := range splitList(getenv("AUTO_OFFBOARD_ORG_UNITS")) {
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
			return &ConfigError{"AUTO_OFFBOARD_ORG_UNITS", fmt.Sprintf("%q is not an organizational unit path such as /Staff or /Staff/Engineering", p)}
		}
		a.OrgUnits = append(a.OrgUnits, p)
	}
	if s := strings.TrimSpace(getenv("AUTO_OFFBOARD_SUCCESSOR")); s != "" {
		seg, err := request.MemberSegment("AUTO_OFFBOARD_SUCCESSOR", s)
		if err != nil || seg == "app" {
			return &ConfigError{"AUTO_OFFBOARD_SUCCESSOR", fmt.Sprintf("%q is not a person (users/ID, an email or an id)", s)}
		}
		a.Successor = seg
	}
	switch v := strings.TrimSpace(getenv("AUTO_OFFBOARD_ADD_SUCCESSOR")); v {
	case "", "false":
	case "true":
		a.AddSuccessor = true
	default:
		return &ConfigError{"AUTO_OFFBOARD_ADD_SUCCESSOR", fmt.Sprintf("%q is not true or false", v)}
	}
	if len(a.Domains) == 0 && (len(a.OrgUnits) > 0 || a.Successor != "" || a.AddSuccessor) {
		return &ConfigError{"AUTO_OFFBOARD_DOMAINS", "required when any other AUTO_OFFBOARD_ variable is set: the domains whose people a Workspace suspension, archive or deletion may sweep"}
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// inDomain reports whether email's domain is one of a's domains.
func (a *AutoOffboard) inDomain(email string) bool {
	_, domain, _ := strings.Cut(strings.ToLower(email), "@")
	for _, d := range a.Domains {
		if domain == d {
			return true
		}
	}
	return false
}

// inOrgUnit reports whether path is one of a's organizational units or
// below one (all units when none are configured).
func (a *AutoOffboard) inOrgUnit(path string) bool {
	if len(a.OrgUnits) == 0 {
		return true
	}
	for _, u := range a.OrgUnits {
		if u == "/" || path == u || strings.HasPrefix(path, u+"/") {
			return true
		}
	}
	return false
}

// auditRequest turns an Admin audit LogEntry into the sweep it asks for
// and marks j as started by it. It returns (nil, nil) for an entry that is
// acknowledged without acting (the trigger is off, or the entry's address
// is not in AUTO_OFFBOARD_DOMAINS, which spares a Directory read; the
// sweep checks the primary address the Directory returns too): a log line
// and no result. The error is a
// *request.Error for a malformed entry.
func (f *Engine) auditRequest(ctx context.Context, j *job) (*request.Valid, error) {
	ev, err := request.ParseAuditEntry(j.msg.Data)
	if err != nil {
		return nil, err
	}
	log := j.log.With("requestId", ev.RequestID(), "auditEvent", ev.What(), "auditMethod", ev.Method, "insertId", ev.InsertID)
	a := &f.cfg.AutoOffboard
	switch {
	case len(a.Domains) == 0:
		log.WarnContext(ctx, "a Workspace audit entry arrived but AUTO_OFFBOARD_DOMAINS is not set: the trigger is off; acknowledged without acting (set AUTO_OFFBOARD_DOMAINS, or remove the log sink)", "member", ev.Email)
		return nil, nil
	case !a.inDomain(ev.Email):
		log.InfoContext(ctx, "a Workspace audit entry names a person outside AUTO_OFFBOARD_DOMAINS; acknowledged without acting", "member", ev.Email)
		return nil, nil
	}
	by := "workspace-audit-log"
	if ev.Actor != "" {
		by += ": " + ev.Actor
	}
	v, err := request.Validate(request.Request{
		RequestID: ev.RequestID(), AllSpaces: true, Member: ev.Email,
		Reason: fmt.Sprintf("Google Workspace %s (%s, log entry %s)", ev.What(), ev.Time.Format("2006-01-02T15:04:05.000Z07:00"), ev.InsertID), RequestedBy: request.Clip(by),
	})
	if err != nil {
		return nil, err
	}
	j.audit = ev
	return v, nil
}

// directoryPerson is what the Directory says of the person of an audit
// entry.
type directoryPerson struct {
	id      string // "users/ID"; "" when the Directory does not know them
	primary string // the primary address the Directory returns
	// addresses are the primary address and the aliases (editable or
	// not) the Directory returns; a deleted user's listed primary address
	// alone.
	addresses []string
	active    bool // neither suspended, archived nor deleted
	orgUnit   string
	manager   string // the email of their manager relation, if any
	verbatim  string // how the Directory describes their state, for results
}

// auditSweep is the flow of a sweep started by an audit entry: it reads
// the person from the Directory and decides on the Directory's answer, not
// the entry's: it sweeps only when the entry's address is one of the
// person's, their primary address is in AUTO_OFFBOARD_DOMAINS, their org
// unit in AUTO_OFFBOARD_ORG_UNITS, and they are suspended, archived or
// deleted (a deleted person: the primary address users.list shows); active
// again, it decides refused without a Chat call. Its decision is recorded as the first page's
// claim, so that every delivery of the entry decides the same, even after
// the Directory changes.
func (f *Engine) auditSweep(ctx context.Context, j *job) ([]contract.Result, error) {
	id := j.req.RequestID
	if out, ok, err := f.claimed(ctx, j, id, id); ok || err != nil {
		return out, err
	}
	p, err := f.readPerson(ctx, j, j.audit.Email)
	if err != nil {
		return nil, err
	}
	r := j.result(id)
	switch {
	case p.id == "":
		r.Outcome = contract.Failed
		r.Member = &contract.Member{Name: "users/" + j.audit.Email}
		r.Error = &contract.ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + j.audit.Email + ", not even among deleted users (deleted more than 20 days ago?)"}
		r.Detail = "nothing was swept: publish a sweep naming the person's user id"
		return f.claim(ctx, j, id, id, 0, 1, []contract.Result{j.decided(r)})
	case !p.hasAddress(j.audit.Email):
		j.log.WarnContext(ctx, "a Workspace audit entry names an address that is not one of the person's the Directory returns; acknowledged without acting", "member", p.id, "primaryEmail", p.primary)
		return f.claim(ctx, j, id, id, 0, 0, nil)
	case !f.cfg.AutoOffboard.inDomain(p.primary):
		j.log.InfoContext(ctx, "a Workspace audit entry names a person whose primary address is outside AUTO_OFFBOARD_DOMAINS; acknowledged without acting", "member", p.id, "primaryEmail", p.primary)
		return f.claim(ctx, j, id, id, 0, 0, nil)
	case !f.cfg.AutoOffboard.inOrgUnit(p.orgUnit):
		j.log.InfoContext(ctx, "a Workspace audit entry names a person outside AUTO_OFFBOARD_ORG_UNITS; acknowledged without acting", "member", p.id, "orgUnitPath", p.orgUnit)
		return f.claim(ctx, j, id, id, 0, 0, nil)
	case p.active:
		r.Outcome = contract.Refused
		r.Member = &contract.Member{Name: p.id, Type: "HUMAN"}
		r.Error = &contract.ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: "the person is active again in the Directory"}
		r.Detail = fmt.Sprintf("the person is active again in the Directory (%s after %s): nothing was swept", p.verbatim, j.audit.What())
		j.log.WarnContext(ctx, "a Workspace audit entry names a person who is active again; refused", "member", p.id)
		// The decision counts as the one result expected of the request.
		return f.claim(ctx, j, id, id, 0, 1, []contract.Result{j.decided(r)})
	}
	if out, held, err := f.holdAudit(ctx, j); held || err != nil {
		return out, err
	}
	if err := f.auditTarget(ctx, j, p); err != nil {
		return nil, err
	}
	return f.sweepPage(ctx, j)
}

// auditTarget points the sweep of j at the person's user id and names the
// successor: their manager while the Directory has them neither suspended,
// archived nor deleted, else AUTO_OFFBOARD_SUCCESSOR, else nobody (an
// only-owner space then fails with the fix).
func (f *Engine) auditTarget(ctx context.Context, j *job, p directoryPerson) error {
	a := &f.cfg.AutoOffboard
	req := j.req.Request
	req.Member = p.id
	req.Successor, req.AddSuccessor = a.Successor, a.Successor != "" && a.AddSuccessor
	if p.manager != "" {
		id, why, err := f.usableManager(ctx, j, p.manager)
		switch {
		case err != nil:
			return err
		case id != "":
			req.Successor, req.AddSuccessor = id, a.AddSuccessor
		default:
			j.log.WarnContext(ctx, "the person's manager cannot take over their spaces; the default successor (AUTO_OFFBOARD_SUCCESSOR) does, if set", "member", p.id, "manager", p.manager, "why", why)
		}
	}
	v, err := request.Validate(req)
	if err != nil {
		return fmt.Errorf("the sweep of an audit entry: %w", err)
	}
	j.req = v
	j.log.InfoContext(ctx, "a Workspace audit entry starts a sweep", "member", p.id, "state", p.verbatim, "successor", req.Successor)
	return nil
}

// usableManager returns the manager's user id ("users/ID") when the
// Directory has them active, else why not.
func (f *Engine) usableManager(ctx context.Context, j *job, manager string) (id, why string, err error) {
	if _, err := request.MemberSegment("successor", manager); err != nil {
		return "", "not an email or a user id", nil
	}
	u, found, err := f.directoryUser(ctx, j, manager)
	switch {
	case err != nil:
		return "", "", err
	case !found:
		return "", "the directory does not know them", nil
	case u.Suspended || u.Archived:
		return "", "suspended or archived", nil
	}
	return "users/" + u.Id, "", nil
}

// readPerson reads the person of an audit entry: users.get, and for a
// person it does not know (404), the deleted users (users.list with
// showDeleted=true).
func (f *Engine) readPerson(ctx context.Context, j *job, email string) (directoryPerson, error) {
	u, found, err := f.directoryUser(ctx, j, email)
	switch {
	case err != nil:
		return directoryPerson{}, err
	case !found:
		return f.readDeleted(ctx, j, email)
	}
	p := directoryPerson{id: "users/" + u.Id, primary: u.PrimaryEmail, orgUnit: u.OrgUnitPath, manager: managerOf(u.Relations),
		addresses: append(append([]string{u.PrimaryEmail}, u.Aliases...), u.NonEditableAliases...)}
	switch {
	case u.Archived:
		p.verbatim = "archived"
	case u.Suspended:
		p.verbatim = "suspended"
	default:
		p.active, p.verbatim = true, "neither suspended nor archived"
	}
	return p, nil
}

// directoryUser reads a user (users.get); found is false on a 404.
func (f *Engine) directoryUser(ctx context.Context, j *job, key string) (*admin.User, bool, error) {
	var u *admin.User
	err := f.call(ctx, j, "users.get", read, func(ctx context.Context) error {
		var err error
		u, err = f.dir.Users.Get(key).Context(ctx).Do()
		return err
	})
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, directoryError("users.get", err)
	}
	return u, true, nil
}

// readDeleted looks for email among the deleted users (Google keeps them
// for 20 days).
func (f *Engine) readDeleted(ctx context.Context, j *job, email string) (directoryPerson, error) {
	u, err := f.deletedUser(ctx, j, func(u *admin.User) bool { return strings.EqualFold(u.PrimaryEmail, email) })
	if err != nil || u == nil {
		return directoryPerson{}, err
	}
	return directoryPerson{id: "users/" + u.Id, primary: u.PrimaryEmail, addresses: []string{u.PrimaryEmail},
		orgUnit: u.OrgUnitPath, manager: managerOf(u.Relations), verbatim: "deleted"}, nil
}

// deletedUser returns the first deleted user that match accepts (users.list
// with showDeleted=true, 500 a page), or nil.
func (f *Engine) deletedUser(ctx context.Context, j *job, match func(*admin.User) bool) (*admin.User, error) {
	token := ""
	for {
		var page *admin.Users
		err := f.call(ctx, j, "users.list", read, func(ctx context.Context) error {
			var err error
			page, err = f.dir.Users.List().Customer("my_customer").ShowDeleted("true").
				MaxResults(500).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, directoryError("users.list", err)
		}
		for _, u := range page.Users {
			if match(u) {
				return u, nil
			}
		}
		if token = page.NextPageToken; token == "" {
			return nil, nil
		}
	}
}

// hasAddress reports whether email is one of the person's addresses
// (addresses are not case-sensitive).
func (p directoryPerson) hasAddress(email string) bool {
	for _, a := range p.addresses {
		if a != "" && strings.EqualFold(a, email) {
			return true
		}
	}
	return false
}

// directoryError makes a Directory refusal transient (an operator must
// grant the scope or the admin role), as lookupUser does.
func directoryError(op string, err error) error {
	var te *TransientError
	if errors.As(err, &te) {
		return err
	}
	return &TransientError{Op: op, Err: err}
}

// managerOf returns the value of the first relation of type manager, as
// the Directory documents relations: [{"type": "manager", "value": EMAIL}].
func managerOf(relations any) string {
	data, err := json.Marshal(relations)
	if err != nil {
		return ""
	}
	var rel []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	if json.Unmarshal(data, &rel) != nil {
		return ""
	}
	for _, r := range rel {
		if r.Type == "manager" && r.Value != "" {
			return strings.TrimSpace(r.Value)
		}
	}
	return ""
}
