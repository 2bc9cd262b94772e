// Validate: the checks of a decoded request, one function per target form.

package request

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validate checks a decoded request and resolves its target. The checks run
// in a fixed order, so that a request with several faults always gets the
// same error: the free-text fields and the one target form (checkEnvelope),
// the target form's own fields (one function per form), the successor, and
// admin access against an app target.
func Validate(r Request) (*Valid, error) {
	if isOperator(r) {
		return validateOperator(r)
	}
	if err := checkEnvelope(r); err != nil {
		return nil, err
	}
	var v *Valid
	var err error
	switch {
	case r.Restore != "":
		return validateRestore(r)
	case r.Membership != "":
		v, err = validateMembership(r)
	case r.Space != "" && len(r.Members) > 0:
		v, err = validateSpaceMembers(r)
	case r.Space != "":
		v, err = validateSpaceMember(r)
	case len(r.Spaces) > 0:
		v, err = validateBulk(r)
	default: // r.AllSpaces, as checkEnvelope found exactly one form
		v, err = validateSweep(r)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSuccessor(r.Successor); err != nil {
		return nil, err
	}
	if r.AdminAccess && (strings.HasSuffix(v.Name, "/members/app") || (v.Kind == KindBulk && v.People[0] == "app")) {
		return nil, invalid("adminAccess", "admin access cannot remove an app membership; remove adminAccess or the app target")
	}
	return v, nil
}

// checkEnvelope checks what every target form shares: the free-text fields,
// the request id, exactly one target form, and the fields that only some
// forms take (addSuccessor, pageToken).
func checkEnvelope(r Request) error {
	for _, f := range []struct{ name, v string }{
		{"requestId", r.RequestID}, {"parentRequestId", r.ParentRequestID},
		{"reason", r.Reason}, {"requestedBy", r.RequestedBy}, {"pageToken", r.PageToken},
		{"restore", r.Restore},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return err
		}
	}
	if r.RequestID == "" {
		return invalid("requestId", "missing")
	}
	if r.Restore != "" {
		return checkRestore(r)
	}
	switch forms := targetForms(r); {
	case forms == 0:
		return invalid("", "no target: give exactly one of membership, space+member, spaces+member, allSpaces+member(s), restore")
	case forms > 1:
		return invalid("", "more than one target form: give exactly one of membership, space, spaces, allSpaces")
	}
	if r.Force {
		return invalid("force", "only with restore: it makes a restore add back people it would otherwise refuse")
	}
	if r.Successor == "" && r.AddSuccessor {
		return invalid("addSuccessor", "needs successor")
	}
	if r.PageToken != "" && !r.AllSpaces {
		return invalid("pageToken", "only a sweep (allSpaces) continues at a page token")
	}
	if err := checkSpaceDisplayName(r); err != nil {
		return err
	}
	return checkMemberGroups(r)
}

// checkSpaceDisplayName checks the optional display name of a request's one
// space: at most MaxSpaceDisplayName characters, no control characters, and
// only with space.
func checkSpaceDisplayName(r Request) error {
	if r.SpaceDisplayName == "" {
		return nil
	}
	if err := checkText("spaceDisplayName", r.SpaceDisplayName); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(r.SpaceDisplayName); n > MaxSpaceDisplayName {
		return invalid("spaceDisplayName", "%d characters, more than the limit of %d", n, MaxSpaceDisplayName)
	}
	if r.Space == "" {
		return invalid("spaceDisplayName", "only with space (it names that space)")
	}
	return nil
}

// checkMemberGroups checks memberGroups, which only the function sets on the
// requests a sweep fans out: with parentRequestId, on a sweep or space +
// members, at most MaxMembers people ("users/ID", an id, not an email) of
// at most MaxGroups distinct groups ("groups/ID") each.
func checkMemberGroups(r Request) error {
	const field = "memberGroups"
	switch {
	case len(r.MemberGroups) == 0:
		return nil
	case r.ParentRequestID == "":
		return invalid(field, "set only by the function on the requests a sweep fans out (with parentRequestId); publishers leave it out")
	case !r.AllSpaces && (r.Space == "" || len(r.Members) == 0):
		return invalid(field, "only with allSpaces, or with space and members")
	case len(r.MemberGroups) > MaxMembers:
		return invalid(field, "%d people, more than the limit of %d", len(r.MemberGroups), MaxMembers)
	}
	// In key order, so that the same faults always get the same error.
	for _, person := range slices.Sorted(maps.Keys(r.MemberGroups)) {
		groups := r.MemberGroups[person]
		id, ok := strings.CutPrefix(person, "users/")
		if !ok {
			return invalid(field, "key %s is not users/{id}", quote(person))
		}
		if err := checkSegment(field, id, false); err != nil {
			return err
		}
		if len(groups) > MaxGroups {
			return invalid(field, "%d groups for %s, more than the limit of %d", len(groups), Clip(person), MaxGroups)
		}
		seen := map[string]bool{}
		for _, g := range groups {
			gid, ok := strings.CutPrefix(g, "groups/")
			if !ok {
				return invalid(field, "%s is not groups/{id}", quote(g))
			}
			if err := checkSegment(field, gid, false); err != nil {
				return err
			}
			if seen[g] {
				return invalid(field, "%s is given twice for %s", Clip(g), Clip(person))
			}
			seen[g] = true
		}
	}
	return nil
}

// targetForms counts the target forms a request names: membership, space,
// spaces and allSpaces.
func targetForms(r Request) int {
	forms := 0
	for _, set := range []bool{r.Membership != "", r.Space != "", len(r.Spaces) > 0, r.AllSpaces} {
		if set {
			forms++
		}
	}
	return forms
}

// validateMembership resolves the "membership" form.
func validateMembership(r Request) (*Valid, error) {
	if r.Member != "" || len(r.Members) > 0 {
		return nil, invalid("member", "not allowed with membership (the membership names the member)")
	}
	space, member, err := SplitMembership(r.Membership)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindMembership, Name: MembershipName(space, member)}, nil
}

// validateSpaceMembers resolves the "space" + "members" form.
func validateSpaceMembers(r Request) (*Valid, error) {
	if r.Member != "" {
		return nil, invalid("members", "give member or members, not both")
	}
	return spaceAndPeople(r, KindSpaceMembers)
}

// spaceAndPeople resolves a request of one space and several people (space
// + members, and a restore's child) as kind.
func spaceAndPeople(r Request, kind Kind) (*Valid, error) {
	space, err := SpaceID("space", r.Space)
	if err != nil {
		return nil, err
	}
	people, err := peopleOf("members", r.Members)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: kind, SpaceNames: []string{"spaces/" + space}, People: people}, nil
}

// validateSpaceMember resolves the "space" + "member" form.
func validateSpaceMember(r Request) (*Valid, error) {
	space, err := SpaceID("space", r.Space)
	if err != nil {
		return nil, err
	}
	member, err := MemberSegment("member", r.Member)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindSpaceMember, Name: MembershipName(space, member)}, nil
}

// validateBulk resolves the "spaces" + "member" form.
func validateBulk(r Request) (*Valid, error) {
	if len(r.Members) > 0 {
		return nil, invalid("members", "only a sweep (allSpaces) takes members; use member")
	}
	if len(r.Spaces) > MaxSpaces {
		return nil, invalid("spaces", "%d spaces, more than the limit of %d", len(r.Spaces), MaxSpaces)
	}
	member, err := MemberSegment("member", r.Member)
	if err != nil {
		return nil, err
	}
	names, err := bulkSpaceNames(r.RequestID, r.Spaces)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindBulk, SpaceNames: names, People: []string{member}}, nil
}

// bulkSpaceNames checks the spaces of a bulk request and returns their names,
// deduplicated, each short enough to extend requestID into its child
// request's id.
func bulkSpaceNames(requestID string, spaces []string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for i, s := range spaces {
		id, err := SpaceID(fmt.Sprintf("spaces[%d]", i), s)
		if err != nil {
			return nil, err
		}
		if name := "spaces/" + id; !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, name := range names {
		// Each space gets a child request with the id
		// requestId/spaces/ID, which must fit the same limit.
		if n := len(requestID) + 1 + len(name); n > maxField {
			return nil, invalid("requestId", "%d bytes is too long for a bulk request: the child request for %s would have a requestId of %d bytes, more than the limit of %d", len(requestID), Clip(name), n, maxField)
		}
	}
	return names, nil
}

// validateSweep resolves the "allSpaces" + "member"/"members" form.
func validateSweep(r Request) (*Valid, error) {
	if r.Member != "" && len(r.Members) > 0 {
		return nil, invalid("members", "give member or members, not both")
	}
	people := r.Members
	if r.Member != "" {
		people = []string{r.Member}
	}
	if len(people) == 0 {
		return nil, invalid("member", "a sweep needs member or members")
	}
	field := "member"
	if len(r.Members) > 0 {
		field = "members"
	}
	if err := checkFanOutID(r, r.PageToken != ""); err != nil {
		return nil, err
	}
	v := &Valid{Request: r, Kind: KindSweep}
	var err error
	if v.People, err = peopleOf(field, people); err != nil {
		return nil, err
	}
	// A sweep searches every space of the customer: only admin access
	// can do that, so a sweep always uses it.
	v.AdminAccess = true
	return v, nil
}

// checkFanOutID checks that the root of a request that fans out (a sweep,
// a restore) leaves room for its children's requestIds: the root is
// parentRequestId on a continuation page (page), else requestId.
func checkFanOutID(r Request, page bool) error {
	field, root := "requestId", r.RequestID
	if page && r.ParentRequestID != "" {
		field, root = "parentRequestId", r.ParentRequestID
	}
	if len(root) > MaxFanOutID {
		return invalid(field, "%d bytes is too long for a request that fans out: its children's requestIds (%s/spaces/{space}) must fit %d bytes, so at most %d", len(root), "ROOT", maxField, MaxFanOutID)
	}
	return nil
}

// checkSuccessor checks the successor, if any: a person, not the app.
func checkSuccessor(successor string) error {
	if successor == "" {
		return nil
	}
	seg, err := MemberSegment("successor", successor)
	if err != nil {
		return err
	}
	if seg == "app" {
		return invalid("successor", "the app cannot be a successor")
	}
	return nil
}

// peopleOf checks the people of a sweep or a space+members request: at most
// MaxMembers, no app, duplicates (case-insensitive) dropped.
func peopleOf(field string, people []string) ([]string, error) {
	if len(people) > MaxMembers {
		return nil, invalid(field, "%d people, more than the limit of %d", len(people), MaxMembers)
	}
	var out []string
	seen := map[string]bool{}
	for i, p := range people {
		f := field
		if field == "members" {
			f = fmt.Sprintf("members[%d]", i)
		}
		seg, err := MemberSegment(f, p)
		if err != nil {
			return nil, err
		}
		if seg == "app" {
			return nil, invalid(f, "the app cannot be named in members (admin access cannot act on app memberships); use member \"app\" with space")
		}
		if k := strings.ToLower(seg); !seen[k] {
			seen[k] = true
			out = append(out, seg)
		}
	}
	return out, nil
}
