package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// protection holds PROTECTED_MEMBERS resolved to the people they name. A
// user id ("users/ID" or a numeric id) and "app" are taken as they are; an
// email is resolved through the Directory (users.get, which answers for a
// primary address and an alias) the first time an event needs the list,
// once per instance. An email the Directory does not know (a guest from
// outside the organisation, someone deleted, a typo) stays protected by
// its address: in each space where a removal is about to be made it is
// read with members.get and the email alias, as a guest is, and the person
// it names there is refused (protectedHere). Until the Directory answers
// for every email, no event is acted on. It is safe for concurrent use.
type protection struct {
	entries []string // member segments as configured: ids, emails, "app"

	mu  sync.Mutex
	ids map[string]bool // "users/ID" and "users/app"; nil until resolved
	// unknown are the emails the Directory does not know (lower case),
	// and learned the user each one named in a space ("users/ID"), once
	// members.get found it there.
	unknown []string
	learned map[string]string
}

// protectionError is a failure to resolve PROTECTED_MEMBERS: the event is
// redelivered and an operator is told (CRITICAL).
type protectionError struct {
	entry string
	err   error
}

func (e *protectionError) Error() string {
	return fmt.Sprintf("resolving PROTECTED_MEMBERS entry %q: %v", e.entry, e.err)
}

func (e *protectionError) Unwrap() error { return e.err }

// protectedSet returns the resolved protection list: user names
// ("users/ID") and "users/app". It resolves the list on first use; an error
// (a Directory error other than 404) means the event must not be acted on
// (fail closed). An email the Directory does not know is logged once (a
// WARNING) and checked per space by protectedHere.
func (f *Engine) protectedSet(ctx context.Context, j *job) (map[string]bool, error) {
	p := &f.protection
	if len(p.entries) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids != nil {
		return p.ids, nil
	}
	ids := map[string]bool{}
	var unknown []string
	for _, e := range p.entries {
		switch {
		case e == "app":
			ids["users/app"] = true
			continue
		case !request.IsEmail(strings.TrimPrefix(e, "users/")):
			ids["users/"+strings.TrimPrefix(e, "users/")] = true
			continue
		}
		id, found, err := f.lookupUser(ctx, j, e)
		switch {
		case err != nil:
			return nil, &TransientError{Op: "PROTECTED_MEMBERS", Err: &protectionError{entry: e, err: err}}
		case !found:
			email := strings.ToLower(strings.TrimPrefix(e, "users/"))
			unknown = append(unknown, email)
			j.log.WarnContext(ctx, "a PROTECTED_MEMBERS entry is not in the Directory; it stays protected by its address: each space is asked (members.get by email alias, as for a guest) before a removal there; fix the entry if it is a typo", "entry", email)
			continue
		}
		ids[id] = true
	}
	p.ids, p.unknown, p.learned = ids, unknown, map[string]string{}
	j.log.InfoContext(ctx, "PROTECTED_MEMBERS resolved", "entries", len(p.entries), "people", len(ids), "byAddress", len(unknown))
	return ids, nil
}

// protectedHere reports whether who ("users/ID"), about to be decided in
// space (its id), is protected: in the resolved set, or named in that space
// by one of the protected emails the Directory does not know (members.get
// of spaces/{space}/members/{email}, once per email until it names
// someone; a person the alias names is protected everywhere from then on).
// A read error is returned as the API gave it.
func (f *Engine) protectedHere(ctx context.Context, j *job, space, who string, ids map[string]bool) (bool, error) {
	if ids[who] {
		return true, nil
	}
	p := &f.protection
	p.mu.Lock()
	var ask []string
	for _, email := range p.unknown {
		switch id, ok := p.learned[email]; {
		case ok && id == who:
			p.mu.Unlock()
			return true, nil
		case !ok:
			ask = append(ask, email)
		}
	}
	p.mu.Unlock()
	for _, email := range ask {
		m, err := f.getMembership(ctx, j, request.MembershipName(space, email), j.req.AdminAccess)
		if err != nil {
			return false, err
		}
		if m == nil || memberName(m) == "" {
			continue // not in this space: nothing learned
		}
		p.mu.Lock()
		p.learned[email] = memberName(m)
		p.mu.Unlock()
		if memberName(m) == who {
			return true, nil
		}
	}
	return false, nil
}

// protectedAddress reports whether a member segment is one of the
// protected emails the Directory does not know (after protectedSet).
func (f *Engine) protectedAddress(seg string) bool {
	p := &f.protection
	p.mu.Lock()
	defer p.mu.Unlock()
	seg = strings.ToLower(strings.TrimPrefix(seg, "users/"))
	for _, email := range p.unknown {
		if email == seg {
			return true
		}
	}
	return false
}

// refused is the decision for a protected person; it logs a WARNING:
// somebody asked to remove them.
func refused(ctx context.Context, j *job, r contract.Result, who string) contract.Result {
	r.Outcome = contract.Refused
	r.Detail = "member is in PROTECTED_MEMBERS"
	if r.Member == nil {
		r.Member = &contract.Member{Name: who}
	}
	j.log.WarnContext(ctx, "a request names a protected person; refused", "member", who, "membership", r.Membership)
	return r
}
