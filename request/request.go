// Package request holds schema version 1 of a removal request and its
// validator. The function and the publisher CLI both use it, so that a request
// the CLI accepts is exactly a request the function accepts.
//
// Validation is strict and happens before any network call: the Chat API's Go
// client expands {+name} without escaping '/', so a name such as
// "x/../../spaces/OTHER/members/y" must never get that far. Every name this
// package accepts matches ^spaces/[^/]+(/members/[^/]+)?$ and is built from
// segments of a small ASCII alphabet.
//
// All functions are pure and safe for concurrent use.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MaxSize is the largest request accepted, in bytes of message data.
const MaxSize = 64 << 10

// MaxMembers is the largest number of people one sweep may name.
const MaxMembers = 100

// MaxSpaces is the largest number of spaces one bulk request may name.
const MaxSpaces = 10000

// maxField bounds every free-text field (reason, requestedBy, requestId).
const maxField = 512

// Request is a removal request, schema version 1. The JSON field names are
// the wire contract (docs/design.md, schema/request.schema.json).
type Request struct {
	RequestID       string   `json:"requestId,omitempty"`
	ParentRequestID string   `json:"parentRequestId,omitempty"`
	Membership      string   `json:"membership,omitempty"`
	Space           string   `json:"space,omitempty"`
	Spaces          []string `json:"spaces,omitempty"`
	AllSpaces       bool     `json:"allSpaces,omitempty"`
	Member          string   `json:"member,omitempty"`
	Members         []string `json:"members,omitempty"`
	Successor       string   `json:"successor,omitempty"`
	AddSuccessor    bool     `json:"addSuccessor,omitempty"`
	AdminAccess     bool     `json:"adminAccess,omitempty"`
	DryRun          bool     `json:"dryRun,omitempty"`
	Reason          string   `json:"reason,omitempty"`
	RequestedBy     string   `json:"requestedBy,omitempty"`
	// PageToken continues a sweep at a page of spaces.search; set only by
	// the function itself on continuation messages.
	PageToken string `json:"pageToken,omitempty"`
}

// Kind is the target form of a request.
type Kind int

// The target forms.
const (
	KindMembership  Kind = iota + 1 // "membership"
	KindSpaceMember                 // "space" + "member"
	KindBulk                        // "spaces" + "member"
	KindSweep                       // "allSpaces" + "member"/"members"
	// KindSpaceMembers checks several people in one space with one read of
	// its member list and deletes only real memberships: "space" +
	// "members". Sweeps fan out into requests of this form.
	KindSpaceMembers
)

// String names the target form.
func (k Kind) String() string {
	switch k {
	case KindMembership:
		return "membership"
	case KindSpaceMember:
		return "space+member"
	case KindBulk:
		return "bulk"
	case KindSweep:
		return "sweep"
	case KindSpaceMembers:
		return "space+members"
	}
	return "unknown"
}

// Error is a rejected request. Field names the offending JSON field (empty
// for the document as a whole) and Reason says what is wrong, never quoting
// more than a bounded, sanitised part of the input.
type Error struct {
	Field  string
	Reason string
}

// Error says which field is wrong and why.
func (e *Error) Error() string {
	if e.Field == "" {
		return "invalid request: " + e.Reason
	}
	return "invalid request: " + e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Valid is a request that passed validation, with its target resolved.
type Valid struct {
	Request
	Kind Kind
	// Name is the membership to act on for the single forms:
	// spaces/{space}/members/{member}, member being a user id, an email or
	// "app".
	Name string
	// SpaceNames are the spaces of a bulk request, deduplicated, or the one
	// space of a space+members request.
	SpaceNames []string
	// People are the member segments (user ids or emails) of a sweep or a
	// space+members request, deduplicated; for bulk, the one member.
	People []string
}

// Parse decodes and validates message data. requestID is used when the
// request carries none (the Pub/Sub message id). The error is always an
// *Error.
func Parse(data []byte, defaultRequestID string) (*Valid, error) {
	var r Request
	if err := Decode(data, &r); err != nil {
		return nil, err
	}
	if r.RequestID == "" {
		r.RequestID = defaultRequestID
	}
	return Validate(r)
}

// Decode decodes data strictly into r: a single JSON object of at most
// MaxSize bytes, valid UTF-8, no duplicate or unknown fields, nothing after
// it. The error is always an *Error.
func Decode(data []byte, r *Request) error {
	if len(data) == 0 {
		return invalid("", "empty message data")
	}
	if len(data) > MaxSize {
		return invalid("", "message data is %d bytes, more than the limit of %d", len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		return invalid("", "message data is not valid UTF-8")
	}
	if err := checkDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalid("", "not valid JSON (syntax error at byte %d)", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		return invalid(field, "wrong type: got JSON %s, want %s", Clip(te.Value), jsonTypeName(te.Type.String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "not valid JSON (truncated)")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return invalid(Clip(strings.Trim(f, `"`)), "unknown field (schema version 1 has no such field)")
	}
	return invalid("", "not a JSON object: %s", Clip(msg))
}

func jsonTypeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "[]string":
		return "an array of strings"
	case "request.Request":
		return "an object"
	}
	return goType
}

// knownFields are the JSON names of Request's fields, spelled exactly.
// encoding/json matches names case-insensitively, with Unicode folding
// ("ſpace" is "space"), and the last of two spellings wins: without this
// check {"dryRun":true,"dryrun":false} would be a real removal to the
// function and a dry run to any case-sensitive reader of the same request.
var knownFields = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[Request]()
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			m[name] = true
		}
	}
	return m
}()

// checkDuplicateKeys rejects a document whose top-level object repeats a key,
// which encoding/json would otherwise resolve silently (last one wins), and a
// top level that is not an object.
func checkDuplicateKeys(data []byte) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return invalid("", "message data must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		key, _ := t.(string)
		if !knownFields[key] {
			return invalid(Clip(key), "unknown field (schema version 1 has no such field)")
		}
		if seen[key] {
			return invalid(Clip(key), "duplicate field")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return jsonError(err)
		}
	}
	return nil
}

// Validate checks a decoded request and resolves its target. The checks run
// in a fixed order, so that a request with several faults always gets the
// same error: the free-text fields and the one target form (checkEnvelope),
// the target form's own fields (one function per form), the successor, and
// admin access against an app target.
func Validate(r Request) (*Valid, error) {
	if err := checkEnvelope(r); err != nil {
		return nil, err
	}
	var v *Valid
	var err error
	switch {
	case r.Membership != "":
		v, err = validateMembership(r)
	case r.Space != "" && len(r.Members) > 0:
		v, err = validateSpaceMembers(r)
	case r.Space != "":
		v, err = validateSpaceMember(r)
	case len(r.Spaces) > 0:
		v, err = validateBulk(r)
	default: // r.AllSpaces, as checkEnvelope found exactly one form
		v, err = validateSweep(r)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSuccessor(r.Successor); err != nil {
		return nil, err
	}
	if r.AdminAccess && (strings.HasSuffix(v.Name, "/members/app") || (v.Kind == KindBulk && v.People[0] == "app")) {
		return nil, invalid("adminAccess", "admin access cannot remove an app membership; remove adminAccess or the app target")
	}
	return v, nil
}

// checkEnvelope checks what every target form shares: the free-text fields,
// the request id, exactly one target form, and the fields that only some
// forms take (addSuccessor, pageToken).
func checkEnvelope(r Request) error {
	for _, f := range []struct{ name, v string }{
		{"requestId", r.RequestID}, {"parentRequestId", r.ParentRequestID},
		{"reason", r.Reason}, {"requestedBy", r.RequestedBy}, {"pageToken", r.PageToken},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return err
		}
	}
	if r.RequestID == "" {
		return invalid("requestId", "missing")
	}
	switch forms := targetForms(r); {
	case forms == 0:
		return invalid("", "no target: give exactly one of membership, space+member, spaces+member, allSpaces+member(s)")
	case forms > 1:
		return invalid("", "more than one target form: give exactly one of membership, space, spaces, allSpaces")
	}
	if r.Successor == "" && r.AddSuccessor {
		return invalid("addSuccessor", "needs successor")
	}
	if r.PageToken != "" && !r.AllSpaces {
		return invalid("pageToken", "only a sweep (allSpaces) continues at a page token")
	}
	return nil
}

// targetForms counts the target forms a request names: membership, space,
// spaces and allSpaces.
func targetForms(r Request) int {
	forms := 0
	for _, set := range []bool{r.Membership != "", r.Space != "", len(r.Spaces) > 0, r.AllSpaces} {
		if set {
			forms++
		}
	}
	return forms
}

// validateMembership resolves the "membership" form.
func validateMembership(r Request) (*Valid, error) {
	if r.Member != "" || len(r.Members) > 0 {
		return nil, invalid("member", "not allowed with membership (the membership names the member)")
	}
	space, member, err := SplitMembership(r.Membership)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindMembership, Name: MembershipName(space, member)}, nil
}

// validateSpaceMembers resolves the "space" + "members" form.
func validateSpaceMembers(r Request) (*Valid, error) {
	if r.Member != "" {
		return nil, invalid("members", "give member or members, not both")
	}
	space, err := SpaceID("space", r.Space)
	if err != nil {
		return nil, err
	}
	people, err := peopleOf("members", r.Members)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindSpaceMembers, SpaceNames: []string{"spaces/" + space}, People: people}, nil
}

// validateSpaceMember resolves the "space" + "member" form.
func validateSpaceMember(r Request) (*Valid, error) {
	space, err := SpaceID("space", r.Space)
	if err != nil {
		return nil, err
	}
	member, err := MemberSegment("member", r.Member)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindSpaceMember, Name: MembershipName(space, member)}, nil
}

// validateBulk resolves the "spaces" + "member" form.
func validateBulk(r Request) (*Valid, error) {
	if len(r.Members) > 0 {
		return nil, invalid("members", "only a sweep (allSpaces) takes members; use member")
	}
	if len(r.Spaces) > MaxSpaces {
		return nil, invalid("spaces", "%d spaces, more than the limit of %d", len(r.Spaces), MaxSpaces)
	}
	member, err := MemberSegment("member", r.Member)
	if err != nil {
		return nil, err
	}
	names, err := bulkSpaceNames(r.RequestID, r.Spaces)
	if err != nil {
		return nil, err
	}
	return &Valid{Request: r, Kind: KindBulk, SpaceNames: names, People: []string{member}}, nil
}

// bulkSpaceNames checks the spaces of a bulk request and returns their names,
// deduplicated, each short enough to extend requestID into its child
// request's id.
func bulkSpaceNames(requestID string, spaces []string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for i, s := range spaces {
		id, err := SpaceID(fmt.Sprintf("spaces[%d]", i), s)
		if err != nil {
			return nil, err
		}
		if name := "spaces/" + id; !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, name := range names {
		// Each space gets a child request with the id
		// requestId/spaces/ID, which must fit the same limit.
		if n := len(requestID) + 1 + len(name); n > maxField {
			return nil, invalid("requestId", "%d bytes is too long for a bulk request: the child request for %s would have a requestId of %d bytes, more than the limit of %d", len(requestID), Clip(name), n, maxField)
		}
	}
	return names, nil
}

// validateSweep resolves the "allSpaces" + "member"/"members" form.
func validateSweep(r Request) (*Valid, error) {
	if r.Member != "" && len(r.Members) > 0 {
		return nil, invalid("members", "give member or members, not both")
	}
	people := r.Members
	if r.Member != "" {
		people = []string{r.Member}
	}
	if len(people) == 0 {
		return nil, invalid("member", "a sweep needs member or members")
	}
	field := "member"
	if len(r.Members) > 0 {
		field = "members"
	}
	v := &Valid{Request: r, Kind: KindSweep}
	var err error
	if v.People, err = peopleOf(field, people); err != nil {
		return nil, err
	}
	// A sweep searches every space of the customer: only admin access
	// can do that, so a sweep always uses it.
	v.AdminAccess = true
	return v, nil
}

// checkSuccessor checks the successor, if any: a person, not the app.
func checkSuccessor(successor string) error {
	if successor == "" {
		return nil
	}
	seg, err := MemberSegment("successor", successor)
	if err != nil {
		return err
	}
	if seg == "app" {
		return invalid("successor", "the app cannot be a successor")
	}
	return nil
}

// peopleOf checks the people of a sweep or a space+members request: at most
// MaxMembers, no app, duplicates (case-insensitive) dropped.
func peopleOf(field string, people []string) ([]string, error) {
	if len(people) > MaxMembers {
		return nil, invalid(field, "%d people, more than the limit of %d", len(people), MaxMembers)
	}
	var out []string
	seen := map[string]bool{}
	for i, p := range people {
		f := field
		if field == "members" {
			f = fmt.Sprintf("members[%d]", i)
		}
		seg, err := MemberSegment(f, p)
		if err != nil {
			return nil, err
		}
		if seg == "app" {
			return nil, invalid(f, "the app cannot be named in members (admin access cannot act on app memberships); use member \"app\" with space")
		}
		if k := strings.ToLower(seg); !seen[k] {
			seen[k] = true
			out = append(out, seg)
		}
	}
	return out, nil
}

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
