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
	rec := []string{
		r.Request, r.Person, r.Email, r.Space, r.SpaceDisplayName, r.Outcome, r.Role, r.HandOff, strings.Join(r.ViaGroups, " "),
		code, status, msg, r.Fix, r.Detail, r.Membership, r.ChildRequest, at,
	}
	for i, c := range rec {
		rec[i] = csvSafe(c)
	}
	return rec
}

// csvSafe neutralises a cell that a spreadsheet would read as a formula, as
// OWASP's advice on CSV injection says: a cell that begins with =, +, -, @,
// tab or carriage return gets a single quote in front, which spreadsheets
// show as text. Every cell goes through it, because any Workspace user can
// name a space "=HYPERLINK(...)", and the ledger's records are data, not
// code. Quotes, commas and newlines inside a cell are encoding/csv's to
// quote.
func csvSafe(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// WriteCSV writes the report as CSV (RFC 4180, encoding/csv): the header
// row CSVHeader, then one row per (person, space) and one per result about
// a whole request (person empty). A cell that begins with =, +, -, @, tab
// or carriage return starts with a single quote (csvSafe), so that no cell
// opens as a formula in a spreadsheet. Completeness is not in the CSV: the
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
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s", dash(clean(r.Space)), dash(clean(r.SpaceDisplayName)), clean(r.Outcome), dash(clean(r.Role)), dash(clean(r.HandOff)))
			if many {
				fmt.Fprintf(tw, "\t%s", clean(r.Request))
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
			fmt.Fprintf(b, "  %s: %s\n", clean(r.ChildRequest), clean(r.Outcome))
			writeAttention(b, r)
		}
	}
	counts := make([]string, len(rep.Counts))
	for i, c := range rep.Counts {
		counts[i] = fmt.Sprintf("%s %d", clean(c.Outcome), c.N)
	}
	fmt.Fprintf(b, "\nOutcomes: %s\n", dash(strings.Join(counts, ", ")))
	fmt.Fprintf(b, "Complete: %s; %d need attention.\n", yesNo(rep.Complete), rep.NeedAttention)
	fmt.Fprintf(b, "Not reachable: %s\n", rep.Note)
	_, err := io.WriteString(w, strip(b.String()))
	if err != nil {
		return fmt.Errorf("report: writing: %w", err)
	}
	return nil
}

// writeRequest writes one request's line: what it is and whether it is
// complete.
func writeRequest(b *strings.Builder, r Request) {
	if !r.Found {
		fmt.Fprintf(b, "Request %s: not found: %s.\n", clean(r.ID), clean(r.Why))
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
		fmt.Fprintf(b, "Request %s (%s): complete, %s.\n", clean(r.ID), strings.Join(about, "; "), recorded)
	} else {
		fmt.Fprintf(b, "Request %s (%s): NOT complete, %s: %s.\n", clean(r.ID), strings.Join(about, "; "), recorded, clean(r.Why))
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
	fmt.Fprintf(b, "  ! %s: %s\n", clean(where), clean(r.Outcome))
	if e := r.Error; e != nil {
		var parts []string
		if e.Code != 0 {
			parts = append(parts, strconv.Itoa(e.Code))
		}
		for _, s := range []string{clean(e.Status), clean(e.Message)} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		fmt.Fprintf(b, "      error: %s\n", strings.Join(parts, " "))
	}
	if len(r.ViaGroups) > 0 {
		fmt.Fprintf(b, "      via groups: %s\n", clean(strings.Join(r.ViaGroups, ", ")))
	}
	if r.Detail != "" {
		fmt.Fprintf(b, "      detail: %s\n", clean(r.Detail))
	}
	if r.Fix != "" {
		fmt.Fprintf(b, "      fix: %s\n", clean(r.Fix))
	}
}

func personTitle(p Person) string {
	if p.Email != "" && !strings.Contains(p.ID, p.Email) {
		return clean(p.Email) + " (" + clean(p.ID) + ")"
	}
	return clean(p.ID)
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

// clean keeps a text cell on one line and free of controls: a C0 control
// (newline and tab included) becomes a space; DEL, the C1 controls and
// Unicode's bidirectional controls are dropped (isControl). Bytes that are
// not UTF-8 become U+FFFD, so no raw 8-bit control reaches a terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

// strip drops from the whole text report every control but the newlines
// it writes itself: the C0 controls, DEL, the C1 controls and the
// bidirectional controls, whichever field they came from. clean has
// already made each field's own line breaks spaces; this is the net under
// it.
func strip(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\n') || isControl(r) {
			return -1
		}
		return r
	}, s)
}

// isControl reports DEL, a C1 control (U+0080-U+009F) or a bidirectional
// formatting control (U+061C, U+200E, U+200F, U+202A-U+202E,
// U+2066-U+2069), which could recolour a terminal or reorder what a reader
// sees (Trojan Source).
func isControl(r rune) bool {
	switch {
	case r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
