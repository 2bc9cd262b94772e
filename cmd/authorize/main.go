// Command authorize runs the OAuth consent of chat-offboard's delegated
// Workspace admin and stores the result, an authorized_user credential, where
// the function reads it: a new version of a Secret Manager secret (or, with
// --out, a file with mode 0600).
//
// The flow is the one Google recommends for installed applications, done
// strictly: a loopback redirect on 127.0.0.1 (a random port unless --port),
// a random state that the redirect must carry back, PKCE with S256, and
// access_type=offline with prompt=consent so that Google always issues a
// refresh token. It asks for exactly the scopes of the chosen features:
//
//	always               https://www.googleapis.com/auth/chat.memberships
//	--sweeps             + chat.admin.memberships, chat.admin.spaces.readonly,
//	                     admin.directory.user.readonly, admin.directory.group.readonly
//	--app                + chat.memberships.app
//	--workspace-trigger  + those of --sweeps, and admin.reports.audit.readonly
//	                     (offboard reconcile reads the Admin audit activities)
//
// It prints the URL to open (and opens it with --open), waits for the
// redirect, exchanges the code and stores the credential. A refresh token
// it cannot keep (a partial grant, a failed store) is revoked at Google;
// once a new secret version works, the previous one's is revoked when it is
// another OAuth client's, and with --revoke-previous the latest one's is
// revoked before the consent (revoke.go says why: Google revokes an
// admin's whole grant to a client). It never prints a
// secret: neither the client secret nor a token, only the secret version name
// and the granted scopes. Its endpoints (flags, or the client secrets file's
// auth_uri and token_uri) must be Google's OAuth endpoints or a loopback
// emulator: credentials go only to Google.
//
// Usage:
//
//	go run ./cmd/authorize --client-secrets client_secret.json \
//	    --secret projects/PROJECT/secrets/chat-offboard-token [--create] [--sweeps] [--app] [--workspace-trigger]
//	go run ./cmd/authorize --client-id ID --client-secret-file FILE --out creds.json
//
// Writing to Secret Manager uses Application Default Credentials (gcloud auth
// application-default login) with permission to add secret versions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/chat-offboard/chat-offboard/cmd/internal/console"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// OAuth scopes, by feature.
const (
	ScopeChatMemberships            = "https://www.googleapis.com/auth/chat.memberships"
	ScopeChatAdminMemberships       = "https://www.googleapis.com/auth/chat.admin.memberships"
	ScopeChatAdminSpacesReadonly    = "https://www.googleapis.com/auth/chat.admin.spaces.readonly"
	ScopeAdminDirectoryUserReadonly = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	// ScopeAdminDirectoryGroupReadonly lets a sweep read each person's
	// Google Groups (groups.list), to report access through groups.
	ScopeAdminDirectoryGroupReadonly = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeChatMembershipsApp          = "https://www.googleapis.com/auth/chat.memberships.app"
	// ScopeAdminReportsAuditReadonly lets offboard reconcile read the Admin
	// audit activities (Reports API activities.list).
	ScopeAdminReportsAuditReadonly = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
)

// Google's endpoints, used unless the client secrets file or a flag names
// others. Any other endpoint must be on Google's OAuth hosts or a loopback
// emulator (tokens.CheckOAuthURL).
const (
	GoogleAuthURL  = tokens.GoogleAuthURL
	GoogleTokenURL = tokens.GoogleTokenURL
)

// callbackPath is the path of the loopback redirect URI. A Web-type OAuth
// client must list http://127.0.0.1:PORT/callback exactly (with --port).
const callbackPath = "/callback"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// browser opens the consent URL for the user. It may return before the user
// has answered; the redirect arrives at the loopback listener.
type browser func(ctx context.Context, authURL string) error

// run is the command: it parses args, runs the flow and reports on stdout
// (progress, the URL, the result) and stderr (errors). It returns the exit
// code: 0 on success, 1 when the flow or the storing failed, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, nil)
}

// runWith is run with the browser step injected (tests play the browser).
// A nil browse means: print the URL, and open it only with --open.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, browse browser) int {
	// The callback handler and the browser step write from their own
	// goroutines.
	stdout, stderr = console.NewWriter(stdout), console.NewWriter(stderr)
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "authorize: %v\n", err)
		return 2
	}
	if browse == nil && o.open {
		browse = systemBrowser
	}
	if err := authorize(ctx, o, stdout, stderr, browse); err != nil {
		fmt.Fprintf(stderr, "authorize: %v\n", err)
		return 1
	}
	return 0
}

// systemBrowser opens u with the platform's opener.
func systemBrowser(ctx context.Context, u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", u)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
