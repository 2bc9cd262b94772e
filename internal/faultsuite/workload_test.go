package faultsuite

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// Request kinds of the generated load.
type kind int

const (
	kindRemove    kind = iota // a real membership: removed
	kindProtected             // a protected member's membership: refused
	kindDryRun                // a bystander's membership, dry run: dry_run
	kindNotMember             // a user who is not in that space: not_member
	kindInvalid               // a hostile name: invalid
	kindMembers               // space + members (admin access): removed, refused, not_member per person
	kindBulk                  // spaces + member: planned, then one child per space
	kindHandOff               // the only owner, with a successor to add: removed after the hand-off
	nKinds
)

func (k kind) String() string {
	return [...]string{"remove", "protected", "dry-run", "not-member", "invalid", "space+members", "bulk", "hand-off"}[k]
}

// key names one decision: a request (or child) id and the membership it is
// about, normalised to spaces/S/members/ID (see norm); "" for decisions about
// no membership (planned, invalid).
type key struct{ requestID, membership string }

type spec struct {
	id    string
	kind  kind
	space string // spaces/S (single kinds)
	user  string // user id (single kinds)
	data  string
	// want is every decision the request must end in, with the outcomes
	// each may have (children's decisions included).
	want map[key][]contract.Outcome
	// removes lists the memberships the request must remove.
	removes []string
	// adds are the memberships the request must add (a hand-off's
	// successor), with the role they must end with.
	adds map[string]string
}

// norm turns a membership named by the fault suite's emails (u<ID>@example.com)
// into spaces/S/members/ID, the name a delete acts on.
func norm(m string) string {
	i := strings.LastIndex(m, "/members/")
	if i < 0 {
		return m
	}
	seg := strings.ToLower(m[i+len("/members/"):])
	if strings.HasPrefix(seg, "u") && strings.HasSuffix(seg, "@example.com") {
		seg = strings.TrimSuffix(strings.TrimPrefix(seg, "u"), "@example.com")
	}
	return m[:i] + "/members/" + seg
}

// gen builds the workspace and the requests.
type gen struct {
	rng       *rand.Rand
	ws        emulator.Workspace
	members   map[string]map[string]bool // space -> user ids
	protected []string
	users     int // regular users 1000..1000+users-1
	reqs      []spec
	extra     int // users created for space+members and bulk requests
}

func (g *gen) add(k kind, space, user string, body map[string]any) *spec {
	id := fmt.Sprintf("fs-%05d", len(g.reqs))
	body["requestId"] = id
	body["reason"] = "faultsuite"
	b, _ := json.Marshal(body)
	g.reqs = append(g.reqs, spec{id: id, kind: k, space: space, user: user, data: string(b), want: map[key][]contract.Outcome{}})
	return &g.reqs[len(g.reqs)-1]
}

// single adds a request about one membership.
func (g *gen) single(k kind, space, user string, body map[string]any) {
	s := g.add(k, space, user, body)
	m := space + "/members/" + user
	switch k {
	case kindRemove:
		s.want[key{s.id, m}] = []contract.Outcome{contract.Removed}
		s.removes = []string{m}
	case kindProtected:
		s.want[key{s.id, m}] = []contract.Outcome{contract.Refused}
	case kindDryRun:
		s.want[key{s.id, m}] = []contract.Outcome{contract.DryRun}
	case kindNotMember:
		s.want[key{s.id, m}] = []contract.Outcome{contract.NotMember}
	}
}

// newMember creates a user of the fault suite's own and makes them a member
// of space number si.
func (g *gen) newMember(si int, role string) string {
	id := g.newUser()
	g.join(si, id, role)
	return id
}

// newUser creates a user of the fault suite's own.
func (g *gen) newUser() string {
	id := strconv.Itoa(900000 + g.extra)
	g.extra++
	g.ws.Users = append(g.ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
	return id
}

// handOff adds a space of its own, whose only owner leaves: a single
// removal with admin access naming a successor who is not a member
// (addSuccessor), so that the successor is added (members.create) and
// promoted (members.patch) before the owner is removed.
func (g *gen) handOff(k int) {
	name := fmt.Sprintf("spaces/FSH%05d", k)
	g.ws.Spaces = append(g.ws.Spaces, emulator.Space{Name: name, SpaceType: emulator.SpaceTypeSpace})
	g.members[name] = map[string]bool{}
	si := len(g.ws.Spaces) - 1
	owner := g.newMember(si, emulator.RoleManager)
	g.newMember(si, emulator.RoleMember)
	succ := g.newUser()
	s := g.add(kindHandOff, name, owner, map[string]any{"space": name, "member": "users/" + owner, "adminAccess": true,
		"successor": "users/" + succ, "addSuccessor": true})
	m := name + "/members/" + owner
	s.want[key{s.id, m}] = []contract.Outcome{contract.Removed}
	s.removes = []string{m}
	s.adds = map[string]string{name + "/members/" + succ: emulator.RoleManager}
}

func (g *gen) join(si int, id, role string) {
	sp := &g.ws.Spaces[si]
	sp.Members = append(sp.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: role})
	g.members[sp.Name][id] = true
}

// nonMember is a regular user who is not in space.
func (g *gen) nonMember(space string) string {
	for {
		id := strconv.Itoa(1000 + 3 + g.rng.IntN(g.users-3))
		if !g.members[space][id] {
			return id
		}
	}
}

// spaceMembers adds a space + members request: two people of its own
// (removed, one by email), a protected member when the space has one
// (refused) and someone who is not in the space (not_member).
func (g *gen) spaceMembers(k int) {
	si := (k * 7) % len(g.ws.Spaces)
	space := g.ws.Spaces[si].Name
	a := g.newMember(si, emulator.RoleMember)
	b := g.newMember(si, emulator.RoleAssistantManager)
	not := g.nonMember(space)
	people := []string{"users/" + a, "u" + b + "@example.com", "users/" + not}
	var prot string
	for _, p := range g.protected {
		if g.members[space][p] {
			prot = p
			people = append(people, "users/"+p)
			break
		}
	}
	s := g.add(kindMembers, space, "", map[string]any{"space": space, "members": people, "adminAccess": true})
	for _, id := range []string{a, b} {
		s.want[key{s.id, space + "/members/" + id}] = []contract.Outcome{contract.Removed}
		s.removes = append(s.removes, space+"/members/"+id)
	}
	s.want[key{s.id, space + "/members/" + not}] = []contract.Outcome{contract.NotMember}
	if prot != "" {
		s.want[key{s.id, space + "/members/" + prot}] = []contract.Outcome{contract.Refused}
	}
}

// bulk adds a bulk request: a person of its own in three spaces (removed by
// three children) and named for a fourth they are not in (not_member).
func (g *gen) bulk(k int) {
	n := len(g.ws.Spaces)
	first := (k*11 + 3) % n
	var sis []int
	for j := 0; j < 4; j++ {
		sis = append(sis, (first+j)%n)
	}
	id := g.newMember(sis[0], emulator.RoleMember)
	g.join(sis[1], id, emulator.RoleAssistantManager)
	g.join(sis[2], id, emulator.RoleMember)
	var spaces []string
	for _, si := range sis {
		spaces = append(spaces, g.ws.Spaces[si].Name)
	}
	s := g.add(kindBulk, "", id, map[string]any{"spaces": spaces, "member": "users/" + id})
	s.want[key{s.id, ""}] = []contract.Outcome{contract.Planned}
	for j, space := range spaces {
		child := key{s.id + "/" + space, space + "/members/" + id}
		if j < 3 {
			s.want[child] = []contract.Outcome{contract.Removed}
			s.removes = append(s.removes, child.membership)
		} else {
			s.want[child] = []contract.Outcome{contract.NotMember}
		}
	}
}

// workspace generates n requests' worth of memberships: spaces of 25 people
// plus the admin (manager everywhere, so no removal meets the only-manager
// rule) and the protected people, and returns the workspace, the protected
// user ids and the requests: single removals, dry runs, protected,
// not-member and hostile requests, a few space + members and bulk ones, and
// hand-offs in spaces of their own (three people, the leaver the only
// owner).
func workspace(n int, rng *rand.Rand) (emulator.Workspace, []string, []spec) {
	const perSpace = 25
	nMembers := max(2, n/100)
	nBulk := max(1, n/300)
	nHand := max(2, n/50)
	nRemove := n*92/100 - nMembers - nBulk - nHand
	nProt := max(1, n*2/100)
	nDry := max(1, n*2/100)
	nNot := max(1, n*2/100)
	nInv := n - nRemove - nMembers - nBulk - nHand - nProt - nDry - nNot
	g := &gen{rng: rng, users: max(300, n/4), members: map[string]map[string]bool{},
		protected: []string{"1000", "1001", "1002"}}
	spaces := (nRemove+nDry)*3/(2*perSpace) + 2
	g.ws = emulator.Workspace{Customer: emulator.DefaultCustomer, Admins: []string{"users/1"}}
	g.ws.Users = append(g.ws.Users, emulator.User{ID: "1", Email: "admin@example.com"})
	for i := 0; i < g.users; i++ {
		id := strconv.Itoa(1000 + i)
		g.ws.Users = append(g.ws.Users, emulator.User{ID: id, Email: "u" + id + "@example.com"})
	}
	type ms struct{ space, user string }
	var pool, protPool []ms
	for s := 0; s < spaces; s++ {
		name := fmt.Sprintf("spaces/FS%05d", s)
		sp := emulator.Space{Name: name, SpaceType: emulator.SpaceTypeSpace,
			Members: []emulator.Member{{User: "users/1", Type: emulator.MemberTypeHuman, Role: emulator.RoleManager}}}
		in := map[string]bool{}
		for _, p := range g.protected {
			if rng.IntN(2) == 0 {
				in[p] = true
				sp.Members = append(sp.Members, emulator.Member{User: "users/" + p, Type: emulator.MemberTypeHuman, Role: emulator.RoleMember})
				protPool = append(protPool, ms{name, p})
			}
		}
		for len(in) < perSpace {
			id := strconv.Itoa(1000 + 3 + rng.IntN(g.users-3))
			if in[id] {
				continue
			}
			in[id] = true
			role := emulator.RoleMember
			if rng.IntN(10) == 0 {
				role = emulator.RoleManager
			}
			sp.Members = append(sp.Members, emulator.Member{User: "users/" + id, Type: emulator.MemberTypeHuman, Role: role})
			pool = append(pool, ms{name, id})
		}
		g.members[name] = in
		g.ws.Spaces = append(g.ws.Spaces, sp)
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	rng.Shuffle(len(protPool), func(i, j int) { protPool[i], protPool[j] = protPool[j], protPool[i] })

	target := func(space, user string, i int) map[string]any {
		switch i % 4 {
		case 0:
			return map[string]any{"membership": space + "/members/" + user}
		case 1:
			return map[string]any{"space": space, "member": "users/" + user}
		case 2:
			return map[string]any{"space": space, "member": "u" + user + "@example.com"}
		}
		return map[string]any{"space": space, "member": "users/u" + user + "@example.com"}
	}
	for i := 0; i < nRemove; i++ {
		m := pool[i]
		g.single(kindRemove, m.space, m.user, target(m.space, m.user, i))
	}
	for i := 0; i < nDry; i++ {
		m := pool[nRemove+i] // bystanders: never removed
		b := target(m.space, m.user, i)
		b["dryRun"] = true
		g.single(kindDryRun, m.space, m.user, b)
	}
	for i := 0; i < nProt; i++ {
		m := protPool[i%len(protPool)]
		g.single(kindProtected, m.space, m.user, target(m.space, m.user, i))
	}
	for i := 0; i < nNot; i++ {
		space := g.ws.Spaces[rng.IntN(len(g.ws.Spaces))].Name
		user := g.nonMember(space)
		g.single(kindNotMember, space, user, target(space, user, i))
	}
	hostile := []string{
		"x/../../spaces/FS00000/members/1003", "1003?useAdminAccess=true", "1003#x", "%2e%2e", "u1003@example.com/..",
		"users/1003/../1", "\u0430dmin@example.com", "adm\u200bin@example.com", "..", "1003 ",
	}
	for i := 0; i < nInv; i++ {
		s := g.add(kindInvalid, "", "", map[string]any{"space": g.ws.Spaces[i%len(g.ws.Spaces)].Name, "member": hostile[i%len(hostile)]})
		s.want[key{s.id, ""}] = []contract.Outcome{contract.Invalid}
	}
	for k := 0; k < nMembers; k++ {
		g.spaceMembers(k)
	}
	for k := 0; k < nBulk; k++ {
		g.bulk(k)
	}
	for k := 0; k < nHand; k++ {
		g.handOff(k)
	}
	rng.Shuffle(len(g.reqs), func(i, j int) { g.reqs[i], g.reqs[j] = g.reqs[j], g.reqs[i] })
	return g.ws, g.protected, g.reqs
}

// copies chooses the duplicate deliveries: which requests are published
// again, and after which request of the sequence (its index in reqs). Every
// kind gets copies published right after the original (concurrent
// duplicates) and copies published at the very end (duplicates of decided
// requests); every space + members and bulk request is published twice.
func copies(reqs []spec, rng *rand.Rand) map[int][]int {
	after := map[int][]int{}
	last := len(reqs) - 1
	early, late := map[kind]bool{}, map[kind]bool{}
	for i, r := range reqs {
		multi := r.kind == kindMembers || r.kind == kindBulk
		if !early[r.kind] || multi || rng.IntN(10) == 0 {
			early[r.kind] = true
			after[i] = append(after[i], i)
			if rng.IntN(5) == 0 {
				after[i] = append(after[i], i) // three deliveries
			}
		}
		if i < last*4/5 && (!late[r.kind] || rng.IntN(20) == 0) {
			late[r.kind] = true
			after[last] = append(after[last], i)
		}
	}
	return after
}
