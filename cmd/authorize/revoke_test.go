package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// newestRefreshToken is the last refresh token the emulation issued.
func newestRefreshToken(t *testing.T, f *fixture) string {
	t.Helper()
	toks := f.stack.OAuth.IssuedTokens()
	for i := len(toks) - 1; i >= 0; i-- {
		if strings.HasPrefix(toks[i], "1//") {
			return toks[i]
		}
	}
	t.Fatal("no refresh token issued")
	return ""
}

// TestPartialGrantRevoked: a consent that leaves out a needed scope is
// revoked at Google, not left live with nothing storing it (before, it
// stayed a grant of the admin's).
func TestPartialGrantRevoked(t *testing.T) {
	f := newFixture(t)
	f.stack.OAuth.SetConsentScopes([]string{ScopeChatMemberships})
	o := runAuthorize(t, f.args("--sweeps", "--out", filepath.Join(t.TempDir(), "c.json")), nil)
	rt := newestRefreshToken(t, f)
	if o.code != 1 || !strings.Contains(o.stderr, "did not grant") || !strings.Contains(o.stderr, "was revoked at Google") {
		t.Errorf("exit %d, stderr:\n%s", o.code, o.stderr)
	}
	if f.stack.OAuth.RefreshTokenActive(rt) || f.stack.OAuth.Stats().Revocations != 1 {
		t.Errorf("the partial grant is live (%d revocations)", f.stack.OAuth.Stats().Revocations)
	}
	secretNever(t, o, rt, f.stack.ClientSecret)
}

// TestUnstorableGrantRevoked: a credential that cannot be stored is
// revoked (before, it stayed live); but not when the secret's current credential is of the same
// OAuth client, whose grant (the function's working credential) a
// revocation would take with it.
func TestUnstorableGrantRevoked(t *testing.T) {
	f := newFixture(t)
	f.stack.Secrets.InjectFault(emulator.Fault{Method: "secrets.add", Status: 403, Times: 1})
	o := runAuthorize(t, f.withSecretManager("new-token", "--create"), nil)
	rt := newestRefreshToken(t, f)
	if o.code != 1 || !strings.Contains(o.stderr, "adding a version") || !strings.Contains(o.stderr, "was revoked at Google") {
		t.Errorf("exit %d, stderr:\n%s", o.code, o.stderr)
	}
	if f.stack.OAuth.RefreshTokenActive(rt) {
		t.Error("the unstored credential is live")
	}

	// A fresh Google side: the revocation above took the admin's whole
	// grant to the client, the stack's credential included.
	f = newFixture(t)
	f.stack.Secrets.InjectFault(emulator.Fault{Method: "secrets.add", Status: 403, Times: 1})
	o = runAuthorize(t, f.withSecretManager(emulator.StackSecretID), nil)
	if o.code != 1 || !strings.Contains(o.stderr, "was not revoked") {
		t.Errorf("same client: exit %d, stderr:\n%s", o.code, o.stderr)
	}
	if !f.stack.OAuth.RefreshTokenActive(f.stack.RefreshToken) {
		t.Error("the function's working credential was revoked")
	}
}

// TestRotationRevokesThePrevious: once the new credential is stored and
// refreshes, the previous version's refresh token is revoked at Google when
// it is another OAuth client's (another grant). Before, rotation left it
// live. Of the same client, it is kept (Google revokes the admin's whole
// grant, the new credential's too) unless --revoke-previous, which revokes
// it before the consent so that the new grant survives.
func TestRotationRevokesThePrevious(t *testing.T) {
	f := newFixture(t)
	f.stack.OAuth.RegisterClient("old-client", "old-secret")
	old := f.stack.OAuth.IssueRefreshToken("old-client", emulator.Default().Admins[0], emulator.StackScopes)
	f.stack.Secrets.AddVersion(f.stack.Project, "rotated", emulator.AuthorizedUserJSON("old-client", "old-secret", old, f.stack.OAuth.TokenURL()))
	o := runAuthorize(t, f.withSecretManager("rotated"), nil)
	if o.code != 0 || !strings.Contains(o.stdout, "Revoked the previous credential (projects/"+f.stack.Project+"/secrets/rotated/versions/1") {
		t.Fatalf("exit %d\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if f.stack.OAuth.RefreshTokenActive(old) || !f.stack.OAuth.RefreshTokenActive(newestRefreshToken(t, f)) {
		t.Errorf("after rotation: old active %v, new active %v", f.stack.OAuth.RefreshTokenActive(old), f.stack.OAuth.RefreshTokenActive(newestRefreshToken(t, f)))
	}
	secretNever(t, o, old, newestRefreshToken(t, f))

	// The same client: kept, and said so.
	o = runAuthorize(t, f.withSecretManager(emulator.StackSecretID), nil)
	if o.code != 0 || !strings.Contains(o.stdout, "was not revoked") || !f.stack.OAuth.RefreshTokenActive(f.stack.RefreshToken) {
		t.Fatalf("same client: exit %d, previous active %v\n%s\n%s", o.code, f.stack.OAuth.RefreshTokenActive(f.stack.RefreshToken), o.stdout, o.stderr)
	}
	// --revoke-previous: revoked before the consent; the new one works.
	prev := newestRefreshToken(t, f)
	o = runAuthorize(t, f.withSecretManager(emulator.StackSecretID, "--revoke-previous"), nil)
	if o.code != 0 || !strings.Contains(o.stdout, "Revoked the previous credential") {
		t.Fatalf("--revoke-previous: exit %d\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if f.stack.OAuth.RefreshTokenActive(prev) || !f.stack.OAuth.RefreshTokenActive(newestRefreshToken(t, f)) {
		t.Errorf("--revoke-previous: previous active %v, new active %v", f.stack.OAuth.RefreshTokenActive(prev), f.stack.OAuth.RefreshTokenActive(newestRefreshToken(t, f)))
	}
}
