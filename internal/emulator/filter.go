package emulator

import (
	"errors"
	"fmt"
	"strings"
)

// A tiny AIP-160 subset: comparisons `field op "value"` (op is =, != or :),
// combined with AND / OR (upper case) and parentheses; AND binds tighter.

type filterNode struct {
	op    string // "AND", "OR" or "CMP"
	kids  []*filterNode
	field string
	cmp   string // "=", "!=", ":"
	value string
}

type filterToken struct {
	kind string // "id", "str", "op", "(", ")"
	text string
}

func tokenizeFilter(s string) ([]filterToken, error) {
	var toks []filterToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, filterToken{kind: string(c)})
			i++
		case c == '=' || c == ':':
			toks = append(toks, filterToken{kind: "op", text: string(c)})
			i++
		case c == '!':
			if i+1 >= len(s) || s[i+1] != '=' {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			toks = append(toks, filterToken{kind: "op", text: "!="})
			i += 2
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, filterToken{kind: "str", text: s[i+1 : i+1+j]})
			i += j + 2
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.':
			j := i
			for j < len(s) {
				d := s[j]
				if !('a' <= d && d <= 'z' || 'A' <= d && d <= 'Z' || '0' <= d && d <= '9' || d == '_' || d == '.') {
					break
				}
				j++
			}
			toks = append(toks, filterToken{kind: "id", text: s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return toks, nil
}

type filterParser struct {
	toks []filterToken
	pos  int
}

func (p *filterParser) peekKeyword(k string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == "id" && p.toks[p.pos].text == k
}

func (p *filterParser) or() (*filterNode, error) {
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	if !p.peekKeyword("OR") {
		return n, nil
	}
	or := &filterNode{op: "OR", kids: []*filterNode{n}}
	for p.peekKeyword("OR") {
		p.pos++
		k, err := p.and()
		if err != nil {
			return nil, err
		}
		or.kids = append(or.kids, k)
	}
	return or, nil
}

func (p *filterParser) and() (*filterNode, error) {
	n, err := p.primary()
	if err != nil {
		return nil, err
	}
	if !p.peekKeyword("AND") {
		return n, nil
	}
	and := &filterNode{op: "AND", kids: []*filterNode{n}}
	for p.peekKeyword("AND") {
		p.pos++
		k, err := p.primary()
		if err != nil {
			return nil, err
		}
		and.kids = append(and.kids, k)
	}
	return and, nil
}

func (p *filterParser) primary() (*filterNode, error) {
	if p.pos >= len(p.toks) {
		return nil, errors.New("unexpected end of expression")
	}
	t := p.toks[p.pos]
	if t.kind == "(" {
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != ")" {
			return nil, errors.New("missing )")
		}
		p.pos++
		return n, nil
	}
	if t.kind != "id" || t.text == "AND" || t.text == "OR" {
		return nil, fmt.Errorf("expected a field name, got %q", t.text)
	}
	if p.pos+2 >= len(p.toks) {
		return nil, fmt.Errorf("incomplete comparison on %q", t.text)
	}
	op, v := p.toks[p.pos+1], p.toks[p.pos+2]
	if op.kind != "op" {
		return nil, fmt.Errorf("expected an operator after %q", t.text)
	}
	if v.kind != "str" && v.kind != "id" {
		return nil, fmt.Errorf("expected a value after %s %s", t.text, op.text)
	}
	p.pos += 3
	return &filterNode{op: "CMP", field: t.text, cmp: op.text, value: v.text}, nil
}

func parseFilter(s string) (*filterNode, error) {
	toks, err := tokenizeFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &filterParser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(toks) {
		return nil, fmt.Errorf("unexpected %q", toks[p.pos].text)
	}
	return n, nil
}

// parseMemberFilter parses a members.list filter: member.type (HUMAN, BOT)
// and role (ROLE_MEMBER, ROLE_MANAGER) compared with = or !=.
func parseMemberFilter(s string) (*filterNode, error) {
	n, err := parseFilter(s)
	if err != nil {
		return nil, err
	}
	var check func(*filterNode) error
	check = func(n *filterNode) error {
		if n.op != "CMP" {
			for _, k := range n.kids {
				if err := check(k); err != nil {
					return err
				}
			}
			return nil
		}
		if n.cmp != "=" && n.cmp != "!=" {
			return fmt.Errorf("operator %q is not supported for %s", n.cmp, n.field)
		}
		switch n.field {
		case "member.type":
			if n.value != MemberTypeHuman && n.value != MemberTypeBot {
				return fmt.Errorf("invalid member.type %q", n.value)
			}
		case "role":
			if n.value != RoleMember && n.value != RoleManager && n.value != RoleAssistantManager {
				return fmt.Errorf("invalid role %q", n.value)
			}
		default:
			return fmt.Errorf("unsupported filter field %q", n.field)
		}
		return nil
	}
	if n != nil {
		if err := check(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *filterNode) matchMember(typ, role string) bool {
	if n == nil {
		return true
	}
	switch n.op {
	case "AND":
		for _, k := range n.kids {
			if !k.matchMember(typ, role) {
				return false
			}
		}
		return true
	case "OR":
		for _, k := range n.kids {
			if k.matchMember(typ, role) {
				return true
			}
		}
		return false
	}
	v := role
	if n.field == "member.type" {
		v = typ
	}
	return (v == n.value) == (n.cmp == "=")
}

// excludesBots reports whether the filter requires member.type = "HUMAN"
// or member.type != "BOT" at its top level, as the Chat API requires with
// useAdminAccess.
func (n *filterNode) excludesBots() bool {
	if n == nil {
		return false
	}
	switch n.op {
	case "CMP":
		return n.field == "member.type" &&
			(n.cmp == "=" && n.value == MemberTypeHuman || n.cmp == "!=" && n.value == MemberTypeBot)
	case "AND":
		for _, k := range n.kids {
			if k.excludesBots() {
				return true
			}
		}
	}
	return false
}

// spaceQuery is a parsed spaces.search query.
type spaceQuery struct {
	customer    string
	spaceType   string
	displayName string // lower-cased substring, "" = any
}

// spaceQueryFields maps the spellings of the spaces.search query fields
// that the emulation knows to one name: the current reference's
// (space_type, display_name) and its earlier revisions' (spaceType,
// displayName), which GAM still sends.
var spaceQueryFields = map[string]string{
	"customer":   "customer",
	"space_type": "space_type", "spaceType": "space_type",
	"display_name": "display_name", "displayName": "display_name",
}

// parseSpaceQuery parses a spaces.search query: a conjunction of
// customer = "...", space_type = "SPACE" (both required) and optionally
// display_name:"text", each field spelled as in spaceQueryFields.
func parseSpaceQuery(s string) (spaceQuery, error) {
	var q spaceQuery
	n, err := parseFilter(s)
	if err != nil {
		return q, err
	}
	if n == nil {
		return q, errors.New("query is required")
	}
	terms := []*filterNode{n}
	if n.op == "AND" {
		terms = n.kids
	}
	for _, t := range terms {
		if t.op != "CMP" {
			return q, errors.New("only AND of comparisons is supported by the emulator")
		}
		switch field := spaceQueryFields[t.field]; {
		case field == "customer" && t.cmp == "=":
			q.customer = t.value
		case field == "space_type" && t.cmp == "=":
			q.spaceType = t.value
		case field == "display_name" && t.cmp == ":":
			q.displayName = strings.ToLower(t.value)
		default:
			return q, fmt.Errorf("unsupported query term %s %s %q", t.field, t.cmp, t.value)
		}
	}
	if q.customer == "" {
		return q, errors.New(`query must contain customer = "customers/my_customer"`)
	}
	if q.spaceType != SpaceTypeSpace {
		return q, errors.New(`query must contain space_type = "SPACE"`)
	}
	return q, nil
}
