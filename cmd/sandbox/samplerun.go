package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/cmd/internal/console"
	"github.com/chat-offboard/chat-offboard/contract"
)

// onResult receives one result event.
func (s *sandbox) onResult(_ context.Context, m *pubsub.Message) {
	m.Ack()
	if m.Attributes["ce-type"] != contract.ResultEventType {
		return
	}
	var r contract.Result
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return
	}
	now := time.Now()
	if s.o.json {
		s.printEvent(m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ParentRequestID != "" && r.Outcome != contract.Planned {
		s.children[r.ParentRequestID]++
		s.countChild(&r)
	}
	if e := s.entries[r.SourceMessageID]; e != nil {
		if e.result == nil { // later ones are duplicates of a redelivery
			e.result, e.at = &r, now
			close(e.done)
			s.received.Add(1)
		}
		return
	}
	if s.live {
		if !s.o.json {
			s.out.Printf("%s  %-24s %-34s %-10s %s\n", now.Format("15:04:05"), r.RequestID, dash(r.Membership), r.Outcome, note(&r))
		}
		return
	}
	if len(s.orphans) < 10000 {
		s.orphans[r.SourceMessageID] = &r
		s.arrived[r.SourceMessageID] = now
	}
}

// publish publishes the samples given, all at once, and registers them.
func (s *sandbox) publish(ctx context.Context, samples []*sample) ([]*entry, error) {
	type pending struct {
		e *entry
		r *pubsub.PublishResult
	}
	ps := make([]pending, len(samples))
	for i, smp := range samples {
		e := &entry{sample: smp, sent: time.Now(), done: make(chan struct{})}
		ps[i] = pending{e, s.publisher.Publish(ctx, &pubsub.Message{Data: smp.data})}
	}
	out := make([]*entry, 0, len(samples))
	for _, p := range ps {
		id, err := p.r.Get(ctx)
		if err != nil {
			return out, fmt.Errorf("publishing line %d: %w", p.e.sample.line, err)
		}
		s.published.Add(1)
		p.e.id = id
		s.mu.Lock()
		s.entries[id] = p.e
		if r := s.orphans[id]; r != nil {
			p.e.result, p.e.at = r, s.arrived[id]
			delete(s.orphans, id)
			delete(s.arrived, id)
			close(p.e.done)
			s.received.Add(1)
		}
		s.mu.Unlock()
		out = append(out, p.e)
	}
	return out, nil
}

// wait waits for the results of es until deadline. It returns ctx's error
// if ctx ends first, or a background error. A sweep (such as one a
// Workspace suspension started) is waited for until its children have
// answered, so that the memberships printed after are its work done.
func (s *sandbox) wait(ctx context.Context, es []*entry, deadline <-chan time.Time) error {
	for _, e := range es {
		if ok, err := await(ctx, s, e.done, deadline); !ok {
			return err
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, e := range es {
		for !s.fannedOut(e) {
			if ok, err := await(ctx, s, tick.C, deadline); !ok {
				return err
			}
		}
	}
	return nil
}

// await waits for c. It reports false when the deadline, the end of ctx
// (its error) or a background error (that error) comes first.
func await[T any](ctx context.Context, s *sandbox, c <-chan T, deadline <-chan time.Time) (bool, error) {
	select {
	case <-c:
		return true, nil
	case <-deadline:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case err := <-s.bgErr:
		return false, err
	}
}

// fannedOut reports whether every child result that e's result (a planned
// sweep page, or bulk request) announced has arrived; true for any other
// result.
func (s *sandbox) fannedOut(e *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := e.result
	if r == nil || r.Outcome != contract.Planned || r.ExpectedResults == nil {
		return true
	}
	return s.children[r.RequestID] >= *r.ExpectedResults
}

// runSamples publishes the samples (those without faults all at once, then
// those with faults one at a time, each after its faults are injected),
// waits for their results and prints the report.
func (s *sandbox) runSamples(ctx context.Context) int {
	var plain, faulty, later []*sample
	for i := range s.samples {
		switch {
		case s.samples[i].meta.After != "":
			later = append(later, &s.samples[i])
		case len(s.samples[i].meta.Faults) > 0:
			faulty = append(faulty, &s.samples[i])
		default:
			plain = append(plain, &s.samples[i])
		}
	}
	stopProgress := s.progress()
	timer := time.NewTimer(s.o.timeout)
	defer timer.Stop()
	var all []*entry
	err := func() error {
		es, err := s.publish(ctx, plain)
		all = append(all, es...)
		if err != nil {
			return err
		}
		if err := s.wait(ctx, es, timer.C); err != nil {
			return err
		}
		for _, smp := range faulty {
			if s.o.faults {
				for _, f := range smp.meta.Faults {
					ef, _ := f.fault() // checked when parsed
					s.stack.Chat.InjectFault(ef)
				}
			}
			es, err := s.publish(ctx, []*sample{smp})
			all = append(all, es...)
			if err != nil {
				return err
			}
			err = s.wait(ctx, es, timer.C)
			s.stack.Chat.ClearFaults()
			if err != nil {
				return err
			}
		}
		es, err = s.runAfter(ctx, all, later, timer.C)
		all = append(all, es...)
		return err
	}()
	stopProgress()
	elapsed := time.Since(s.started)
	if err != nil && ctx.Err() != nil {
		s.errw.Printf("sandbox: interrupted\n")
		return exitInterrupted
	}
	ok := s.report(all, elapsed)
	if err != nil {
		s.errw.Printf("sandbox: %v\n", err)
		return exitSetup
	}
	if !ok {
		if !s.o.verbose {
			s.logs.dump(s.errw, 50)
		}
		return exitUnexpected
	}
	return exitOK
}

// progress shows a single updating status line on a terminal; the returned
// function stops and erases it.
func (s *sandbox) progress() func() {
	// JSON lines on a terminal are progress enough (and would be garbled).
	if s.o.verbose || !console.IsTerminal(s.errw) || (s.o.json && console.IsTerminal(s.out)) {
		return func() {}
	}
	total := len(s.samples)
	line := func() string {
		return fmt.Sprintf("\r\x1b[Ksandbox: published %d/%d · results %d/%d · retries %d",
			s.published.Load(), total, s.received.Load(), total, s.fn.Retries()+s.redelivered.Load())
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.errw.Printf("%s", line())
			select {
			case <-t.C:
			case <-done:
				s.errw.Printf("\r\x1b[K")
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// serve keeps everything running until ctx ends, printing how to publish
// more requests and, as they arrive, their results.
func (s *sandbox) serve(ctx context.Context) {
	s.mu.Lock()
	s.live = true
	s.mu.Unlock()
	w := s.out
	if s.o.json {
		w = s.errw
	}
	w.Printf("%s", s.instructions())
	select {
	case <-ctx.Done():
	case err := <-s.bgErr:
		s.errw.Printf("sandbox: %v\n", err)
	}
	s.mu.Lock()
	s.live = false
	s.mu.Unlock()
	w.Printf("\nMemberships at the start and now:\n")
	s.printMemberships(w, s.before, s.stack.Chat.Snapshot())
}
