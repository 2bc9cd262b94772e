package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/api/chat/v1"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/request"
)

// The membership operations: each is one or a few API calls through call,
// and decides nothing about outcomes (the flows do).

// Page sizes: the largest that spaces.search and members.list allow.
const (
	searchPageSize = 1000
	listPageSize   = 1000
)

// roleOwner is the role of a space owner (Chat's "Owner"). Chat calls
// ROLE_ASSISTANT_MANAGER a manager, who does not count for the only-owner
// rule and whom a hand-off makes an owner.
const roleOwner = "ROLE_MANAGER"

// getMembership reads a membership; a 404 yields (nil, nil).
func (f *Engine) getMembership(ctx context.Context, j *job, name string, admin bool) (*chat.Membership, error) {
	var m *chat.Membership
	err := f.call(ctx, j, "members.get", read, func(ctx context.Context) error {
		var err error
		m, err = f.chat.Spaces.Members.Get(name).UseAdminAccess(admin).Context(ctx).Do()
		return err
	})
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound {
		return nil, nil
	}
	return m, err
}

// deleteMembership deletes one membership by name. What the API answers
// is not read: Google documents that it answers the Membership, not what
// that holds, so the results say what the function knows instead.
func (f *Engine) deleteMembership(ctx context.Context, j *job, name string, admin bool) error {
	return f.call(ctx, j, "members.delete", write, func(ctx context.Context) error {
		_, err := f.chat.Spaces.Members.Delete(name).UseAdminAccess(admin).Context(ctx).Do()
		return err
	})
}

// addMember adds a person (a user id or email) to space and returns the
// membership as the server named it. A 409 (added by an earlier delivery of
// the request, or by this call's own attempt whose answer was lost) reads
// the membership instead.
func (f *Engine) addMember(ctx context.Context, j *job, space, who string, admin bool) (*chat.Membership, error) {
	created, err := f.createMembership(ctx, j, space, who, admin)
	if ge, ok := apiError(err); ok && ge.Code == http.StatusConflict {
		m, gerr := f.getMembership(ctx, j, request.MembershipName(strings.TrimPrefix(space, "spaces/"), who), admin)
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

// createMembership adds a person (a user id or email) to space as a human
// member (members.create: the server answers with the name it assigned and
// the state, JOINED or INVITED; a new membership is always ROLE_MEMBER).
func (f *Engine) createMembership(ctx context.Context, j *job, space, who string, admin bool) (*chat.Membership, error) {
	var created *chat.Membership
	err := f.call(ctx, j, "members.create", write, func(ctx context.Context) error {
		var err error
		created, err = f.chat.Spaces.Members.Create(space, &chat.Membership{
			Member: &chat.User{Name: "users/" + who, Type: "HUMAN"},
		}).UseAdminAccess(admin).Context(ctx).Do()
		return err
	})
	return created, err
}

// promote makes the membership name (as the server assigned it) an owner.
func (f *Engine) promote(ctx context.Context, j *job, name string, admin bool) error {
	_, err := f.setRole(ctx, j, name, roleOwner, admin)
	return err
}

// setRole gives the membership name (as the server assigned it) role
// (members.patch, updateMask=role) and returns it as the API answered. A
// patch that failed after an attempt whose answer was lost is settled by
// reading the membership: when it has the role, the patch was made.
func (f *Engine) setRole(ctx context.Context, j *job, name, role string, admin bool) (*chat.Membership, error) {
	var m *chat.Membership
	err := f.call(ctx, j, "members.patch", write, func(ctx context.Context) error {
		var err error
		m, err = f.chat.Spaces.Members.Patch(name, &chat.Membership{Role: role}).
			UpdateMask("role").UseAdminAccess(admin).Context(ctx).Do()
		return err
	})
	if err != nil && answerLost(err) {
		if cur, gerr := f.getMembership(ctx, j, name, admin); gerr == nil && cur != nil && cur.Role == role {
			j.log.InfoContext(ctx, "a patch's answer was lost; the membership has the role: settled", "role", role)
			return cur, nil
		}
	}
	return m, err
}

// spaceMembership is one human membership found by members.list.
type spaceMembership struct {
	name  string // spaces/S/members/ID, as the server named it
	role  string
	state string // JOINED; INVITED only where invitations were listed
}

// humans are the human memberships of a space, by user name ("users/ID"),
// with the number of owners, and the Google Groups that are members of the
// space ("groups/ID") when they were asked for.
type humans struct {
	byUser map[string]spaceMembership
	owners int
	groups map[string]bool
}

// listHumans reads the human memberships of a space (members.list, every
// page, with the member.type filter that admin access requires). With
// groups it asks for the space's group memberships in the same calls:
// showGroups=true, and the filter member.type != "BOT", which Google Group
// memberships (no member, so no member.type) pass and member.type = "HUMAN"
// would drop.
func (f *Engine) listHumans(ctx context.Context, j *job, space string, admin, groups bool) (humans, error) {
	h := humans{byUser: map[string]spaceMembership{}, groups: map[string]bool{}}
	filter := `member.type = "HUMAN"`
	if groups {
		filter = `member.type != "BOT"`
	}
	err := f.listMemberships(ctx, j, space, admin, filter, groups, func(mem *chat.Membership) {
		if groups && mem.GroupMember != nil && mem.Member == nil {
			h.groups[mem.GroupMember.Name] = true
			return
		}
		if mem.Member == nil || mem.Member.Type != "HUMAN" {
			return
		}
		if mem.Role == roleOwner {
			h.owners++
		}
		h.byUser[mem.Member.Name] = spaceMembership{name: mem.Name, role: mem.Role, state: mem.State}
	})
	if err != nil {
		return humans{}, err
	}
	return h, nil
}

// ownersFilter selects a space's owners, in a form the members.list
// reference gives as valid ("member.type = \"HUMAN\" AND role =
// \"ROLE_MANAGER\""), which admin access accepts too.
const ownersFilter = `member.type = "HUMAN" AND role = "ROLE_MANAGER"`

// onlyOwner reports whether who ("users/ID") is the only owner of space: no
// other owner is listed by members.list filtered by role (every page).
// This is what the function knows before it deletes an owner, rather than
// reading it from the error of a refused delete, which Google does not
// document.
func (f *Engine) onlyOwner(ctx context.Context, j *job, space, who string, admin bool) (bool, error) {
	others := 0
	err := f.listMemberships(ctx, j, space, admin, ownersFilter, false, func(mem *chat.Membership) {
		if n := memberName(mem); n != "" && n != who && mem.Role == roleOwner {
			others++
		}
	})
	return others == 0, err
}

// listMemberships reads every page of members.list of space with filter
// (and showGroups when groups is set) and hands each membership to each.
func (f *Engine) listMemberships(ctx context.Context, j *job, space string, admin bool, filter string, groups bool, each func(*chat.Membership)) error {
	token := ""
	for {
		var page *chat.ListMembershipsResponse
		err := f.call(ctx, j, "members.list", read, func(ctx context.Context) error {
			var err error
			call := f.chat.Spaces.Members.List(space).UseAdminAccess(admin).
				Filter(filter).PageSize(listPageSize).PageToken(token)
			if groups {
				call.ShowGroups(true)
			}
			page, err = call.Context(ctx).Do()
			return err
		})
		if err != nil {
			return err
		}
		for _, mem := range page.Memberships {
			each(mem)
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

// handOff makes the request's successor an owner (ROLE_MANAGER) of space,
// adding them first when the request allows it. known holds the space's
// human members when the caller listed them (nil: look the successor up).
// The successor is identified by user id (an email through the Directory);
// the role is patched on the membership name the server assigned (read by
// members.get or members.list, or answered by members.create): Google
// documents the email alias for get and delete only. A successor whose
// membership is INVITED (read, or answered by members.create for a person
// whose auto-accept is off) has not joined and is not made the owner: a
// *handOffError says they must accept first.
func (f *Engine) handOff(ctx context.Context, j *job, space string, known map[string]spaceMembership) (*contract.HandOffLog, error) {
	v := j.req
	log := &contract.HandOffLog{Successor: v.Successor}
	succ := strings.TrimPrefix(v.Successor, "users/")
	if request.IsEmail(succ) {
		id, found, err := f.lookupUser(ctx, j, succ)
		if err != nil {
			return log, err
		}
		if found {
			succ = strings.TrimPrefix(id, "users/")
		}
	}
	var name, role, state string // name stays "" while the successor is not a member
	if known != nil && !request.IsEmail(succ) {
		if mem, ok := known["users/"+succ]; ok {
			name, role, state = mem.name, mem.role, mem.state
		}
	} else {
		m, err := f.getMembership(ctx, j, request.MembershipName(strings.TrimPrefix(space, "spaces/"), succ), v.AdminAccess)
		if err != nil {
			return log, err
		}
		if m != nil {
			name, role, state = m.Name, m.Role, m.State
		}
	}
	switch {
	case name != "" && state == "INVITED":
		return log, invitedSuccessor(v.Successor, space)
	case name == "" && !v.AddSuccessor:
		msg := fmt.Sprintf("the successor %s is not a member of %s; set \"addSuccessor\": true to add them", v.Successor, space)
		if known != nil {
			// Admin access lists joined members only (showInvited needs
			// user authentication).
			msg += " (or, if they were invited and have not joined, they must accept first)"
		}
		return log, &handOffError{msg: msg}
	case name != "" && role == roleOwner:
		return log, nil
	}
	// The hand-off's writes are idempotent (a 409 is read back, a patch
	// to the role the member has changes nothing): its intent is recorded
	// once, and a redelivery that finds it goes on.
	succName := request.MembershipName(strings.TrimPrefix(space, "spaces/"), succ)
	if _, _, err := f.store(j).Intend(ctx, ledger.Intent{
		RequestID: v.RequestID, Root: ledger.RootOf(v.RequestID, v.ParentRequestID),
		Membership: succName, Member: "users/" + succ, Role: role, Action: ledger.ActionHandOff,
	}); err != nil {
		return log, ledgerError("hand-off intent", err)
	}
	if name == "" {
		created, err := f.addMember(ctx, j, space, succ, v.AdminAccess)
		if err != nil {
			return log, err
		}
		name, role = created.Name, created.Role
		log.Added = true
		if created.State == "INVITED" {
			// Invited, not added (their auto-accept is off): someone who
			// has not joined is not made the owner.
			return log, invitedSuccessor(v.Successor, space)
		}
	}
	if role != roleOwner {
		if err := f.promote(ctx, j, name, v.AdminAccess); err != nil {
			return log, err
		}
		log.Promoted = true
	}
	if err := f.store(j).Decide(ctx, v.RequestID, succName, ledger.Decision{
		Root: ledger.RootOf(v.RequestID, v.ParentRequestID), Outcome: ledger.ActionHandOff, Role: roleOwner,
	}); err != nil {
		return log, ledgerError("hand-off", err)
	}
	return log, nil
}

// handOffError is a hand-off that cannot be done as requested; fix, when
// set, says what to do (it goes into the result's detail).
type handOffError struct{ msg, fix string }

func (e *handOffError) Error() string { return e.msg }

// invitedSuccessor is the hand-off error of a successor whose membership of
// space is INVITED: they have not joined, and are not made the owner.
func invitedSuccessor(successor, space string) *handOffError {
	return &handOffError{
		msg: fmt.Sprintf("the successor %s is invited to %s but has not joined (membership state INVITED): someone who has not joined is not made the owner", successor, space),
		fix: "the successor must accept the invitation to the space, or name another successor; then publish a new request for this space",
	}
}

// lookupUser asks the Directory for a person named by id or email (users.get
// answers for aliases too) and returns "users/ID". found is false when the
// directory does not know them; other Directory refusals are transient (an
// operator must grant the scope or the admin role).
func (f *Engine) lookupUser(ctx context.Context, j *job, seg string) (id string, found bool, err error) {
	u, found, err := f.directoryUser(ctx, j, strings.TrimPrefix(seg, "users/"))
	if err != nil || !found {
		return "", false, err
	}
	return "users/" + u.Id, true, nil
}

// resolveUser returns "users/ID" for a member segment: an id as is, an
// email through the Directory. found is false for a person the directory
// does not know.
func (f *Engine) resolveUser(ctx context.Context, j *job, seg string) (id string, found bool, err error) {
	seg = strings.TrimPrefix(seg, "users/")
	if !request.IsEmail(seg) {
		return "users/" + seg, true, nil
	}
	return f.lookupUser(ctx, j, seg)
}

func memberName(m *chat.Membership) string {
	if m == nil || m.Member == nil {
		return ""
	}
	return m.Member.Name
}
