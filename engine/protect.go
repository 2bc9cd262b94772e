package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/chat-offboard/chat-offboard/contract"
)

// protection holds PROTECTED_MEMBERS resolved to the people they name. The
// entries are resolved through the Directory (users.get, which answers for
// a user id, a primary address and an alias) the first time an event needs
// them, once per instance; until that succeeds no event is acted on. It is
// safe for concurrent use.
type protection struct {
	entries []string // member segments as configured: ids, emails, "app"

	mu  sync.Mutex
	ids map[string]bool // "users/ID" and "users/app"; nil until resolved
}

// errProtectedUnknown is a PROTECTED_MEMBERS entry the directory does not
// know: the list cannot protect that person, so nothing is acted on.
var errProtectedUnknown = errors.New("PROTECTED_MEMBERS names someone the directory does not know; fix the entry (the function acts on nothing until it can resolve every entry)")

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
// means the event must not be acted on (fail closed).
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
	for _, e := range p.entries {
		if e == "app" {
			ids["users/app"] = true
			continue
		}
		id, found, err := f.lookupUser(ctx, j, e)
		if err == nil && !found {
			err = errProtectedUnknown
		}
		if err != nil {
			return nil, &TransientError{Op: "PROTECTED_MEMBERS", Err: &protectionError{entry: e, err: err}}
		}
		ids[id] = true
	}
	p.ids = ids
	j.log.InfoContext(ctx, "PROTECTED_MEMBERS resolved", "entries", len(p.entries), "people", len(ids))
	return ids, nil
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
