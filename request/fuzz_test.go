package request

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzNameRE is the shape of every name the validator may hand to the Chat
// client (README.md, "Removal request").
var fuzzNameRE = regexp.MustCompile(`^spaces/[^/]+(/members/[^/]+)?$`)

// checkName fails unless name has the accepted shape and none of the
// characters that could change the URL the Chat client builds from it.
func checkName(t *testing.T, what, name string) {
	t.Helper()
	if !fuzzNameRE.MatchString(name) {
		t.Fatalf("%s %q does not match %v", what, name, fuzzNameRE)
	}
	if strings.Contains(name, "..") || strings.ContainsAny(name, "%?# \\") {
		t.Fatalf("%s %q holds '..', '%%', '?', '#', a space or a backslash", what, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c >= 0x7f {
			t.Fatalf("%s %q holds byte %#x (control or non-ASCII)", what, name, c)
		}
	}
}

// checkRejection fails unless err is an *Error with a reason that is
// bounded and valid UTF-8 (it reaches logs and result events).
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("rejection %T (%v) is not a *request.Error", err, err)
	}
	if re.Reason == "" {
		t.Fatalf("rejection without a reason: %#v", re)
	}
	if msg := err.Error(); len(msg) > 1024 {
		t.Fatalf("rejection of %d bytes echoes too much input: %.200q", len(msg), msg)
	}
	if !utf8.ValidString(re.Field) || !utf8.ValidString(re.Reason) {
		t.Fatalf("rejection is not valid UTF-8: field %+q reason %+q", re.Field, re.Reason)
	}
}

// checkValid fails unless every name an accepted request yields has the
// accepted shape.
func checkValid(t *testing.T, v *Valid) {
	t.Helper()
	if v.RequestID == "" {
		t.Fatalf("accepted without a request id: %+v", v.Request)
	}
	if v.Kind.String() == "unknown" {
		t.Fatalf("accepted with kind %d", v.Kind)
	}
	if v.Name == "" && len(v.SpaceNames) == 0 && len(v.People) == 0 {
		t.Fatalf("accepted without a target: %+v", v)
	}
	if v.Name != "" {
		checkName(t, "membership", v.Name)
		if !strings.Contains(v.Name, "/members/") {
			t.Fatalf("name %q is not a membership", v.Name)
		}
		if sp, mem, err := SplitMembership(v.Name); err != nil || MembershipName(sp, mem) != v.Name {
			t.Fatalf("accepted name %q does not round-trip: %q %q %v", v.Name, sp, mem, err)
		}
	}
	for _, s := range v.SpaceNames {
		checkName(t, "space", s)
		for _, p := range v.People {
			checkName(t, "membership", s+"/members/"+p)
		}
	}
	for _, p := range v.People {
		checkName(t, "membership", MembershipName("S", p))
	}
	if v.Kind == KindSweep && !v.AdminAccess {
		t.Fatalf("sweep without admin access: %+v", v)
	}
}

// FuzzParse: no input panics; every rejection is an *Error with a reason;
// every accepted request yields well-formed names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"requestId":"hr-1","space":"spaces/AAAA","member":"users/123"}`,
		`{"membership":"spaces/AAAA/members/alice@example.com","dryRun":true}`,
		`{"space":"spaces/A","member":"app"}`,
		`{"spaces":["spaces/A","spaces/B"],"member":"o'brien+x@example.co.uk"}`,
		`{"allSpaces":true,"members":["a@example.com","users/7"]}`,
		`{"space":"spaces/A","member":"x/../../spaces/B/members/y"}`,
		`{"space":"spaces/A","member":"%2e%2e"}`,
		`{"space":"spaces/A","member":"1","member":"2"}`,
		"{\"space\":\"spaces/A\",\"member\":\"\xff\"}",
		`{"space":"spaces/A","member":"аlice@example.com"}`,
		`[1,2]`, `{`, `null`, `{"a":{"b":[[[[[]]]]]}}`,
	} {
		f.Add([]byte(s), "msg-1")
	}
	f.Fuzz(func(t *testing.T, data []byte, msgID string) {
		v, err := Parse(data, msgID)
		if err != nil {
			if v != nil {
				t.Fatalf("both a request and an error: %v", err)
			}
			checkRejection(t, err)
			return
		}
		checkValid(t, v)
	})
}

// FuzzMembershipName drives the name builders directly: SplitMembership,
// SpaceID and MemberSegment accept only segments that MembershipName joins
// into a well-formed name, and what they accept round-trips.
func FuzzMembershipName(f *testing.F) {
	for _, s := range [][3]string{
		{"spaces/AAAA/members/123", "spaces/AAAA", "users/123"},
		{"spaces/A/members/alice@example.com", "spaces/A", "alice@example.com"},
		{"spaces/A/members/app", "spaces/A", "app"},
		{"spaces/A/members/../B", "spaces/..", "users/x/../y"},
		{"spaces/A/members/1?x=1", "spaces/A#", "%2e"},
		{"spaces/A/members/\u200b1", "spaces/\u0410", "a..b@example.com"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, membership, space, member string) {
		if sp, mem, err := SplitMembership(membership); err != nil {
			checkRejection(t, err)
		} else {
			name := MembershipName(sp, mem)
			checkName(t, "membership", name)
			if name != membership {
				t.Fatalf("SplitMembership(%q) = %q %q, which join to %q", membership, sp, mem, name)
			}
		}
		id, err := SpaceID("space", space)
		if err != nil {
			checkRejection(t, err)
		} else {
			checkName(t, "space", "spaces/"+id)
		}
		seg, err := MemberSegment("member", member)
		if err != nil {
			checkRejection(t, err)
		} else {
			checkName(t, "membership", MembershipName("S", seg))
			if id != "" {
				checkName(t, "membership", MembershipName(id, seg))
			}
		}
	})
}
