package emulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// directoryUsers is the body of a users.list answer.
type directoryUsers struct {
	Kind          string           `json:"kind"`
	Users         []*directoryUser `json:"users,omitempty"`
	NextPageToken string           `json:"nextPageToken,omitempty"`
}

// list answers users.list (see Directory). Page tokens are opaque offsets
// into the stable order of the seed.
func (d *Directory) list(w http.ResponseWriter, q url.Values) *apiError {
	customer, domain := q.Get("customer"), strings.ToLower(q.Get("domain"))
	switch {
	case customer == "" && domain == "":
		return errf(400, "", "Bad Request: either customer or domain is required")
	case customer != "" && customer != "my_customer" && customer != d.customer:
		return errf(403, "", "Not Authorized to access this resource/api")
	}
	deleted := false
	switch q.Get("showDeleted") {
	case "", "false":
	case "true":
		deleted = true
	default:
		return errf(400, "", "Invalid Input: showDeleted")
	}
	size := 100
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return errf(400, "", "Invalid Input: maxResults")
		}
		size = n
	}
	var match []*directoryUser
	for _, u := range d.users {
		if (u.DeletionTime != "") == deleted && (domain == "" || strings.HasSuffix(strings.ToLower(u.PrimaryEmail), "@"+domain)) {
			match = append(match, u)
		}
	}
	from := 0
	if t := q.Get("pageToken"); t != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(t, "p"))
		if !strings.HasPrefix(t, "p") || err != nil || n < 0 || n > len(match) {
			return errf(400, "", "Invalid Input: pageToken")
		}
		from = n
	}
	out := directoryUsers{Kind: "admin#directory#users", Users: match[from:min(from+size, len(match))]}
	if from+size < len(match) {
		out.NextPageToken = "p" + strconv.Itoa(from+size)
	}
	writeJSON(w, out)
	return nil
}
