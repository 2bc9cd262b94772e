// The membership methods of the Chat emulation: members.get, members.delete,
// members.create and members.patch, and the scope and access checks they
// share.

package emulator

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"
)

type userJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type groupJSON struct {
	Name string `json:"name"`
}

type membershipJSON struct {
	Name        string     `json:"name"`
	State       string     `json:"state"`
	Role        string     `json:"role,omitempty"`
	Member      *userJSON  `json:"member,omitempty"`
	GroupMember *groupJSON `json:"groupMember,omitempty"`
	CreateTime  string     `json:"createTime,omitempty"`
	DeleteTime  string     `json:"deleteTime,omitempty"`
}

// membershipOf is the API's view of a membership. A Google Group's
// membership has groupMember (groups/ID) and no member; its role is
// MEMBERSHIP_ROLE_UNSPECIFIED, which the API leaves out.
func membershipOf(space string, m *memberState, state string) *membershipJSON {
	if m.group {
		return &membershipJSON{Name: space + "/members/" + m.id, State: state, GroupMember: &groupJSON{Name: "groups/" + m.id}, CreateTime: m.created}
	}
	if state == "JOINED" && m.invited {
		state = "INVITED"
	}
	return &membershipJSON{
		Name:       space + "/members/" + m.id,
		State:      state,
		Role:       m.role,
		Member:     &userJSON{Name: "users/" + m.id, Type: m.typ},
		CreateTime: m.created,
	}
}

var (
	errNoSpace  = func(s string) *apiError { return errf(404, "", "Space %s not found.", s) }
	errNoMember = func(n string) *apiError { return errf(404, "", "Membership %s not found.", n) }
)

// authorize checks scopes and admin status common to membership methods.
// userScopes / adminScopes are the accepted scopes without / with admin
// access.
func (c *Chat) authorize(rq *request, userScopes, adminScopes []string) *apiError {
	if rq.admin {
		if !hasScope(rq.scopes, adminScopes...) {
			return errf(403, "", "Request had insufficient authentication scopes for useAdminAccess (needs one of %s).", strings.Join(adminScopes, ", "))
		}
		c.mu.RLock()
		isAdmin := c.admins[rq.caller]
		c.mu.RUnlock()
		if !isAdmin {
			return errf(403, "", "The caller is not a Google Workspace administrator with the Chat and Google Meet privilege, so it can't use admin access.")
		}
		return nil
	}
	if !hasScope(rq.scopes, userScopes...) {
		return errf(403, "", "Request had insufficient authentication scopes (needs one of %s).", strings.Join(userScopes, ", "))
	}
	return nil
}

// Scopes accepted by the membership methods, without and with admin access.
var (
	readScopes       = []string{ScopeChatMemberships, ScopeChatMembershipsReadonly}
	adminReadScopes  = []string{ScopeChatAdminMemberships, ScopeChatAdminMembershipsReadonly}
	adminWriteScopes = []string{ScopeChatAdminMemberships}
)

// authorizeRead checks the scopes of members.get and members.list.
func (c *Chat) authorizeRead(rq *request) *apiError {
	return c.authorize(rq, readScopes, adminReadScopes)
}

// authorizeWrite checks a members.create or members.delete call. An app
// membership (users/app) needs chat.memberships.app instead of
// chat.memberships, and admin access cannot be used for it: the error then
// says that useAdminAccess can't be used to appAction.
func (c *Chat) authorizeWrite(rq *request, isApp bool, appAction string) *apiError {
	if isApp && rq.admin {
		return errf(400, "", "useAdminAccess can't be used to %s.", appAction)
	}
	userScopes := []string{ScopeChatMemberships}
	if isApp {
		userScopes = []string{ScopeChatMembershipsApp}
	}
	return c.authorize(rq, userScopes, adminWriteScopes)
}

// memberLocked resolves the member segment seg (id, primary email, "app") and
// returns the user id (empty for an unknown email) and that user's
// membership of s, or nil.
func (c *Chat) memberLocked(s *spaceState, seg string) (string, *memberState) {
	id, known := c.resolveLocked(seg)
	if !known {
		return id, nil
	}
	return id, s.members[id]
}

// spaceForLocked finds the space and checks the caller's access to it:
// with admin access it must be a SPACE; without, the caller must be a
// member. It returns the caller's membership (nil with admin access).
func (c *Chat) spaceForLocked(rq *request) (*spaceState, *memberState, *apiError) {
	s := c.spaces[rq.space]
	if s == nil {
		return nil, nil, errNoSpace(rq.space)
	}
	if rq.admin {
		if s.spaceType != SpaceTypeSpace {
			return nil, nil, errf(400, "", "useAdminAccess is only supported for spaces of type SPACE; %s is a %s.", s.name, s.spaceType)
		}
		return s, nil, nil
	}
	me := s.members[rq.caller]
	if me == nil {
		return nil, nil, errf(403, "", "The caller is not a member of %s.", s.name)
	}
	return s, me, nil
}

// inSpace runs f on the space rq names, holding c.mu (for writing when write
// is set), once spaceForLocked has found it and checked the caller's access;
// me is the caller's membership (nil with admin access).
func (c *Chat) inSpace(rq *request, write bool, f func(s *spaceState, me *memberState) (any, *apiError)) (any, *apiError) {
	if write {
		c.mu.Lock()
		defer c.mu.Unlock()
	} else {
		c.mu.RLock()
		defer c.mu.RUnlock()
	}
	s, me, e := c.spaceForLocked(rq)
	if e != nil {
		return nil, e
	}
	return f(s, me)
}

// managesSpace reports whether a member of this role may add and remove
// others: a space owner (ROLE_MANAGER) or manager (ROLE_ASSISTANT_MANAGER).
func managesSpace(role string) bool {
	return role == RoleManager || role == RoleAssistantManager
}

// timestamp is the current time as the API writes it (RFC 3339, UTC).
func timestamp() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (c *Chat) deleteMember(rq *request) (any, *apiError) {
	if e := c.authorizeWrite(rq, rq.member == "app", "delete app memberships"); e != nil {
		return nil, e
	}
	return c.inSpace(rq, true, func(s *spaceState, me *memberState) (any, *apiError) {
		if s.spaceType == SpaceTypeDirectMessage {
			return nil, errf(400, "", "Memberships of direct messages can't be deleted.")
		}
		id, m := c.memberLocked(s, rq.member)
		if me != nil && id != rq.caller && !managesSpace(me.role) {
			return nil, errf(403, "", "The caller doesn't have permission to delete memberships of %s: only space owners and managers can remove other members.", s.name)
		}
		if m == nil {
			return nil, errNoMember(rq.name)
		}
		if me != nil && id != rq.caller && me.role == RoleAssistantManager && m.role != RoleMember {
			return nil, errf(403, "", "The caller doesn't have permission to delete %s: a space manager can remove members only.", rq.name)
		}
		if s.spaceType == SpaceTypeSpace && m.role == RoleManager && s.managers == 1 {
			// Google's guide: a space's only owner can't be removed
			// (whoever else is in it); the code is the emulation's guess.
			code, status := c.opts.OnlyOwnerRefusal.Code, c.opts.OnlyOwnerRefusal.Status
			if code == 0 {
				code, status = 400, "FAILED_PRECONDITION"
			}
			return nil, errf(code, status, "The membership cannot be deleted because it is the only owner of the space. Make another member an owner first.")
		}
		c.removeMemberLocked(s, m)
		if c.opts.EmptyDeleteAnswer {
			return &struct{}{}, nil
		}
		out := membershipOf(s.name, m, "NOT_A_MEMBER")
		out.DeleteTime = timestamp()
		return out, nil
	})
}

func (c *Chat) getMember(rq *request) (any, *apiError) {
	if rq.member == "app" && rq.admin {
		return nil, errf(400, "", "useAdminAccess can't be used to get app memberships.")
	}
	if e := c.authorizeRead(rq); e != nil {
		return nil, e
	}
	return c.inSpace(rq, false, func(s *spaceState, _ *memberState) (any, *apiError) {
		_, m := c.memberLocked(s, rq.member)
		if m == nil {
			return nil, errNoMember(rq.name)
		}
		return membershipOf(s.name, m, "JOINED"), nil
	})
}

type membershipIn struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Role        string `json:"role"`
	CreateTime  string `json:"createTime"`
	DeleteTime  string `json:"deleteTime"`
	Affiliation string `json:"affiliation"`
	Member      *struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		DisplayName string `json:"displayName"`
		DomainID    string `json:"domainId"`
		Email       string `json:"email"`
		AvatarURL   string `json:"avatarUrl"`
		IsAnonymous bool   `json:"isAnonymous"`
	} `json:"member"`
	GroupMember *struct {
		Name string `json:"name"`
	} `json:"groupMember"`
}

func decodeMembership(w http.ResponseWriter, r *http.Request) (*membershipIn, *apiError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, errf(400, "", "Content-Type must be application/json.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	var m membershipIn
	if err := dec.Decode(&m); err != nil {
		return nil, errf(400, "", "Invalid JSON payload received. %v", err)
	}
	if dec.More() {
		return nil, errf(400, "", "Invalid JSON payload received. Unexpected data after the membership.")
	}
	return &m, nil
}

func (c *Chat) createMember(w http.ResponseWriter, r *http.Request, rq *request) (any, *apiError) {
	in, e := decodeMembership(w, r)
	if e != nil {
		return nil, e
	}
	if in.GroupMember != nil {
		return nil, errf(400, "", "Google Group memberships are not supported by the emulator.")
	}
	if in.Member == nil || in.Member.Name == "" {
		return nil, errf(400, "", "membership.member.name is required.")
	}
	seg, ok := strings.CutPrefix(in.Member.Name, "users/")
	if !ok || !validSegment(seg) {
		return nil, errf(400, "", "Invalid user name %q: must be users/{user}.", in.Member.Name)
	}
	isApp := seg == "app"
	typ := in.Member.Type
	switch {
	case typ == "" && isApp, typ == MemberTypeBot && isApp:
		typ = MemberTypeBot
	case typ == "" || typ == MemberTypeHuman:
		if isApp {
			return nil, errf(400, "", "users/app must have type BOT.")
		}
		typ = MemberTypeHuman
	default:
		return nil, errf(400, "", "Invalid member type %q: only HUMAN users and users/app (BOT) can be added.", typ)
	}
	if e := c.authorizeWrite(rq, isApp, "add apps"); e != nil {
		return nil, e
	}
	return c.inSpace(rq, true, func(s *spaceState, me *memberState) (any, *apiError) {
		if s.spaceType == SpaceTypeDirectMessage {
			return nil, errf(400, "", "Members can't be added to direct messages.")
		}
		if me != nil && s.spaceType == SpaceTypeSpace && !managesSpace(me.role) {
			return nil, errf(403, "", "The caller doesn't have permission to add members to %s: only space owners and managers can.", s.name)
		}
		id, known := c.resolveLocked(seg)
		if !known {
			return nil, errf(404, "", "User %s not found.", in.Member.Name)
		}
		user, internal := c.byID[id]
		if internal && user.Deleted {
			// Gone from the directory: nobody to add.
			return nil, errf(404, "", "User %s not found.", in.Member.Name)
		}
		if rq.admin && !internal {
			return nil, errf(400, "", "Creating memberships for users outside the administrator's Google Workspace organization isn't supported using admin access.")
		}
		if s.members[id] != nil {
			return nil, errf(409, "", "Membership %s/members/%s already exists.", s.name, id)
		}
		// The role of the body is ignored: it "can only be used as input
		// in UpdateMembership".
		m := &memberState{id: id, typ: typ, role: RoleMember, created: timestamp(), invited: typ == MemberTypeHuman && user.AutoAcceptOff}
		c.addMemberLocked(s, m)
		return membershipOf(s.name, m, "JOINED"), nil
	})
}

func (c *Chat) patchMember(w http.ResponseWriter, r *http.Request, rq *request) (any, *apiError) {
	mask := rq.q.Get("updateMask")
	if mask == "" {
		return nil, errf(400, "", "updateMask is required.")
	}
	for _, f := range strings.Split(mask, ",") {
		if strings.TrimSpace(f) != "role" {
			return nil, errf(400, "", "Invalid updateMask %q: only role can be updated.", mask)
		}
	}
	in, e := decodeMembership(w, r)
	if e != nil {
		return nil, e
	}
	if in.Role != RoleMember && in.Role != RoleManager && in.Role != RoleAssistantManager {
		return nil, errf(400, "", "Invalid role %q: must be ROLE_MEMBER, ROLE_ASSISTANT_MANAGER or ROLE_MANAGER.", in.Role)
	}
	if rq.member == "app" {
		return nil, errf(400, "", "The role of an app membership can't be changed.")
	}
	if strings.Contains(rq.member, "@") {
		// Google documents the email alias for members.get and
		// members.delete only; patch takes "the resource name of the
		// membership, assigned by the server".
		return nil, errf(400, "", "Invalid membership name %q: members.patch takes the name the server assigned, spaces/{space}/members/{member id}; an email address is not accepted.", rq.name)
	}
	if e := c.authorize(rq, []string{ScopeChatMemberships}, []string{ScopeChatAdminMemberships}); e != nil {
		return nil, e
	}
	return c.inSpace(rq, true, func(s *spaceState, me *memberState) (any, *apiError) {
		if s.spaceType != SpaceTypeSpace {
			return nil, errf(400, "", "Roles can only be changed in spaces of type SPACE.")
		}
		if me != nil && me.role != RoleManager {
			return nil, errf(403, "", "The caller doesn't have permission to change roles in %s: only space owners can.", s.name)
		}
		_, m := c.memberLocked(s, rq.member)
		if m == nil {
			return nil, errNoMember(rq.name)
		}
		if m.typ != MemberTypeHuman {
			return nil, errf(400, "", "The role of an app membership can't be changed.")
		}
		if m.invited && in.Role == RoleManager {
			// An assumption (Google documents no such rule): someone who
			// has not joined is not made an owner.
			return nil, errf(400, "FAILED_PRECONDITION", "The membership %s is invited and hasn't joined the space: only a member who has joined can be made an owner.", rq.name)
		}
		if m.role == RoleManager && in.Role != RoleManager && s.managers == 1 {
			return nil, errf(400, "FAILED_PRECONDITION", "The membership cannot be changed because it is the only owner of the space. Make another member an owner first.")
		}
		if m.role != in.Role {
			if in.Role == RoleManager {
				s.managers++
			} else if m.role == RoleManager {
				s.managers--
			}
			m.role = in.Role
		}
		return membershipOf(s.name, m, "JOINED"), nil
	})
}
