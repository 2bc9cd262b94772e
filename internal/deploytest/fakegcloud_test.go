package deploytest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The fake gcloud is this test binary itself: TestMain runs fakeGcloud when
// FAKEGCLOUD_STATE is set, and the tests put a symlink named gcloud to the
// binary first on PATH. It appends every call's argv to FAKEGCLOUD_LOG (one
// JSON array per line) and keeps a small model of a project in the JSON file
// FAKEGCLOUD_STATE: describes, lists and get-iam-policy answer from it (a
// missing resource is exit 1 with NOT_FOUND on stderr, as gcloud does), and
// creates, updates, deploys and bindings change it. Like the real services it
// refuses calls to an API that is not enabled and bindings for a service
// account that does not exist, so that ordering mistakes fail the run.
//
// Firestore: `firestore databases describe/create` keep databases (id, type,
// location), `firestore fields ttls list/update` keep the TTL field of each
// collection group of a database; both need the Firestore API. Project IAM
// bindings may carry a condition (--condition=expression=...,title=...), kept
// with the binding and shown by get-iam-policy's bindings.condition.expression.
//
// FAKEGCLOUD_FAIL, when set, is a command prefix ("secrets describe") that
// answers PERMISSION_DENIED.
//
// `gcloud meta list-files-for-upload DIR` answers the lines of the file
// FAKEGCLOUD_UPLOADS when it is set, else delegates to the real gcloud named
// by FAKEGCLOUD_REAL_GCLOUD when that is set, else answers fakeUploads.

// fakeProjectNumber is the project number the fake reports.
const fakeProjectNumber = "123456789012"

// fakeUploads is what the fake lists for upload by default: a clean tree.
var fakeUploads = []string{"go.mod", "go.sum", "function.go", "request/request.go", "tokens/tokens.go"}

// fakeState is the model of the project.
type fakeState struct {
	Services []string            `json:"services"`
	Topics   map[string]bool     `json:"topics"`        // topic id
	Subs     map[string]*fakeSub `json:"subscriptions"` // full name
	Secrets  map[string]int      `json:"secrets"`       // id -> enabled versions
	// SecretLatest is the state of a secret's newest version (id ->
	// DISABLED, DESTROYED) when it is not ENABLED; a secret with versions
	// and no entry has its newest version enabled.
	SecretLatest map[string]string `json:"secretLatest,omitempty"`
	SAs          map[string]bool   `json:"serviceAccounts"`
	Functions    map[string]string `json:"functions"` // region/name -> trigger full name
	// FunctionStates is the state of a function (region/name) when it is
	// not ACTIVE; a deploy makes it ACTIVE.
	FunctionStates map[string]string `json:"functionStates,omitempty"`
	// BuildSAs is the --build-service-account of each function's last
	// deploy (region/name).
	BuildSAs map[string]string `json:"buildServiceAccounts,omitempty"`
	Triggers map[string]string `json:"triggers"` // trigger id -> subscription full name
	// Policies: "group resource" -> "role\tmember", or
	// "role\tmember\texpression\ttitle" for a conditioned binding.
	Policies map[string][]string `json:"policies"`
	// Databases are the Firestore databases, by id.
	Databases map[string]*fakeDatabase `json:"databases,omitempty"`
	// TTLs is the TTL field of each collection group: "database/group" ->
	// field.
	TTLs map[string]string `json:"ttls,omitempty"`
	// Sinks are the organizations' log sinks, by
	// "organizations/ORG/sinks/NAME" (fakesinks_test.go).
	Sinks map[string]*fakeSink `json:"sinks,omitempty"`
	// Monitoring: log-based metrics, channels, alert policies and
	// dashboards (fakemonitoring_test.go).
	Monitoring fakeMonitoring `json:"monitoring"`
	// Oversight: the approval topic's triggers and the due tick's
	// scheduler jobs (fakeoversight_test.go).
	Oversight fakeOversight `json:"oversight"`
}

// fakeDatabase is a Firestore database.
type fakeDatabase struct {
	Type     string `json:"type"`     // FIRESTORE_NATIVE or DATASTORE_MODE
	Location string `json:"location"` // locationId
}

type fakeSub struct {
	Topic           string `json:"topic"`
	Retention       string `json:"messageRetentionDuration,omitempty"` // as given to create
	Expiration      string `json:"expirationPeriod,omitempty"`         // as given to create
	DeadLetterTopic string `json:"deadLetterTopic,omitempty"`
	MaxAttempts     int    `json:"maxDeliveryAttempts,omitempty"`
	// MinBackoff and MaxBackoff are the retry policy's, as Pub/Sub
	// describes them ("10s").
	MinBackoff string `json:"minimumBackoff,omitempty"`
	MaxBackoff string `json:"maximumBackoff,omitempty"`
}

func loadState(path string) (*fakeState, error) {
	st := &fakeState{}
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("state %s: %w", path, err)
		}
	} else if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if st.Topics == nil {
		st.Topics = map[string]bool{}
	}
	if st.Subs == nil {
		st.Subs = map[string]*fakeSub{}
	}
	if st.Secrets == nil {
		st.Secrets = map[string]int{}
	}
	if st.SAs == nil {
		st.SAs = map[string]bool{}
	}
	if st.Functions == nil {
		st.Functions = map[string]string{}
	}
	if st.Triggers == nil {
		st.Triggers = map[string]string{}
	}
	if st.Policies == nil {
		st.Policies = map[string][]string{}
	}
	if st.FunctionStates == nil {
		st.FunctionStates = map[string]string{}
	}
	if st.BuildSAs == nil {
		st.BuildSAs = map[string]string{}
	}
	if st.Databases == nil {
		st.Databases = map[string]*fakeDatabase{}
	}
	if st.TTLs == nil {
		st.TTLs = map[string]string{}
	}
	if st.Sinks == nil {
		st.Sinks = map[string]*fakeSink{}
	}
	return st, nil
}

func (st *fakeState) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// fakeCall is one parsed invocation.
type fakeCall struct {
	pos   []string          // positional words
	flags map[string]string // --k=v, or "true" for a bare --k
}

func parseCall(args []string) (fakeCall, error) {
	c := fakeCall{flags: map[string]string{}}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			c.pos = append(c.pos, a)
			continue
		}
		k, v, ok := strings.Cut(a[2:], "=")
		if !ok {
			// deploy.sh writes every valued flag as --k=v, so a bare
			// flag is a boolean; anything else is a mistake to catch.
			if !slices.Contains([]string{"gen2", "retry", "quiet", "enabled", "enable-ttl", "no-disabled", "include-children"}, k) {
				return c, fmt.Errorf("flag --%s without =value", k)
			}
			v = "true"
		}
		c.flags[k] = v
	}
	return c, nil
}

// fakeGcloud runs one gcloud invocation against the state file and returns
// its exit code.
func fakeGcloud(statePath, logPath string, args []string, stdout, stderr io.Writer) int {
	if logPath != "" {
		line, _ := json.Marshal(args)
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "fake gcloud:", err)
			return 3
		}
		fmt.Fprintf(f, "%s\n", line)
		f.Close()
	}
	st, err := loadState(statePath)
	if err != nil {
		fmt.Fprintln(stderr, "fake gcloud:", err)
		return 3
	}
	c, err := parseCall(args)
	if err != nil {
		fmt.Fprintln(stderr, "fake gcloud: unsupported call:", err)
		return 2
	}
	if len(c.pos) == 3 && c.pos[0] == "meta" && c.pos[1] == "list-files-for-upload" {
		return listUploads(c.pos[2], stdout, stderr)
	}
	if p := os.Getenv("FAKEGCLOUD_FAIL"); p != "" && strings.HasPrefix(strings.Join(c.pos, " "), p) {
		fmt.Fprintf(stderr, "ERROR: (gcloud.%s) PERMISSION_DENIED: Permission denied on resource (or it may not exist).\n", strings.ReplaceAll(p, " ", "."))
		return 1
	}
	f := &fake{st: st, c: c, out: stdout, err: stderr}
	code := f.dispatch()
	if f.dirty {
		if err := st.save(statePath); err != nil {
			fmt.Fprintln(stderr, "fake gcloud:", err)
			return 3
		}
	}
	return code
}

// listUploads answers `gcloud meta list-files-for-upload dir`.
func listUploads(dir string, stdout, stderr io.Writer) int {
	if list := os.Getenv("FAKEGCLOUD_UPLOADS"); list != "" {
		b, err := os.ReadFile(list)
		if err != nil {
			fmt.Fprintln(stderr, "fake gcloud:", err)
			return 3
		}
		stdout.Write(b)
		return 0
	}
	if real := os.Getenv("FAKEGCLOUD_REAL_GCLOUD"); real != "" {
		cmd := exec.Command(real, "meta", "list-files-for-upload", dir)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(stderr, "fake gcloud: real gcloud:", err)
			return 1
		}
		return 0
	}
	for _, f := range fakeUploads {
		fmt.Fprintln(stdout, f)
	}
	return 0
}

type fake struct {
	st    *fakeState
	c     fakeCall
	out   io.Writer
	err   io.Writer
	dirty bool
}

func (f *fake) cmd() string { return strings.Join(f.c.pos, ".") }

func (f *fake) notFound(what string) int {
	fmt.Fprintf(f.err, "ERROR: (gcloud.%s) NOT_FOUND: Resource not found (resource=%s).\n", f.cmd(), what)
	return 1
}

func (f *fake) fail(format string, a ...any) int {
	fmt.Fprintf(f.err, "ERROR: (gcloud.%s) %s\n", f.cmd(), fmt.Sprintf(format, a...))
	return 1
}

func (f *fake) unsupported() int {
	fmt.Fprintf(f.err, "fake gcloud: unsupported call %q %v\n", f.c.pos, f.c.flags)
	return 2
}

// needAPI refuses a call to a disabled API, as Google does.
func (f *fake) needAPI(api string) bool {
	if slices.Contains(f.st.Services, api) {
		return true
	}
	f.fail("PERMISSION_DENIED: %s has not been used in project before or it is disabled.", api)
	return false
}

// project returns --project and checks it is there.
func (f *fake) project() (string, bool) {
	p := f.c.flags["project"]
	if p == "" {
		f.fail("INVALID_ARGUMENT: no --project (the fake has no default project)")
		return "", false
	}
	return p, true
}

// begin checks what a call of most command groups needs, api enabled and
// --project given, and returns the project.
func (f *fake) begin(api string) (string, bool) {
	if !f.needAPI(api) {
		return "", false
	}
	return f.project()
}

// alreadyExists answers a create of something that exists, as Pub/Sub does.
func (f *fake) alreadyExists(id string) int {
	return f.fail("ALREADY_EXISTS: Resource already exists in the project (resource=%s).", id)
}

// value prints the fields of a --format=value(...) from fields.
func (f *fake) value(fields map[string]string) int {
	format := f.c.flags["format"]
	if !strings.HasPrefix(format, "value(") || !strings.HasSuffix(format, ")") {
		fmt.Fprintf(f.err, "fake gcloud: unsupported --format %q\n", format)
		return 2
	}
	var vals []string
	for _, k := range strings.Split(format[len("value("):len(format)-1], ",") {
		v, ok := fields[strings.TrimSpace(k)]
		if !ok {
			fmt.Fprintf(f.err, "fake gcloud: unsupported field %q\n", k)
			return 2
		}
		vals = append(vals, v)
	}
	fmt.Fprintln(f.out, strings.Join(vals, "\t"))
	return 0
}

func (f *fake) dispatch() int {
	p := f.c.pos
	switch {
	case len(p) == 3 && p[0] == "projects" && p[1] == "describe":
		return f.value(map[string]string{"projectNumber": fakeProjectNumber, "projectId": p[2]})
	case len(p) == 3 && p[0] == "projects" && (p[1] == "get-iam-policy" || p[1] == "add-iam-policy-binding"):
		if p[1] == "add-iam-policy-binding" && f.c.flags["condition"] == "" {
			// gcloud asks interactively for a condition otherwise.
			return f.fail("INVALID_ARGUMENT: a project binding needs --condition=None or --condition=expression=...,title=... in a script")
		}
		return f.iam("projects", p[2], p[1])
	case len(p) >= 3 && (p[0] == "monitoring" || p[0] == "beta" || p[0] == "logging" && p[1] == "metrics"):
		return f.monitoring(p)
	case len(p) >= 4 && p[0] == "logging" && p[1] == "sinks":
		return f.sinks(p[2], p[3], p[4:])
	case len(p) == 3 && p[0] == "firestore" && p[1] == "databases":
		return f.databases(p[2])
	case len(p) == 5 && p[0] == "firestore" && p[1] == "fields" && p[2] == "ttls" && p[3] == "update":
		return f.ttlUpdate(p[4])
	case len(p) == 4 && p[0] == "firestore" && p[1] == "fields" && p[2] == "ttls" && p[3] == "list":
		return f.ttlList()
	case len(p) == 2 && p[0] == "services" && p[1] == "list":
		if f.c.flags["enabled"] != "true" || f.c.flags["format"] != "value(config.name)" {
			return f.unsupported()
		}
		for _, s := range f.st.Services {
			fmt.Fprintln(f.out, s)
		}
		return 0
	case len(p) >= 3 && p[0] == "services" && p[1] == "enable":
		for _, s := range p[2:] {
			if !slices.Contains(f.st.Services, s) {
				f.st.Services = append(f.st.Services, s)
			}
		}
		f.dirty = true
		return 0
	case len(p) == 4 && p[0] == "pubsub" && p[1] == "topics":
		return f.topics(p[2], p[3])
	case len(p) == 4 && p[0] == "pubsub" && p[1] == "subscriptions":
		return f.subscriptions(p[2], p[3])
	case len(p) == 3 && p[0] == "secrets":
		return f.secrets(p[1], p[2])
	case len(p) == 4 && p[0] == "secrets" && p[1] == "versions" && p[2] == "list":
		if !f.needAPI("secretmanager.googleapis.com") {
			return 1
		}
		n, ok := f.st.Secrets[p[3]]
		if !ok {
			return f.notFound(p[3])
		}
		if n > 0 {
			return f.value(map[string]string{"name": "1"})
		}
		return 0
	case len(p) == 4 && p[0] == "secrets" && p[1] == "versions" && p[2] == "describe" && p[3] == "latest":
		if !f.needAPI("secretmanager.googleapis.com") {
			return 1
		}
		id := f.c.flags["secret"]
		n, ok := f.st.Secrets[id]
		state := f.st.SecretLatest[id]
		if !ok || n == 0 && state == "" {
			return f.fail("NOT_FOUND: Secret Version [projects/%s/secrets/%s/versions/latest] not found.", fakeProjectNumber, id)
		}
		if state == "" {
			state = "ENABLED"
		}
		return f.value(map[string]string{"name": fmt.Sprintf("projects/%s/secrets/%s/versions/%d", fakeProjectNumber, id, max(n, 1)), "state": state})
	case len(p) == 4 && p[0] == "iam" && p[1] == "service-accounts":
		return f.serviceAccounts(p[2], p[3])
	case len(p) == 3 && p[0] == "functions":
		return f.functions(p[1], p[2])
	case len(p) == 4 && p[0] == "run" && p[1] == "services":
		if !f.needAPI("run.googleapis.com") {
			return 1
		}
		key := f.c.flags["region"] + "/" + p[3]
		if _, ok := f.st.Functions[key]; !ok {
			return f.notFound(p[3])
		}
		return f.iam("run services", key, p[2])
	case len(p) >= 4 && (p[0] == "scheduler" || p[0] == "eventarc" && p[2] == "create" ||
		p[0] == "eventarc" && p[2] == "describe" && f.st.Oversight.Triggers[p[3]] != nil):
		return f.oversight(p)
	case len(p) == 4 && p[0] == "eventarc" && p[1] == "triggers" && p[2] == "describe":
		if !f.needAPI("eventarc.googleapis.com") {
			return 1
		}
		sub, ok := f.st.Triggers[p[3]]
		if !ok {
			return f.notFound(p[3])
		}
		return f.value(map[string]string{"transport.pubsub.subscription": sub})
	}
	return f.unsupported()
}

// iam answers get-iam-policy and add-iam-policy-binding for one resource.
func (f *fake) iam(group, resource, verb string) int {
	key := group + " " + resource
	switch verb {
	case "get-iam-policy":
		if f.c.flags["flatten"] != "bindings[].members" {
			return f.unsupported()
		}
		code := 0
		for _, b := range f.st.Policies[key] {
			role, rest, _ := strings.Cut(b, "\t")
			member, cond, _ := strings.Cut(rest, "\t")
			expression, title, _ := strings.Cut(cond, "\t")
			if code = f.value(map[string]string{"bindings.role": role, "bindings.members": member,
				"bindings.condition.expression": expression, "bindings.condition.title": title}); code != 0 {
				return code
			}
		}
		return code
	case "add-iam-policy-binding":
		role, member := f.c.flags["role"], f.c.flags["member"]
		if role == "" || member == "" {
			return f.unsupported()
		}
		if email, ok := strings.CutPrefix(member, "serviceAccount:"); ok &&
			strings.HasSuffix(email, ".iam.gserviceaccount.com") && !strings.Contains(email, "@gcp-sa-") && !f.st.SAs[email] {
			return f.fail("INVALID_ARGUMENT: Service account %s does not exist.", email)
		}
		b := role + "\t" + member
		if c, ok := f.c.flags["condition"]; ok && c != "None" {
			expression, title, ok := parseCondition(c)
			if !ok {
				return f.fail("INVALID_ARGUMENT: --condition %q needs expression= and title=", c)
			}
			b += "\t" + expression + "\t" + title
		}
		if !slices.Contains(f.st.Policies[key], b) {
			f.st.Policies[key] = append(f.st.Policies[key], b)
			f.dirty = true
		}
		fmt.Fprintf(f.out, "Updated IAM policy for %s.\n", resource)
		return 0
	}
	return f.unsupported()
}

func (f *fake) topics(verb, id string) int {
	project, ok := f.begin("pubsub.googleapis.com")
	if !ok {
		return 1
	}
	switch verb {
	case "describe":
		if !f.st.Topics[id] {
			return f.notFound(id)
		}
		return f.value(map[string]string{"name": "projects/" + project + "/topics/" + id})
	case "create":
		if f.st.Topics[id] {
			return f.alreadyExists(id)
		}
		f.st.Topics[id], f.dirty = true, true
		return 0
	case "get-iam-policy", "add-iam-policy-binding":
		if !f.st.Topics[id] {
			return f.notFound(id)
		}
		return f.iam("pubsub topics", id, verb)
	}
	return f.unsupported()
}

func (f *fake) subscriptions(verb, id string) int {
	if !f.needAPI("pubsub.googleapis.com") {
		return 1
	}
	name := id
	if !strings.HasPrefix(id, "projects/") {
		project, ok := f.project()
		if !ok {
			return 1
		}
		name = "projects/" + project + "/subscriptions/" + id
	}
	s := f.st.Subs[name]
	switch verb {
	case "describe":
		if s == nil {
			return f.notFound(id)
		}
		attempts := ""
		if s.MaxAttempts > 0 {
			attempts = fmt.Sprint(s.MaxAttempts)
		}
		return f.value(map[string]string{
			"name":                                 name,
			"deadLetterPolicy.deadLetterTopic":     s.DeadLetterTopic,
			"deadLetterPolicy.maxDeliveryAttempts": attempts,
			"retryPolicy.minimumBackoff":           s.MinBackoff,
			"retryPolicy.maximumBackoff":           s.MaxBackoff,
			"messageRetentionDuration":             apiDuration(s.Retention),
		})
	case "create":
		if s != nil {
			return f.alreadyExists(id)
		}
		topic := f.c.flags["topic"]
		if !f.st.Topics[topic] {
			return f.fail("NOT_FOUND: Resource not found (resource=%s).", topic)
		}
		f.st.Subs[name] = &fakeSub{Topic: topic, Retention: f.c.flags["message-retention-duration"], Expiration: f.c.flags["expiration-period"]}
		f.dirty = true
		return 0
	case "update":
		if s == nil {
			return f.notFound(id)
		}
		dl := f.c.flags["dead-letter-topic"]
		if !f.st.Topics[dl[strings.LastIndex(dl, "/")+1:]] {
			return f.fail("INVALID_ARGUMENT: dead letter topic %s does not exist", dl)
		}
		var n int
		if _, err := fmt.Sscan(f.c.flags["max-delivery-attempts"], &n); err != nil || n < 5 || n > 100 {
			return f.fail("INVALID_ARGUMENT: max delivery attempts")
		}
		s.DeadLetterTopic, s.MaxAttempts, f.dirty = dl, n, true
		return f.updateDelivery(s)
	case "get-iam-policy", "add-iam-policy-binding":
		if s == nil {
			return f.notFound(id)
		}
		return f.iam("pubsub subscriptions", name, verb)
	}
	return f.unsupported()
}

// updateDelivery applies the retry policy and retention flags of a
// subscriptions update, within Pub/Sub's limits: each backoff 0 to 600 s,
// the minimum not above the maximum; retention 10 minutes to 7 days.
func (f *fake) updateDelivery(s *fakeSub) int {
	minV, hasMin := f.c.flags["min-retry-delay"]
	maxV, hasMax := f.c.flags["max-retry-delay"]
	if hasMin || hasMax {
		lo, ok1 := gcloudDuration(minV)
		hi, ok2 := gcloudDuration(maxV)
		if !ok1 || !ok2 || lo > 600*time.Second || hi > 600*time.Second || lo > hi {
			return f.fail("INVALID_ARGUMENT: retry policy: minimum and maximum backoff must be between 0 and 600 seconds, minimum <= maximum")
		}
		s.MinBackoff, s.MaxBackoff = apiDuration(minV), apiDuration(maxV)
	}
	if v, ok := f.c.flags["message-retention-duration"]; ok {
		d, ok := gcloudDuration(v)
		if !ok || d < 10*time.Minute || d > 7*24*time.Hour {
			return f.fail("INVALID_ARGUMENT: message retention duration must be between 10 minutes and 7 days")
		}
		s.Retention = apiDuration(v)
	}
	return 0
}

// gcloudDuration parses a gcloud duration flag: an integer and a unit
// (s, m, h, d), or seconds without one.
func gcloudDuration(v string) (time.Duration, bool) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	unit := time.Second
	if n := len(v); n > 0 && units[v[n-1]] != 0 {
		unit, v = units[v[n-1]], v[:n-1]
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil || n < 0 || fmt.Sprint(n) != v {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// apiDuration is a duration as Pub/Sub answers it: whole seconds and "s"
// ("7d" is "604800s"); "" stays "".
func apiDuration(v string) string {
	d, ok := gcloudDuration(v)
	if !ok {
		return v
	}
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

func (f *fake) secrets(verb, id string) int {
	project, ok := f.begin("secretmanager.googleapis.com")
	if !ok {
		return 1
	}
	_, exists := f.st.Secrets[id]
	switch verb {
	case "describe":
		if !exists {
			fmt.Fprintf(f.err, "ERROR: (gcloud.secrets.describe) NOT_FOUND: Secret [projects/%s/secrets/%s] not found or has no versions.\n", fakeProjectNumber, id)
			return 1
		}
		return f.value(map[string]string{"name": "projects/" + project + "/secrets/" + id})
	case "create":
		if exists {
			return f.fail("ALREADY_EXISTS: Secret [%s] already exists.", id)
		}
		if f.c.flags["replication-policy"] != "automatic" {
			return f.unsupported()
		}
		f.st.Secrets[id], f.dirty = 0, true
		return 0
	case "get-iam-policy", "add-iam-policy-binding":
		if !exists {
			return f.notFound(id)
		}
		return f.iam("secrets", id, verb)
	}
	return f.unsupported()
}

func (f *fake) serviceAccounts(verb, arg string) int {
	project, ok := f.begin("iam.googleapis.com")
	if !ok {
		return 1
	}
	switch verb {
	case "describe":
		if !f.st.SAs[arg] {
			return f.fail("NOT_FOUND: Unknown service account")
		}
		return f.value(map[string]string{"email": arg})
	case "create":
		email := arg + "@" + project + ".iam.gserviceaccount.com"
		if f.st.SAs[email] {
			return f.fail("ALREADY_EXISTS: Service account %s already exists within project projects/%s.", arg, project)
		}
		f.st.SAs[email], f.dirty = true, true
		return 0
	case "get-iam-policy", "add-iam-policy-binding":
		if !f.st.SAs[arg] {
			return f.fail("NOT_FOUND: Unknown service account")
		}
		return f.iam("iam service-accounts", arg, verb)
	}
	return f.unsupported()
}

func (f *fake) functions(verb, name string) int {
	project, ok := f.begin("cloudfunctions.googleapis.com")
	if !ok {
		return 1
	}
	region := f.c.flags["region"]
	key := region + "/" + name
	switch verb {
	case "describe":
		trigger, exists := f.st.Functions[key]
		if !exists {
			fmt.Fprintf(f.err, "ERROR: (gcloud.functions.describe) ResponseError: status=[404], code=[Ok], message=[Function %s in region %s in project %s does not exist]\n", name, region, project)
			return 1
		}
		state := f.st.FunctionStates[key]
		if state == "" {
			state = "ACTIVE"
		}
		return f.value(map[string]string{
			"name":                 "projects/" + project + "/locations/" + region + "/functions/" + name,
			"eventTrigger.trigger": trigger,
			"state":                state,
		})
	case "deploy":
		for _, api := range []string{"run.googleapis.com", "eventarc.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com"} {
			if !f.needAPI(api) {
				return 1
			}
		}
		topic := f.c.flags["trigger-topic"]
		if !f.st.Topics[topic] {
			return f.fail("INVALID_ARGUMENT: trigger topic %s does not exist", topic)
		}
		for _, k := range []string{"service-account", "trigger-service-account"} {
			if sa := f.c.flags[k]; !f.st.SAs[sa] {
				return f.fail("INVALID_ARGUMENT: --%s %s does not exist", k, sa)
			}
		}
		if b, ok := f.c.flags["build-service-account"]; ok {
			email, found := strings.CutPrefix(b, "projects/"+project+"/serviceAccounts/")
			if !found || !f.st.SAs[email] {
				return f.fail("INVALID_ARGUMENT: --build-service-account %s is not projects/%s/serviceAccounts/EMAIL of an existing account", b, project)
			}
			f.st.BuildSAs[key] = b
		}
		delete(f.st.FunctionStates, key)
		if _, exists := f.st.Functions[key]; !exists {
			id := name + "-123456"
			sub := "projects/" + project + "/subscriptions/eventarc-" + region + "-" + id + "-sub-789"
			f.st.Functions[key] = "projects/" + project + "/locations/" + region + "/triggers/" + id
			f.st.Triggers[id] = sub
			// Eventarc's subscription: exponential backoff 10 s to
			// 600 s, 24 hours of retention, no dead-letter policy.
			f.st.Subs[sub] = &fakeSub{Topic: topic, MinBackoff: "10s", MaxBackoff: "600s", Retention: "86400s"}
		}
		f.dirty = true
		return 0
	}
	return f.unsupported()
}

// parseCondition splits --condition=expression=E,title=T[,description=D] as
// gcloud does (on commas, then on the first '=').
func parseCondition(c string) (expression, title string, ok bool) {
	kv := map[string]string{}
	for _, part := range strings.Split(c, ",") {
		k, v, found := strings.Cut(part, "=")
		if !found || !slices.Contains([]string{"expression", "title", "description"}, k) {
			return "", "", false
		}
		kv[k] = v
	}
	return kv["expression"], kv["title"], kv["expression"] != "" && kv["title"] != ""
}

// database returns the --database (gcloud's default "(default)").
func (f *fake) database() string {
	if db := f.c.flags["database"]; db != "" {
		return db
	}
	return "(default)"
}

// fakeDatabaseID is the rule for Firestore database ids.
var fakeDatabaseID = regexp.MustCompile(`^[a-z][a-z0-9-]{2,61}[a-z0-9]$`)

// databases answers `firestore databases describe/create`.
func (f *fake) databases(verb string) int {
	project, ok := f.begin("firestore.googleapis.com")
	if !ok {
		return 1
	}
	id := f.database()
	db := f.st.Databases[id]
	switch verb {
	case "describe":
		if db == nil {
			return f.fail("NOT_FOUND: The database %s does not exist for project %s Please visit https://console.cloud.google.com/datastore/setup?project=%s to add a Cloud Datastore or Cloud Firestore database.", id, project, project)
		}
		return f.value(map[string]string{"name": "projects/" + project + "/databases/" + id, "type": db.Type, "locationId": db.Location})
	case "create":
		if db != nil {
			return f.fail("ALREADY_EXISTS: Database already exists. Please use another database_id")
		}
		if id != "(default)" && !fakeDatabaseID.MatchString(id) {
			return f.fail("INVALID_ARGUMENT: Database ID %q is invalid.", id)
		}
		location := f.c.flags["location"]
		if location == "" || f.c.flags["type"] != "firestore-native" {
			return f.unsupported()
		}
		f.st.Databases[id], f.dirty = &fakeDatabase{Type: "FIRESTORE_NATIVE", Location: location}, true
		return 0
	}
	return f.unsupported()
}

// ttlDatabase checks the API, the project and the database of a TTL call.
func (f *fake) ttlDatabase() (project, db string, ok bool) {
	if project, ok = f.begin("firestore.googleapis.com"); !ok {
		return "", "", false
	}
	db = f.database()
	if f.st.Databases[db] == nil {
		f.fail("NOT_FOUND: The database %s does not exist for project %s", db, project)
		return "", "", false
	}
	return project, db, true
}

// ttlList answers `firestore fields ttls list`: the TTL fields of the
// database (of one collection group with --collection-group).
func (f *fake) ttlList() int {
	project, db, ok := f.ttlDatabase()
	if !ok {
		return 1
	}
	var keys []string
	for k := range f.st.TTLs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kdb, group, _ := strings.Cut(k, "/")
		if kdb != db || (f.c.flags["collection-group"] != "" && f.c.flags["collection-group"] != group) {
			continue
		}
		name := "projects/" + project + "/databases/" + db + "/collectionGroups/" + group + "/fields/" + f.st.TTLs[k]
		if code := f.value(map[string]string{"name": name, "ttlConfig.state": "ACTIVE"}); code != 0 {
			return code
		}
	}
	return 0
}

// ttlUpdate answers `firestore fields ttls update FIELD --enable-ttl`.
func (f *fake) ttlUpdate(field string) int {
	_, db, ok := f.ttlDatabase()
	if !ok {
		return 1
	}
	group := f.c.flags["collection-group"]
	if group == "" || f.c.flags["enable-ttl"] != "true" {
		return f.unsupported()
	}
	key := db + "/" + group
	if old, ok := f.st.TTLs[key]; ok && old != field {
		return f.fail("FAILED_PRECONDITION: collection group %s already has the TTL field %s", group, old)
	}
	f.st.TTLs[key], f.dirty = field, true
	return 0
}
