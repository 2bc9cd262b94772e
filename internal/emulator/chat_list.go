// members.list of the Chat emulation, and the paging it shares with
// spaces.search.

package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
)

// pageToken is the (opaque to clients) paging state.
type pageToken struct {
	Kind   string `json:"k"`
	Parent string `json:"p,omitempty"`
	Filter string `json:"f,omitempty"`
	Admin  bool   `json:"a,omitempty"`
	Groups bool   `json:"g,omitempty"`
	After  int64  `json:"s"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkPageToken decodes tok and checks it belongs to a call like want.
func checkPageToken(tok string, want pageToken) (int64, *apiError) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var t pageToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Kind != want.Kind {
		return 0, errf(400, "", "Invalid page token.")
	}
	if t.Parent != want.Parent || t.Filter != want.Filter || t.Admin != want.Admin || t.Groups != want.Groups {
		return 0, errf(400, "", "The page token doesn't match the other parameters of the request.")
	}
	return t.After, nil
}

func parsePageSize(q url.Values) (int, *apiError) {
	v := q.Get("pageSize")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errf(400, "", "Invalid page size %q.", v)
	}
	if n == 0 {
		return defaultPageSize, nil
	}
	return min(n, maxPageSize), nil
}

// parseBoolParam reads a boolean query parameter (absent: false).
func parseBoolParam(q url.Values, k string) (bool, *apiError) {
	v := q.Get(k)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errf(400, "", "Invalid value for %s: %q", k, v)
	}
	return b, nil
}

type listMembershipsJSON struct {
	Memberships   []*membershipJSON `json:"memberships,omitempty"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

func (c *Chat) listMembers(rq *request) (any, *apiError) {
	if e := c.authorizeRead(rq); e != nil {
		return nil, e
	}
	filterText := rq.q.Get("filter")
	filter, err := parseMemberFilter(filterText)
	if err != nil {
		return nil, errf(400, "", "Invalid filter %q: %v", filterText, err)
	}
	if rq.admin && !filter.excludesBots() {
		return nil, errf(400, "", `When useAdminAccess is true, the filter must contain member.type = "HUMAN" or member.type != "BOT".`)
	}
	size, e := parsePageSize(rq.q)
	if e != nil {
		return nil, e
	}
	showGroups, e := parseBoolParam(rq.q, "showGroups")
	if e != nil {
		return nil, e
	}
	showInvited, e := parseBoolParam(rq.q, "showInvited")
	if e != nil {
		return nil, e
	}
	if showInvited && rq.admin {
		return nil, errf(400, "", "showInvited requires user authentication; it can't be used with useAdminAccess.")
	}
	want := pageToken{Kind: "members", Parent: rq.space, Filter: filterText, Admin: rq.admin, Groups: showGroups}
	after, e := checkPageToken(rq.q.Get("pageToken"), want)
	if e != nil {
		return nil, e
	}
	return c.inSpace(rq, false, func(s *spaceState, _ *memberState) (any, *apiError) {
		out := &listMembershipsJSON{}
		var lastSeq int64
		i := sort.Search(len(s.list), func(i int) bool { return s.list[i].seq > after })
		for ; i < len(s.list); i++ {
			m := s.list[i]
			// A group's membership has no member.type and no role:
			// member.type != "BOT" matches it, member.type = "HUMAN"
			// and any role = … do not.
			if (m.group && !showGroups) || (m.invited && !showInvited) || !filter.matchMember(m.typ, m.role) {
				continue
			}
			if len(out.Memberships) == size {
				want.After = lastSeq
				out.NextPageToken = want.encode()
				break
			}
			out.Memberships = append(out.Memberships, membershipOf(s.name, m, "JOINED"))
			lastSeq = m.seq
		}
		return out, nil
	})
}
