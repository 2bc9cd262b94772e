package emulator

import (
	"errors"
	"fmt"
	"strings"
)

// Space types, membership types and roles as the Chat API spells them.
const (
	SpaceTypeSpace         = "SPACE"
	SpaceTypeGroupChat     = "GROUP_CHAT"
	SpaceTypeDirectMessage = "DIRECT_MESSAGE"

	MemberTypeHuman = "HUMAN"
	MemberTypeBot   = "BOT"

	// Chat's roles since October 2025: ROLE_MANAGER is the space owner
	// ("Owner" in Chat's interface), ROLE_ASSISTANT_MANAGER a manager
	// ("Manager"), ROLE_MEMBER a member.
	RoleMember           = "ROLE_MEMBER"
	RoleManager          = "ROLE_MANAGER"
	RoleAssistantManager = "ROLE_ASSISTANT_MANAGER"

	// DefaultCustomer is the customer of a Workspace that names none.
	DefaultCustomer = "customers/my_customer"

	// AppUser is the user name of the calling Chat app's membership.
	AppUser = "users/app"
)

// Workspace is the seed (and, through Chat.Snapshot, the state) of an
// emulated Google Workspace. It is JSON-serialisable so that the sandbox can
// load it from a file; validate such input with Validate. A Workspace is a
// plain value: it is not safe to modify one while another goroutine reads
// it.
type Workspace struct {
	// Customer is the customer resource; "" means DefaultCustomer.
	Customer string `json:"customer,omitempty"`
	// Admins are the user names ("users/ID") of Workspace administrators,
	// who may use useAdminAccess and read the Directory.
	Admins []string `json:"admins,omitempty"`
	// Users are the people of the Workspace (Directory entries).
	Users []User `json:"users"`
	// Spaces are the Chat spaces with their memberships.
	Spaces []Space `json:"spaces"`
	// Groups are the Google Groups of the Workspace (Directory entries),
	// which spaces may have as members (Space.Groups).
	Groups []Group `json:"groups,omitempty"`
}

// Group is a Google Group of the Workspace.
type Group struct {
	// ID is the group id, without the "groups/" prefix. The Directory's
	// group id and the Chat API's groups/{group} name the same group.
	ID string `json:"id"`
	// Email is the group's address.
	Email string `json:"email"`
	// Name is the display name.
	Name string `json:"name,omitempty"`
	// Members are the group's direct members: "users/ID" or "groups/ID"
	// (a nested group).
	Members []string `json:"members,omitempty"`
}

// User is a person of the Workspace.
type User struct {
	// ID is the numeric-ish user id, without the "users/" prefix. The Chat
	// user id and the Directory user id are the same.
	ID string `json:"id"`
	// Email is the primary email address.
	Email string `json:"email"`
	// Aliases are further email addresses of the user.
	Aliases []string `json:"aliases,omitempty"`
	// NonEditableAliases are the user's addresses that the Directory lists
	// as nonEditableAliases (typically outside the primary domain). users.get
	// does not find a user by them (stricter than unsure).
	NonEditableAliases []string `json:"nonEditableAliases,omitempty"`
	// Name is the full name.
	Name string `json:"name,omitempty"`
	// Suspended and Archived are the Directory's suspended and archived
	// fields of the user.
	Suspended bool `json:"suspended,omitempty"`
	Archived  bool `json:"archived,omitempty"`
	// Deleted makes the user a deleted one (within Google's 20 days of
	// recovery): users.get answers 404, users.list lists them only with
	// showDeleted=true. Their Chat memberships stay as seeded.
	Deleted bool `json:"deleted,omitempty"`
	// OrgUnitPath is the organizational unit, "/" (the default) or
	// "/Parent/Child".
	OrgUnitPath string `json:"orgUnitPath,omitempty"`
	// Relations are the Directory's relations of the user, such as
	// {"type": "manager", "value": "boss@example.com"}.
	Relations []Relation `json:"relations,omitempty"`
	// AutoAcceptOff models a person whose auto-accept policy is turned
	// off: members.create invites them (state INVITED) instead of adding
	// them, and they must accept before joining.
	AutoAcceptOff bool `json:"autoAcceptOff,omitempty"`
}

// Relation is one of a user's relations as the Directory API documents
// them: Type is one of Google's relation types (RelationTypes), Value
// usually an email, CustomType only with Type "custom".
type Relation struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	CustomType string `json:"customType,omitempty"`
}

// RelationTypes are the relation types the Directory API documents.
var RelationTypes = map[string]bool{
	"admin_assistant": true, "assistant": true, "brother": true, "child": true, "custom": true,
	"domestic_partner": true, "dotted_line_manager": true, "exec_assistant": true, "father": true,
	"friend": true, "manager": true, "mother": true, "parent": true, "partner": true,
	"referred_by": true, "relative": true, "sister": true, "spouse": true,
}

// Space is a Chat space.
type Space struct {
	// Name is "spaces/{space}".
	Name string `json:"name"`
	// DisplayName is the space's display name.
	DisplayName string `json:"displayName,omitempty"`
	// SpaceType is SPACE (default), GROUP_CHAT or DIRECT_MESSAGE.
	SpaceType string `json:"spaceType,omitempty"`
	// Members are the memberships, in join order.
	Members []Member `json:"members"`
	// Groups are the Google Groups that are members of the space
	// ("groups/ID"), added after Members. members.list shows them only
	// with showGroups=true.
	Groups []string `json:"groups,omitempty"`
}

// Member is one membership of a Space.
type Member struct {
	// User is "users/ID", or "users/app" for the calling Chat app.
	User string `json:"user"`
	// Type is HUMAN (default; BOT for "users/app") or BOT.
	Type string `json:"type,omitempty"`
	// Role is ROLE_MEMBER (default), ROLE_ASSISTANT_MANAGER (a manager)
	// or ROLE_MANAGER (an owner).
	Role string `json:"role,omitempty"`
}

// validSegment reports whether s is a strict resource-name segment: non
// empty, not "." or "..", and only [A-Za-z0-9._+@'-].
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '+', c == '@', c == '\'', c == '-':
		default:
			return false
		}
	}
	return true
}

// Validate reports the first problem of w as a seed: malformed or duplicate
// names, unknown types or roles, duplicate emails, admins that are not
// "users/ID".
func (w Workspace) Validate() error {
	if w.Customer != "" && (!strings.HasPrefix(w.Customer, "customers/") || !validSegment(strings.TrimPrefix(w.Customer, "customers/"))) {
		return fmt.Errorf("emulator: customer %q is not customers/{customer}", w.Customer)
	}
	ids, emails, err := w.validateUsers()
	if err != nil {
		return err
	}
	for _, a := range w.Admins {
		id, ok := strings.CutPrefix(a, "users/")
		if !ok || !validSegment(id) || strings.Contains(id, "@") || id == "app" {
			return fmt.Errorf("emulator: admin %q is not users/ID", a)
		}
	}
	groups, err := w.validateGroups(ids, emails)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, s := range w.Spaces {
		id, ok := strings.CutPrefix(s.Name, "spaces/")
		if !ok || !validSegment(id) {
			return fmt.Errorf("emulator: space name %q is not spaces/{space}", s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("emulator: duplicate space %q", s.Name)
		}
		names[s.Name] = true
		switch s.SpaceType {
		case "", SpaceTypeSpace, SpaceTypeGroupChat, SpaceTypeDirectMessage:
		default:
			return fmt.Errorf("emulator: space %q: unknown spaceType %q", s.Name, s.SpaceType)
		}
		seen := map[string]bool{}
		for _, m := range s.Members {
			id, ok := strings.CutPrefix(m.User, "users/")
			if !ok || !validSegment(id) || strings.Contains(id, "@") {
				return fmt.Errorf("emulator: space %q: member %q is not users/ID", s.Name, m.User)
			}
			if seen[id] {
				return fmt.Errorf("emulator: space %q: duplicate member %q", s.Name, m.User)
			}
			seen[id] = true
			switch m.Type {
			case "", MemberTypeHuman, MemberTypeBot:
			default:
				return fmt.Errorf("emulator: space %q: member %q: unknown type %q", s.Name, m.User, m.Type)
			}
			if id == "app" && m.Type == MemberTypeHuman {
				return errors.New("emulator: users/app must be a BOT")
			}
			switch m.Role {
			case "", RoleMember, RoleManager, RoleAssistantManager:
			default:
				return fmt.Errorf("emulator: space %q: member %q: unknown role %q", s.Name, m.User, m.Role)
			}
			if (m.Role == RoleManager || m.Role == RoleAssistantManager) && (s.SpaceType == SpaceTypeGroupChat || s.SpaceType == SpaceTypeDirectMessage) {
				return fmt.Errorf("emulator: space %q: %s has no managers", s.Name, s.SpaceType)
			}
		}
		if err := checkSpaceGroups(s, groups); err != nil {
			return err
		}
	}
	return nil
}

// validateUsers checks the users of w and returns their ids and lower-case
// emails.
func (w Workspace) validateUsers() (ids, emails map[string]bool, err error) {
	ids, emails = map[string]bool{}, map[string]bool{}
	for _, u := range w.Users {
		if !validSegment(u.ID) || strings.Contains(u.ID, "@") || u.ID == "app" {
			return nil, nil, fmt.Errorf("emulator: user id %q is not a valid id", u.ID)
		}
		if ids[u.ID] {
			return nil, nil, fmt.Errorf("emulator: duplicate user id %q", u.ID)
		}
		ids[u.ID] = true
		if err := u.validateDirectoryFields(); err != nil {
			return nil, nil, err
		}
		for _, e := range append(append([]string{u.Email}, u.Aliases...), u.NonEditableAliases...) {
			le := strings.ToLower(e)
			if !validSegment(e) || !strings.Contains(e, "@") {
				return nil, nil, fmt.Errorf("emulator: user %q: %q is not a valid email", u.ID, e)
			}
			if emails[le] {
				return nil, nil, fmt.Errorf("emulator: duplicate email %q", e)
			}
			emails[le] = true
		}
	}
	return ids, emails, nil
}

// validateGroups checks the groups of w: ids, emails unique among users and
// groups, members that are known users or groups. It returns the group ids.
func (w Workspace) validateGroups(users, emails map[string]bool) (map[string]bool, error) {
	groups := map[string]bool{}
	for _, g := range w.Groups {
		if !validSegment(g.ID) || strings.Contains(g.ID, "@") {
			return nil, fmt.Errorf("emulator: group id %q is not a valid id", g.ID)
		}
		if groups[g.ID] {
			return nil, fmt.Errorf("emulator: duplicate group id %q", g.ID)
		}
		groups[g.ID] = true
		if le := strings.ToLower(g.Email); !validSegment(g.Email) || !strings.Contains(g.Email, "@") || emails[le] {
			return nil, fmt.Errorf("emulator: group %q: email %q is not valid or not unique", g.ID, g.Email)
		}
		emails[strings.ToLower(g.Email)] = true
	}
	for _, g := range w.Groups {
		seen := map[string]bool{}
		for _, m := range g.Members {
			u, isUser := strings.CutPrefix(m, "users/")
			n, isGroup := strings.CutPrefix(m, "groups/")
			if !(isUser && users[u]) && !(isGroup && groups[n] && n != g.ID) || seen[m] {
				return nil, fmt.Errorf("emulator: group %q: member %q is not a known users/ID or another groups/ID, or is repeated", g.ID, m)
			}
			seen[m] = true
		}
	}
	return groups, nil
}

// checkSpaceGroups checks the group members of a space: known groups, once
// each, in a SPACE or GROUP_CHAT.
func checkSpaceGroups(s Space, groups map[string]bool) error {
	seen := map[string]bool{}
	for _, g := range s.Groups {
		id, ok := strings.CutPrefix(g, "groups/")
		if !ok || !groups[id] || seen[id] {
			return fmt.Errorf("emulator: space %q: group member %q is not a known groups/ID, or is repeated", s.Name, g)
		}
		seen[id] = true
		if s.SpaceType == SpaceTypeDirectMessage {
			return fmt.Errorf("emulator: space %q: a direct message has no group members", s.Name)
		}
	}
	return nil
}

// validateDirectoryFields checks the organizational unit and the relations
// of a user.
func (u User) validateDirectoryFields() error {
	if p := u.OrgUnitPath; p != "" && (!strings.HasPrefix(p, "/") || strings.Contains(p, "//") || (len(p) > 1 && strings.HasSuffix(p, "/"))) {
		return fmt.Errorf("emulator: user %q: orgUnitPath %q is not \"/\" or /Unit/Subunit", u.ID, p)
	}
	for _, r := range u.Relations {
		switch {
		case !RelationTypes[r.Type]:
			return fmt.Errorf("emulator: user %q: unknown relation type %q", u.ID, r.Type)
		case (r.Type == "custom") != (r.CustomType != ""):
			return fmt.Errorf("emulator: user %q: customType goes with relation type custom, and only with it", u.ID)
		case r.Value == "":
			return fmt.Errorf("emulator: user %q: relation %q without a value", u.ID, r.Type)
		}
	}
	return nil
}

// Clone returns a deep copy of w.
func (w Workspace) Clone() Workspace {
	c := Workspace{Customer: w.Customer, Admins: append([]string(nil), w.Admins...)}
	c.Users = make([]User, len(w.Users))
	for i, u := range w.Users {
		u.Aliases = append([]string(nil), u.Aliases...)
		u.NonEditableAliases = append([]string(nil), u.NonEditableAliases...)
		u.Relations = append([]Relation(nil), u.Relations...)
		c.Users[i] = u
	}
	c.Spaces = make([]Space, len(w.Spaces))
	for i, s := range w.Spaces {
		s.Members = append([]Member(nil), s.Members...)
		s.Groups = append([]string(nil), s.Groups...)
		c.Spaces[i] = s
	}
	c.Groups = cloneGroups(w.Groups)
	return c
}

// Default returns the deterministic seed Workspace used by tests and the
// sandbox. Each call returns a fresh copy.
//
// Domain example.com, customer customers/my_customer. Users (id, email,
// name): 100 admin@example.com "Ada Admin" (the only Workspace admin),
// 101 alice@example.com "Alice Anders" (alias ali@example.com),
// 102 bob@example.com "Bob Brown", 103 carol@example.com "Carol Chen",
// 104 dave@example.com "Dave Diaz", 105 erin@example.com "Erin Evans",
// 106 frank@example.com "Frank Fischer" (suspended in the Directory, his
// manager dave: a suspension that a Workspace admin has made).
//
// Spaces (M = ROLE_MANAGER, others ROLE_MEMBER, in join order):
//
//	spaces/ENG     SPACE           "Engineering"     100 M, 101 M, 102, 103, users/app (BOT)
//	spaces/SALES   SPACE           "Sales"           100 M, 104 M, 105, 101
//	spaces/HR      SPACE           "People"          100 M, 105, 106
//	spaces/OPS     SPACE           "Operations"      100 M, 102 M, 103, 104, 106
//	spaces/SOLO    SPACE           "Alice's project" 101 M (the only manager), 102, 103
//	spaces/SECRET  SPACE           "Board"           104 M, 106 (the admin is not a member)
//	spaces/GROUP   GROUP_CHAT      ""                101, 102, 103
//	spaces/DM      DIRECT_MESSAGE  ""                101, 102
//
// So: the admin (users/100) manages ENG, SALES, HR and OPS; deleting alice
// from SOLO is refused (only manager, FAILED_PRECONDITION) even with admin
// access; without admin access the admin gets 403 on SOLO and SECRET.
func Default() Workspace {
	h := func(id string) Member { return Member{User: "users/" + id, Type: MemberTypeHuman, Role: RoleMember} }
	m := func(id string) Member { return Member{User: "users/" + id, Type: MemberTypeHuman, Role: RoleManager} }
	return Workspace{
		Customer: DefaultCustomer,
		Admins:   []string{"users/100"},
		Users: []User{
			{ID: "100", Email: "admin@example.com", Name: "Ada Admin"},
			{ID: "101", Email: "alice@example.com", Aliases: []string{"ali@example.com"}, Name: "Alice Anders"},
			{ID: "102", Email: "bob@example.com", Name: "Bob Brown"},
			{ID: "103", Email: "carol@example.com", Name: "Carol Chen"},
			{ID: "104", Email: "dave@example.com", Name: "Dave Diaz"},
			{ID: "105", Email: "erin@example.com", Name: "Erin Evans"},
			{ID: "106", Email: "frank@example.com", Name: "Frank Fischer", Suspended: true,
				Relations: []Relation{{Type: "manager", Value: "dave@example.com"}}},
		},
		Spaces: []Space{
			{Name: "spaces/ENG", DisplayName: "Engineering", SpaceType: SpaceTypeSpace,
				Members: []Member{m("100"), m("101"), h("102"), h("103"), {User: AppUser, Type: MemberTypeBot, Role: RoleMember}}},
			{Name: "spaces/SALES", DisplayName: "Sales", SpaceType: SpaceTypeSpace,
				Members: []Member{m("100"), m("104"), h("105"), h("101")}},
			{Name: "spaces/HR", DisplayName: "People", SpaceType: SpaceTypeSpace,
				Members: []Member{m("100"), h("105"), h("106")}},
			{Name: "spaces/OPS", DisplayName: "Operations", SpaceType: SpaceTypeSpace,
				Members: []Member{m("100"), m("102"), h("103"), h("104"), h("106")}},
			{Name: "spaces/SOLO", DisplayName: "Alice's project", SpaceType: SpaceTypeSpace,
				Members: []Member{m("101"), h("102"), h("103")}},
			{Name: "spaces/SECRET", DisplayName: "Board", SpaceType: SpaceTypeSpace,
				Members: []Member{m("104"), h("106")}},
			{Name: "spaces/GROUP", SpaceType: SpaceTypeGroupChat,
				Members: []Member{h("101"), h("102"), h("103")}},
			{Name: "spaces/DM", SpaceType: SpaceTypeDirectMessage,
				Members: []Member{h("101"), h("102")}},
		},
	}
}

// cloneGroups returns a deep copy of groups.
func cloneGroups(groups []Group) []Group {
	if groups == nil {
		return nil
	}
	out := make([]Group, len(groups))
	for i, g := range groups {
		g.Members = append([]string(nil), g.Members...)
		out[i] = g
	}
	return out
}
