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
	"time"

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

// publishChildren validates and publishes child requests, returning once
// every one is acknowledged. A child that fails validation is a bug in the
// parent's validation, reported as an error.
func (f *Function) publishChildren(ctx context.Context, children []request.Request) error {
	if f.requests == nil {
		return errNoRequestTopic
	}
	results := make([]*pubsub.PublishResult, 0, len(children))
	for _, c := range children {
		if _, err := request.Validate(c); err != nil {
			return fmt.Errorf("child request %s: %w", c.RequestID, err)
		}
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding child request: %w", err)
		}
		results = append(results, f.requests.Publish(ctx, &pubsub.Message{
			Data:       data,
			Attributes: map[string]string{"requestId": c.RequestID, "parentRequestId": c.ParentRequestID},
		}))
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

// sweepPage handles one page of a sweep: on the first page it resolves the
// people named by email to user ids (one directory read each), then it
// reads one page of spaces.search, publishes one child request per space
// and a continuation for the next page, and reports a planned result.
func (f *Function) sweepPage(ctx context.Context, log *slog.Logger, m Message, v *request.Valid, r *Result, deadline time.Time) error {
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
		ids, err := f.resolvePeople(ctx, log, m, v, root, deadline)
		if err != nil {
			return err
		}
		unknown = len(v.People) - len(ids)
		people = ids
		if successor != "" {
			id, found, err := f.resolveUser(ctx, successor, deadline)
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
	attempts, err := f.call(ctx, "spaces.search", read, deadline, func(ctx context.Context) error {
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
func (f *Function) resolvePeople(ctx context.Context, log *slog.Logger, m Message, v *request.Valid, root string, deadline time.Time) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	for _, p := range v.People {
		id, found, err := f.resolveUser(ctx, p, deadline)
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
			if err := f.report(ctx, log, fr); err != nil {
				return nil, err
			}
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// resolveUser returns "users/ID" for a member segment: an id as is, an email
// through the directory (users.get). found is false for an unknown person.
func (f *Function) resolveUser(ctx context.Context, seg string, deadline time.Time) (id string, found bool, err error) {
	seg = strings.TrimPrefix(seg, "users/")
	if !request.IsEmail(seg) {
		return "users/" + seg, true, nil
	}
	var uid string
	_, err = f.call(ctx, "users.get", read, deadline, func(ctx context.Context) error {
		u, err := f.dir.Users.Get(seg).Context(ctx).Do()
		if err == nil {
			uid = u.Id
		}
		return err
	})
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound {
		return "", false, nil
	}
	if err != nil {
		if _, ok := err.(*TransientError); ok {
			return "", false, err
		}
		// Any other directory refusal (403: not an admin, missing scope)
		// needs an operator: keep the request.
		return "", false, &TransientError{Op: "users.get", Err: err}
	}
	return "users/" + uid, true, nil
}

// spaceMembership is one human membership found by members.list.
type spaceMembership struct {
	name string // spaces/S/members/ID
	role string
}

// sweepSpace checks several people in one space: one members.list (with
// admin access and a member.type filter), then a write only for each real
// membership. It publishes one result per person, not_member included.
func (f *Function) sweepSpace(ctx context.Context, log *slog.Logger, m Message, v *request.Valid, deadline time.Time) error {
	space := v.SpaceNames[0]
	found := map[string]spaceMembership{}
	managers, humans := 0, 0
	token := ""
	for {
		var page *chat.ListMembershipsResponse
		_, err := f.call(ctx, "members.list", read, deadline, func(ctx context.Context) error {
			var err error
			page, err = f.chat.Spaces.Members.List(space).UseAdminAccess(v.AdminAccess).
				Filter(`member.type = "HUMAN"`).PageSize(listPageSize).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			if _, ok := err.(*TransientError); ok {
				return err
			}
			// The space cannot be read (gone, or not ours): every person
			// gets a failed result that says why.
			for _, p := range v.People {
				r := f.result(m, v, v.RequestID)
				r.Membership = request.MembershipName(strings.TrimPrefix(space, "spaces/"), strings.TrimPrefix(p, "users/"))
				r.Outcome, r.Error = OutcomeFailed, errorInfo(err)
				if err := f.report(ctx, log, r); err != nil {
					return err
				}
			}
			return nil
		}
		for _, mem := range page.Memberships {
			if mem.Member == nil || mem.Member.Type != "HUMAN" {
				continue
			}
			humans++
			if mem.Role == "ROLE_MANAGER" {
				managers++
			}
			found[mem.Member.Name] = spaceMembership{name: mem.Name, role: mem.Role}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	spaceID := strings.TrimPrefix(space, "spaces/")
	for _, p := range v.People {
		id, ok, err := f.resolveUser(ctx, p, deadline)
		if err != nil {
			return err
		}
		seg := strings.TrimPrefix(id, "users/")
		r := f.result(m, v, v.RequestID)
		r.Membership = request.MembershipName(spaceID, seg)
		lg := log.With("membership", r.Membership)
		mem, isMember := found[id]
		switch {
		case !ok:
			r.Outcome = OutcomeFailed
			r.Error = &ErrorInfo{Code: http.StatusNotFound, Status: "NOT_FOUND", Message: "the directory does not know " + p}
		case f.protected[strings.ToLower(seg)] || f.protected[strings.ToLower(p)]:
			r.Outcome, r.Detail = OutcomeRefused, "member is in PROTECTED_MEMBERS"
		case !isMember:
			r.Outcome, r.MembershipState = OutcomeNotMember, "NOT_A_MEMBER"
		default:
			r.Role, r.Member = mem.role, &Member{Name: id, Type: "HUMAN"}
			if v.DryRun {
				yes := true
				r.Outcome, r.WouldRemove, r.MembershipState = OutcomeDryRun, &yes, "JOINED"
				break
			}
			onlyManager := mem.role == "ROLE_MANAGER" && managers == 1 && humans > 1
			if onlyManager {
				if v.Successor == "" {
					r.Outcome = OutcomeFailed
					r.Error = &ErrorInfo{Code: http.StatusBadRequest, Status: "FAILED_PRECONDITION", Message: "the member is the only manager of the space"}
					r.Detail = onlyManagerFix
					break
				}
				if err := f.handOff(ctx, space, v, r, found, deadline); err != nil {
					if _, ok := err.(*TransientError); ok {
						return err
					}
					r.Outcome, r.Error = OutcomeFailed, handOffInfo(err)
					r.Detail = "hand-off to the successor failed; nothing was removed"
					break
				}
				managers++
			}
			if err := f.deleteMembership(ctx, lg, v, r, mem.name, deadline); err != nil {
				return err
			}
			if r.Outcome == OutcomeRemoved && mem.role == "ROLE_MANAGER" {
				managers--
			}
			humans--
		}
		if err := f.report(ctx, lg, r); err != nil {
			return err
		}
	}
	return nil
}

// onlyManagerFix is the detail of a failed only-manager removal.
const onlyManagerFix = "the member is the only manager of the space: name a successor (\"successor\", with \"addSuccessor\": true if they may not be a member yet) to hand the manager role over, or promote another member first"

// deleteMembership deletes one membership by name and fills r.
func (f *Function) deleteMembership(ctx context.Context, log *slog.Logger, v *request.Valid, r *Result, name string, deadline time.Time) error {
	var mem *chat.Membership
	n, err := f.call(ctx, "members.delete", write, deadline, func(ctx context.Context) error {
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
	log.Debug("membership deleted", "role", mem.Role)
	return nil
}

// handOff makes the successor a manager of space, adding them first when
// the request allows it. known holds the space's human members by user name
// when the caller listed them (nil: look the successor up).
func (f *Function) handOff(ctx context.Context, space string, v *request.Valid, r *Result, known map[string]spaceMembership, deadline time.Time) error {
	succ := strings.TrimPrefix(v.Successor, "users/")
	log := &HandOffLog{Successor: v.Successor}
	r.HandOff = log
	spaceID := strings.TrimPrefix(space, "spaces/")
	name := request.MembershipName(spaceID, succ)
	var isMember bool
	var role string
	if known != nil && !request.IsEmail(succ) {
		mem, ok := known["users/"+succ]
		isMember, role = ok, mem.role
	} else {
		m, n, err := f.getMembership(ctx, name, v.AdminAccess, deadline)
		r.Attempts += n
		if err != nil {
			return err
		}
		if m != nil {
			isMember, role = true, m.Role
		}
	}
	if !isMember {
		if !v.AddSuccessor {
			return &handOffError{fmt.Sprintf("the successor %s is not a member of %s; set \"addSuccessor\": true to add them", v.Successor, space)}
		}
		n, err := f.call(ctx, "members.create", write, deadline, func(ctx context.Context) error {
			_, err := f.chat.Spaces.Members.Create(space, &chat.Membership{
				Member: &chat.User{Name: "users/" + succ, Type: "HUMAN"},
			}).UseAdminAccess(v.AdminAccess).Context(ctx).Do()
			if ge, ok := apiError(err); ok && ge.Code == http.StatusConflict {
				return nil // added by an earlier delivery
			}
			return err
		})
		r.Attempts += n
		if err != nil {
			return err
		}
		log.Added = true
	}
	if role != "ROLE_MANAGER" {
		n, err := f.call(ctx, "members.patch", write, deadline, func(ctx context.Context) error {
			_, err := f.chat.Spaces.Members.Patch(name, &chat.Membership{Role: "ROLE_MANAGER"}).
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

// expireSpaceMembers answers every person of a space+members request
// expired, so that a sweep's consumer still counts one result per person.
func (f *Function) expireSpaceMembers(ctx context.Context, log *slog.Logger, m Message, v *request.Valid, info *ErrorInfo) error {
	spaceID := strings.TrimPrefix(v.SpaceNames[0], "spaces/")
	for _, p := range v.People {
		r := f.result(m, v, v.RequestID)
		r.Membership = request.MembershipName(spaceID, strings.TrimPrefix(p, "users/"))
		r.Outcome, r.Error = OutcomeExpired, info
		if err := f.report(ctx, log, r); err != nil {
			return err
		}
	}
	return nil
}
