// Fingerprint: what a request asks the function to do, so that a request id
// means one request (issue 20).

package request

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The fields of a fingerprint, in the order Differences names them.
var fingerprintFields = []string{"form", "parent", "target", "spaces", "people", "successor", "addSuccessor", "adminAccess", "dryRun", "restore"}

// maxListText is the longest list a fingerprint keeps verbatim; a longer one
// is kept as its length and a hash.
const maxListText = 512

// Fingerprint is the canonical form of everything in v that changes what
// the function does: the target form (membership and space + member are
// one form: they do the same), the parent, the targets (spaces, or the
// membership), the people (sorted, emails in lower case, "users/" dropped),
// the successor and addSuccessor, the effective adminAccess (sweeps always
// use it), dryRun and a restore's source. reason, requestedBy and what the
// function derives when it fans out (spaceDisplayName, memberGroups,
// pageToken) are left out. It is a small JSON object of strings: two
// requests ask for the same when their fingerprints are equal, and
// Differences says how they differ. Pure and safe for concurrent use.
func (v *Valid) Fingerprint() string {
	fp := map[string]string{
		"form":         formOf(v.Kind),
		"parent":       v.ParentRequestID,
		"successor":    person(v.Successor),
		"addSuccessor": strconv.FormatBool(v.AddSuccessor),
		"adminAccess":  strconv.FormatBool(v.AdminAccess || v.Kind == KindSweep),
		"dryRun":       strconv.FormatBool(v.DryRun),
		"restore":      v.Restore,
	}
	switch v.Kind {
	case KindMembership, KindSpaceMember:
		space, seg, _ := SplitMembership(v.Name)
		fp["target"] = MembershipName(space, person(seg))
	case KindSweep:
		fp["target"] = "every space"
	default:
		fp["spaces"] = list(v.SpaceNames, "spaces")
	}
	if v.Kind != KindMembership && v.Kind != KindSpaceMember {
		people := make([]string, len(v.People))
		for i, p := range v.People {
			people[i] = person(p)
		}
		fp["people"] = list(people, "people")
	}
	for k, s := range fp {
		if s == "" {
			delete(fp, k)
		}
	}
	b, _ := json.Marshal(fp) // a map of strings always encodes
	return string(b)
}

// formOf names the target form as a fingerprint compares it.
func formOf(k Kind) string {
	if k == KindSpaceMember {
		return KindMembership.String()
	}
	return k.String()
}

// person is a person (a member segment or a successor) as a fingerprint
// compares it: without "users/", an email in lower case.
func person(p string) string {
	p = strings.TrimPrefix(p, "users/")
	if IsEmail(p) {
		return strings.ToLower(p)
	}
	return p
}

// list is a sorted list as a fingerprint keeps it: verbatim, or, when
// longer than maxListText, its length and a hash.
func list(items []string, what string) string {
	s := slices.Sorted(slices.Values(items))
	s = slices.Compact(s)
	text := strings.Join(s, ",")
	if len(text) <= maxListText {
		return text
	}
	h := sha256.Sum256([]byte(text))
	return fmt.Sprintf("%d %s (sha256 %s)", len(s), what, hex.EncodeToString(h[:8]))
}

// Differences names how the request of fingerprint now differs from that
// of fingerprint was, one phrase per field ("people: alice@example.com
// then, bob@example.com now"); none when they ask for the same. A
// fingerprint that is empty or not one (a record written before
// fingerprints) differs from nothing.
func Differences(was, now string) []string {
	var a, b map[string]string
	if was == "" || now == "" || json.Unmarshal([]byte(was), &a) != nil || json.Unmarshal([]byte(now), &b) != nil {
		return nil
	}
	var out []string
	fields := append(slices.Clone(fingerprintFields), slices.Sorted(maps.Keys(b))...)
	seen := map[string]bool{}
	for _, k := range fields {
		if seen[k] {
			continue
		}
		seen[k] = true
		if a[k] != b[k] {
			out = append(out, difference(k, a[k], b[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !seen[k] && a[k] != b[k] {
			out = append(out, difference(k, a[k], b[k]))
		}
	}
	return out
}

// difference says how field k differs: for two lists kept verbatim, what
// was left out and what was added; otherwise both values.
func difference(k, was, now string) string {
	if (k == "spaces" || k == "people") && !strings.Contains(was+now, "sha256") {
		a, b := strings.Split(was, ","), strings.Split(now, ",")
		var parts []string
		if gone := without(a, b); len(gone) > 0 {
			parts = append(parts, "then also "+Clip(strings.Join(gone, ", ")))
		}
		if added := without(b, a); len(added) > 0 {
			parts = append(parts, "now also "+Clip(strings.Join(added, ", ")))
		}
		return k + ": " + strings.Join(parts, "; ")
	}
	return fmt.Sprintf("%s: %s then, %s now", k, shown(was), shown(now))
}

// without is the non-empty items of a that b does not have.
func without(a, b []string) []string {
	var out []string
	for _, s := range a {
		if s != "" && !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// shown is a fingerprint value in a sentence: "none" when empty, clipped.
func shown(s string) string {
	if s == "" {
		return "none"
	}
	return Clip(s)
}
