package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/request"
)

// item is one request to publish.
type item struct {
	line      int // line of the input file (header = 1); 0 for flags
	req       request.Request
	data      []byte // the message data, exactly what the function will parse
	kind      request.Kind
	target    string // a short description for tables
	messageID string // set once published
}

// batch names the requests of one run: generated request ids share its
// prefix, so that --wait can filter results on it.
type batch struct {
	prefix string
}

func newBatch(now time.Time) batch {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return batch{prefix: "pub-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]) + "-"}
}

// id is the generated request id of the n-th request (its line number for
// files).
func (b batch) id(n int) string { return b.prefix + strconv.Itoa(n) }

// lineError is an invalid request, named by its input line.
type lineError struct {
	Line int // 0: the request from flags
	Err  error
}

func (e *lineError) Error() string {
	if e.Line == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *lineError) Unwrap() error { return e.Err }

// lineErrors are all the invalid requests of an input.
type lineErrors []*lineError

func (l lineErrors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// fromFlags builds the one request that the target flags describe.
func fromFlags(c *config, b batch) ([]*item, error) {
	r := request.Request{
		RequestID:    c.requestID,
		Membership:   c.membership,
		Space:        c.space,
		Spaces:       splitList(c.spaces, ","),
		AllSpaces:    c.allSpaces,
		Member:       c.member,
		Members:      splitList(c.members, ","),
		Successor:    c.successor,
		AddSuccessor: c.addSuccessor,
		Restore:      c.restore,
		Force:        c.force,
	}
	if c.set["spaces"] && len(r.Spaces) == 0 {
		return nil, errors.New("--spaces is empty")
	}
	if c.set["members"] && len(r.Members) == 0 {
		return nil, errors.New("--members is empty")
	}
	it, err := finish(c, b, 1, 0, r)
	if err != nil {
		return nil, lineErrors{{Line: 0, Err: err}}
	}
	return []*item{it}, nil
}

// finish applies the flags that hold for every request, gives the request
// an id, encodes it, and validates the encoded message data with
// request.Parse: the very check the function makes when it arrives.
func finish(c *config, b batch, n, line int, r request.Request) (*item, error) {
	if r.ParentRequestID != "" {
		return nil, errors.New("parentRequestId is set only by the function on the requests it fans out")
	}
	if r.PageToken != "" {
		return nil, errors.New("pageToken is set only by the function on sweep and restore continuations")
	}
	if r.RequestID == "" {
		r.RequestID = b.id(n)
	}
	if c.dryRun {
		r.DryRun = true
	}
	if c.admin {
		r.AdminAccess = true
	}
	if r.Reason == "" {
		r.Reason = c.reason
	}
	if r.RequestedBy == "" {
		r.RequestedBy = c.requestedBy
	}
	if c.from != "" && r.Successor == "" && c.successor != "" {
		r.Successor = c.successor
	}
	if c.from != "" && c.addSuccessor {
		r.AddSuccessor = true
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	v, err := request.Parse(data, "")
	if err != nil {
		return nil, err
	}
	return &item{line: line, req: r, data: data, kind: v.Kind, target: describe(v)}, nil
}

// describe is the target of a valid request, for tables.
func describe(v *request.Valid) string {
	switch v.Kind {
	case request.KindBulk:
		return fmt.Sprintf("%d spaces, member %s", len(v.SpaceNames), v.People[0])
	case request.KindSweep:
		return "all spaces, " + strings.Join(v.People, ",")
	case request.KindSpaceMembers:
		return v.SpaceNames[0] + ", " + strings.Join(v.People, ",")
	case request.KindRestore, request.KindRestoreSpace:
		return describeRestore(v)
	}
	return v.Name
}

// splitList splits a list flag or cell, dropping empty parts and spaces.
func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Input formats.
const (
	formatCSV   = "csv"
	formatJSONL = "jsonl"
)

// readFile reads --from: a file or standard input, CSV or JSON lines.
func readFile(c *config, stdin io.Reader, b batch) ([]*item, error) {
	var data []byte
	var err error
	if c.from == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(c.from)
	}
	if err != nil {
		return nil, fmt.Errorf("reading --from: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a BOM from spreadsheet exports
	var items []*item
	switch detectFormat(c.from, data) {
	case formatJSONL:
		items, err = readJSONLines(c, data, b)
	default:
		items, err = readCSV(c, data, b)
	}
	if err != nil {
		return nil, err
	}
	return items, checkUniqueIDs(items)
}

// detectFormat decides by the file's extension, then by its first
// non-space character: '{' is JSON lines, anything else CSV.
func detectFormat(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return formatCSV
	case ".jsonl", ".ndjson", ".json":
		return formatJSONL
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return formatJSONL
	}
	return formatCSV
}

// checkUniqueIDs refuses two requests with one id: their results could not
// be told apart, and the function acts on only one request per id
// (reuseError says which way).
func checkUniqueIDs(items []*item) error {
	seen := map[string]*item{}
	var errs lineErrors
	for _, it := range items {
		if first, ok := seen[it.req.RequestID]; ok {
			errs = append(errs, &lineError{Line: it.line, Err: reuseError(it, first)})
			continue
		}
		seen[it.req.RequestID] = it
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// readJSONLines reads one request object per line; blank lines are skipped.
// Each line is decoded by request.Decode (strict: unknown and duplicate
// fields, wrong types) before it is completed and validated.
func readJSONLines(c *config, data []byte, b batch) ([]*item, error) {
	var items []*item
	var errs lineErrors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), request.MaxSize+1<<10)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if text[0] == '[' {
			return nil, lineErrors{{Line: line, Err: errors.New("a JSON array: write JSON lines, one request object per line")}}
		}
		var r request.Request
		if err := request.Decode(text, &r); err != nil {
			errs = append(errs, &lineError{Line: line, Err: err})
			continue
		}
		it, err := finish(c, b, line, line, r)
		if err != nil {
			errs = append(errs, &lineError{Line: line, Err: err})
			continue
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("longer than %d bytes", request.MaxSize)
		}
		errs = append(errs, &lineError{Line: line + 1, Err: err})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return items, nil
}

// csvColumns are the request fields a CSV header may name.
var csvColumns = []string{
	"requestId", "membership", "space", "spaces", "allSpaces", "member", "members",
	"successor", "addSuccessor", "adminAccess", "dryRun", "reason", "requestedBy", "restore", "force",
}

// readCSV reads a CSV file whose header names request fields (any case,
// e.g. space,member,reason). Cells are trimmed; an empty cell is an absent
// field; lists (spaces, members) are separated by ';'; booleans are
// true/false, yes/no or 1/0.
func readCSV(c *config, data []byte, b batch) ([]*item, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the CSV file is empty: it needs a header line such as space,member,reason")
	}
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		name := canonicalColumn(strings.TrimSpace(h))
		if name == "" {
			return nil, lineErrors{{Line: 1, Err: fmt.Errorf("unknown column %q: the header names request fields (%s)", h, strings.Join(csvColumns, ", "))}}
		}
		if seen[name] {
			return nil, lineErrors{{Line: 1, Err: fmt.Errorf("column %q appears twice", name)}}
		}
		seen[name] = true
		cols[i] = name
	}
	var items []*item
	var errs lineErrors
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			line := 0
			if errors.As(err, &pe) {
				line = pe.StartLine
				err = pe.Err
			}
			// A broken quote leaves the rest of the file unreadable.
			errs = append(errs, &lineError{Line: line, Err: fmt.Errorf("CSV: %w", err)})
			break
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if len(rec) != len(cols) {
			errs = append(errs, &lineError{Line: line, Err: fmt.Errorf("%d cells, but the header has %d columns", len(rec), len(cols))})
			continue
		}
		r, err := csvRequest(cols, rec)
		if err == nil {
			var it *item
			if it, err = finish(c, b, line, line, r); err == nil {
				items = append(items, it)
				continue
			}
		}
		errs = append(errs, &lineError{Line: line, Err: err})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return items, nil
}

func canonicalColumn(h string) string {
	for _, c := range csvColumns {
		if strings.EqualFold(h, c) {
			return c
		}
	}
	return ""
}

func blank(rec []string) bool {
	for _, s := range rec {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

// csvRequest turns one CSV record into a request.
func csvRequest(cols, rec []string) (request.Request, error) {
	var r request.Request
	for i, col := range cols {
		v := strings.TrimSpace(rec[i])
		if v == "" {
			continue
		}
		var err error
		switch col {
		case "requestId":
			r.RequestID = v
		case "membership":
			r.Membership = v
		case "space":
			r.Space = v
		case "spaces":
			r.Spaces = splitList(v, ";")
		case "allSpaces":
			r.AllSpaces, err = parseBool(v)
		case "member":
			r.Member = v
		case "members":
			r.Members = splitList(v, ";")
		case "successor":
			r.Successor = v
		case "addSuccessor":
			r.AddSuccessor, err = parseBool(v)
		case "adminAccess":
			r.AdminAccess, err = parseBool(v)
		case "dryRun":
			r.DryRun, err = parseBool(v)
		case "reason":
			r.Reason = v
		case "requestedBy":
			r.RequestedBy = v
		case "restore":
			r.Restore = v
		case "force":
			r.Force, err = parseBool(v)
		}
		if err != nil {
			return r, fmt.Errorf("column %s: %w", col, err)
		}
	}
	return r, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}
