package request

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^spaces/[^/]+(/members/[^/]+)?$`)

func TestParseAcceptsEveryMemberForm(t *testing.T) {
	cases := []struct {
		data, name string
		kind       Kind
	}{
		{`{"membership":"spaces/AAAA/members/123"}`, "spaces/AAAA/members/123", KindMembership},
		{`{"membership":"spaces/AAAA/members/alice@example.com"}`, "spaces/AAAA/members/alice@example.com", KindMembership},
		{`{"membership":"spaces/AAAA/members/app"}`, "spaces/AAAA/members/app", KindMembership},
		{`{"space":"spaces/AAAA","member":"users/123456"}`, "spaces/AAAA/members/123456", KindSpaceMember},
		{`{"space":"spaces/AAAA","member":"users/alice@example.com"}`, "spaces/AAAA/members/alice@example.com", KindSpaceMember},
		{`{"space":"spaces/AAAA","member":"alice@example.com"}`, "spaces/AAAA/members/alice@example.com", KindSpaceMember},
		{`{"space":"spaces/AAAA","member":"123456"}`, "spaces/AAAA/members/123456", KindSpaceMember},
		{`{"space":"spaces/AAAA","member":"app"}`, "spaces/AAAA/members/app", KindSpaceMember},
		{`{"space":"spaces/AAAA","member":"o'brien+hr@sub.example.co.uk"}`, "spaces/AAAA/members/o'brien+hr@sub.example.co.uk", KindSpaceMember},
	}
	for _, c := range cases {
		v, err := Parse([]byte(c.data), "msg-1")
		if err != nil {
			t.Errorf("Parse(%s): %v", c.data, err)
			continue
		}
		if v.Name != c.name || v.Kind != c.kind {
			t.Errorf("Parse(%s) = %q %v, want %q %v", c.data, v.Name, v.Kind, c.name, c.kind)
		}
		if !nameRE.MatchString(v.Name) {
			t.Errorf("name %q does not match %v", v.Name, nameRE)
		}
		if v.RequestID != "msg-1" {
			t.Errorf("requestId = %q, want the message id", v.RequestID)
		}
	}
}

func TestParseKeepsRequestFields(t *testing.T) {
	v, err := Parse([]byte(`{"requestId":"hr-1","space":"spaces/A","member":"users/1","adminAccess":true,"dryRun":true,"reason":"offboarding","requestedBy":"workday"}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if v.RequestID != "hr-1" || !v.AdminAccess || !v.DryRun || v.Reason != "offboarding" || v.RequestedBy != "workday" {
		t.Errorf("fields lost: %+v", v.Request)
	}
}

func TestParseBulkAndSweep(t *testing.T) {
	v, err := Parse([]byte(`{"spaces":["spaces/A","spaces/B","spaces/A"],"member":"alice@example.com"}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != KindBulk || len(v.SpaceNames) != 2 || v.People[0] != "alice@example.com" {
		t.Errorf("bulk = %+v", v)
	}
	v, err = Parse([]byte(`{"allSpaces":true,"members":["alice@example.com","users/789","ALICE@example.com"]}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != KindSweep || !v.AdminAccess || len(v.People) != 2 {
		t.Errorf("sweep = %+v", v)
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, data, field, reason string
	}{
		{"not json", `hello`, "", "not valid JSON"},
		{"truncated", `{"space":"spaces/A"`, "", "JSON"},
		{"array", `["spaces/A"]`, "", "must be a JSON object"},
		{"empty", ``, "", "empty"},
		{"unknown field", `{"space":"spaces/A","member":"1","colour":"red"}`, "colour", "unknown field"},
		{"duplicate key", `{"space":"spaces/A","member":"1","member":"2"}`, "member", "duplicate"},
		{"two forms", `{"membership":"spaces/A/members/1","space":"spaces/A","member":"1"}`, "", "more than one target"},
		{"no target", `{"member":"1"}`, "", "no target"},
		{"wrong type", `{"space":"spaces/A","member":123}`, "member", "wrong type"},
		{"wrong bool", `{"space":"spaces/A","member":"1","dryRun":"yes"}`, "dryRun", "wrong type"},
		{"path trick member", `{"space":"spaces/A","member":"x/../../spaces/OTHER/members/y"}`, "member", "users/ID"},
		{"path trick users", `{"space":"spaces/A","member":"users/x/../y"}`, "member", ""},
		{"dotdot", `{"space":"spaces/A","member":"a..b@example.com"}`, "member", "'..'"},
		{"dotdot id", `{"space":"spaces/..","member":"1"}`, "space", ""},
		{"percent", `{"space":"spaces/A","member":"%2e%2e"}`, "member", "percent"},
		{"query", `{"space":"spaces/A","member":"1?useAdminAccess=true"}`, "member", "'?'"},
		{"fragment", `{"space":"spaces/A#x","member":"1"}`, "space", "'#'"},
		{"space char", `{"space":"spaces/A B","member":"1"}`, "space", "spaces are not allowed"},
		{"control", `{"space":"spaces/A","member":"1\u0000"}`, "member", "control"},
		{"lookalike", `{"space":"spaces/A","member":"аlice@example.com"}`, "member", "non-ASCII"},
		{"invisible", `{"space":"spaces/A","member":"alice\u200b@example.com"}`, "member", "non-ASCII"},
		{"membership extra segment", `{"membership":"spaces/A/members/1/x"}`, "membership", "exactly"},
		{"membership wrong collection", `{"membership":"spaces/A/messages/1"}`, "membership", "exactly"},
		{"space with members", `{"space":"spaces/A/members/1","member":"1"}`, "space", "exactly"},
		{"app admin", `{"space":"spaces/A","member":"app","adminAccess":true}`, "adminAccess", "app"},
		{"users/app", `{"space":"spaces/A","member":"users/app"}`, "member", "app"},
		{"sweep app", `{"allSpaces":true,"member":"app"}`, "member", "app"},
		{"membership and member", `{"membership":"spaces/A/members/1","member":"2"}`, "member", "not allowed"},
		{"bad email", `{"space":"spaces/A","member":"alice@localhost"}`, "member", "email"},
		{"trailing data", `{"space":"spaces/A","member":"1"} {}`, "", "after"},
		{"not utf8", "{\"space\":\"spaces/A\",\"member\":\"\xff\"}", "", "UTF-8"},
		{"huge", `{"reason":"` + strings.Repeat("x", MaxSize) + `"}`, "", "limit"},
		{"long reason", `{"space":"spaces/A","member":"1","reason":"` + strings.Repeat("x", 600) + `"}`, "reason", "limit"},
		{"too many members", `{"allSpaces":true,"members":[` + strings.Repeat(`"1",`, 100) + `"2"]}`, "members", "limit"},
		{"addSuccessor alone", `{"space":"spaces/A","member":"1","addSuccessor":true}`, "addSuccessor", "successor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Parse([]byte(c.data), "m")
			if err == nil {
				t.Fatalf("accepted: %+v", v)
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not *Error", err)
			}
			if re.Reason == "" {
				t.Fatal("empty reason")
			}
			if re.Field != c.field {
				t.Errorf("field = %q, want %q (%v)", re.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %q does not say %q", err, c.reason)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes echoes too much input", len(err.Error()))
			}
		})
	}
}

func TestMemberGroups(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"groups/g` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("0", i/26) + `"`)
		}
		return b.String()
	}
	child := func(groups string) string {
		return `{"requestId":"sw/spaces/A","parentRequestId":"sw","space":"spaces/A","members":["101"],"memberGroups":{"users/101":[` + groups + `]}}`
	}
	v, err := Parse([]byte(child(`"groups/g1","groups/g2"`)), "m")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.MemberGroups["users/101"]; len(got) != 2 || got[1] != "groups/g2" {
		t.Errorf("memberGroups = %v", v.MemberGroups)
	}
	if _, err := Parse([]byte(child(many(MaxGroups))), "m"); err != nil {
		t.Errorf("%d groups: %v", MaxGroups, err)
	}
	for _, data := range []string{
		child(many(MaxGroups + 1)),
		`{"space":"spaces/A","members":["101"],"memberGroups":{"users/101":["groups/g1"]}}`,
		`{"parentRequestId":"sw","space":"spaces/A","members":["101"],"memberGroups":{"users/101":["groups/g1"],"users/x@example.com":[]}}`,
	} {
		_, err := Parse([]byte(data), "m")
		var re *Error
		if !errors.As(err, &re) || re.Field != "memberGroups" {
			t.Errorf("Parse(%.90s…) = %v, want an error naming memberGroups", data, err)
		}
	}
	// Several faults: always the same error (the first key in order).
	data := `{"parentRequestId":"sw","space":"spaces/A","members":["101"],"memberGroups":{"users/b":["x"],"users/a":["y"]}}`
	for i := 0; i < 20; i++ {
		if _, err := Parse([]byte(data), "m"); err == nil || !strings.Contains(err.Error(), `"y"`) {
			t.Fatalf("error %v, want the one about users/a's \"y\"", err)
		}
	}
}

func TestParseRestore(t *testing.T) {
	v, err := Parse([]byte(`{"requestId":"hr-7-undo","restore":"hr-7","dryRun":true,"reason":"rehired","requestedBy":"workday"}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != KindRestore || v.Restore != "hr-7" || !v.DryRun || v.Reason != "rehired" || v.AdminAccess || v.Force {
		t.Errorf("restore: %+v", v)
	}
	if v, err := Parse([]byte(`{"requestId":"hr-7-undo","restore":"hr-7","force":true}`), "m"); err != nil || !v.Force {
		t.Errorf("a forced restore: %+v, %v", v, err)
	}
	// A child, as the function publishes it: one space, the members as the
	// removal's membership names had them.
	v, err = Parse([]byte(`{"requestId":"u/spaces/A","parentRequestId":"u","restore":"hr-7/spaces/A","space":"spaces/A","members":["101","alice@example.com"]}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != KindRestoreSpace || v.SpaceNames[0] != "spaces/A" || len(v.People) != 2 || v.People[1] != "alice@example.com" {
		t.Errorf("restore child: %+v", v)
	}
	if _, err := Parse([]byte(`{"requestId":"u/page-1","parentRequestId":"u","restore":"hr-7","pageToken":"spaces/A"}`), "m"); err != nil {
		t.Errorf("continuation page: %v", err)
	}
	for _, c := range []struct{ data, field string }{
		{`{"restore":"hr-7","member":"users/1"}`, "member"},
		{`{"restore":"hr-7","membership":"spaces/A/members/1"}`, "membership"},
		{`{"restore":"hr-7","spaces":["spaces/A"]}`, "spaces"},
		{`{"restore":"hr-7","allSpaces":true}`, "allSpaces"},
		{`{"restore":"hr-7","adminAccess":true}`, "adminAccess"},
		{`{"restore":"hr-7","successor":"users/2"}`, "successor"},
		{`{"restore":"hr-7","space":"spaces/A","members":["1"]}`, "space"},
		{`{"restore":"hr-7","parentRequestId":"p","space":"spaces/A"}`, "members"},
		{`{"restore":"hr-7","parentRequestId":"p","space":"spaces/A","members":["app"]}`, "members[0]"},
		{`{"restore":"hr-7","pageToken":"spaces/A"}`, "pageToken"},
		{`{"requestId":"hr-7","restore":"hr-7"}`, "restore"},
		{`{"restore":"hr\u0001"}`, "restore"},
		{`{"space":"spaces/A","member":"users/1","force":true}`, "force"},
		{`{"allSpaces":true,"member":"users/1","force":true}`, "force"},
	} {
		_, err := Parse([]byte(c.data), "m")
		var e *Error
		if !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("Parse(%s) = %v, want an error on %s", c.data, err, c.field)
		}
	}
}
