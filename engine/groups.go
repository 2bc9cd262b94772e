package engine

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/chat-offboard/chat-offboard/contract"
)

// Access through Google Groups (docs/design.md, "Access through groups"):
// a sweep's first page asks the Directory once per person for the groups
// they are a direct member of (groups.list with userKey) and carries them
// to every child in memberGroups; a child asks members.list for group
// memberships in the same call that lists the humans, and a person who is
// no direct member of a space but a member of one of its groups is decided
// via_group. Nested groups are not followed.

// Group constants.
const (
	// groupsPageSize is the largest maxResults of groups.list.
	groupsPageSize = 200
	// maxCarriedGroups bounds the groups a sweep carries in each child
	// request, all people together, so that a child stays far below
	// request.MaxSize (a group name is about 25 bytes of JSON); it is
	// request.MaxGroups, the validator's bound per person.
	maxCarriedGroups = 1000
	// groupScopeFix is what an operator does when the Directory refuses
	// groups.list.
	groupScopeFix = "grant the delegated admin's token the scope admin.directory.group.readonly (cmd/authorize --sweeps)"
)

// memberGroups reads, once per sweep, the groups of which each person (a
// user id, "users/ID") is a direct member. A person without an entry in the
// answer was not checked; note says whose and why (empty when everyone's
// was). The Directory's refusals do not stop the sweep: a 403 (no scope,
// not an admin) leaves everyone after it unchecked without asking again,
// another 4xx that person. A transient error is returned.
func (f *Engine) memberGroups(ctx context.Context, j *job, people []string) (map[string][]string, string, error) {
	out := map[string][]string{}
	var unchecked []string // "users/ID (why)"
	carried := 0
	for i, p := range people {
		groups, err := f.groupsOf(ctx, j, p)
		if ge, ok := apiError(err); ok && ge.Code >= 400 && ge.Code < 500 {
			j.log.WarnContext(ctx, "the Directory refused groups.list; group access is not checked", "member", p, "status", ge.Code, "error", ge.Message)
			if ge.Code == http.StatusForbidden {
				why := fmt.Sprintf("the Directory refused groups.list (%d %s): %s", ge.Code, ge.Message, groupScopeFix)
				return out, groupNote(append(unchecked, people[i:]...), why), nil
			}
			unchecked = append(unchecked, fmt.Sprintf("%s (the Directory answered groups.list %d %s)", p, ge.Code, ge.Message))
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if carried+len(groups) > maxCarriedGroups {
			unchecked = append(unchecked, fmt.Sprintf("%s (%d groups: more than %d in all to carry to each space)", p, len(groups), maxCarriedGroups))
			continue
		}
		carried += len(groups)
		out[p] = groups
	}
	return out, groupNote(unchecked, ""), nil
}

// groupsOf lists the groups of which one person is a direct member, as
// "groups/ID", sorted, every page of groups.list.
func (f *Engine) groupsOf(ctx context.Context, j *job, person string) ([]string, error) {
	groups := []string{}
	token := ""
	for {
		var page *admin.Groups
		err := f.call(ctx, j, "groups.list", read, func(ctx context.Context) error {
			var err error
			page, err = f.dir.Groups.List().UserKey(strings.TrimPrefix(person, "users/")).
				MaxResults(groupsPageSize).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, g := range page.Groups {
			groups = append(groups, "groups/"+g.Id)
		}
		if token = page.NextPageToken; token == "" {
			slices.Sort(groups)
			return slices.Compact(groups), nil
		}
	}
}

// sweepGroups are the groups of a sweep page's people, and the note on
// whose were not checked: read from the Directory on the first page, as
// carried on a continuation (whose people may be named by id without
// "users/").
func (f *Engine) sweepGroups(ctx context.Context, j *job, people []string) (map[string][]string, string, error) {
	if j.req.PageToken == "" {
		return f.memberGroups(ctx, j, people)
	}
	carried := j.req.MemberGroups
	var unchecked []string
	for _, p := range people {
		if _, ok := carried["users/"+strings.TrimPrefix(p, "users/")]; !ok {
			unchecked = append(unchecked, p)
		}
	}
	return carried, groupNote(unchecked, "the sweep's first page could not read their groups (see its planned result)"), nil
}

// anyGroups reports whether any of the people has a group to look for.
func anyGroups(carried map[string][]string, people []spacePerson) bool {
	for _, p := range people {
		if len(carried[p.id]) > 0 {
			return true
		}
	}
	return false
}

// groupNote says whose group access is not checked (each may carry its own
// reason), and why when one reason holds for all; "" when everyone's is.
func groupNote(unchecked []string, why string) string {
	if len(unchecked) == 0 {
		return ""
	}
	note := "group access not checked for " + strings.Join(unchecked, ", ")
	if why != "" {
		note += ": " + why
	}
	return note
}

// groupDetail is the part of a sweep page's detail about group access.
func groupDetail(note string) string {
	if note != "" {
		return note
	}
	return "group access checked (direct groups only; nested groups are not followed)"
}

// viaGroups are the groups of a person (as carried) that are members of the
// space, sorted.
func viaGroups(theirs []string, inSpace map[string]bool) []string {
	var out []string
	for _, g := range theirs {
		if inSpace[g] {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// viaGroupResult decides via_group: the person is no direct member of the
// space but still reaches it through groups.
func viaGroupResult(r contract.Result, id string, via []string) contract.Result {
	r.Outcome, r.ViaGroups = contract.ViaGroup, via
	r.Member = &contract.Member{Name: id, Type: "HUMAN"}
	r.Detail = "no direct membership; still in the space through " + strings.Join(via, ", ") +
		": nothing was removed (the group is not the function's to change: remove the person from the group, or the group from the space)"
	return r
}

// withViaGroups adds to a decision about a direct membership the groups
// through which the person still reaches the space.
func withViaGroups(r contract.Result, via []string) contract.Result {
	if len(via) == 0 || r.Outcome == contract.ViaGroup {
		return r
	}
	r.ViaGroups = via
	note := "still in the space through " + strings.Join(via, ", ") + " (not removed: the group is not the function's to change)"
	if r.Detail == "" {
		r.Detail = note
	} else {
		r.Detail += "; " + note
	}
	return r
}
