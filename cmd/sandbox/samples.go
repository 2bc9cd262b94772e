package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// defaultSamples are the embedded sample requests: one or more per outcome,
// written for the default workspace (emulator.Default) with
// PROTECTED_MEMBERS=users/100,app.
//
//go:embed samples.jsonl
var defaultSamples []byte

// sandboxKey is the member of a sample line that belongs to the sandbox: it
// is removed before the line is published.
const sandboxKey = "sandbox"

// maxSampleLine bounds one line of a requests file (the function rejects
// messages over 64 KiB anyway; a bit more lets such a line be tried).
const maxSampleLine = 1 << 20

// sample is one line of a requests file.
type sample struct {
	line int    // 1-based line number in its file
	data []byte // the message data to publish: the line without "sandbox"
	meta meta   // the "sandbox" member, if any
}

// meta is the "sandbox" member of a sample line:
//
//	{"expect":"dry_run","wouldRemove":true,"status":"FAILED_PRECONDITION",
//	 "faults":[{"method":"members.delete","status":429,"retryAfter":"1s","times":1}]}
//
// Every member is optional. A line without expectations is published and
// reported, but not checked.
type meta struct {
	// Expect is the outcome the request must end in.
	Expect string `json:"expect,omitempty"`
	// WouldRemove, if set, is the wouldRemove that a dry_run must report.
	WouldRemove *bool `json:"wouldRemove,omitempty"`
	// Status, if set, is the error status ("FAILED_PRECONDITION", …) the
	// result must carry.
	Status string `json:"status,omitempty"`
	// Faults are injected into the Chat API emulation just before the line
	// is published (with --faults, the default). Lines with faults are
	// published one at a time after all the others, so that the faults hit
	// their own request.
	Faults []faultSpec `json:"faults,omitempty"`
	// After, if set, is the requestId of a request this line follows: it
	// is published once that request and its children have their results
	// (undo.go).
	After string `json:"after,omitempty"`
}

// faultSpec is the JSON form of an emulator.Fault on the Chat API.
type faultSpec struct {
	Method     string `json:"method"`
	Status     int    `json:"status,omitempty"`
	RetryAfter string `json:"retryAfter,omitempty"`
	Drop       bool   `json:"drop,omitempty"`
	Latency    string `json:"latency,omitempty"`
	Times      int    `json:"times,omitempty"`
}

// chatMethods are the Chat API methods a fault may name.
var chatMethods = map[string]bool{
	"members.delete": true, "members.get": true, "members.list": true,
	"members.create": true, "members.patch": true, "spaces.search": true,
}

// outcomes are the outcomes an expectation may name.
var outcomes = map[contract.Outcome]bool{
	contract.Removed: true, contract.NotMember: true, contract.DryRun: true,
	contract.Refused: true, contract.Invalid: true, contract.Failed: true,
	contract.Planned: true, contract.Expired: true, contract.ViaGroup: true,
	contract.Restored: true, contract.AlreadyMember: true,
}

// fault converts s to an emulator.Fault (Times defaults to 1).
func (s faultSpec) fault() (emulator.Fault, error) {
	f := emulator.Fault{Method: s.Method, Status: s.Status, Drop: s.Drop, Times: s.Times}
	if !chatMethods[s.Method] {
		return f, fmt.Errorf("fault method %q is not one of members.delete, members.get, members.list, members.create, members.patch, spaces.search", s.Method)
	}
	if s.Status != 0 && (s.Status < 400 || s.Status > 599) {
		return f, fmt.Errorf("fault status %d is not an HTTP error status", s.Status)
	}
	if s.Status == 0 && !s.Drop && s.Latency == "" {
		return f, errors.New("a fault needs a status, drop or latency")
	}
	if f.Times < 0 {
		return f, fmt.Errorf("fault times %d is negative", f.Times)
	}
	if f.Times == 0 {
		f.Times = 1
	}
	for _, d := range []struct {
		name string
		v    string
		dst  *time.Duration
	}{{"retryAfter", s.RetryAfter, &f.RetryAfter}, {"latency", s.Latency, &f.Latency}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v < 0 {
			return f, fmt.Errorf("fault %s %q is not a Go duration such as 1s", d.name, d.v)
		}
		*d.dst = v
	}
	return f, nil
}

// parseSamples reads a JSON-lines requests file. Blank lines are skipped.
// A line that is a JSON object loses its "sandbox" member (which must then
// be valid); every other line is published byte for byte, so that files may
// hold deliberately malformed requests.
func parseSamples(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxSampleLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		data, m, err := splitSandbox(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, sample{line: n, data: data, meta: m})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

// splitSandbox removes the "sandbox" member from a JSON object line and
// decodes it. The other members keep their order, spelling and duplicates.
// A line that is not a well-formed JSON object, or has no "sandbox" member,
// is returned unchanged (a copy).
func splitSandbox(line []byte) ([]byte, meta, error) {
	var m meta
	orig := append([]byte(nil), line...)
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return orig, m, nil
	}
	var (
		buf   bytes.Buffer
		found bool
		n     int
	)
	buf.WriteByte('{')
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return orig, meta{}, nil
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return orig, meta{}, nil
		}
		if key == sandboxKey {
			if found {
				return nil, m, fmt.Errorf("duplicate %q member", sandboxKey)
			}
			found = true
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(&m); err != nil {
				return nil, m, fmt.Errorf("%q member: %w", sandboxKey, err)
			}
			if err := m.check(); err != nil {
				return nil, m, fmt.Errorf("%q member: %w", sandboxKey, err)
			}
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(raw)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return orig, meta{}, nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return orig, meta{}, nil // trailing data: leave the line to the function
	}
	if !found {
		return orig, m, nil
	}
	buf.WriteByte('}')
	return buf.Bytes(), m, nil
}

// check validates a "sandbox" member.
func (m meta) check() error {
	if m.Expect != "" && !outcomes[contract.Outcome(m.Expect)] {
		return fmt.Errorf("expect %q is not an outcome (%s)", m.Expect, outcomeList())
	}
	if m.Expect == "" && (m.WouldRemove != nil || m.Status != "") {
		return errors.New("wouldRemove and status need an expect")
	}
	for _, f := range m.Faults {
		if _, err := f.fault(); err != nil {
			return err
		}
	}
	return nil
}

func outcomeList() string {
	names := make([]string, len(contract.Outcomes))
	for i, o := range contract.Outcomes {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// verdict compares a result with the expectations of m. It returns "" when
// there is nothing to check, "ok", or what differs.
func (m meta) verdict(r *contract.Result) (string, bool) {
	if m.Expect == "" {
		if r == nil {
			return "no result", false
		}
		return "-", true
	}
	if r == nil {
		return "no result, want " + m.Expect, false
	}
	if string(r.Outcome) != m.Expect {
		return "want " + m.Expect, false
	}
	if m.WouldRemove != nil && (r.WouldRemove == nil || *r.WouldRemove != *m.WouldRemove) {
		return fmt.Sprintf("want wouldRemove=%t", *m.WouldRemove), false
	}
	if m.Status != "" && (r.Error == nil || r.Error.Status != m.Status) {
		return "want " + m.Status, false
	}
	return "ok", true
}
