package workspaces

import (
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

func TestCrowd(t *testing.T) {
	ws := Crowd("spaces/CROWD", 3)
	if err := ws.Validate(); err != nil {
		t.Fatalf("Crowd: %v", err)
	}
	if len(ws.Spaces) != 1 || ws.Spaces[0].Name != "spaces/CROWD" {
		t.Fatalf("spaces = %+v, want one, spaces/CROWD", ws.Spaces)
	}
	ms := ws.Spaces[0].Members
	if len(ms) != 4 || len(ws.Users) != 4 {
		t.Fatalf("%d members and %d users, want 4 and 4", len(ms), len(ws.Users))
	}
	if ms[0].User != "users/100" || ms[0].Role != emulator.RoleManager {
		t.Errorf("first member %+v, want the admin users/100 as manager", ms[0])
	}
	if ms[3].User != "users/"+Member(2) || Member(2) != "1002" || ms[3].Role != emulator.RoleMember {
		t.Errorf("last member %+v, want users/1002, a member", ms[3])
	}
}
