package request

import (
	"strconv"
	"strings"
	"testing"
)

func mustValid(t *testing.T, data string) *Valid {
	t.Helper()
	v, err := Parse([]byte(data), "msg-1")
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	return v
}

// Requests that do the same have one fingerprint, whatever their spelling,
// reason or requester.
func TestFingerprintSameRequest(t *testing.T) {
	for _, pair := range [][2]string{
		{`{"requestId":"a","membership":"spaces/A/members/alice@example.com","reason":"left"}`,
			`{"requestId":"a","space":"spaces/A","member":"Alice@Example.com","requestedBy":"hr"}`},
		{`{"requestId":"a","spaces":["spaces/B","spaces/A"],"member":"users/42"}`,
			`{"requestId":"a","spaces":["spaces/A","spaces/B","spaces/A"],"member":"42"}`},
		{`{"requestId":"a","allSpaces":true,"members":["bob@example.com","users/7"],"successor":"users/9"}`,
			`{"requestId":"a","allSpaces":true,"adminAccess":true,"members":["7","BOB@example.com"],"successor":"9"}`},
		{`{"requestId":"a","restore":"hr-1"}`, `{"requestId":"a","restore":"hr-1","reason":"rehired"}`},
	} {
		a, b := mustValid(t, pair[0]).Fingerprint(), mustValid(t, pair[1]).Fingerprint()
		if a != b {
			t.Errorf("fingerprints differ:\n%s: %s\n%s: %s", pair[0], a, pair[1], b)
		}
		if d := Differences(a, b); d != nil {
			t.Errorf("Differences of one request = %q", d)
		}
	}
}

// Requests that do something else differ, and Differences names each field
// that differs.
func TestFingerprintDifferentRequest(t *testing.T) {
	base := `{"requestId":"a","allSpaces":true,"members":["alice@example.com","users/7"]}`
	for _, c := range []struct {
		other string
		want  []string
	}{
		{`{"requestId":"a","allSpaces":true,"members":["alice@example.com","users/7"],"dryRun":true}`, []string{"dryRun: false then, true now"}},
		{`{"requestId":"a","allSpaces":true,"members":["bob@example.com","users/7"]}`, []string{"people: then also alice@example.com; now also bob@example.com"}},
		{`{"requestId":"a","allSpaces":true,"members":["alice@example.com","users/7"],"successor":"s@example.com","addSuccessor":true}`,
			[]string{"successor: none then, s@example.com now", "addSuccessor: false then, true now"}},
		{`{"requestId":"a","space":"spaces/A","members":["alice@example.com","users/7"]}`,
			[]string{"form: sweep then, space+members now", "target: every space then, none now", "spaces: now also spaces/A", "adminAccess: true then, false now"}},
		{`{"requestId":"a","restore":"hr-1"}`, nil},
	} {
		was, now := mustValid(t, base).Fingerprint(), mustValid(t, c.other).Fingerprint()
		if was == now {
			t.Errorf("%s has the fingerprint of %s", c.other, base)
			continue
		}
		got := Differences(was, now)
		if c.want == nil {
			if len(got) == 0 {
				t.Errorf("Differences(%s) names nothing", c.other)
			}
			continue
		}
		if strings.Join(got, " | ") != strings.Join(c.want, " | ") {
			t.Errorf("Differences(%s) =\n%q, want\n%q", c.other, got, c.want)
		}
	}
}

// A long list is kept as its length and a hash, so a fingerprint stays
// small; a record without a fingerprint differs from nothing.
func TestFingerprintBounded(t *testing.T) {
	spaces := make([]string, 0, 2000)
	for i := range 2000 {
		spaces = append(spaces, `"spaces/S`+strings.Repeat("x", i%7)+string(rune('a'+i%26))+`-`+strconv.Itoa(i)+`"`)
	}
	data := `{"requestId":"a","member":"users/1","spaces":[` + strings.Join(spaces, ",") + `]}`
	fp := mustValid(t, data).Fingerprint()
	if len(fp) > 400 || !strings.Contains(fp, "2000 spaces (sha256 ") {
		t.Fatalf("fingerprint of 2,000 spaces = %s (%d bytes)", fp, len(fp))
	}
	other := mustValid(t, strings.Replace(data, "-1999", "-2000", 1)).Fingerprint()
	if other == fp || len(Differences(fp, other)) != 1 {
		t.Fatalf("one space changed: %s vs %s, %q", fp, other, Differences(fp, other))
	}
	if Differences("", fp) != nil || Differences(fp, "not json") != nil {
		t.Fatal("a missing or broken fingerprint differs from something")
	}
}
