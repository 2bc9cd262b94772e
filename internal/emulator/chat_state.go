// The state of the Chat emulation: spaces and their members, as seeded and
// as changed by the membership methods.

package emulator

import (
	"sort"
	"strings"
	"time"
)

type memberState struct {
	id      string // user id, or "app"; the group id of a group membership
	group   bool   // a Google Group's membership: in spaceState.list only
	typ     string
	role    string
	seq     int64
	created string // RFC 3339
	// invited: created for a person whose auto-accept is off; state
	// INVITED until they accept (never, in the emulation).
	invited bool
}

type spaceState struct {
	name, displayName, spaceType string
	seq                          int64
	members                      map[string]*memberState
	list                         []*memberState // by seq
	managers, humans             int
}

func (c *Chat) load(ws Workspace) {
	c.customer = ws.Customer
	if c.customer == "" {
		c.customer = DefaultCustomer
	}
	c.createdAt = c.start.UTC().Format(time.RFC3339Nano)
	c.admins = map[string]bool{}
	c.adminList = ws.Admins
	for _, a := range ws.Admins {
		c.admins[strings.TrimPrefix(a, "users/")] = true
	}
	c.users = ws.Users
	c.groups = cloneGroups(ws.Groups)
	c.byEmail = map[string]string{}
	c.byID = map[string]User{}
	for _, u := range ws.Users {
		c.byID[u.ID] = u
		// Primary addresses only: Chat documents "the user's email" as an
		// alias, not the Directory's further addresses.
		c.byEmail[strings.ToLower(u.Email)] = u.ID
	}
	c.spaces = map[string]*spaceState{}
	for _, s := range ws.Spaces {
		c.seq++
		st := &spaceState{name: s.Name, displayName: s.DisplayName, spaceType: s.SpaceType, seq: c.seq, members: map[string]*memberState{}}
		if st.spaceType == "" {
			st.spaceType = SpaceTypeSpace
		}
		for _, m := range s.Members {
			id := strings.TrimPrefix(m.User, "users/")
			ms := &memberState{id: id, typ: m.Type, role: m.Role, created: c.createdAt}
			if ms.typ == "" {
				ms.typ = MemberTypeHuman
				if id == "app" {
					ms.typ = MemberTypeBot
				}
			}
			if ms.role == "" {
				ms.role = RoleMember
			}
			c.addMemberLocked(st, ms)
		}
		for _, g := range s.Groups {
			// Group memberships are listed (with showGroups) but not
			// addressed by members.get, delete or patch here, and
			// count as neither humans nor owners.
			c.seq++
			st.list = append(st.list, &memberState{id: strings.TrimPrefix(g, "groups/"), group: true, seq: c.seq, created: c.createdAt})
		}
		c.spaces[s.Name] = st
		c.order = append(c.order, st)
	}
}

func (c *Chat) addMemberLocked(s *spaceState, m *memberState) {
	c.seq++
	m.seq = c.seq
	s.members[m.id] = m
	s.list = append(s.list, m)
	if m.typ == MemberTypeHuman {
		s.humans++
	}
	if m.role == RoleManager {
		s.managers++
	}
}

func (c *Chat) removeMemberLocked(s *spaceState, m *memberState) {
	delete(s.members, m.id)
	i := sort.Search(len(s.list), func(i int) bool { return s.list[i].seq >= m.seq })
	if i < len(s.list) && s.list[i] == m {
		s.list = append(s.list[:i], s.list[i+1:]...)
	}
	if m.typ == MemberTypeHuman {
		s.humans--
	}
	if m.role == RoleManager {
		s.managers--
	}
}

// Snapshot returns a deep copy of the current state as a Workspace, spaces
// and members in creation order.
func (c *Chat) Snapshot() Workspace {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws := Workspace{Customer: c.customer, Admins: append([]string(nil), c.adminList...), Groups: cloneGroups(c.groups)}
	ws.Users = make([]User, len(c.users))
	for i, u := range c.users {
		u.Aliases = append([]string(nil), u.Aliases...)
		u.NonEditableAliases = append([]string(nil), u.NonEditableAliases...)
		ws.Users[i] = u
	}
	ws.Spaces = make([]Space, 0, len(c.order))
	for _, s := range c.order {
		sp := Space{Name: s.name, DisplayName: s.displayName, SpaceType: s.spaceType, Members: make([]Member, 0, len(s.list))}
		for _, m := range s.list {
			if m.group {
				sp.Groups = append(sp.Groups, "groups/"+m.id)
				continue
			}
			sp.Members = append(sp.Members, Member{User: "users/" + m.id, Type: m.typ, Role: m.role})
		}
		ws.Spaces = append(ws.Spaces, sp)
	}
	return ws
}

// IsMember reports the role of user in space. user may be "users/ID", "ID",
// a primary email, "app" or "users/app"; space is "spaces/X".
func (c *Chat) IsMember(space, user string) (role string, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.spaces[space]
	if s == nil {
		return "", false
	}
	id, known := c.resolveLocked(strings.TrimPrefix(user, "users/"))
	if !known {
		return "", false
	}
	m := s.members[id]
	if m == nil {
		return "", false
	}
	return m.role, true
}

// MembershipState reports the state of user's membership of space as the
// API answers it (JOINED or INVITED), or NOT_A_MEMBER. user is as for
// IsMember.
func (c *Chat) MembershipState(space, user string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.spaces[space]
	if s == nil {
		return "NOT_A_MEMBER"
	}
	id, _ := c.resolveLocked(strings.TrimPrefix(user, "users/"))
	m := s.members[id]
	switch {
	case m == nil:
		return "NOT_A_MEMBER"
	case m.invited:
		return "INVITED"
	}
	return "JOINED"
}

// resolveLocked turns a member segment (id, primary email, "app") into a
// user id; an unknown email reports false.
func (c *Chat) resolveLocked(seg string) (string, bool) {
	if strings.IndexByte(seg, '@') < 0 {
		return seg, true
	}
	id, ok := c.byEmail[strings.ToLower(seg)]
	return id, ok
}
