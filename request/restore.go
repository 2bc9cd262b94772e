// Restore: the request that undoes an earlier request's removals (issue 14).

package request

// checkRestore checks the envelope of a restore: it names one earlier
// request and no other target. Its children (space + members) and
// continuation pages (pageToken) are made by the function, which sets
// parentRequestId on them.
func checkRestore(r Request) error {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"membership", r.Membership != ""}, {"spaces", len(r.Spaces) > 0}, {"allSpaces", r.AllSpaces},
		{"member", r.Member != ""}, {"successor", r.Successor != ""}, {"addSuccessor", r.AddSuccessor},
		{"adminAccess", r.AdminAccess}, {"memberGroups", len(r.MemberGroups) > 0},
	} {
		if f.set {
			return invalid(f.name, "not allowed with restore: a restore names one earlier request and no other target (admin access is used as the removal used it)")
		}
	}
	child := r.Space != "" || len(r.Members) > 0
	switch {
	case r.Restore == r.RequestID:
		return invalid("restore", "a request cannot restore itself")
	case child && r.ParentRequestID == "":
		return invalid("space", "space and members are set only by the function on the children of a restore; publish {\"restore\": \"REQUEST_ID\"} alone")
	case child && (r.Space == "" || len(r.Members) == 0):
		return invalid("members", "a restore's child names one space and its members")
	case child && r.PageToken != "":
		return invalid("pageToken", "only a restore's continuation page carries a page token")
	case r.PageToken != "" && r.ParentRequestID == "":
		return invalid("pageToken", "set only by the function on a restore's continuation pages")
	}
	return checkSpaceDisplayName(r)
}

// validateRestore resolves a restore (KindRestore) or one of its children
// (KindRestoreSpace: the memberships of one space, each member segment as
// the removal's membership name had it).
func validateRestore(r Request) (*Valid, error) {
	if r.Space == "" {
		if err := checkFanOutID(r, true); err != nil {
			return nil, err
		}
		return &Valid{Request: r, Kind: KindRestore}, nil
	}
	return spaceAndPeople(r, KindRestoreSpace)
}
