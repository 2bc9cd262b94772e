package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoLedgerNorSecrets: the integrators' publisher links neither
// Firestore (the ledger) nor Secret Manager (the admin's token): what needs
// them is the operators' tool, cmd/offboard (issue 23).
func TestLinksNoLedgerNorSecrets(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "cloud.google.com/go/pubsub") {
		t.Fatalf("go list -deps . listed %d packages, without Pub/Sub: not this command's dependencies", len(deps))
	}
	for _, p := range deps {
		for _, banned := range []string{"cloud.google.com/go/firestore", "cloud.google.com/go/secretmanager",
			"github.com/chat-offboard/chat-offboard/ledger", "github.com/chat-offboard/chat-offboard/tokens"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("cmd/publish links %s", p)
			}
		}
	}
}
