// Package emulator provides loopback emulations of the Google services that
// chat-offboard talks to, for tests, the sandbox, benchmarks and the load tool:
//
//   - [OAuth]: Google's OAuth 2.0 token endpoint (refresh_token and
//     authorization_code+PKCE grants) and authorization endpoint, form-encoded
//     as golang.org/x/oauth2 expects.
//   - [SecretManager]: the Secret Manager v1 gRPC service (plaintext), as
//     cloud.google.com/go/secretmanager/apiv1 speaks it.
//   - [Chat]: the Google Chat API REST surface used for membership
//     management (spaces.members.get/list/create/patch/delete, spaces.search),
//     as google.golang.org/api/chat/v1 speaks it.
//   - [Directory]: the Admin SDK Directory API users.get, users.list and
//     groups.list (a person's direct Google Groups), as
//     google.golang.org/api/admin/directory/v1 speaks it. Groups are also
//     members of Chat spaces ([Space].Groups), listed by members.list with
//     showGroups.
//   - [Reports]: the Admin SDK Reports API activities.list (the Admin audit
//     activities that offboard reconcile reads), as
//     google.golang.org/api/admin/reports/v1 speaks it; started on its own
//     with [NewReports], not by [StartAll].
//
// Every emulation listens on 127.0.0.1 with an ephemeral port, speaks the
// real wire protocol, is strict about resource names, tokens, scopes and
// quotas, and can inject faults ([Fault]). All exported methods are safe for
// concurrent use unless their doc comment says otherwise; the servers
// themselves handle requests concurrently.
//
// [StartAll] starts the four emulations wired together, with a Secret
// Manager secret holding an authorized_user credential for the first
// Workspace admin, which is what the function under test reads in
// production. [Default] is the deterministic seed Workspace used by tests
// and the sandbox.
//
// Nothing in this package logs; in particular secrets, tokens and
// credentials never reach a log.
package emulator
