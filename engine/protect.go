package offboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/chat-offboard/chat-offboard/request"
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
// ("users/ID") and "users/app". It resolves the list on first use; an error means
// the event must not be acted on (fail closed).
func (f *Function) protectedSet(ctx context.Context, sc *scope) (map[string]bool, int, error) {
	p := &f.protection
	if len(p.entries) == 0 {
		return nil, 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids != nil {
		return p.ids, 0, nil
	}
	ids := map[string]bool{}
	attempts := 0
	for _, e := range p.entries {
		if e == "app" {
			ids["users/app"] = true
			continue
		}
		id, found, n, err := f.lookupUser(ctx, sc, e)
		attempts += n
		if err != nil {
			return nil, attempts, &TransientError{Op: "PROTECTED_MEMBERS", Err: &protectionError{entry: e, err: err}}
		}
		if !found {
			return nil, attempts, &TransientError{Op: "PROTECTED_MEMBERS", Err: &protectionError{entry: e, err: errProtectedUnknown}}
		}
		ids[id] = true
	}
	p.ids = ids
	sc.log.Info("PROTECTED_MEMBERS resolved", "entries", len(p.entries), "people", len(ids))
	return ids, attempts, nil
}

// lookupUser asks the Directory for a person named by id or email (users.get
// answers for aliases too) and returns "users/ID". found is false when the
// directory does not know them; other Directory refusals are transient (an
// operator must grant the scope or the admin role).
func (f *Function) lookupUser(ctx context.Context, sc *scope, seg string) (id string, found bool, attempts int, err error) {
	seg = strings.TrimPrefix(seg, "users/")
	var uid string
	attempts, err = f.call(ctx, sc, "users.get", read, func(ctx context.Context) error {
		u, err := f.dir.Users.Get(seg).Context(ctx).Do()
		if err == nil {
			uid = u.Id
		}
		return err
	})
	if ge, ok := apiError(err); ok && ge.Code == http.StatusNotFound {
		return "", false, attempts, nil
	}
	if err != nil {
		var te *TransientError
		if errors.As(err, &te) {
			return "", false, attempts, err
		}
		return "", false, attempts, &TransientError{Op: "users.get", Err: err}
	}
	return "users/" + uid, true, attempts, nil
}

// resolveUser returns "users/ID" for a member segment: an id as is, an
// email through the Directory. found is false for a person the directory
// does not know.
func (f *Function) resolveUser(ctx context.Context, sc *scope, seg string) (id string, found bool, attempts int, err error) {
	seg = strings.TrimPrefix(seg, "users/")
	if !request.IsEmail(seg) {
		return "users/" + seg, true, 0, nil
	}
	return f.lookupUser(ctx, sc, seg)
}

// refuseProtected marks r refused for a protected person and logs a
// WARNING: somebody asked to remove them.
func refuseProtected(ctx context.Context, sc *scope, r *Result, who string) {
	r.Outcome = OutcomeRefused
	r.Detail = "member is in PROTECTED_MEMBERS"
	if r.Member == nil {
		r.Member = &Member{Name: who}
	}
	sc.log.WarnContext(ctx, "a request names a protected person; refused", "member", who, "membership", r.Membership)
}
