package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// CSVHeader is the header row of WriteCSV: one column per Row field.
var CSVHeader = []string{
	"request", "person", "email", "space", "space_display_name", "outcome", "role", "hand_off", "via_groups",
	"error_code", "error_status", "error_message", "fix", "detail", "membership", "child_request", "decided_at",
}

// csvRecord is one row as CSV fields, in CSVHeader's order.
func csvRecord(r Row) []string {
	var code, status, msg string
	if r.Error != nil {
		if r.Error.Code != 0 {
			code = strconv.Itoa(r.Error.Code)
		}
		status, msg = r.Error.Status, r.Error.Message
	}
	at := ""
	if !r.DecidedAt.IsZero() {
		at = r.DecidedAt.UTC().Format(time.RFC3339)
	}
	return []string{
		r.Request, r.Person, r.Email, r.Space, r.SpaceDisplayName, r.Outcome, r.Role, r.HandOff, strings.Join(r.ViaGroups, " "),
		code, status, msg, r.Fix, r.Detail, r.Membership, r.ChildRequest, at,
	}
}

// WriteCSV writes the report as CSV (RFC 4180, encoding/csv): the header
// row CSVHeader, then one row per (person, space) and one per result about
// a whole request (person empty). Completeness is not in the CSV: the
// caller says it elsewhere (offboard report prints it on standard error).
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("report: writing CSV: %w", err)
	}
	for _, p := range rep.People {
		for _, r := range p.Rows {
			if err := cw.Write(csvRecord(r)); err != nil {
				return fmt.Errorf("report: writing CSV: %w", err)
			}
		}
	}
	for _, r := range rep.RequestResults {
		if err := cw.Write(csvRecord(r)); err != nil {
			return fmt.Errorf("report: writing CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: writing CSV: %w", err)
	}
	return nil
}

// WriteJSON writes the report as one indented JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("report: writing JSON: %w", err)
	}
	return nil
}

// WriteText writes the report for people: the requests and whether each is
// complete, one table per person (space, display name, outcome, role,
// hand-off, and the request when the report has several) with
// the error, detail and fix under it for every row that needs attention,
// the results about whole requests, the counts, and what no API reaches.
func (rep *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	for _, r := range rep.Requests {
		writeRequest(b, r)
	}
	for _, p := range rep.People {
		fmt.Fprintf(b, "\n%s\n", personTitle(p))
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		many := len(rep.Requests) > 1 // then each row says which request decided it
		fmt.Fprint(tw, "  SPACE\tDISPLAY NAME\tOUTCOME\tROLE\tHAND-OFF")
		if many {
			fmt.Fprint(tw, "\tREQUEST")
		}
		fmt.Fprintln(tw)
		for _, r := range p.Rows {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s", dash(r.Space), dash(clean(r.SpaceDisplayName)), r.Outcome, dash(r.Role), dash(r.HandOff))
			if many {
				fmt.Fprintf(tw, "\t%s", r.Request)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		for _, r := range p.Rows {
			writeAttention(b, r)
		}
	}
	if len(rep.RequestResults) > 0 {
		fmt.Fprintf(b, "\nAbout whole requests:\n")
		for _, r := range rep.RequestResults {
			fmt.Fprintf(b, "  %s: %s\n", r.ChildRequest, r.Outcome)
			writeAttention(b, r)
		}
	}
	counts := make([]string, len(rep.Counts))
	for i, c := range rep.Counts {
		counts[i] = fmt.Sprintf("%s %d", c.Outcome, c.N)
	}
	fmt.Fprintf(b, "\nOutcomes: %s\n", dash(strings.Join(counts, ", ")))
	fmt.Fprintf(b, "Complete: %s; %d need attention.\n", yesNo(rep.Complete), rep.NeedAttention)
	fmt.Fprintf(b, "Not reachable: %s\n", rep.Note)
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: writing: %w", err)
	}
	return nil
}

// writeRequest writes one request's line: what it is and whether it is
// complete.
func writeRequest(b *strings.Builder, r Request) {
	if !r.Found {
		fmt.Fprintf(b, "Request %s: not found: %s.\n", r.ID, r.Why)
		return
	}
	var about []string
	for _, s := range []string{r.Kind, r.Target} {
		if s != "" {
			about = append(about, clean(s))
		}
	}
	if r.DryRun {
		about = append(about, "dry run")
	}
	if r.Reason != "" {
		about = append(about, "reason: "+clean(r.Reason))
	}
	if r.RequestedBy != "" {
		about = append(about, "requested by "+clean(r.RequestedBy))
	}
	recorded := plural(r.Recorded, "result")
	if r.Expected != nil {
		recorded = fmt.Sprintf("%d of %d expected results", r.Recorded, *r.Expected)
	}
	if r.Complete {
		fmt.Fprintf(b, "Request %s (%s): complete, %s.\n", r.ID, strings.Join(about, "; "), recorded)
	} else {
		fmt.Fprintf(b, "Request %s (%s): NOT complete, %s: %s.\n", r.ID, strings.Join(about, "; "), recorded, r.Why)
	}
}

// writeAttention writes the error, detail and fix of a row that needs them.
func writeAttention(b *strings.Builder, r Row) {
	if Success(r.Outcome) {
		return
	}
	where := r.Space
	if where == "" {
		where = r.ChildRequest
	}
	fmt.Fprintf(b, "  ! %s: %s\n", where, r.Outcome)
	if e := r.Error; e != nil {
		var parts []string
		if e.Code != 0 {
			parts = append(parts, strconv.Itoa(e.Code))
		}
		for _, s := range []string{e.Status, clean(e.Message)} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		fmt.Fprintf(b, "      error: %s\n", strings.Join(parts, " "))
	}
	if len(r.ViaGroups) > 0 {
		fmt.Fprintf(b, "      via groups: %s\n", strings.Join(r.ViaGroups, ", "))
	}
	if r.Detail != "" {
		fmt.Fprintf(b, "      detail: %s\n", clean(r.Detail))
	}
	if r.Fix != "" {
		fmt.Fprintf(b, "      fix: %s\n", r.Fix)
	}
}

func personTitle(p Person) string {
	if p.Email != "" && !strings.Contains(p.ID, p.Email) {
		return p.Email + " (" + p.ID + ")"
	}
	return p.ID
}

// plural is "1 result", "2 results".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// clean keeps a text cell on one line (and free of terminal controls).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
