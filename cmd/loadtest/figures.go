package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/workspaces"
)

// figures are what a load run reports.
func (r *loadRun) figures() map[string]any {
	fl := r.fl
	st := r.stack.Chat.Stats()
	removed := 0
	for i := range fl.n {
		if _, ok := r.stack.Chat.IsMember(space, workspaces.Member(i)); !ok {
			removed++
		}
	}
	writes := st.Calls["members.delete"]
	ideal := time.Duration(float64(fl.n) / float64(fl.quota) * float64(fl.window))
	idealSpan := time.Duration(float64(ideal) * float64(fl.n-1) / float64(fl.n))
	writeSpan := time.Duration(r.lastWrite.Load() - r.firstWrite.Load())
	out := map[string]any{
		"results": fl.results, "n": fl.n, "instances": fl.instances, "concurrencyPerInstance": fl.concurrency,
		"quota": fmt.Sprintf("%d writes / %v", fl.quota, fl.window), "latency": fl.latency.String(),
		"budgetPerInstance":      fmt.Sprintf("%d writes a minute (%.2f/s, %.1f per window)", r.budget, float64(r.budget)/60, float64(r.budget)/r.scale),
		"pubsubEmulatorStartup":  r.psStartup.Round(time.Millisecond).String(),
		"publish":                r.published.Round(time.Millisecond).String(),
		"drain":                  r.drain.Round(time.Millisecond).String(),
		"idealNoverQ":            ideal.String(),
		"drainVsIdeal":           fmt.Sprintf("%+.1f%%", 100*(float64(r.drain)/float64(ideal)-1)),
		"drainFromFirstEvent":    fromFirstEvent(r, ideal),
		"firstToLastWrite":       writeSpan.Round(time.Millisecond).String(),
		"drainParts":             drainParts(r, writeSpan),
		"ledgerWarmUp":           r.ledgerWarmUp.Round(time.Millisecond).String(),
		"firstToLastVsIdeal":     fmt.Sprintf("%+.1f%% (ideal for N-1 gaps: %v)", 100*(float64(writeSpan)/float64(idealSpan)-1), idealSpan.Round(time.Millisecond)),
		"removed":                removed,
		"chatWrites":             writes,
		"writesPerRemoval":       fmt.Sprintf("%.3f", float64(writes)/float64(max(removed, 1))),
		"429s":                   st.Throttled,
		"429sPercentOfWrites":    fmt.Sprintf("%.2f%%", 100*float64(st.Throttled)/float64(max(writes, 1))),
		"tokenEndpointRefreshes": r.stack.OAuth.Stats().Refreshes,
		"secretManagerAccesses":  r.stack.Secrets.Stats().Accesses,
		"peakConcurrency":        r.c.peak.Load(),
		"rssMiB":                 fmt.Sprintf("%.1f (this process: Pub/Sub client, pusher, emulations and %d instance(s))", rssMiB(os.Getpid()), fl.instances),
	}
	all := r.instanceFigures(out)
	latencyFigures(out, all)
	r.publishFigures(out, len(all))
	return out
}

// drainParts splits the drain: from the first publish to the first write
// (publish, delivery, the first event's work up to its delete), the writes'
// span, and from the last write until every event is acknowledged (the last
// decisions recorded and published).
func drainParts(r *loadRun, writeSpan time.Duration) string {
	if r.firstWrite.Load() == 0 {
		return "no write"
	}
	first := time.Unix(0, r.firstWrite.Load()).Sub(r.started)
	delivered := time.Unix(0, r.c.firstEvent.Load()).Sub(r.started)
	tail := r.drain - first - writeSpan
	return fmt.Sprintf("%v to the first event received + %v to its write + %v of writes + %v after the last",
		delivered.Round(time.Millisecond), (first - delivered).Round(time.Millisecond), writeSpan.Round(time.Millisecond), tail.Round(time.Millisecond))
}

// fromFirstEvent is the drain counted from the first event received (the
// publish of the N requests and their delivery taken out) against N/Q.
func fromFirstEvent(r *loadRun, ideal time.Duration) string {
	if r.c.firstEvent.Load() == 0 {
		return "no event"
	}
	d := r.started.Add(r.drain).Sub(time.Unix(0, r.c.firstEvent.Load()))
	return fmt.Sprintf("%v (%+.1f%% vs N/Q)", d.Round(time.Millisecond), 100*(float64(d)/float64(ideal)-1))
}

// instanceFigures adds the sums over instances to out and returns the
// samples of all instances.
func (r *loadRun) instanceFigures(out map[string]any) []sample {
	var all []sample
	var secretReads, refreshes, retries, nacked, ppeak int64
	var perInstance []int
	for _, s := range r.instances {
		perInstance = append(perInstance, len(s.samples))
		all = append(all, s.samples...)
		ts := s.f.TokenStats()
		secretReads += ts.SecretReads
		refreshes += ts.Refreshes
		retries += s.f.Retries()
		nacked += s.nacked.Load()
	}
	for _, p := range r.pushers {
		ppeak += p.Stats().PeakInFlight
	}
	out["retriesInInvocation"] = retries
	out["nacked"] = nacked
	out["tokenRefreshes"] = refreshes
	out["secretReads"] = secretReads
	out["eventsPerInstance"] = perInstance
	out["pusherPeakInFlight"] = ppeak
	return all
}

// latencyFigures adds the percentiles of the samples' latencies to out.
func latencyFigures(out map[string]any, all []sample) {
	if len(all) == 0 {
		return
	}
	pct := func(get func(sample) time.Duration) string {
		ds := make([]time.Duration, len(all))
		for i, s := range all {
			ds[i] = get(s)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		return fmt.Sprintf("p50 %v  p99 %v  max %v", q(.50).Round(time.Microsecond), q(.99).Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond))
	}
	out["latencyHandle"] = pct(func(s sample) time.Duration { return s.handle })
	out["latencyInChat"] = pct(func(s sample) time.Duration { return s.chat })
	out["latencyBeforeFirstChatCall"] = pct(func(s sample) time.Duration { return s.before })
	out["latencyAfterLastChatCall"] = pct(func(s sample) time.Duration { return s.after })
	out["latencyAdded"] = pct(func(s sample) time.Duration { return s.added })
	out["latencyHandleMinusChat"] = pct(func(s sample) time.Duration { return s.handle - s.chat })
	ledgerFigures(out, all, pct)
}

// ledgerFigures adds what the ledger's Firestore round trips cost each
// event, and what remains of the handler's time without them and the Chat
// calls (the function's own work, and the budget's waits when it binds).
func ledgerFigures(out map[string]any, all []sample, pct func(func(sample) time.Duration) string) {
	rpcs, writes := 0, 0
	for _, s := range all {
		rpcs += s.ledgerN
		writes += s.writes
	}
	if rpcs == 0 {
		return
	}
	out["ledgerRPCsPerEvent"] = fmt.Sprintf("%.2f", float64(rpcs)/float64(len(all)))
	out["ledgerWritesPerEvent"] = fmt.Sprintf("%.2f", float64(writes)/float64(len(all)))
	out["latencyInLedger"] = pct(func(s sample) time.Duration { return s.ledger })
	out["latencyHandleMinusChatMinusLedger"] = pct(func(s sample) time.Duration { return s.handle - s.chat - s.ledger })
}

// publishFigures adds the latencies of the result Publish RPCs to out.
func (r *loadRun) publishFigures(out map[string]any, results int) {
	r.pubRPC.mu.Lock()
	defer r.pubRPC.mu.Unlock()
	if len(r.pubRPC.d) == 0 {
		return
	}
	ds := r.pubRPC.d
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	out["resultPublishRPCs"] = fmt.Sprintf("%d RPCs for %d results; RPC latency p50 %v p99 %v", len(ds), results,
		ds[len(ds)/2].Round(time.Microsecond), ds[min(len(ds)-1, len(ds)*99/100)].Round(time.Microsecond))
}
