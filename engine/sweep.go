package offboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/request"
)

// Sweep constants.
const (
	// SweepQuery selects every named space of the customer; spaces.search
	// with admin access cannot see direct messages or unnamed group chats.
	SweepQuery = `customer = "customers/my_customer" AND spaceType = "SPACE"`
	// searchPageSize is the largest page spaces.search allows.
	searchPageSize = 1000
	// listPageSize is the largest page members.list allows.
	listPageSize = 1000
	// sweepScopeNote goes into every sweep page's result.
	sweepScopeNote = "direct messages and unnamed group chats are out of reach of admin search and are not swept"
)

// errNoRequestTopic stops fan-out until REQUEST_TOPIC is configured.
var errNoRequestTopic = &ConfigError{Var: "REQUEST_TOPIC", Reason: "required for bulk and sweep requests (children are published to it)"}

// planBulk fans a bulk request out: one child request per space, published
// to REQUEST_TOPIC, and a planned result with their number.
func (f *Function) planBulk(ctx context.Context, v *request.Valid, r *Result) error {
	children := make([]request.Request, 0, len(v.SpaceNames))
	for _, s := range v.SpaceNames {
		children = append(children, request.Request{
			RequestID: v.RequestID + "/" + s, ParentRequestID: v.RequestID,
			Space: s, Member: v.Member,
			Successor: v.Successor, AddSuccessor: v.AddSuccessor,
			AdminAccess: v.AdminAccess, DryRun: v.DryRun, Reason: v.Reason, RequestedBy: v.RequestedBy,
		})
	}
	if err := f.publishChildren(ctx, children); err != nil {
		return err
	}
	n := len(children)
	r.Outcome, r.Children, r.ExpectedResults = OutcomePlanned, &n, &n
	r.Detail = fmt.Sprintf("bulk: %d child requests, one per space, each answered by one result with parentRequestId %q", n, v.RequestID)
	return nil
}

// fanOutError is a request whose children cannot be made (a child fails
// validation, e.g. its requestId would pass the limit): it is answered
// invalid, and nothing is published.
type fanOutError struct{ err *request.Error }

func (e *fanOutError) Error() string { return "cannot fan out: " + e.err.Error() }

func (e *fanOutError) Unwrap() error { return e.err }

// publishChildren validates every child request, then publishes them all,
// returning once every one is acknowledged. A child that fails validation
// stops the fan-out before anything is published (*fanOutError).
func (f *Function) publishChildren(ctx context.Context, children []request.Request) error {
	if f.requests == nil {
		return errNoRequestTopic
	}
	msgs := make([]*pubsub.Message, 0, len(children))
	for _, c := range children {
		if _, err := request.Validate(c); err != nil {
			re := &request.Error{Reason: err.Error()}
			errors.As(err, &re)
			return &fanOutError{err: &request.Error{Field: re.Field, Reason: fmt.Sprintf("child request for %s: %s", childTarget(c), re.Reason)}}
		}
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding child request: %w", err)
		}
		msgs = append(msgs, &pubsub.Message{
			Data:       data,
			Attributes: map[string]string{"requestId": c.RequestID, "parentRequestId": c.ParentRequestID},
		})
	}
	results := make([]*pubsub.PublishResult, 0, len(msgs))
	for _, m := range msgs {
		results = append(results, f.requests.Publish(ctx, m))
	}
	var errs []error
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &TransientError{Op: "publish children", Err: fmt.Errorf("%d of %d child requests not published: %w", len(errs), len(children), errs[0])}
	}
	return nil
}

// childTarget names what a child request is for, in an error.
func childTarget(c request.Request) string {
	if c.PageToken != "" {
		return "the next page of spaces"
	}
	return c.Space
}

// sweepPage handles one page of a sweep: on the first page it resolves the
// people named by email to user ids (one directory read each), then it
// reads one page of spaces.search, publishes one child request per space
// and a continuation for the next page, and reports a planned result.
func (f *Function) sweepPage(ctx context.Context, sc *scope, m Message, v *request.Valid, r *Result) error {
	root := v.RequestID
	if v.PageToken != "" && v.ParentRequestID != "" {
		root = v.ParentRequestID
	}
	people, successor := v.People, v.Successor
	// A page's result always says how many results to expect from it, even
	// when it fails, so that a consumer counting completeness can finish.
	n, unknown := 0, 0
	r.Children, r.ExpectedResults = &n, &unknown
	if v.PageToken == "" {
		ids, err := f.resolvePeople(ctx, sc, m, v, root, r)
		if err != nil {
			return err
		}
		unknown = len(v.People) - len(ids)
		people = ids
		if successor != "" {
			id, found, n, err := f.resolveUser(ctx, sc, successor)
			r.Attempts += n
			if err != nil {
				return err
			}
			if !found {
				r.Outcome = OutcomeFailed
				r.Error = &ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know the successor " + successor}
				return nil
			}
			successor = id
		}
	}
	if len(people) == 0 {
		r.Outcome, r.Detail = OutcomePlanned, "nobody left to sweep: "+sweepScopeNote
		return nil
	}
	var page *chat.SearchSpacesResponse
	attempts, err := f.call(ctx, sc, "spaces.search", read, func(ctx context.Context) error {
		var err error
		page, err = f.chat.Spaces.Search().UseAdminAccess(true).Query(SweepQuery).
			PageSize(searchPageSize).PageToken(v.PageToken).Context(ctx).Do()
		return err
	})
	r.Attempts += attempts
	if err != nil {
		return f.permanent(r, err, false)
	}
	children := make([]request.Request, 0, len(page.Spaces)+1)
	for _, s := range page.Spaces {
		children = append(children, request.Request{
			RequestID: root + "/" + s.Name, ParentRequestID: root,
			Space: s.Name, Members: people,
			Successor: successor, AddSuccessor: v.AddSuccessor,
			AdminAccess: true, DryRun: v.DryRun, Reason: v.Reason, RequestedBy: v.RequestedBy,
		})
	}
	n = len(children)
	expected := unknown + n*len(people)
	if page.NextPageToken != "" {
		h := sha256.Sum256([]byte(page.NextPageToken))
		children = append(children, request.Request{
			RequestID: root + "/page-" + hex.EncodeToString(h[:6]), ParentRequestID: root,
			AllSpaces: true, Members: people, PageToken: page.NextPageToken,
			Successor: successor, AddSuccessor: v.AddSuccessor,
			AdminAccess: true, DryRun: v.DryRun, Reason: v.Reason, RequestedBy: v.RequestedBy,
		})
		r.Continued = true
	}
	if err := f.publishChildren(ctx, children); err != nil {
		return err
	}
	r.Outcome, r.ExpectedResults = OutcomePlanned, &expected
	r.Detail = fmt.Sprintf("sweep page: %d spaces, %d people; continued: %v; %s", n, len(people), r.Continued, sweepScopeNote)
	return nil
}

// resolvePeople turns the people of a sweep into user ids ("users/ID"),
// publishing a failed result for each person the directory does not know.
// Protected people stay in the list: each space where they are a member
// answers refused for them.
func (f *Function) resolvePeople(ctx context.Context, sc *scope, m Message, v *request.Valid, root string, r *Result) ([]string, error) {
	protected, n, err := f.protectedSet(ctx, sc)
	r.Attempts += n
	if err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, p := range v.People {
		id, found, n, err := f.resolveUser(ctx, sc, p)
		r.Attempts += n
		if err != nil {
			return nil, err
		}
		if !found {
			fr := f.result(m, v, root+"/"+p)
			fr.ParentRequestID = root
			fr.Outcome = OutcomeFailed
			fr.Member = &Member{Name: "users/" + p}
			fr.Error = &ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + p}
			fr.Detail = "person not found in the directory: nothing was swept for them"
			if err := f.report(ctx, sc.log, fr); err != nil {
				return nil, err
			}
			continue
		}
		if protected[id] {
			sc.log.WarnContext(ctx, "a sweep names a protected person; they will be refused in every space where they are a member", "member", id)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// spaceMembership is one human membership found by members.list.
type spaceMembership struct {
	name string // spaces/S/members/ID
	role string
}

// sweepSpace checks several people in one space: one members.list (with
// admin access and a member.type filter), then a write only for each real
// membership. It publishes one result per person, not_member included.
// When the event passes MAX_EVENT_AGE on the way, the people not yet
// answered are answered expired.
func (f *Function) sweepSpace(ctx context.Context, sc *scope, m Message, v *request.Valid) error {
	space := v.SpaceNames[0]
	protected, _, err := f.protectedSet(ctx, sc)
	if err != nil {
		return f.spaceMembersStopped(ctx, sc, m, v, v.People, err)
	}
	found, owners, humans, err := f.listHumans(ctx, sc, space, v.AdminAccess)
	if err != nil {
		var te *TransientError
		if errors.As(err, &te) {
			return f.spaceMembersStopped(ctx, sc, m, v, v.People, err)
		}
		// The space cannot be read (gone, or not ours): every person
		// gets a failed result that says why.
		for _, p := range v.People {
			r := f.result(m, v, v.RequestID)
			r.Membership = request.MembershipName(strings.TrimPrefix(space, "spaces/"), strings.TrimPrefix(p, "users/"))
			r.Outcome, r.Error = OutcomeFailed, errorInfo(err)
			if err := f.report(ctx, sc.log, r); err != nil {
				return err
			}
		}
		return nil
	}
	spaceID := strings.TrimPrefix(space, "spaces/")
	for i, p := range v.People {
		id, ok, n, err := f.resolveUser(ctx, sc, p)
		if err != nil {
			return f.spaceMembersStopped(ctx, sc, m, v, v.People[i:], err)
		}
		r := f.result(m, v, v.RequestID)
		r.Attempts += n
		r.Membership = request.MembershipName(spaceID, strings.TrimPrefix(id, "users/"))
		psc := &scope{log: sc.log.With("membership", r.Membership), deadline: sc.deadline, expiry: sc.expiry}
		mem, isMember := found[id]
		switch {
		case !ok:
			r.Outcome = OutcomeFailed
			r.Error = &ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + p}
		case !isMember:
			r.Outcome, r.MembershipState = OutcomeNotMember, "NOT_A_MEMBER"
		case protected[id]:
			r.Role, r.Member = mem.role, &Member{Name: id, Type: "HUMAN"}
			refuseProtected(ctx, psc, r, id)
		default:
			r.Role, r.Member = mem.role, &Member{Name: id, Type: "HUMAN"}
			if v.DryRun {
				yes := true
				r.Outcome, r.WouldRemove, r.MembershipState = OutcomeDryRun, &yes, "JOINED"
				break
			}
			if mem.role == roleOwner && owners == 1 && humans > 1 {
				if v.Successor == "" {
					r.Outcome = OutcomeFailed
					r.Error = &ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: "the member is the only owner of the space"}
					r.Detail = onlyOwnerFix
					break
				}
				if err := f.handOff(ctx, psc, space, v, r, found); err != nil {
					var te *TransientError
					if errors.As(err, &te) {
						return f.spaceMembersStopped(ctx, sc, m, v, v.People[i:], err)
					}
					r.Outcome, r.Error = OutcomeFailed, handOffInfo(err)
					r.Detail = "hand-off to the successor failed; nothing was removed"
					break
				}
				owners++
			}
			if err := f.deleteMembership(ctx, psc, v, r, mem.name); err != nil {
				return f.spaceMembersStopped(ctx, sc, m, v, v.People[i:], err)
			}
			if r.Outcome == OutcomeRemoved && mem.role == roleOwner {
				owners--
			}
			humans--
		}
		if err := f.report(ctx, psc.log, r); err != nil {
			return err
		}
	}
	return nil
}

// listHumans reads the human memberships of a space (members.list, every
// page): by user name, with the number of owners and of humans.
func (f *Function) listHumans(ctx context.Context, sc *scope, space string, admin bool) (found map[string]spaceMembership, owners, humans int, err error) {
	found = map[string]spaceMembership{}
	token := ""
	for {
		var page *chat.ListMembershipsResponse
		_, err := f.call(ctx, sc, "members.list", read, func(ctx context.Context) error {
			var err error
			page, err = f.chat.Spaces.Members.List(space).UseAdminAccess(admin).
				Filter(`member.type = "HUMAN"`).PageSize(listPageSize).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, 0, 0, err
		}
		for _, mem := range page.Memberships {
			if mem.Member == nil || mem.Member.Type != "HUMAN" {
				continue
			}
			humans++
			if mem.Role == roleOwner {
				owners++
			}
			found[mem.Member.Name] = spaceMembership{name: mem.Name, role: mem.Role}
		}
		if token = page.NextPageToken; token == "" {
			return found, owners, humans, nil
		}
	}
}

// spaceMembersStopped handles a transient error of a space+members request:
// once the event is past MAX_EVENT_AGE (or a call gave up because it would
// be) the people not yet answered are answered expired with that error, so
// that a sweep's consumer still counts one result per person; before that
// the error is returned for redelivery.
func (f *Function) spaceMembersStopped(ctx context.Context, sc *scope, m Message, v *request.Valid, rest []string, err error) error {
	if !f.expired(m) && !errors.Is(err, errEventExpired) {
		return err
	}
	return f.expireSpaceMembers(ctx, sc.log, m, v, rest, errorInfo(err))
}

// roleOwner is the role of a space owner (Chat's "Owner"). Chat calls
// ROLE_ASSISTANT_MANAGER a manager, who does not count for the only-owner
// rule and whom a hand-off makes an owner.
const roleOwner = "ROLE_MANAGER"

// onlyOwnerFix is the detail of a failed only-owner removal.
const onlyOwnerFix = "the member is the only owner (ROLE_MANAGER) of the space: name a successor (\"successor\", with \"addSuccessor\": true if they may not be a member yet) to hand ownership over, or make another member an owner first"

// deleteMembership deletes one membership by name and fills r.
func (f *Function) deleteMembership(ctx context.Context, sc *scope, v *request.Valid, r *Result, name string) error {
	var mem *chat.Membership
	n, err := f.call(ctx, sc, "members.delete", write, func(ctx context.Context) error {
		var err error
		mem, err = f.chat.Spaces.Members.Delete(name).UseAdminAccess(v.AdminAccess).Context(ctx).Do()
		return err
	})
	r.Attempts += n
	if err != nil {
		return f.permanent(r, err, true)
	}
	r.Outcome = OutcomeRemoved
	r.describe(mem)
	sc.log.Debug("membership deleted", "role", mem.Role)
	return nil
}

// handOff makes the successor an owner (ROLE_MANAGER) of space, adding them
// first when the request allows it. known holds the space's human members
// by user name when the caller listed them (nil: look the successor up).
// The role is patched on the membership name the server assigned (read by
// members.get or members.list, or answered by members.create): Google
// documents the email alias for get and delete only.
func (f *Function) handOff(ctx context.Context, sc *scope, space string, v *request.Valid, r *Result, known map[string]spaceMembership) error {
	log := &HandOffLog{Successor: v.Successor}
	r.HandOff = log
	// The successor by user id: an email through the Directory (aliases
	// too); someone it does not know is looked up by the email alias.
	succ := strings.TrimPrefix(v.Successor, "users/")
	if request.IsEmail(succ) {
		id, found, n, err := f.lookupUser(ctx, sc, succ)
		r.Attempts += n
		if err != nil {
			return err
		}
		if found {
			succ = strings.TrimPrefix(id, "users/")
		}
	}
	spaceID := strings.TrimPrefix(space, "spaces/")
	var name, role string // name stays "" while the successor is not a member
	if known != nil && !request.IsEmail(succ) {
		if mem, ok := known["users/"+succ]; ok {
			name, role = mem.name, mem.role
		}
	} else {
		m, n, err := f.getMembership(ctx, sc, request.MembershipName(spaceID, succ), v.AdminAccess)
		r.Attempts += n
		if err != nil {
			return err
		}
		if m != nil {
			name, role = m.Name, m.Role
		}
	}
	if name == "" {
		if !v.AddSuccessor {
			return &handOffError{fmt.Sprintf("the successor %s is not a member of %s; set \"addSuccessor\": true to add them", v.Successor, space)}
		}
		created, err := f.addMember(ctx, sc, v, r, space, succ)
		if err != nil {
			return err
		}
		name, role = created.Name, created.Role
		log.Added = true
	}
	if role != roleOwner {
		n, err := f.call(ctx, sc, "members.patch", write, func(ctx context.Context) error {
			_, err := f.chat.Spaces.Members.Patch(name, &chat.Membership{Role: roleOwner}).
				UpdateMask("role").UseAdminAccess(v.AdminAccess).Context(ctx).Do()
			return err
		})
		r.Attempts += n
		if err != nil {
			return err
		}
		log.Promoted = true
	}
	return nil
}

// addMember adds a person (a user id or email) to space and returns the
// membership as the server named it. A 409 (added by an earlier delivery of
// the request) reads the membership instead.
func (f *Function) addMember(ctx context.Context, sc *scope, v *request.Valid, r *Result, space, who string) (*chat.Membership, error) {
	var created *chat.Membership
	n, err := f.call(ctx, sc, "members.create", write, func(ctx context.Context) error {
		var err error
		created, err = f.chat.Spaces.Members.Create(space, &chat.Membership{
			Member: &chat.User{Name: "users/" + who, Type: "HUMAN"},
		}).UseAdminAccess(v.AdminAccess).Context(ctx).Do()
		return err
	})
	r.Attempts += n
	if ge, ok := apiError(err); ok && ge.Code == http.StatusConflict {
		m, n, gerr := f.getMembership(ctx, sc, request.MembershipName(strings.TrimPrefix(space, "spaces/"), who), v.AdminAccess)
		r.Attempts += n
		switch {
		case gerr != nil:
			return nil, gerr
		case m == nil:
			return nil, err
		}
		return m, nil
	}
	return created, err
}

// handOffError is a hand-off that cannot be done as requested.
type handOffError struct{ msg string }

func (e *handOffError) Error() string { return e.msg }

// handOffInfo extends errorInfo with hand-off errors.
func handOffInfo(err error) *ErrorInfo {
	var he *handOffError
	if errors.As(err, &he) {
		return &ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: he.msg}
	}
	return errorInfo(err)
}

// expireSpaceMembers answers the given people of a space+members request
// expired, so that a sweep's consumer still counts one result per person.
func (f *Function) expireSpaceMembers(ctx context.Context, log *slog.Logger, m Message, v *request.Valid, people []string, info *ErrorInfo) error {
	spaceID := strings.TrimPrefix(v.SpaceNames[0], "spaces/")
	for _, p := range people {
		r := f.result(m, v, v.RequestID)
		r.Membership = request.MembershipName(spaceID, strings.TrimPrefix(p, "users/"))
		r.Outcome, r.Error = OutcomeExpired, info
		if err := f.report(ctx, log, r); err != nil {
			return err
		}
	}
	return nil
}
