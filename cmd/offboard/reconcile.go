package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/cmd/internal/topics"
	"github.com/chat-offboard/chat-offboard/request"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// The reconcile subcommand: the Workspace trigger's daily catch-up
// (docs/operators.md, "Offboarding that starts itself"). An organization log
// sink publishes each Admin audit entry of a suspension, archive or deletion
// to REQUEST_TOPIC within minutes; reconcile asks the Reports API
// (activities.list, applicationName=admin, one call per event name of
// request.AuditMethods that a Google reference gives, request.AuditEventSources;
// the others are listed, not asked for) for those activities since --since ago and publishes
// each as the LogEntry the sink would have published (request.AuditEvent's
// LogEntry). The function thus takes the same path for it, Directory check
// and AUTO_OFFBOARD_DOMAINS included, under the same request id: the id
// derives from the activity's id (request.AuditRequestID), which the Reports
// API and the LogEntry share, so an activity the sink delivered already is
// the same request and the ledger acts on it once.
func init() {
	register(command{name: "reconcile", summary: "publish the Workspace trigger's missed offboardings from the Reports API (ad hoc)", run: runReconcile})
}

// reportsRetention is how far back the Reports API reports activities.
const reportsRetention = 180 * 24 * time.Hour

// reconcileConfig is the parsed command line of offboard reconcile.
type reconcileConfig struct {
	since                  time.Duration
	organization           string
	project, topic, secret string
	dryRun                 bool
	output                 string
	timeout                time.Duration
	// Emulators, from the environment as the function reads them
	// (REPORTS_ENDPOINT a Google API host or loopback, SECRET_MANAGER_ENDPOINT loopback only;
	// OAUTH_TOKEN_URL Google's or loopback), and PUBSUB_EMULATOR_HOST.
	reportsEndpoint, smHost, tokenURL string
	env                               func(string) string
	log                               *slog.Logger
}

const reconcileUsage = `Usage: offboard reconcile --organization ORG_ID [flags]

Publishes a sweep for every Google Workspace suspension or deletion the
Reports API (activities.list, applicationName=admin) recorded since --since
ago under an event name that Google's reference gives (SUSPEND_USER,
DELETE_USER; the unconfirmed names of archives and auto-provisioned
removals are listed on standard error, not asked for), as the LogEntry the Workspace trigger's log sink would have
published: the function reads it the same way (Directory check,
AUTO_OFFBOARD_DOMAINS) and, since the request id derives from the activity's
id, acts once on an activity the sink delivered already. Run it daily, or
after an outage of the trigger.

It reads the Reports API with the delegated admin's credential, the function's
secret (--token-secret; consent with cmd/authorize --workspace-trigger, which
asks for admin.reports.audit.readonly), read with Application Default
Credentials.

Exit codes: 0 every activity published (or listed with --dry-run), 1 some
were not reconciled (each named: an activity that names nobody or more than
one person, or an event name the Reports API refused; the rest is
published), 2 usage or API errors (nothing published) or publishing errors
(what was published is listed).

Flags:
`

func parseReconcileFlags(args []string, stderr io.Writer, env func(string) string) (*reconcileConfig, error) {
	c := &reconcileConfig{env: env, log: slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	fs := flag.NewFlagSet("offboard reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reconcileUsage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.since, "since", 24*time.Hour, "reconcile the activities of this long ago until now (at most 180 days: 4320h)")
	fs.StringVar(&c.organization, "organization", "", "the Cloud organization `ORG_ID` whose log sink is the trigger (deploy.sh --workspace-trigger)")
	fs.StringVar(&c.project, "project", env("GOOGLE_CLOUD_PROJECT"), "Google Cloud `project` of the requests topic and the secret")
	fs.StringVar(&c.topic, "topic", env("REQUEST_TOPIC"), "request `topic` id or projects/P/topics/T")
	fs.StringVar(&c.secret, "token-secret", env("TOKEN_SECRET"), "the delegated admin's credential: a `secret` id or projects/P/secrets/S[/versions/V] (the function's TOKEN_SECRET)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "list what would be published, publish nothing")
	fs.StringVar(&c.output, "output", "table", "`format` of standard output: table or json (JSON lines)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up (exit 2) after this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see offboard reconcile --help)", fs.Arg(0))
	}
	c.reportsEndpoint, c.smHost, c.tokenURL = env("REPORTS_ENDPOINT"), env("SECRET_MANAGER_ENDPOINT"), env("OAUTH_TOKEN_URL")
	return c, c.check()
}

// check refuses what cannot work before anything is called.
func (c *reconcileConfig) check() error {
	switch {
	case c.since <= 0 || c.since > reportsRetention:
		return fmt.Errorf("--since %v: must be positive and at most %v (the Reports API keeps 180 days)", c.since, reportsRetention)
	case c.organization == "":
		return errors.New("--organization ORG_ID is required: the organization of the trigger's log sink")
	case !isOrgID(c.organization):
		return fmt.Errorf("--organization %q is not an organization id (its number, as in organizations/123456789012)", c.organization)
	case strings.TrimSpace(c.secret) == "":
		return errors.New("no credential: set --token-secret or TOKEN_SECRET (the function's secret)")
	case c.output != "table" && c.output != "json":
		return fmt.Errorf("--output must be table or json, not %q", c.output)
	case c.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	if c.reportsEndpoint != "" {
		if err := tokens.CheckAPIEndpoint("REPORTS_ENDPOINT", c.reportsEndpoint); err != nil {
			return err
		}
	}
	return nil
}

// isOrgID reports whether s is an organization id: a decimal number.
func isOrgID(s string) bool {
	if len(s) == 0 || len(s) > 20 || s[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// runReconcile is offboard reconcile: it returns the exit code.
func runReconcile(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c, err := parseReconcileFlags(args, stderr, env)
	var dest topics.Names
	if err == nil && !c.dryRun {
		dest, err = topics.Resolve(c.project, c.topic, "--topic or REQUEST_TOPIC")
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "offboard reconcile: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	events, skipped, err := c.collect(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "offboard reconcile: %v\n", err)
		return exitUsage
	}
	items := make([]*reconciled, len(events))
	for i, ev := range events {
		items[i] = &reconciled{Message: topics.Message{RequestID: ev.RequestID(), Data: ev.LogEntry()},
			event: ev.EventName + " " + ev.Email + " " + ev.Time.Format(time.RFC3339)}
	}
	if code := c.publish(ctx, dest, items, stdout, stderr); code != exitOK {
		return code
	}
	if len(skipped) > 0 {
		fmt.Fprintf(stderr, "offboard reconcile: %d not reconciled:\n  %s\n", len(skipped), strings.Join(skipped, "\n  "))
		return exitAttention
	}
	return exitOK
}

// reconciled is one activity to publish: the LogEntry message and a short
// description of the event for tables.
type reconciled struct {
	topics.Message
	event string
}

// publish publishes items (or, with --dry-run, only lists them) and prints
// them.
func (c *reconcileConfig) publish(ctx context.Context, dest topics.Names, items []*reconciled, stdout, stderr io.Writer) int {
	if len(items) == 0 {
		fmt.Fprintf(stderr, "offboard reconcile: no suspension, archive or deletion since %s\n", c.start().Format(time.RFC3339))
		return exitOK
	}
	if c.dryRun {
		fmt.Fprintf(stderr, "offboard reconcile: %d to publish; nothing published (--dry-run)\n", len(items))
		printReconciled(stdout, items, c.output)
		return exitOK
	}
	client, err := topics.NewClient(ctx, dest.Project, c.env)
	if err != nil {
		fmt.Fprintf(stderr, "offboard reconcile: %v\n", err)
		return exitUsage
	}
	defer client.Close()
	msgs := make([]*topics.Message, len(items))
	for i, it := range items {
		msgs[i] = &it.Message
	}
	err = topics.PublishAll(ctx, client, dest.Topic, msgs)
	printReconciled(stdout, items, c.output)
	if err != nil {
		fmt.Fprintf(stderr, "offboard reconcile: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "offboard reconcile: published %d LogEntries to %s\n", len(items), dest.Topic)
	return exitOK
}

// start is the beginning of the reconciled range.
func (c *reconcileConfig) start() time.Time {
	return time.Now().Add(-c.since).UTC().Truncate(time.Second)
}

// printReconciled lists the requests, with their message ids once
// published.
func printReconciled(w io.Writer, items []*reconciled, output string) {
	if output == "json" {
		enc := json.NewEncoder(w)
		for _, it := range items {
			_ = enc.Encode(map[string]string{"requestId": it.RequestID, "event": it.event, "messageId": it.ID})
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tEVENT PERSON TIME\tMESSAGE ID")
	for _, it := range items {
		id := it.ID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", it.RequestID, it.event, id)
	}
	tw.Flush()
}

// collect lists the offboarding activities since c.since ago, oldest
// first, as audit events; skipped names the activities that name nobody or
// more than one person, and the event names the Reports API refused.
func (c *reconcileConfig) collect(ctx context.Context, stderr io.Writer) (events []*request.AuditEvent, skipped []string, err error) {
	svc, closeSvc, err := c.reportsService(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer closeSvc()
	start := c.start()
	seen := map[string]bool{}
	confirmed, unconfirmed := auditEventNames()
	if len(unconfirmed) > 0 {
		fmt.Fprintf(stderr, "offboard reconcile: not asked for (no Google reference names them; their activities are not reconciled): %s\n", strings.Join(unconfirmed, ", "))
	}
	for _, name := range confirmed {
		var n, pages int
		err := svc.Activities.List("all", "admin").EventName(name).StartTime(start.Format(time.RFC3339)).
			Pages(ctx, func(p *reports.Activities) error {
				pages++
				for _, a := range p.Items {
					n++
					ev, why := c.auditEvent(a, name)
					switch {
					case why != "":
						skipped = append(skipped, why)
					case !seen[ev.RequestID()]:
						seen[ev.RequestID()] = true
						events = append(events, ev)
					}
				}
				return nil
			})
		var ge *googleapi.Error
		switch {
		case errors.As(err, &ge) && ge.Code == http.StatusBadRequest:
			// An event name the Reports API does not take: the others
			// are still reconciled; the run exits 1.
			skipped = append(skipped, fmt.Sprintf("eventName %s: the Reports API refused it (%v); its activities are not reconciled", name, err))
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("the Reports API activities.list eventName=%s: %w", name, err)
		}
		fmt.Fprintf(stderr, "offboard reconcile: %s since %s: %d activities (%d pages)\n", name, start.Format(time.RFC3339), n, pages)
	}
	slices.SortStableFunc(events, func(a, b *request.AuditEvent) int { return a.Time.Compare(b.Time) })
	return events, skipped, nil
}

// auditEventNames are the event names of request.AuditMethods, sorted:
// those a Google reference names (request.AuditEventSources), which
// reconcile asks the Reports API for, and the others, which it lists.
func auditEventNames() (confirmed, unconfirmed []string) {
	for _, n := range request.AuditMethods {
		if request.AuditEventSources[n] != "" {
			confirmed = append(confirmed, n)
		} else {
			unconfirmed = append(unconfirmed, n)
		}
	}
	slices.Sort(confirmed)
	slices.Sort(unconfirmed)
	return slices.Compact(confirmed), slices.Compact(unconfirmed)
}

// auditEvent turns an activity with an event called name into the audit
// event a sink's LogEntry of it carries, or says why it cannot. The
// LogEntry is read back with request.ParseAuditEntry, the check the
// function makes.
func (c *reconcileConfig) auditEvent(a *reports.Activity, name string) (*request.AuditEvent, string) {
	if a.Id == nil {
		return nil, name + ": an activity without an id"
	}
	at, err := time.Parse(time.RFC3339Nano, a.Id.Time)
	if err != nil {
		return nil, fmt.Sprintf("%s: activity time %q: %v", name, a.Id.Time, err)
	}
	what := fmt.Sprintf("%s at %s (uniqueQualifier %d)", name, a.Id.Time, a.Id.UniqueQualifier)
	person := ""
	for _, e := range a.Events { // USER_EMAIL of any of its events, as the function reads an entry
		for _, p := range e.Parameters {
			if p.Name != "USER_EMAIL" {
				continue
			}
			if person != "" && !strings.EqualFold(person, p.Value) {
				return nil, what + ": names more than one person (" + person + ", " + p.Value + "); publish a request for each"
			}
			person = p.Value
		}
	}
	ev := &request.AuditEvent{
		InsertID:     fmt.Sprintf("reports-%d-%d", at.UnixMicro(), a.Id.UniqueQualifier),
		Organization: c.organization, Method: auditMethod(name), EventName: name, Email: person,
		Time: at.UTC(), UniqueQualifier: a.Id.UniqueQualifier, HasActivityID: true,
	}
	if a.Actor != nil {
		ev.Actor = request.Clip(a.Actor.Email)
	}
	back, err := request.ParseAuditEntry(ev.LogEntry())
	if err != nil {
		return nil, what + ": " + err.Error()
	}
	if back.RequestID() != request.AuditRequestID(at, a.Id.UniqueQualifier) {
		return nil, what + ": the LogEntry would have request id " + back.RequestID()
	}
	return back, ""
}

// auditMethod is the method of request.AuditMethods whose event is name.
func auditMethod(name string) string {
	for m, n := range request.AuditMethods {
		if n == name {
			return m
		}
	}
	return ""
}

// reportsService is a Reports API client with the delegated admin's
// credential from the function's secret.
func (c *reconcileConfig) reportsService(ctx context.Context) (*reports.Service, func(), error) {
	secret, err := tokens.SecretVersionName(strings.TrimSpace(c.secret), strings.TrimSpace(c.project))
	if err != nil {
		return nil, nil, fmt.Errorf("--token-secret: %w", err)
	}
	src, err := tokens.New(ctx, tokens.Config{Secret: secret, SecretManagerEndpoint: c.smHost, TokenURL: c.tokenURL, Logger: c.log})
	if err != nil {
		return nil, nil, err
	}
	// No redirect to another host: it would carry the token.
	opts := []option.ClientOption{option.WithHTTPClient(tokens.NewHTTPClient(src, nil, 0))}
	if c.reportsEndpoint != "" {
		opts = append(opts, option.WithEndpoint(c.reportsEndpoint))
	}
	svc, err := reports.NewService(ctx, opts...)
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("building the Reports API client: %w", err)
	}
	return svc, func() { src.Close() }, nil
}
