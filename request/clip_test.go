package request

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	long := strings.Repeat("a", 79) + "é" + "tail" // é straddles byte 80
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"short", "spaces/AAAA", "spaces/AAAA"},
		{"exactly 80", strings.Repeat("x", 80), strings.Repeat("x", 80)},
		{"81 ASCII", strings.Repeat("x", 81), strings.Repeat("x", 80) + "…"},
		{"rune across the cut", long, strings.Repeat("a", 79) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Clip(c.in)
			if got != c.want {
				t.Errorf("Clip(%q) = %q, want %q", c.in, got, c.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Clip(%q) = %q is not valid UTF-8", c.in, got)
			}
		})
	}
}
