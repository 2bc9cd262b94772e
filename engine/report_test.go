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

// TestReportOfASweepAndItsRestore: the report of a real sweep and of its
// restore, in one report: both complete; alice's spaces listed once per
// request, removed then restored with the role she had, the successor's
// hand-off shown on the removal; no pending row.
func TestReportOfASweepAndItsRestore(t *testing.T) {
	e := newEnv(t)
	if err := e.send(t, `{"requestId":"hr-7","allSpaces":true,"member":"alice@example.com","successor":"bob@example.com","addSuccessor":true}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	if err := e.send(t, `{"requestId":"hr-7-undo","restore":"hr-7","reason":"rehired"}`); err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2)
	rep, err := leaverreport.Build(t.Context(), e.store, "hr-7", "hr-7-undo")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || len(rep.People) != 1 || rep.People[0].ID != "users/101" {
		t.Fatalf("complete %v, requests %+v, people %+v", rep.Complete, rep.Requests, rep.People)
	}
	got := map[string]string{}
	for _, r := range rep.People[0].Rows {
		k := r.Request + " " + r.Space
		if _, dup := got[k]; dup {
			t.Errorf("%s twice", k)
		}
		got[k] = r.Outcome + " " + r.Role + " " + r.SpaceDisplayName
		if r.Request == "hr-7" && r.Space == "spaces/SOLO" && !strings.Contains(r.HandOff, "users/102") {
			t.Errorf("SOLO's removal does not show the hand-off: %+v", r)
		}
	}
	for k, want := range map[string]string{
		"hr-7 spaces/ENG":        "removed ROLE_MANAGER Engineering",
		"hr-7 spaces/SALES":      "removed ROLE_MEMBER Sales",
		"hr-7 spaces/SOLO":       "removed ROLE_MANAGER Alice's project",
		"hr-7 spaces/HR":         "not_member  People",
		"hr-7-undo spaces/ENG":   "restored ROLE_MANAGER Engineering",
		"hr-7-undo spaces/SALES": "restored ROLE_MEMBER Sales",
		"hr-7-undo spaces/SOLO":  "restored ROLE_MANAGER Alice's project",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}
	if undo := rep.Requests[1]; !undo.Complete || undo.Expected == nil || *undo.Expected != 3 || undo.Recorded != 3 {
		t.Errorf("the restore: %+v", undo)
	}
	if rep.NeedAttention != 0 {
		t.Errorf("%d need attention, want 0: %+v", rep.NeedAttention, rep.Counts)
	}
}
