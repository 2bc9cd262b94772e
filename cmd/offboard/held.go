package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chat-offboard/chat-offboard/ledger"
)

func init() {
	register(command{name: "held", summary: "list the requests held: in their grace period, or waiting for an approval", run: runHeld})
}

const heldUsageHead = `Usage: offboard held [--json]

Lists the requests the function holds (docs/operators.md, "Grace period,
brake and approvals"), from its ledger (Firestore database FIRESTORE_DATABASE
in GOOGLE_CLOUD_PROJECT; FIRESTORE_EMULATOR_HOST for the emulator): each
request id, why it is held (grace: a Workspace suspension in its grace
period, due at DUE; brake: beyond AUTO_OFFBOARD_MAX_PER_HOUR; approval: a
form in APPROVAL_REQUIRED), since when, and what it removes. Release one
with offboard approve REQUEST_ID, all with offboard approve held; refuse
with offboard reject.

Exit codes: 0 nothing is held; 1 something is held; 2 usage or ledger errors.

Flags:
`

// runHeld is offboard held.
func runHeld(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	fs := flag.NewFlagSet("offboard held", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, heldUsageHead); fs.PrintDefaults() }
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	project := fs.String("project", env(ledger.EnvProject), "Google Cloud `project` of the ledger")
	database := fs.String("database", env(ledger.EnvDatabase), "Firestore `database` of the ledger (default \"(default)\")")
	timeout := fs.Duration("timeout", time.Minute, "give up (exit 2) after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if strings.TrimSpace(*project) == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "offboard held: set --project or GOOGLE_CLOUD_PROJECT, and give no arguments")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	store, err := ledger.NewFirestore(ctx, *project, *database)
	if err != nil {
		fmt.Fprintf(stderr, "offboard held: %v\n", err)
		return exitUsage
	}
	defer store.Close()
	var held []ledger.Hold
	for h, err := range store.HoldsInState(ctx, ledger.HoldHeld) {
		if err != nil {
			fmt.Fprintf(stderr, "offboard held: %v\n", err)
			return exitUsage
		}
		held = append(held, h)
	}
	if err := writeHeld(stdout, held, *asJSON); err != nil {
		fmt.Fprintf(stderr, "offboard held: %v\n", err)
		return exitUsage
	}
	if len(held) == 0 {
		return exitOK
	}
	return exitAttention
}

// heldRow is one held request as offboard held --json prints it.
type heldRow struct {
	RequestID string     `json:"requestId"`
	Kind      string     `json:"kind"`
	Why       string     `json:"why"`
	HeldAt    time.Time  `json:"heldAt"`
	DueAt     *time.Time `json:"dueAt,omitempty"`
	Target    string     `json:"target"`
}

// writeHeld prints the held requests: a table, or JSON lines.
func writeHeld(w io.Writer, held []ledger.Hold, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, h := range held {
			r := heldRow{RequestID: h.RequestID, Kind: h.Kind, Why: h.Why, HeldAt: h.HeldAt, Target: h.Target}
			if !h.DueAt.IsZero() {
				r.DueAt = &h.DueAt
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(held) == 0 {
		_, err := fmt.Fprintln(w, "nothing is held")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tWHY\tHELD AT\tDUE\tTARGET")
	for _, h := range held {
		due := "on approval"
		if !h.DueAt.IsZero() {
			due = h.DueAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.RequestID, h.Why, h.HeldAt.UTC().Format(time.RFC3339), due, h.Target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d held; release: offboard approve REQUEST_ID (or held: all of them); refuse: offboard reject REQUEST_ID\n", len(held))
	return err
}
