package docstest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// assumptionsHeading starts the table of what the emulation assumes where
// Google's reference is silent (docs/design.md).
const assumptionsHeading = "### Assumptions where Google's reference is silent"

// sourceKind is how each source of a row must begin: its kind, a colon and
// where (at least a few words).
var sourceKind = regexp.MustCompile(`^(reference|guide|GAM|sample): \S.{15,}$`)

// TestEveryAssumptionHasASource: each row of the assumptions table in
// docs/design.md says what the emulation assumes, the source it rests on
// (one or more of reference, guide, GAM or a published sample, each with
// where, separated by "; ") and what the code does if it is wrong in
// production; no row without a source.
func TestEveryAssumptionHasASource(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := assumptionRows(t, string(data))
	if len(rows) < 5 {
		t.Fatalf("the assumptions table has %d rows; it lists every behaviour the emulation assumes", len(rows))
	}
	for i, r := range rows {
		if len(r) != 3 {
			t.Errorf("row %d has %d cells, want 3 (assumption, source, if wrong): %q", i+1, len(r), r)
			continue
		}
		if r[0] == "" || r[2] == "" {
			t.Errorf("row %d: the assumption and what happens if it is wrong must both be said: %q", i+1, r)
		}
		if r[1] == "" {
			t.Errorf("row %d (%s) has no source", i+1, r[0])
			continue
		}
		for _, s := range splitSources(r[1]) {
			if !sourceKind.MatchString(s) {
				t.Errorf("row %d (%s): source %q does not start with reference:, guide:, GAM: or sample: and say where", i+1, r[0], s)
			}
		}
	}
}

// splitSources splits a source cell at "; " followed by a kind.
func splitSources(cell string) []string {
	var out []string
	start := 0
	for i := 0; i < len(cell); i++ {
		if strings.HasPrefix(cell[i:], "; ") {
			rest := cell[i+2:]
			for _, k := range []string{"reference:", "guide:", "GAM:", "sample:"} {
				if strings.HasPrefix(rest, k) {
					out = append(out, cell[start:i])
					start = i + 2
				}
			}
		}
	}
	return append(out, cell[start:])
}

// assumptionRows are the cells of the table's body rows, trimmed.
func assumptionRows(t *testing.T, doc string) [][]string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+assumptionsHeading+"\n")
	if !ok {
		t.Fatalf("docs/design.md has no %q section", assumptionsHeading)
	}
	var rows [][]string
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			return rows
		case strings.HasPrefix(line, "|"):
			if !inTable { // the header, then the separator
				inTable = true
				continue
			}
			if strings.HasPrefix(line, "| ---") {
				continue
			}
			cells := strings.Split(strings.Trim(line, "|"), " | ")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, cells)
		case inTable:
			return rows
		}
	}
	return rows
}
