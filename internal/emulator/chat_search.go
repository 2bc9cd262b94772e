// spaces.search of the Chat emulation.

package emulator

import "strings"

type membershipCountJSON struct {
	JoinedDirectHumanUserCount int `json:"joinedDirectHumanUserCount"`
}

type spaceJSON struct {
	Name            string               `json:"name"`
	Type            string               `json:"type,omitempty"`
	DisplayName     string               `json:"displayName,omitempty"`
	SpaceType       string               `json:"spaceType"`
	Customer        string               `json:"customer,omitempty"`
	MembershipCount *membershipCountJSON `json:"membershipCount,omitempty"`
}

type searchSpaceResultJSON struct {
	Space *spaceJSON `json:"space"`
}

// searchSpacesJSON is SearchSpacesResponse: results (SearchSpaceResult
// {space}) and, unless ChatOptions.Search says otherwise, the deprecated
// spaces beside them, holding the same spaces.
type searchSpacesJSON struct {
	Results       []*searchSpaceResultJSON `json:"results,omitempty"`
	Spaces        []*spaceJSON             `json:"spaces,omitempty"`
	NextPageToken string                   `json:"nextPageToken,omitempty"`
	TotalSize     int                      `json:"totalSize"`
}

func (c *Chat) searchSpaces(rq *request) (any, *apiError) {
	if !rq.admin {
		return nil, errf(400, "", "spaces.search requires useAdminAccess=true.")
	}
	if e := c.authorize(rq, nil, []string{ScopeChatAdminSpaces, ScopeChatAdminSpacesReadonly}); e != nil {
		return nil, e
	}
	query := rq.q.Get("query")
	sq, err := parseSpaceQuery(query)
	if err != nil {
		return nil, errf(400, "", "Invalid query %q: %v", query, err)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if sq.customer != DefaultCustomer && sq.customer != c.customer {
		return nil, errf(400, "", "Invalid customer %q in query: must be customers/my_customer.", sq.customer)
	}
	size, e := parsePageSize(rq.q)
	if e != nil {
		return nil, e
	}
	want := pageToken{Kind: "spaces", Filter: query + "\x00" + rq.q.Get("orderBy"), Admin: true}
	after, e := checkPageToken(rq.q.Get("pageToken"), want)
	if e != nil {
		return nil, e
	}
	out := &searchSpacesJSON{}
	var last int64
	n := 0
	for _, s := range c.order {
		if s.spaceType != SpaceTypeSpace {
			continue
		}
		if sq.displayName != "" && !strings.Contains(strings.ToLower(s.displayName), sq.displayName) {
			continue
		}
		out.TotalSize++
		if s.seq <= after {
			continue
		}
		if n == size {
			if out.NextPageToken == "" {
				want.After = last
				out.NextPageToken = want.encode()
			}
			continue
		}
		sp := &spaceJSON{
			Name: s.name, Type: "ROOM", DisplayName: s.displayName, SpaceType: s.spaceType, Customer: c.customer,
			MembershipCount: &membershipCountJSON{JoinedDirectHumanUserCount: s.humans},
		}
		if c.opts.Search != SearchSpacesOnly {
			out.Results = append(out.Results, &searchSpaceResultJSON{Space: sp})
		}
		if c.opts.Search != SearchResultsOnly {
			out.Spaces = append(out.Spaces, sp)
		}
		n++
		last = s.seq
	}
	return out, nil
}
