// Command loadtest measures chat-offboard under load, against the real
// Pub/Sub emulator and the emulated Chat API, Secret Manager and OAuth
// endpoint (internal/emulator). BENCHMARKS.md records its figures.
//
// Load mode (default): N removal requests are published to the Pub/Sub
// emulator (started here unless PUBSUB_EMULATOR_HOST is set); a pull
// subscription feeds internal/pusher, which POSTs each message as a
// binary-mode CloudEvent, as Eventarc does, with real concurrency (the
// emulator's own push sends at most 2 at a time) to --instances engine
// instances running in this process, each served as the function is
// (engine.EventHandler, behind a net/http server), so that the production
// serving path is measured. The Chat API answers after --latency and
// enforces --quota writes per --window for the whole project, all instances
// together; each instance has its own budget, --budget writes a minute
// (default: the quota, as a rate, divided by the instances). Windows may be
// scaled (--window 6s) so that runs are short.
//
// It reports the drain time against the ideal N/Q, the 429s received, Chat
// writes per removal, token refreshes and secret reads, per-event latency
// (time in Handle, time in Chat calls, time waiting before the first Chat
// call, which is mostly the budget, and the rest: the function's added
// latency), the peak concurrency and the process's RSS.
//
// Cold-start mode (--cold-start K): builds cmd/function, then K times starts
// it and measures the time from exec to the first event answered 2xx (and to
// its port listening); the median is reported. --rss-events M then sends M
// events to one more function process and reports its VmRSS.
//
// Examples:
//
//	go run ./cmd/loadtest -n 900 -quota 300 -window 6s -latency 50ms
//	go run ./cmd/loadtest -n 900 -quota 300 -window 6s -latency 50ms -instances 2
//	go run ./cmd/loadtest -n 2000 -quota 100000 -window 60s -latency 1s   # latency, budget not binding
//	go run ./cmd/loadtest -cold-start 7 -rss-events 10000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/internal/workspaces"
)

const project = "loadtest-project"

// space is the one space of the load workspace (workspaces.Crowd).
const space = "spaces/LOAD"

type flags struct {
	n, concurrency, quota, budget, instances int
	window, latency                          time.Duration
	coldStart, rssEvents                     int
	jsonOut                                  bool
	results                                  string
}

func main() {
	var f flags
	flag.IntVar(&f.n, "n", 900, "removal requests to send")
	flag.IntVar(&f.concurrency, "concurrency", pusher.DefaultConcurrency, "events in flight per instance (the pusher's concurrency)")
	flag.IntVar(&f.quota, "quota", 300, "Chat API writes per window for the whole project (the emulation's quota)")
	flag.DurationVar(&f.window, "window", time.Minute, "quota window; scale it (e.g. 6s) to shorten runs")
	flag.DurationVar(&f.latency, "latency", 50*time.Millisecond, "latency of every Chat API call")
	flag.IntVar(&f.budget, "budget", 0, "CHAT_WRITES_PER_MINUTE of each instance (in scaled minutes: window×60/…); 0 = quota rate / instances")
	flag.IntVar(&f.instances, "instances", 1, "Function instances sharing the project's quota")
	flag.IntVar(&f.coldStart, "cold-start", 0, "cold-start mode: start cmd/function this many times")
	flag.IntVar(&f.rssEvents, "rss-events", 10000, "with -cold-start: events to send before reading the function's RSS (0: skip)")
	flag.BoolVar(&f.jsonOut, "json", false, "print the figures as one JSON object")
	flag.StringVar(&f.results, "results", "emulator", `where results are published: "emulator" (the Pub/Sub emulator, like requests) or "pstest" (in-process, to take the emulator's publish latency out of the added latency)`)
	flag.Parse()
	log.SetFlags(0)
	var err error
	if f.coldStart > 0 {
		err = coldStart(f)
	} else {
		err = load(f)
	}
	if err != nil {
		log.Fatal("loadtest: ", err)
	}
}

// request is removal request i: member i of the load workspace.
func request(i int) []byte {
	return fmt.Appendf(nil, `{"requestId":"load-%d","membership":"%s/members/%s","reason":"loadtest"}`, i, space, workspaces.Member(i))
}

// cleanups are deferred calls, run last first.
type cleanups []func()

func (c *cleanups) add(f func())          { *c = append(*c, f) }
func (c *cleanups) addErr(f func() error) { *c = append(*c, func() { _ = f() }) }

func (c cleanups) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

func print(out map[string]any, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%-28s %v\n", k, out[k])
	}
	return nil
}

// rssMiB reads VmRSS of a process from /proc.
func rssMiB(pid int) float64 { return procStatusMiB(pid, "VmRSS:") }

// hwmMiB reads VmHWM (peak RSS) of a process from /proc.
func hwmMiB(pid int) float64 { return procStatusMiB(pid, "VmHWM:") }

// procStatusMiB reads the field (in kB) of /proc/pid/status, in MiB; -1 if
// it cannot.
func procStatusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

func summary(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(100 * time.Microsecond).String()
	}
	return fmt.Sprintf("median %v (runs: %s)", s[len(s)/2].Round(100*time.Microsecond), strings.Join(parts, ", "))
}
