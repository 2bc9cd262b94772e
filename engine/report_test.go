package engine

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	leaverreport "github.com/chat-offboard/chat-offboard/report"
)

// TestReportOfTwoThousandSpaceSweep is issue 15's measure for the report: a
// real sweep of 2,000 spaces for 3 people, 10 of whose memberships are only
// through two Google Groups, then the leaver report from the ledger (in
// memory, and on the Firestore emulator): complete, every space of every
// person listed exactly once with the outcome the workspace calls for and the
// space's display name, via_group naming the right group in each of the 10,
// hand-offs where the person was the only owner, and a CSV that reads back
// with one row per (person, space). It logs how long the report took.
func TestReportOfTwoThousandSpaceSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("a sweep of 2,000 spaces")
	}
	for _, store := range []string{"memory", "firestore"} {
		t.Run(store, func(t *testing.T) {
			if store == "firestore" {
				onFirestore(t)
			}
			const spaces = 2000
			ws, in, onlyManager := bigWorkspace(spaces)
			wantVia := twoGroups(t, &ws)
			for i := range ws.Spaces {
				if ws.Spaces[i].SpaceType == emulator.SpaceTypeSpace {
					ws.Spaces[i].DisplayName = "Team " + ws.Spaces[i].Name[len("spaces/"):]
				}
			}
			e := newEnvWith(t, ws, emulator.ChatOptions{})
			if err := e.send(t, `{"requestId":"leaver-1","allSpaces":true,"members":["dana@example.com","eli@example.com","users/203"],"successor":"bob@example.com","addSuccessor":true}`); err != nil {
				t.Fatal(err)
			}
			e.drain(t, 8)

			start := time.Now()
			rep, err := leaverreport.Build(context.Background(), e.store, "leaver-1")
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start)
			var b bytes.Buffer
			if err := rep.WriteCSV(&b); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("report of a sweep of %d spaces for 3 people (%s ledger): Build %v, with the CSV (%d bytes) %v", spaces, store, built, b.Len(), took)

			req := rep.Requests[0]
			if !rep.Complete || req.Expected == nil || *req.Expected != 3*spaces || req.Recorded != 3*spaces || rep.NeedAttention != len(wantVia) {
				t.Fatalf("complete %v, request %+v, %d need attention", rep.Complete, req, rep.NeedAttention)
			}
			if len(rep.People) != 3 || len(rep.RequestResults) != 0 {
				t.Fatalf("%d people, %d request results", len(rep.People), len(rep.RequestResults))
			}
			handOffs := 0
			for _, p := range rep.People {
				id := p.ID[len("users/"):]
				seen := map[string]bool{}
				for _, r := range p.Rows {
					if seen[r.Space] {
						t.Fatalf("%s: %s listed twice", p.ID, r.Space)
					}
					seen[r.Space] = true
					want := "not_member"
					switch {
					case slices.Contains(in[id], r.Space):
						want = "removed"
					case wantVia[r.Membership] != nil:
						want = "via_group"
					}
					if r.Outcome != want || r.SpaceDisplayName != "Team "+r.Space[len("spaces/"):] {
						t.Fatalf("%s in %s: %s (%q), want %s", p.ID, r.Space, r.Outcome, r.SpaceDisplayName, want)
					}
					if want == "via_group" && (!slices.Equal(r.ViaGroups, wantVia[r.Membership]) || !strings.Contains(r.Fix, "group")) {
						t.Errorf("%s in %s: via_group through %v (fix %q), want %v", p.ID, r.Space, r.ViaGroups, r.Fix, wantVia[r.Membership])
					}
					if r.HandOff != "" {
						handOffs++
					}
				}
				if len(seen) != spaces {
					t.Errorf("%s: %d spaces, want %d", p.ID, len(seen), spaces)
				}
			}
			if handOffs != onlyManager {
				t.Errorf("%d hand-offs in the report, want %d", handOffs, onlyManager)
			}
			recs, err := csv.NewReader(&b).ReadAll()
			if err != nil || len(recs) != 1+3*spaces {
				t.Fatalf("CSV: %v, %d records, want %d", err, len(recs), 1+3*spaces)
			}
			pairs := map[string]bool{}
			for _, r := range recs[1:] {
				pairs[fmt.Sprint(r[1], r[3])] = true
			}
			if len(pairs) != 3*spaces {
				t.Errorf("CSV: %d distinct (person, space), want %d", len(pairs), 3*spaces)
			}
		})
	}
}
