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

// MaxGroups is the largest number of groups memberGroups may give for one
// person.
const MaxGroups = 1000

// maxField bounds every free-text field (reason, requestedBy, requestId).
const maxField = 512

// MaxFanOutID is the longest requestId of a sweep or a restore (of its
// root, the request published): each child's requestId is
// ROOT/spaces/{space}, a space id may be 254 bytes, and the child's must
// fit maxField, so 512 - 8 - 254 = 250. Checked up front, it makes a too
// long id invalid before any Directory, search or ledger read.
const MaxFanOutID = maxField - len("/spaces/") - 254

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
	// PageToken continues a sweep at a page of spaces.search, or a restore
	// after a space; set only by the function itself on continuation
	// messages.
	PageToken string `json:"pageToken,omitempty"`
	// SpaceDisplayName is the space's display name, as spaces.search told
	// it; optional, only with space. A sweep sets it on the space+members
	// requests it publishes, and every result of the request carries it,
	// so that the leaver report can name the space.
	SpaceDisplayName string `json:"spaceDisplayName,omitempty"`
	// MemberGroups are, for each person of a sweep ("users/ID"), the
	// Google Groups ("groups/ID") of which the Directory says they are a
	// direct member; a person without an entry was not checked. Set only
	// by the function on the requests a sweep fans out (with
	// parentRequestId), so that its children need no Directory call.
	MemberGroups map[string][]string `json:"memberGroups,omitempty"`
	// Restore names an earlier request whose removals are undone (issue
	// 14): a target form of its own (restore.go).
	Restore string `json:"restore,omitempty"`
	// Force makes a restore add back people it would otherwise refuse:
	// someone a later request removed from the space again, or whom the
	// Directory shows suspended, archived or deleted. Only with restore.
	Force bool `json:"force,omitempty"`
	// Due, Approve, Reject and Cancel are the operator forms (issue 23,
	// operator.go): a due tick, and an approval, rejection or cancel of
	// a request (or of everything held: "held").
	Due     bool   `json:"due,omitempty"`
	Approve string `json:"approve,omitempty"`
	Reject  string `json:"reject,omitempty"`
	Cancel  string `json:"cancel,omitempty"`
}

// MaxSpaceDisplayName is the longest spaceDisplayName accepted, in
// characters: the Chat API's limit on a space's displayName.
const MaxSpaceDisplayName = 128

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
	// KindRestore undoes the removals of an earlier request: "restore"
	// (and, on continuation pages, "pageToken").
	KindRestore
	// KindRestoreSpace restores the memberships of one space that a
	// restore fans out: "restore" + "space" + "members", set only by the
	// function.
	KindRestoreSpace
	// KindDue, KindApprove, KindReject and KindCancel are the operator
	// forms (operator.go).
	KindDue
	KindApprove
	KindReject
	KindCancel
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
	case KindRestore:
		return "restore"
	case KindRestoreSpace:
		return "restore+space"
	case KindDue, KindApprove, KindReject, KindCancel:
		return operatorKind(k)
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
	case "map[string][]string":
		return "an object of arrays of strings"
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
