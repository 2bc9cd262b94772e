// Package workspaces generates emulated Chat workspaces of any size, for
// load tests and benchmarks.
package workspaces

import (
	"strconv"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// Crowd is a workspace with one SPACE, space (such as "spaces/CROWD"),
// managed by the admin users/100 (admin@example.com) and holding n more
// members users/1000, users/1001, … (u1000@example.com, …) with the role
// ROLE_MEMBER. Member i's membership is space+"/members/"+Member(i).
func Crowd(space string, n int) emulator.Workspace {
	ws := emulator.Workspace{
		Customer: emulator.DefaultCustomer,
		Admins:   []string{"users/100"},
		Users:    []emulator.User{{ID: "100", Email: "admin@example.com"}},
	}
	s := emulator.Space{Name: space, SpaceType: emulator.SpaceTypeSpace,
		Members: []emulator.Member{{User: "users/100", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
	for i := range n {
		id := Member(i)
		ws.Users = append(ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
		s.Members = append(s.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
	}
	ws.Spaces = []emulator.Space{s}
	return ws
}

// Member is the user id of the i-th member of a Crowd (from 0): "1000", … .
func Member(i int) string { return strconv.Itoa(1000 + i) }
