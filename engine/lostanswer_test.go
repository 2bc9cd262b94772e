package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// Writes whose answer is lost after Chat applied them (a Fault with
// AfterApply: the connection dropped, or 500/503 in place of the answer).
// The retry in the same invocation meets the applied state: a 404 on the
// delete, a 409 on the create, the role already set on the patch. The
// decision follows Google's state, not the retry's status.

// lostAnswerFaults are the ways an applied write's answer is lost.
var lostAnswerFaults = []struct {
	name  string
	fault emulator.Fault
}{
	{"dropped", emulator.Fault{Drop: true, AfterApply: true, Times: 1}},
	{"500", emulator.Fault{Status: 500, AfterApply: true, Times: 1}},
	{"503", emulator.Fault{Status: 503, AfterApply: true, Times: 1}},
}

// lost returns the fault f for method.
func lost(f emulator.Fault, method string) emulator.Fault {
	f.Method = method
	return f
}

// TestLostDeleteAnswerSingleRemoval: a lost DELETE answer gives removed with
// the role the intent recorded (not not_member), and the detail says the
// first answer was lost.
func TestLostDeleteAnswerSingleRemoval(t *testing.T) {
	for _, c := range lostAnswerFaults {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.stack.Chat.InjectFault(lost(c.fault, "members.delete"))
			// alice owns ENG beside the admin: not the only owner.
			if err := e.send(t, `{"requestId":"lost-1","space":"spaces/ENG","member":"alice@example.com"}`); err != nil {
				t.Fatal(err)
			}
			r := e.only(t)
			want := contract.Result{
				RequestID: "lost-1", Membership: "spaces/ENG/members/alice@example.com", Outcome: contract.Removed,
				MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER", Member: &contract.Member{Name: "users/101", Type: "HUMAN"},
			}
			if diff := resultDiff(want, r.Result, []string{"Detail", "Attempts"}); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.Detail, "answer") || !strings.Contains(r.Detail, "lost") {
				t.Errorf("detail %q does not say that the first answer was lost", r.Detail)
			}
			if _, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); ok {
				t.Error("alice is still in ENG")
			}
			if s := e.stack.Chat.Stats(); s.AnswersLost != 1 || s.Calls["members.delete"] != 2 {
				t.Errorf("answers lost %d, deletes %d; want 1 and 2 (the applied one and its retry)", s.AnswersLost, s.Calls["members.delete"])
			}
		})
	}
}

// TestLostDeleteAnswerSweepChild: in a sweep, the space's child whose
// delete answer is lost decides removed with the role listed before the
// delete, as the others do.
func TestLostDeleteAnswerSweepChild(t *testing.T) {
	for _, c := range lostAnswerFaults {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.stack.Chat.InjectFault(lost(c.fault, "members.delete"))
			// bob: a member of ENG and SOLO, an owner of OPS beside the admin.
			if err := e.send(t, `{"requestId":"hr-lost","allSpaces":true,"member":"bob@example.com"}`); err != nil {
				t.Fatal(err)
			}
			e.drain(t, 2)
			got := byMembership(e.of(t, "hr-lost"))
			lostOnes := 0
			for _, w := range []struct{ membership, role string }{
				{"spaces/ENG/members/102", "ROLE_MEMBER"}, {"spaces/OPS/members/102", "ROLE_MANAGER"}, {"spaces/SOLO/members/102", "ROLE_MEMBER"},
			} {
				r, ok := got[w.membership]
				switch {
				case !ok:
					t.Errorf("%s: no decision", w.membership)
				case r.Outcome != contract.Removed || r.Role != w.role:
					t.Errorf("%s: %s with role %q, want removed with %q (%s)", w.membership, r.Outcome, r.Role, w.role, r.Detail)
				case strings.Contains(r.Detail, "lost"):
					lostOnes++
				}
			}
			if s := e.stack.Chat.Stats(); s.AnswersLost != 1 || lostOnes != 1 {
				t.Errorf("answers lost %d, decisions saying so %d; want 1 and 1", s.AnswersLost, lostOnes)
			}
		})
	}
}

// TestLostAnswerHandOff: a hand-off whose members.create or members.patch
// answer is lost goes on from Google's state (the create's retry meets 409:
// the membership is read and promoted; the patch is settled), and the
// removal that follows is decided removed with the role.
func TestLostAnswerHandOff(t *testing.T) {
	for _, method := range []string{"members.create", "members.patch"} {
		for _, c := range lostAnswerFaults {
			t.Run(method+"/"+c.name, func(t *testing.T) {
				e := newEnv(t)
				e.stack.Chat.InjectFault(lost(c.fault, method))
				// alice is the only owner of SOLO; dave is not a member.
				if err := e.send(t, `{"requestId":"ho","space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/104","addSuccessor":true}`); err != nil {
					t.Fatal(err)
				}
				r := e.only(t)
				want := contract.Result{
					RequestID: "ho", Membership: "spaces/SOLO/members/101", Outcome: contract.Removed, MembershipState: "NOT_A_MEMBER", Role: "ROLE_MANAGER",
					Member: &contract.Member{Name: "users/101", Type: "HUMAN"}, AdminAccess: true,
					HandOff: &contract.HandOffLog{Successor: "users/104", Added: true, Promoted: true},
				}
				if diff := resultDiff(want, r.Result, []string{"Attempts", "Detail"}); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				if role, ok := e.stack.Chat.IsMember("spaces/SOLO", "104"); !ok || role != "ROLE_MANAGER" {
					t.Errorf("dave in SOLO: %v %q, want an owner", ok, role)
				}
				if n := e.stack.Chat.Stats().Calls["members.create"]; method == "members.patch" && n != 1 {
					t.Errorf("%d creates, want 1", n)
				}
			})
		}
	}
	// The delete after a hand-off, answer lost: removed with the role.
	e := newEnv(t)
	e.stack.Chat.InjectFault(lost(lostAnswerFaults[1].fault, "members.delete"))
	if err := e.send(t, `{"requestId":"ho-del","space":"spaces/SOLO","member":"users/101","adminAccess":true,"successor":"users/102"}`); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t); r.Outcome != contract.Removed || r.Role != "ROLE_MANAGER" || r.HandOff == nil || !r.HandOff.Promoted {
		t.Errorf("result %+v, want removed as ROLE_MANAGER after bob was promoted", r.Result)
	}
}

// TestLostCreateAnswerRestore: a restore whose members.create answer is
// lost meets 409 on the retry; the membership is read and patched to the
// recorded role: restored as ROLE_MANAGER, not already_member as
// ROLE_MEMBER. A lost patch answer is settled by the retry, or by reading.
func TestLostCreateAnswerRestore(t *testing.T) {
	for _, method := range []string{"members.create", "members.patch"} {
		for _, c := range lostAnswerFaults {
			t.Run(method+"/"+c.name, func(t *testing.T) {
				e := newEnv(t)
				if err := e.send(t, `{"requestId":"r1","space":"spaces/ENG","member":"users/101","adminAccess":true}`); err != nil {
					t.Fatal(err)
				}
				e.stack.Chat.InjectFault(lost(c.fault, method))
				if err := e.send(t, `{"requestId":"u1","restore":"r1"}`); err != nil {
					t.Fatal(err)
				}
				e.drain(t, 1)
				got := byMembership(e.of(t, "u1"))
				r := got["spaces/ENG/members/101"]
				if r.Outcome != contract.Restored || r.Role != "ROLE_MANAGER" {
					t.Errorf("result %+v, want restored as ROLE_MANAGER", r.Result)
				}
				if role, ok := e.stack.Chat.IsMember("spaces/ENG", "101"); !ok || role != "ROLE_MANAGER" {
					t.Errorf("alice in ENG: %v %q, want an owner again", ok, role)
				}
				if s := e.stack.Chat.Stats(); s.AnswersLost != 1 {
					t.Errorf("answers lost %d, want 1", s.AnswersLost)
				}
			})
		}
	}
}

// TestLostPatchAnswerSettledByReading: a restore's patch whose answer is
// lost, and whose retries all fail until the invocation gives up, is
// settled by reading the membership: it has the role, so the restore is
// decided restored in the same delivery.
func TestLostPatchAnswerSettledByReading(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventTimeout = 3 * time.Second })
	if err := e.send(t, `{"requestId":"r1","space":"spaces/ENG","member":"users/101","adminAccess":true}`); err != nil {
		t.Fatal(err)
	}
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.patch", Drop: true, AfterApply: true, Times: 1})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.patch", Status: 503})
	if err := e.send(t, `{"requestId":"u1","restore":"r1"}`); err != nil {
		t.Fatal(err)
	}
	var child event.Event
	for _, m := range e.psrv.Messages() {
		if m.Attributes["requestId"] == "u1/spaces/ENG" {
			child = e.delivery(m)
		}
	}
	if err := e.f.Handle(t.Context(), child); err != nil {
		t.Fatalf("the child was not settled by reading: %v", err)
	}
	r := byMembership(e.of(t, "u1"))["spaces/ENG/members/101"]
	if r.Outcome != contract.Restored || r.Role != "ROLE_MANAGER" {
		t.Errorf("result %+v, want restored as ROLE_MANAGER", r.Result)
	}
	if n := e.stack.Chat.Stats().Calls["members.patch"]; n < 2 {
		t.Errorf("%d patches: the test did not retry after the lost answer", n)
	}
}

// TestLostAnswerThenExpiry: a delete whose answer is lost and whose retries
// run until the event passes MAX_EVENT_AGE cannot be settled (no call is
// made after the expiry): the expired decision says that Chat may have
// made the delete.
func TestLostAnswerThenExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxEventAge = 2 * time.Second; c.EventTimeout = 30 * time.Second })
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Drop: true, AfterApply: true, Times: 1})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503})
	if err := e.send(t, `{"space":"spaces/ENG","member":"users/102"}`); err != nil {
		t.Fatalf("Handle = %v, want nil (answered expired)", err)
	}
	r := e.only(t)
	if r.Outcome != contract.Expired || !strings.Contains(r.Detail, "may have made it") {
		t.Errorf("result %s, detail %q; want expired saying that the delete may have been made", r.Outcome, r.Detail)
	}
	if _, ok := e.stack.Chat.IsMember("spaces/ENG", "102"); ok {
		t.Error("the delete whose answer was lost was not made")
	}

	// A space + members request (a sweep's child): the person whose delete
	// it was says so; the one not reached does not.
	e = newEnv(t, func(c *Config) { c.MaxEventAge = 2 * time.Second; c.EventTimeout = 30 * time.Second })
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 500, AfterApply: true, Times: 1})
	e.stack.Chat.InjectFault(emulator.Fault{Method: "members.delete", Status: 503})
	if err := e.send(t, `{"space":"spaces/ENG","members":["users/102","users/103"],"adminAccess":true}`); err != nil {
		t.Fatalf("Handle = %v, want nil (answered expired)", err)
	}
	rs := byMembership(e.results(t))
	if r := rs["spaces/ENG/members/102"]; r.Outcome != contract.Expired || !strings.Contains(r.Detail, "may have made it") {
		t.Errorf("bob: %s, detail %q; want expired saying that the delete may have been made", r.Outcome, r.Detail)
	}
	if r := rs["spaces/ENG/members/103"]; r.Outcome != contract.Expired || r.Detail != "" {
		t.Errorf("carol: %s, detail %q; want expired, nothing sent", r.Outcome, r.Detail)
	}
}
