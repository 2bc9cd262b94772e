package faultsuite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// tally is what the checks count.
type tally struct {
	results, copies, lost, dupDecisions, mixed, roleLost, roleWrong, unexpected int
	redecided                                                                   []string
	outcomes                                                                    map[contract.Outcome]int
	removed                                                                     []result // one per removed decision
}

// checkDecisions: every wanted decision arrived, in an allowed outcome, and
// every copy of it is the same decision (one ce-id, one outcome, one role,
// one processedAt); a removal is reported removed with the role it had.
func (r *run) checkDecisions() tally {
	t := r.t
	c := tally{outcomes: map[contract.Outcome]int{}}
	seen := map[key]bool{}
	for _, s := range r.reqs {
		for k, allowed := range s.want {
			rs := r.results[k]
			if s.kind == kindInvalid && len(rs) == 0 {
				// Rejected before it named a membership, or naming one:
				// whichever it is, one decision.
				for k2, rs2 := range r.results {
					if k2.requestID == s.id {
						k, rs = k2, rs2
					}
				}
			}
			seen[k] = true
			if len(rs) == 0 {
				c.lost++
				t.Errorf("request %s (%v): no decision for %q", s.id, s.kind, k.membership)
				continue
			}
			first := rs[0]
			distinct, stamps := map[string]bool{}, map[string]bool{}
			for _, x := range rs {
				distinct[x.decision()] = true
				stamps[x.processedAt] = true
				if want := x.wantCEID; x.ceID != want {
					t.Errorf("request %s: ce-id %s, want %s", x.requestID, x.ceID, want)
				}
			}
			c.results += len(rs)
			c.copies += len(rs) - 1
			if len(distinct) > 1 {
				c.dupDecisions++
				outs := map[contract.Outcome]bool{}
				for _, x := range rs {
					outs[x.outcome] = true
				}
				if len(outs) > 1 {
					c.mixed++
				}
				t.Errorf("request %s, %q: %d distinct decisions: %+v", k.requestID, k.membership, len(distinct), rs)
			}
			if len(stamps) > 1 && s.kind != kindInvalid {
				// The same decision (ce-id, outcome), made by more than one
				// delivery: each published its own processedAt, where a
				// replay publishes the recorded one. (Invalid requests are
				// not recorded: each delivery decides them again.)
				c.redecided = append(c.redecided, fmt.Sprintf("%s %s (%v): %d processedAt", k.requestID, k.membership, first.outcome, len(stamps)))
			}
			c.outcomes[first.outcome]++
			if !slices.Contains(allowed, first.outcome) {
				t.Errorf("request %s (%v, %s), %q: outcome %q, want one of %v", k.requestID, s.kind, s.data, k.membership, first.outcome, allowed)
			}
			if slices.Contains(allowed, contract.Removed) && first.outcome == contract.NotMember {
				c.roleLost++ // removed by an attempt whose decision was lost
			}
			if first.outcome == contract.Removed {
				c.removed = append(c.removed, first)
				if want := r.before[k.membership]; first.role != want {
					c.roleWrong++
					t.Errorf("request %s: removal of %s reported with role %q, it had %q", k.requestID, k.membership, first.role, want)
				}
			}
		}
	}
	for k, rs := range r.results {
		if !seen[k] {
			c.unexpected += len(rs)
			t.Errorf("unexpected decision %s %q: %+v", k.requestID, k.membership, rs)
		}
	}
	return c
}

// checkWrites: each requested membership was deleted exactly once (one
// delete served 200, its answer delivered or lost), no delete met a
// membership already gone except the retry of a delete whose answer was
// lost (one retry per lost answer at most: the delete's, or a retry's whose
// own 404 was lost), and each delete had its intent recorded in the ledger
// before it (with the role as read). It returns the repeated writes, the
// deletes without an intent, and the retries that met 404 after a lost
// answer.
func (r *run) checkWrites(removed []result, requested map[string]bool) (repeated, noIntent, lostRetries int) {
	t := r.t
	d := r.deletes
	d.mu.Lock()
	defer d.mu.Unlock()
	for m := range requested {
		if d.ok[m] != 1 {
			t.Errorf("membership %s: %d deletes served 200, want 1", m, d.ok[m])
		}
	}
	for m, k := range d.ok {
		repeated += k - 1
		if !requested[m] {
			t.Errorf("membership %s was deleted but never requested", m)
		}
	}
	for m, k := range d.notFound {
		if k <= d.lost[m]+d.lost404[m] {
			lostRetries += k
			continue
		}
		repeated += k
		t.Errorf("membership %s: %d deletes served 404 (%d of them with the answer lost; deleted before: %d, of them with the answer lost: %d)", m, k, d.lost404[m], d.ok[m], d.lost[m])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := ledger.NewFirestore(ctx, project, "", firestoretest.ClientOptions(r.fsHost)...)
	if err != nil {
		t.Errorf("opening the ledger: %v", err)
		return repeated, len(removed), lostRetries
	}
	defer store.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan result)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range work {
				m, err := store.Membership(ctx, x.requestID, x.membership)
				name := norm(x.membership)
				at := d.first[name]
				bad := ""
				switch {
				case err != nil:
					bad = err.Error()
				case m.Action != ledger.ActionDelete || m.IntendedAt.IsZero():
					bad = fmt.Sprintf("no intent (action %q, intendedAt %v)", m.Action, m.IntendedAt)
				case m.IntendedAt.After(at):
					bad = fmt.Sprintf("intent recorded at %v, after the delete answered at %v", m.IntendedAt, at)
				case m.Role != r.before[name]:
					bad = fmt.Sprintf("intent with role %q, the membership had %q", m.Role, r.before[name])
				case m.Outcome != string(contract.Removed):
					bad = fmt.Sprintf("recorded outcome %q", m.Outcome)
				}
				if bad != "" {
					mu.Lock()
					noIntent++
					mu.Unlock()
					t.Errorf("ledger record of %s, %s: %s", x.requestID, x.membership, bad)
				}
			}
		}()
	}
	for _, x := range removed {
		work <- x
	}
	close(work)
	wg.Wait()
	return repeated, noIntent, lostRetries
}

// checkState compares Chat before and after: every requested membership is
// gone, every hand-off's successor is there as an owner, nothing else
// changed; it returns the violations and the protected members removed.
func (r *run) checkState(requested map[string]bool) (touched, protRemoved int) {
	t := r.t
	after := snapshotRoles(r.stack.Chat.Snapshot())
	added := map[string]string{}
	for _, s := range r.reqs {
		for m, role := range s.adds {
			added[m] = role
			if after[m] != role {
				t.Errorf("request %s: the successor's membership %s has role %q, want %q", s.id, m, after[m], role)
			}
		}
	}
	for name, role := range r.before {
		got, ok := after[name]
		switch {
		case requested[name]:
			if ok {
				t.Errorf("requested membership %s is still there", name)
			}
		case !ok:
			touched++
			t.Errorf("membership %s was removed but never requested", name)
			for _, p := range r.protected {
				if strings.HasSuffix(name, "/members/"+p) {
					protRemoved++
				}
			}
		case got != role:
			touched++
			t.Errorf("membership %s changed role %s → %s", name, role, got)
		}
	}
	for name := range after {
		if _, ok := r.before[name]; !ok && added[name] == "" {
			touched++
			t.Errorf("membership %s appeared", name)
		}
	}
	return touched, protRemoved
}

func (r *run) check(elapsed time.Duration, kills int) {
	t := r.t
	r.resMu.Lock()
	defer r.resMu.Unlock()
	c := r.checkDecisions()
	if extra := int(r.nres.Load()) - c.results - c.unexpected; extra != 0 {
		t.Errorf("%d results unaccounted for", extra)
	}
	if c.roleLost != 0 {
		t.Errorf("%d removals reported not_member: their first attempt's decision was lost", c.roleLost)
	}
	requested := map[string]bool{}
	perKind := map[kind]int{}
	decisions := 0
	for _, s := range r.reqs {
		perKind[s.kind]++
		decisions += len(s.want)
		for _, m := range s.removes {
			requested[m] = true
		}
	}
	repeated, noIntent, lostRetries := r.checkWrites(c.removed, requested)
	touched, protRemoved := r.checkState(requested)
	for i, m := range r.fired {
		if !requested[m] {
			t.Errorf("armed kill %d interrupted the delete of %s, which was never requested", i, m)
		}
	}

	logs, _ := os.ReadFile(r.fn.logPath)
	secrets := append([]string{r.stack.ClientSecret, r.stack.RefreshToken}, r.stack.OAuth.IssuedTokens()...)
	for _, s := range secrets {
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("a secret (%.8s…) appears in the function's logs", s)
		}
	}
	if st := r.pushers[2].Stats(); st.Acked == 0 {
		t.Errorf("the second subscription delivered nothing")
	}
	r.figures(c, figures{requested: len(requested), decisions: decisions, perKind: perKind, repeated: repeated,
		noIntent: noIntent, lostRetries: lostRetries, touched: touched, protRemoved: protRemoved, kills: kills, elapsed: elapsed})
}

type figures struct {
	requested, decisions, repeated, noIntent, lostRetries, touched, protRemoved, kills int
	perKind                                                                            map[kind]int
	elapsed                                                                            time.Duration
}

func (r *run) figures(c tally, f figures) {
	t := r.t
	cs := r.stack.Chat.Stats()
	var chatCalls int64
	for _, n := range cs.Calls {
		chatCalls += n
	}
	var kinds, outs, statuses, calls []string
	for k := kind(0); k < nKinds; k++ {
		kinds = append(kinds, fmt.Sprintf("%v=%d", k, f.perKind[k]))
	}
	for o, n := range c.outcomes {
		outs = append(outs, fmt.Sprintf("%s=%d", o, n))
	}
	for s, n := range cs.ByStatus {
		statuses = append(statuses, fmt.Sprintf("%d:%d", s, n))
	}
	for m, n := range cs.Calls {
		calls = append(calls, fmt.Sprintf("%s=%d", m, n))
	}
	sort.Strings(outs)
	sort.Strings(statuses)
	sort.Strings(calls)
	var del, acked, failed int64
	for _, p := range r.pushers {
		s := p.Stats()
		del, acked, failed = del+s.Delivered, acked+s.Acked, failed+s.Failed
	}
	ch := r.pushers[2].Stats()
	t.Logf("FAULTSUITE figures (N=%d, outage %v, Firestore cut %v, Pub/Sub cut %v):", r.n, r.outage, r.fsCut, r.publishCut)
	t.Logf("  requests %d (%s); copies published %d; decisions wanted %d; memberships to remove %d; memberships before %d; spaces %d",
		len(r.reqs), strings.Join(kinds, " "), r.nCopies, f.decisions, f.requested, len(r.before), len(r.ws.Spaces))
	t.Logf("  deliveries %d (acked %d, failed %d); of them through the second subscription %d (acked %d)", del, acked, failed, ch.Delivered, ch.Acked)
	t.Logf("  chat calls %d (%s): faulted %d, throttled %d, 401 %d, by status %v", chatCalls, strings.Join(calls, " "), cs.Faulted, cs.Throttled, cs.Unauthorized, statuses)
	var lostBy []string
	r.deletes.mu.Lock()
	for k, n := range r.deletes.lostBy {
		lostBy = append(lostBy, fmt.Sprintf("%s=%d", k, n))
	}
	r.deletes.mu.Unlock()
	sort.Strings(lostBy)
	t.Logf("  calls served and their answer lost (dropped, 500 or 503) %d, by method:status served %s; delete retries that met 404 after a lost answer %d",
		cs.AnswersLost, strings.Join(lostBy, " "), f.lostRetries)
	t.Logf("  secret manager faulted %d; token endpoint faulted %d; Firestore connections refused during its cut %d, deletes answered during it %d; Pub/Sub connections refused during its cut %d",
		r.stack.Secrets.Stats().Faulted, r.stack.OAuth.Stats().Faulted, r.fsProxy.refused.Load(), r.deletes.duringFS, r.psProxy.refused.Load())
	t.Logf("  SIGKILLs %d (armed: between intent and delete and between delete and decision, at %v)", f.kills, r.fired)
	t.Logf("  results %d (copies of a decision %d); decisions by outcome %s", c.results, c.copies, strings.Join(outs, " "))
	t.Logf("  lost %d, duplicated decisions %d (mixed outcomes %d), repeated writes %d, writes without intent %d, roleLost %d, wrong roles %d, unexpected results %d",
		c.lost, c.dupDecisions, c.mixed, f.repeated, f.noIntent, c.roleLost, c.roleWrong, c.unexpected)
	t.Logf("  decisions made by two deliveries (same ce-id and outcome, another processedAt) %d %v", len(c.redecided), c.redecided)
	t.Logf("  untouched-violations %d, protected removed %d; time %v", f.touched, f.protRemoved, f.elapsed.Round(100*time.Millisecond))
}
