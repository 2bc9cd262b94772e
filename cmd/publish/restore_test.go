package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
)

// TestRestoreEndToEnd: a sweep with a hand-off, then --restore of it with
// --wait on the real Pub/Sub emulator: the CLI follows the restore's
// planned page and its children to the end and exits 0, alice is back
// with her roles; a second restore ends already_member; a restore of an
// unknown request ends invalid (exit 1); --restore with another target is
// refused before anything is published (exit 2).
func TestRestoreEndToEnd(t *testing.T) {
	host := pubsubtest.Emulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := newE2E(ctx, t, host, "publish-restore")
	_, stack := e.Start(ctx, t, emulator.Default(), nil)
	env := e.Env()
	inv := runCLI(t, ctx, env, "", "--all-spaces", "--member", "alice@example.com", "--successor", "bob@example.com", "--add-successor", "--request-id", "hr-7", "--wait", "--timeout", "40s")
	if inv.code != exitOK {
		t.Fatalf("sweep: exit %d\n%s%s", inv.code, inv.stdout, inv.stderr)
	}
	inv = runCLI(t, ctx, env, "", "--restore", "hr-7", "--request-id", "hr-7-undo", "--reason", "rehired", "--wait", "--timeout", "40s")
	if inv.code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", inv.code, inv.stdout, inv.stderr)
	}
	for _, want := range []string{"restore of hr-7", "planned", "hr-7-undo/spaces/ENG", "hr-7-undo/spaces/SOLO", "restored", "role ROLE_MANAGER", "keeps the owner role"} {
		if !strings.Contains(inv.stdout, want) {
			t.Errorf("restore table lacks %q:\n%s", want, inv.stdout)
		}
	}
	for space, role := range map[string]string{"spaces/ENG": "ROLE_MANAGER", "spaces/SALES": "ROLE_MEMBER", "spaces/SOLO": "ROLE_MANAGER"} {
		if got, ok := stack.Chat.IsMember(space, "101"); !ok || got != role {
			t.Errorf("alice in %s: %q %v, want %s", space, got, ok, role)
		}
	}
	inv = runCLI(t, ctx, env, "", "--restore", "hr-7", "--request-id", "hr-7-undo-2", "--wait", "--timeout", "40s")
	if inv.code != exitOK || strings.Count(inv.stdout, "already_member") != 3 {
		t.Errorf("second restore: exit %d, want 0 with 3 already_member\n%s", inv.code, inv.stdout)
	}
	inv = runCLI(t, ctx, env, "", "--restore", "hr-nobody", "--wait", "--timeout", "40s")
	if inv.code != exitFailed || !strings.Contains(inv.stdout, "invalid") || !strings.Contains(inv.stdout, "holds no request") {
		t.Errorf("unknown request: exit %d, want 1 with invalid\n%s", inv.code, inv.stdout)
	}
	inv = runCLI(t, ctx, env, "", "--restore", "hr-7", "--member", "users/101")
	if inv.code != exitUsage || !strings.Contains(inv.stderr, "not allowed with restore") {
		t.Errorf("--restore with --member: exit %d, want 2\n%s", inv.code, inv.stderr)
	}
}
