package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/report"
)

func init() {
	register(command{name: "report", summary: "the leaver report of requests, from the function's ledger", run: runReport})
}

// Exit codes of offboard report (docs/operators.md, "The leaver report").
const (
	reportOK         = 0 // every request complete, every result a success
	reportAttention  = 1 // complete, but some result needs attention (failed, refused, invalid, expired, via_group…)
	reportUsage      = 2 // usage error, or the ledger could not be read
	reportIncomplete = 3 // some request is not complete yet: run again later
	reportNotFound   = 4 // the ledger has no such request
)

const reportUsageHead = `Usage: offboard report [--csv | --json] REQUEST_ID [REQUEST_ID...]

Prints the leaver report of the requests from the function's ledger
(Firestore database FIRESTORE_DATABASE, default "(default)", in
GOOGLE_CLOUD_PROJECT; FIRESTORE_EMULATOR_HOST for the emulator): per person,
every space with its outcome, the role removed, the hand-off, and the error
and fix of each failure; the counts per outcome; whether each request is
complete. It reads the ledger only (roles/datastore.viewer is enough).

Exit codes: 0 complete, every result a success; 1 complete, some result needs
attention (failed, refused, invalid, expired, via_group...); 3 not complete
yet (run it again later); 4 a request is not in the ledger; 2 usage or ledger
errors.

Flags:
`

// reportConfig is the parsed command line of offboard report.
type reportConfig struct {
	csv, json         bool
	project, database string
	timeout           time.Duration
	ids               []string
}

func parseReportFlags(args []string, stderr io.Writer, env func(string) string) (*reportConfig, error) {
	c := &reportConfig{}
	fs := flag.NewFlagSet("offboard report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsageHead)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.csv, "csv", false, "print CSV (RFC 4180, a header row, one row per person and space); the summary goes to standard error")
	fs.BoolVar(&c.json, "json", false, "print one JSON document (the report.Report type)")
	fs.StringVar(&c.project, "project", env(ledger.EnvProject), "Google Cloud `project` of the ledger")
	fs.StringVar(&c.database, "database", env(ledger.EnvDatabase), "Firestore `database` of the ledger (default \"(default)\")")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up (exit 2) after this long")
	// Flags may come before or after the request ids.
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		c.ids = append(c.ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(c.ids) == 0:
		return nil, errors.New("no request id (offboard report REQUEST_ID; see --help)")
	case c.csv && c.json:
		return nil, errors.New("give --csv or --json, not both")
	case strings.TrimSpace(c.project) == "":
		return nil, errors.New("no project: set --project or GOOGLE_CLOUD_PROJECT")
	case c.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	for _, id := range c.ids {
		if strings.TrimSpace(id) == "" {
			return nil, errors.New("an empty request id")
		}
	}
	return c, nil
}

// runReport is offboard report: it returns the exit code.
func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c, err := parseReportFlags(args, stderr, env)
	if errors.Is(err, flag.ErrHelp) {
		return reportOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "offboard report: %v\n", err)
		return reportUsage
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	store, err := ledger.NewFirestore(ctx, c.project, c.database)
	if err != nil {
		fmt.Fprintf(stderr, "offboard report: %v\n", err)
		return reportUsage
	}
	defer store.Close()
	rep, err := report.Build(ctx, store, c.ids...)
	if err != nil {
		fmt.Fprintf(stderr, "offboard report: %v\n", err)
		return reportUsage
	}
	switch {
	case c.csv:
		err = rep.WriteCSV(stdout)
		fmt.Fprintln(stderr, "offboard report: "+summary(rep))
	case c.json:
		err = rep.WriteJSON(stdout)
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "offboard report: %v\n", err)
		return reportUsage
	}
	return reportCode(rep)
}

// reportCode is the exit code of a report.
func reportCode(rep *report.Report) int {
	for _, r := range rep.Requests {
		if !r.Found {
			return reportNotFound
		}
	}
	switch {
	case !rep.Complete:
		return reportIncomplete
	case rep.NeedAttention > 0:
		return reportAttention
	}
	return reportOK
}

// summary is one line on the report's completeness and counts.
func summary(rep *report.Report) string {
	var parts []string
	for _, r := range rep.Requests {
		switch {
		case !r.Found:
			parts = append(parts, r.ID+" not found")
		case r.Complete:
			parts = append(parts, fmt.Sprintf("%s complete (results: %d)", r.ID, r.Recorded))
		default:
			parts = append(parts, fmt.Sprintf("%s NOT complete: %s", r.ID, r.Why))
		}
	}
	return fmt.Sprintf("%s; %d need attention", strings.Join(parts, "; "), rep.NeedAttention)
}
