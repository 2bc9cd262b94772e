// Names: the membership, space and member names a request may carry, and
// the bounded quoting of input in error messages.

package request

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MembershipName joins a space id and a member segment.
func MembershipName(space, member string) string {
	return "spaces/" + space + "/members/" + member
}

// SplitMembership checks a membership name and returns its space id and
// member segment.
func SplitMembership(name string) (space, member string, err error) {
	const field = "membership"
	p := strings.Split(name, "/")
	if len(p) != 4 || p[0] != "spaces" || p[2] != "members" {
		return "", "", invalid(field, "must be exactly spaces/{space}/members/{member}, got %s", quote(name))
	}
	if err := checkSegment(field, p[1], false); err != nil {
		return "", "", err
	}
	if err := checkSegment(field, p[3], true); err != nil {
		return "", "", err
	}
	return p[1], p[3], nil
}

// SpaceID checks a space name (spaces/{space}) and returns its id.
func SpaceID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "spaces/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", invalid(field, "must be exactly spaces/{space}, got %s", quote(name))
	}
	if err := checkSegment(field, id, false); err != nil {
		return "", err
	}
	return id, nil
}

// MemberSegment turns a member as a request names it (users/ID,
// users/EMAIL, EMAIL, ID or app) into the {member} segment of a membership
// name: the id, the email, or "app".
func MemberSegment(field, member string) (string, error) {
	if member == "" {
		return "", invalid(field, "missing")
	}
	seg := member
	if rest, ok := strings.CutPrefix(member, "users/"); ok {
		seg = rest
		if seg == "app" {
			return "", invalid(field, "the app is named \"app\", not users/app")
		}
	}
	if strings.Contains(seg, "/") {
		return "", invalid(field, "must be users/ID, users/EMAIL, EMAIL, ID or app, got %s", quote(member))
	}
	if err := checkSegment(field, seg, true); err != nil {
		return "", err
	}
	return seg, nil
}

// checkSegment accepts one name segment: an id ([A-Za-z0-9_-]), or, where
// member is true, an email address or "app".
func checkSegment(field, s string, member bool) *Error {
	if s == "" {
		return invalid(field, "empty name segment")
	}
	if len(s) > 254 {
		return invalid(field, "name segment of %d bytes is too long", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case member && (c == '.' || c == '@' || c == '+' || c == '\''):
		case c >= 0x80:
			return invalid(field, "non-ASCII character in a name (look-alike or invisible characters are refused): %s", quote(s))
		case c < 0x20 || c == 0x7f:
			return invalid(field, "control character in a name")
		case c == '%':
			return invalid(field, "percent-encoding is not allowed in a name: %s", quote(s))
		case c == '?' || c == '#':
			return invalid(field, "'?' and '#' are not allowed in a name: %s", quote(s))
		case c == ' ':
			return invalid(field, "spaces are not allowed in a name: %s", quote(s))
		default:
			return invalid(field, "character %q is not allowed in a name: %s", c, quote(s))
		}
	}
	if strings.Contains(s, "..") || s == "." {
		return invalid(field, "'..' is not allowed in a name: %s", quote(s))
	}
	if strings.Contains(s, "@") {
		local, domain, _ := strings.Cut(s, "@")
		if local == "" || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") ||
			strings.Contains(domain, "@") || !strings.Contains(domain, ".") ||
			strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
			strings.ContainsAny(domain, "+'_") {
			return invalid(field, "not a valid email address: %s", quote(s))
		}
	} else if member && strings.ContainsAny(s, ".+'") {
		return invalid(field, "an id has only letters, digits, '-' and '_': %s", quote(s))
	}
	return nil
}

func checkText(field, s string) *Error {
	if len(s) > maxField {
		return invalid(field, "%d bytes, more than the limit of %d", len(s), maxField)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "control character")
		}
	}
	return nil
}

// quote returns s quoted and clipped (Clip) so that an error never echoes a
// huge or unprintable input.
func quote(s string) string { return fmt.Sprintf("%+q", Clip(s)) }

// Clip cuts s to at most 80 bytes, at a rune boundary so that the result
// stays valid UTF-8, and marks a cut with "…": the bounded part of an input
// that an error message may quote.
func Clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	// Cut at a rune boundary: a clipped name must stay valid UTF-8.
	n := 80
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// IsEmail reports whether a member segment is an email address.
func IsEmail(seg string) bool { return strings.Contains(seg, "@") }
