package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chat-offboard/chat-offboard/cmd/internal/console"
	"github.com/chat-offboard/chat-offboard/contract"
)

// maxFilterLen is Pub/Sub's limit on a subscription filter, in bytes.
const maxFilterLen = 256

// resultFilter returns the subscription filter that lets the results of ids
// (and of their fanned-out children, whose ids start with the parent's id
// and "/") through, or "" when none fits: then every result of the topic is
// delivered and the follower drops the others itself.
//
// Preferred is one hasPrefix per id; when that is longer than Pub/Sub's 256
// bytes, one hasPrefix on the ids' longest common prefix (generated ids
// share the batch prefix pub-<time>-<random>-).
func resultFilter(ids []string) string {
	for _, id := range ids {
		if !filterSafe(id) {
			return ""
		}
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("hasPrefix(attributes.requestId, %q)", id)
	}
	if f := strings.Join(parts, " OR "); len(f) <= maxFilterLen {
		return f
	}
	p := ids[0]
	for _, id := range ids[1:] {
		n := 0
		for n < len(p) && n < len(id) && p[n] == id[n] {
			n++
		}
		p = p[:n]
	}
	if p == "" {
		return ""
	}
	if f := fmt.Sprintf("hasPrefix(attributes.requestId, %q)", p); len(f) <= maxFilterLen {
		return f
	}
	return ""
}

// filterSafe reports whether id can be quoted in a filter as is (%q and the
// filter syntax agree on printable ASCII without quotes and backslashes).
func filterSafe(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return id != ""
}

// follower follows the result events of one run through a temporary
// subscription. Its callbacks run concurrently; the mutex guards the state.
type follower struct {
	client  *pubsub.Client
	subName string
	stdout  io.Writer
	stderr  io.Writer
	json    bool
	tty     bool
	start   time.Time

	recvErr chan error
	stop    context.CancelFunc

	mu       sync.Mutex
	t        *tracker
	lastDraw time.Time
	cleaned  bool
}

// startFollowing creates the temporary subscription on the result topic
// (before anything is published, so that no result is missed) and starts
// receiving.
func startFollowing(ctx context.Context, c *pubsub.Client, d destinations, items []*item, stdout, stderr io.Writer, jsonOut bool) (*follower, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.req.RequestID
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	sub := &pubsubpb.Subscription{
		Name:                     "projects/" + d.project + "/subscriptions/chat-offboard-publish-" + hex.EncodeToString(rnd[:]),
		Topic:                    d.resultTopic,
		Filter:                   resultFilter(ids),
		AckDeadlineSeconds:       60,
		MessageRetentionDuration: durationpb.New(10 * time.Minute),
		// Should the CLI die before it deletes the subscription, Pub/Sub
		// deletes it after a day without subscribers.
		ExpirationPolicy: &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(24 * time.Hour)},
		Labels:           map[string]string{"created-by": "chat-offboard-publish"},
	}
	if sub.Filter == "" {
		fmt.Fprintln(stderr, "publish: the request ids share no prefix that fits a subscription filter; following every result on the topic and keeping this run's")
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, sub); err != nil {
		return nil, fmt.Errorf("creating the temporary subscription on %s: %w", d.resultTopic, err)
	}
	f := &follower{
		client: c, subName: sub.Name, stdout: stdout, stderr: stderr, json: jsonOut,
		tty: console.IsTerminal(stderr), start: time.Now(), recvErr: make(chan error, 1),
		t: newTracker(items),
	}
	rctx, cancel := context.WithCancel(ctx)
	f.stop = cancel
	s := c.Subscriber(sub.Name)
	s.ReceiveSettings.MaxOutstandingMessages = 1000
	go func() {
		f.recvErr <- s.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			f.receive(m)
			m.Ack()
		})
	}()
	return f, nil
}

// receive handles one result message.
func (f *follower) receive(m *pubsub.Message) {
	if t := m.Attributes["ce-type"]; t != "" && t != contract.ResultEventType {
		return
	}
	var r contract.Result
	if err := json.Unmarshal(m.Data, &r); err != nil || r.RequestID == "" || r.Outcome == "" {
		return
	}
	id := m.Attributes["ce-id"]
	if id == "" {
		sum := sha256.Sum256(m.Data)
		id = hex.EncodeToString(sum[:])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res, ok := f.t.add(id, &r)
	if !ok {
		return
	}
	if f.json {
		fmt.Fprintf(f.stdout, "%s\n", compact(m.Data))
	}
	f.show(res)
}

func compact(data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return data
	}
	return buf.Bytes()
}

// show reports a result: a line per result on plain output; on a terminal,
// a progress bar, with failures printed above it.
func (f *follower) show(res *result) {
	line := fmt.Sprintf("%-10s %s %s %s", res.r.Outcome, res.r.RequestID, res.membership(), res.detail())
	if !f.tty {
		fmt.Fprintln(f.stderr, strings.TrimRight(line, " "))
		return
	}
	if !isSuccess(res.r.Outcome) && res.r.Outcome != contract.Planned {
		fmt.Fprintf(f.stderr, "\r\x1b[K%s\n", line)
		f.lastDraw = time.Time{}
	}
	f.drawLocked(false)
}

func (f *follower) drawLocked(final bool) {
	if !f.tty {
		return
	}
	now := time.Now()
	if !final && now.Sub(f.lastDraw) < 100*time.Millisecond {
		return
	}
	f.lastDraw = now
	done, total := f.t.completed(), len(f.t.roots)
	const width = 30
	fill := 0
	if total > 0 {
		fill = done * width / total
	}
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	fmt.Fprintf(f.stderr, "\r\x1b[K%s %d/%d requests · %d results · %d not ok · %s",
		bar, done, total, f.t.nResults, f.t.nFailed, now.Sub(f.start).Round(time.Second))
	if final {
		fmt.Fprintln(f.stderr)
	}
}

// wait follows until every request is complete, ctx is done (timeout,
// interrupt) or receiving fails, then prints the table and returns the exit
// code.
func (f *follower) wait(ctx context.Context, timeout time.Duration) int {
	var recvErr error
	var incompleteWhy string
	select {
	case <-f.t.done:
	case <-ctx.Done():
		incompleteWhy = "interrupted"
		if ctx.Err() == context.DeadlineExceeded {
			incompleteWhy = fmt.Sprintf("timed out after %s (--timeout)", timeout)
		}
	case recvErr = <-f.recvErr:
		incompleteWhy = fmt.Sprintf("receiving results stopped: %v", recvErr)
	}
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drawLocked(true)
	if !f.json {
		f.t.table(f.stdout)
	}
	fmt.Fprintf(f.stderr, "publish: %s\n", f.t.summary())
	if incompleteWhy != "" && f.t.completed() < len(f.t.roots) {
		fmt.Fprintf(f.stderr, "publish: %s: %d of %d requests have no final result\n",
			incompleteWhy, len(f.t.roots)-f.t.completed(), len(f.t.roots))
		return exitUsage
	}
	if f.t.nFailed > 0 {
		return exitFailed
	}
	return exitOK
}

// cleanup stops receiving and deletes the temporary subscription, also when
// ctx is already done (interrupt, timeout).
func (f *follower) cleanup(ctx context.Context) {
	f.stop()
	f.mu.Lock()
	if f.cleaned {
		f.mu.Unlock()
		return
	}
	f.cleaned = true
	f.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	err := f.client.SubscriptionAdminClient.DeleteSubscription(dctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: f.subName})
	if err != nil {
		fmt.Fprintf(f.stderr, "publish: could not delete the temporary subscription %s (Pub/Sub expires it after a day unused): %v\n", f.subName, err)
	}
}

// result is one received result event.
type result struct {
	r    *contract.Result
	root string
}

func (res *result) membership() string {
	if res.r.Membership != "" {
		return res.r.Membership
	}
	return "-"
}

// detail is a one-line explanation of a result.
func (res *result) detail() string {
	r := res.r
	var parts []string
	switch r.Outcome {
	case contract.Planned:
		if r.Children != nil {
			parts = append(parts, fmt.Sprintf("children: %d", *r.Children))
		}
		if r.ExpectedResults != nil {
			parts = append(parts, fmt.Sprintf("expected results: %d", *r.ExpectedResults))
		}
		if r.Continued {
			parts = append(parts, "continued on another page")
		}
	case contract.DryRun:
		if r.WouldRemove != nil && *r.WouldRemove {
			parts = append(parts, "would remove")
		} else if r.WouldRemove != nil {
			parts = append(parts, "would not remove: not a member")
		}
		parts = append(parts, wouldRestore(r)...)
	}
	if h := r.HandOff; h != nil {
		parts = append(parts, fmt.Sprintf("manager role handed to %s (added %t, promoted %t)", h.Successor, h.Added, h.Promoted))
	}
	if r.Role != "" && r.Outcome != contract.Planned {
		parts = append(parts, "role "+r.Role)
	}
	if e := r.Error; e != nil {
		s := e.Message
		if e.Status != "" {
			s = e.Status + ": " + s
		}
		if e.Code != 0 {
			s = fmt.Sprintf("%d %s", e.Code, s)
		}
		parts = append(parts, s)
	}
	if r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	return strings.Join(parts, "; ")
}

func isSuccess(outcome contract.Outcome) bool {
	switch outcome {
	case contract.Removed, contract.NotMember, contract.DryRun, contract.Restored, contract.AlreadyMember:
		return true
	}
	return false
}

// tracker counts results toward completion. It is not safe for concurrent
// use.
//
// A request is complete when it has a result other than planned. A planned
// request is complete by one of two counts:
//
//   - when its planned results carry expectedResults (bulk and sweep
//     pages): once every page announced by a "continued" page has reported
//     its own planned result and the distinct (requestId, membership)
//     decisions below the request reach the sum of expectedResults;
//   - otherwise by children: once "children" of its child requests (results
//     carrying its id as parentRequestId) are complete, recursively.
type tracker struct {
	roots    []*item
	rootIDs  map[string]bool
	nodes    map[string]*node
	states   map[string]*rootState
	seen     map[string]bool // ce-ids
	results  []*result
	nResults int
	nFailed  int // results with an outcome that is neither success nor planned
	nDone    int
	done     chan struct{}
}

// node is one request id seen in results.
type node struct {
	id, parent, root string
	terminal         bool
	planned          bool
	children         int
	kids             map[string]bool
	complete         bool
}

// rootState counts the results below one published request.
type rootState struct {
	pages     map[string]bool // ids of planned results with expectedResults
	continued int             // pages that announced a continuation
	expected  int             // sum of expectedResults
	finals    map[string]bool // distinct requestId, membership of non-planned results below the root
}

func newTracker(items []*item) *tracker {
	t := &tracker{roots: items, rootIDs: map[string]bool{}, nodes: map[string]*node{},
		states: map[string]*rootState{}, seen: map[string]bool{}, done: make(chan struct{})}
	for _, it := range items {
		t.rootIDs[it.req.RequestID] = true
		t.states[it.req.RequestID] = &rootState{pages: map[string]bool{}, finals: map[string]bool{}}
	}
	if len(items) == 0 {
		close(t.done)
	}
	return t
}

// rootOf finds the published request that id is, or descends from: the id
// itself, or its longest prefix that ends before a '/' (children are named
// parent id + "/" + ...).
func (t *tracker) rootOf(id string) string {
	if id == "" {
		return ""
	}
	if t.rootIDs[id] {
		return id
	}
	if n := t.nodes[id]; n != nil {
		return n.root
	}
	for i := len(id) - 1; i > 0; i-- {
		if id[i] == '/' && t.rootIDs[id[:i]] {
			return id[:i]
		}
	}
	return ""
}

// add records a result under its event id. It reports false for a
// duplicate or for a result of a request this run did not publish.
func (t *tracker) add(eventID string, r *contract.Result) (*result, bool) {
	if t.seen[eventID] {
		return nil, false
	}
	root := t.rootOf(r.RequestID)
	if root == "" {
		root = t.rootOf(r.ParentRequestID)
	}
	if root == "" {
		return nil, false
	}
	t.seen[eventID] = true
	res := &result{r: r, root: root}
	t.results = append(t.results, res)
	t.nResults++
	if r.Outcome != contract.Planned && !isSuccess(r.Outcome) {
		t.nFailed++
	}

	n := t.node(r.RequestID, root)
	if r.ParentRequestID != "" && n.parent == "" && r.RequestID != root {
		n.parent = r.ParentRequestID
		t.node(r.ParentRequestID, root).kids[n.id] = true
	}
	st := t.states[root]
	// A sweep page announces what it expects, whether it was planned or
	// failed (a failed page expects only the results it already published).
	page := r.ExpectedResults != nil
	if page && !st.pages[r.RequestID] {
		st.pages[r.RequestID] = true
		st.expected += *r.ExpectedResults
		if r.Continued {
			st.continued++
		}
	}
	if r.Outcome == contract.Planned {
		n.planned = true
		if r.Children != nil && *r.Children > n.children {
			n.children = *r.Children
		}
	} else if page {
		n.terminal = true
	} else {
		n.terminal = true
		if r.RequestID != root {
			st.finals[r.RequestID+"\x00"+r.Membership] = true
		}
	}
	t.update(root)
	return res, true
}

func (t *tracker) node(id, root string) *node {
	n := t.nodes[id]
	if n == nil {
		n = &node{id: id, root: root, kids: map[string]bool{}}
		t.nodes[id] = n
	}
	return n
}

// update recomputes the completeness of the published request root.
func (t *tracker) update(root string) {
	n := t.nodes[root]
	if n == nil || n.complete {
		return
	}
	complete := n.terminal
	if st := t.states[root]; !complete && len(st.pages) > 0 {
		complete = st.pages[root] && len(st.pages) == 1+st.continued && len(st.finals) >= st.expected
	} else if !complete {
		complete = t.isComplete(n, 0)
	}
	if complete {
		n.complete = true
		t.nDone++
		if t.nDone == len(t.roots) {
			close(t.done)
		}
	}
}

// isComplete applies the children count.
func (t *tracker) isComplete(n *node, depth int) bool {
	if n.terminal {
		return true
	}
	if !n.planned || depth > 64 {
		return false
	}
	c := 0
	for id := range n.kids {
		if k := t.nodes[id]; k != nil && t.isComplete(k, depth+1) {
			c++
		}
	}
	return c >= n.children
}

// completed is the number of published requests that are complete.
func (t *tracker) completed() int { return t.nDone }

// summary counts the outcomes.
func (t *tracker) summary() string {
	counts := map[contract.Outcome]int{}
	var order []contract.Outcome
	for _, res := range t.results {
		if counts[res.r.Outcome] == 0 {
			order = append(order, res.r.Outcome)
		}
		counts[res.r.Outcome]++
	}
	parts := make([]string, len(order))
	for i, o := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[o], o)
	}
	s := fmt.Sprintf("%d of %d requests complete", t.nDone, len(t.roots))
	if len(parts) > 0 {
		s += "; results: " + strings.Join(parts, ", ")
	}
	return s
}

// table prints one row per result, grouped by published request in input
// order, and a pending row for each request without a final result.
func (t *tracker) table(w io.Writer) {
	byRoot := map[string][]*result{}
	for _, res := range t.results {
		byRoot[res.root] = append(byRoot[res.root], res)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tMEMBERSHIP\tOUTCOME\tDETAIL")
	for _, it := range t.roots {
		id := it.req.RequestID
		for _, res := range byRoot[id] {
			m := res.membership()
			if res.r.Outcome == contract.Planned && res.r.RequestID == id {
				m = it.target
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.r.RequestID, m, res.r.Outcome, clean(res.detail()))
		}
		if n := t.nodes[id]; n == nil || !n.complete {
			why := "no result yet"
			if n != nil && n.planned {
				why = "children still running"
			}
			fmt.Fprintf(tw, "%s\t%s\tpending\t%s\n", id, it.target, why)
		}
	}
	tw.Flush()
}

// clean keeps a table cell on one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
