package deploytest

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The ledger (issue 13): deploy.sh creates the Firestore database, sets the
// TTL policies on expireAt and grants the runtime account roles/datastore.user
// conditioned on that database.

const (
	// ledgerExpression confines the runtime account's datastore.user to the
	// (default) database of my-proj.
	ledgerExpression = `resource.name=="projects/my-proj/databases/(default)"`
	ledgerCondition  = "expression=" + ledgerExpression + ",title=chat-offboard-ledger"
)

// ledgerGroups are the ledger's collection groups (package ledger's
// RequestsCollection, MembershipsCollection, PagesCollection and
// HoldsCollection).
var ledgerGroups = []string{"requests", "memberships", "pages", "holds"}

// wantTTLs is the fake's TTL state for db with every ledger group on expireAt.
func wantTTLs(db string) map[string]string {
	m := map[string]string{}
	for _, g := range ledgerGroups {
		m[db+"/"+g] = "expireAt"
	}
	return m
}

// ledgerBinding is the fake's record of the conditioned grant.
const ledgerBinding = "roles/datastore.user\t" + saMember + "\t" + ledgerExpression + "\tchat-offboard-ledger"

func TestLedger(t *testing.T) {
	t.Parallel()

	t.Run("fresh project", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		r := p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		calls := r.calls

		enable := find(calls, "services enable")
		if enable < 0 || !slices.Contains(calls[enable], "firestore.googleapis.com") {
			t.Fatalf("the Firestore API is not enabled: %q", calls)
		}
		describe := find(calls, "firestore databases describe", "database=(default)", "project=my-proj")
		create := find(calls, "firestore databases create", "database=(default)", "location=us-central1",
			"type=firestore-native", "project=my-proj")
		if describe < 0 || create < 0 || !(enable < describe && describe < create) {
			t.Errorf("APIs enabled at call %d, database described at %d, created at %d: %q", enable, describe, create, calls)
		}
		for _, g := range ledgerGroups {
			i := find(calls, "firestore fields ttls update expireAt", "collection-group="+g, "enable-ttl",
				"database=(default)", "project=my-proj")
			if i < create {
				t.Errorf("TTL on %s.expireAt set at call %d, the database created at %d", g, i, create)
			}
		}
		if n := len(slices.DeleteFunc(changesOf(calls), func(c string) bool { return !strings.HasPrefix(c, "firestore ") })); n != 1+len(ledgerGroups) {
			t.Errorf("%d Firestore changes, want the database and %d TTL policies: %q", n, len(ledgerGroups), changesOf(calls))
		}

		// The grant: datastore.user, on the project, conditioned on the
		// database, after the account exists, nothing broader.
		saCreate := find(calls, "iam service-accounts create chat-offboard-run")
		grant := find(calls, "projects add-iam-policy-binding my-proj", "member="+saMember, "role=roles/datastore.user",
			"condition="+ledgerCondition)
		if grant < 0 || grant < saCreate || grant < create {
			t.Errorf("conditioned datastore.user granted at call %d (account created at %d, database at %d): %q", grant, saCreate, create, calls)
		}
		for _, c := range calls {
			if m, _ := flag(c, "member"); m == saMember && slices.Contains(words(c), "projects") {
				if role, _ := flag(c, "role"); role != "roles/datastore.user" {
					t.Errorf("project-level %s for the runtime account: %q", role, c)
				}
			}
		}

		st := p.loadState(t)
		if diff := cmp.Diff(map[string]*fakeDatabase{"(default)": {Type: "FIRESTORE_NATIVE", Location: "us-central1"}}, st.Databases); diff != "" {
			t.Errorf("databases (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantTTLs("(default)"), st.TTLs); diff != "" {
			t.Errorf("TTL policies (-want +got):\n%s", diff)
		}
		if got := st.Policies["projects my-proj"]; !slices.Contains(got, ledgerBinding) {
			t.Errorf("project policy %q lacks %q", got, ledgerBinding)
		}
		for _, s := range []string{"Firestore database (default) (native, us-central1)", "TTL on requests.expireAt in (default)",
			"IAM roles/datastore.user for " + saEmail + " on database (default)"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("output lacks %q:\n%s", s, r.stdout)
			}
		}

		// A second run changes nothing and says so.
		r = p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		if changes := changesOf(r.calls); len(changes) != 0 {
			t.Errorf("second run changed %q", changes)
		}
		for _, s := range []string{
			`Firestore database \(default\) \(native, us-central1\)`,
			`TTL on requests\.expireAt in \(default\)`, `TTL on memberships\.expireAt in \(default\)`, `TTL on pages\.expireAt in \(default\)`,
			`IAM roles/datastore\.user for ` + regexp.QuoteMeta(saEmail) + ` on database \(default\)`,
		} {
			if !regexp.MustCompile(`(?m)^` + s + ` +unchanged$`).MatchString(r.stdout) {
				t.Errorf("second run does not report %s unchanged:\n%s", s, r.stdout)
			}
		}
		if after := p.loadState(t); !cmp.Equal(st.Databases, after.Databases) || !cmp.Equal(st.TTLs, after.TTLs) ||
			!slices.Equal(st.Policies["projects my-proj"], after.Policies["projects my-proj"]) {
			t.Errorf("second run changed the ledger's state")
		}
	})

	t.Run("existing database", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		st := p.loadState(t)
		st.Services = []string{"firestore.googleapis.com"}
		// An existing (default) database in a multi-region, one policy
		// already set, and an unconditioned grant of someone else's.
		st.Databases["(default)"] = &fakeDatabase{Type: "FIRESTORE_NATIVE", Location: "nam5"}
		st.TTLs["(default)/memberships"] = "expireAt"
		st.TTLs["(default)/sessions"] = "expiry"
		st.Policies["projects my-proj"] = []string{"roles/datastore.user\tuser:boss@example.com"}
		p.saveState(t, st)

		r := p.run(t, nil, "--project", project)
		mustSucceed(t, r)
		if i := find(r.calls, "firestore databases create"); i >= 0 {
			t.Errorf("existing database created again: %q", r.calls[i])
		}
		var ttls []string
		for _, c := range r.calls {
			if w := words(c); mutating(c) && w[0] == "firestore" {
				g, _ := flag(c, "collection-group")
				ttls = append(ttls, strings.Join(w, " ")+" "+g)
			}
		}
		want := []string{"firestore fields ttls update expireAt requests", "firestore fields ttls update expireAt pages",
			"firestore fields ttls update expireAt holds"}
		if diff := cmp.Diff(want, ttls); diff != "" {
			t.Errorf("Firestore changes (-want +got):\n%s", diff)
		}
		if !regexp.MustCompile(`(?m)^Firestore database \(default\) \(native, nam5\) +unchanged$`).MatchString(r.stdout) {
			t.Errorf("output does not report the existing database unchanged:\n%s", r.stdout)
		}
		st = p.loadState(t)
		wantDBs := map[string]*fakeDatabase{"(default)": {Type: "FIRESTORE_NATIVE", Location: "nam5"}}
		if diff := cmp.Diff(wantDBs, st.Databases); diff != "" {
			t.Errorf("databases (-want +got):\n%s", diff)
		}
		wantT := wantTTLs("(default)")
		wantT["(default)/sessions"] = "expiry"
		if diff := cmp.Diff(wantT, st.TTLs); diff != "" {
			t.Errorf("TTL policies (-want +got):\n%s", diff)
		}
		// Someone else's unconditioned binding is no reason to skip ours,
		// and is kept.
		if got := st.Policies["projects my-proj"]; !slices.Contains(got, ledgerBinding) || !slices.Contains(got, "roles/datastore.user\tuser:boss@example.com") {
			t.Errorf("project policy = %q", got)
		}
	})

	t.Run("datastore mode database refused", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		st := p.loadState(t)
		st.Services = []string{"firestore.googleapis.com"}
		st.Databases["(default)"] = &fakeDatabase{Type: "DATASTORE_MODE", Location: "us-central1"}
		p.saveState(t, st)
		r := p.run(t, nil, "--project", project)
		if r.code != 1 || !strings.Contains(r.stderr, "DATASTORE_MODE") || !strings.Contains(r.stderr, "--firestore-database") {
			t.Errorf("exit %d, want 1 and an explanation\nstderr:\n%s", r.code, r.stderr)
		}
		for _, prefix := range []string{"firestore", "functions deploy"} {
			for _, c := range r.calls {
				if mutating(c) && strings.HasPrefix(strings.Join(words(c), " "), prefix) {
					t.Errorf("went on after finding a Datastore-mode database: %q", c)
				}
			}
		}
	})

	t.Run("named database", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		r := p.run(t, []string{"REGION=europe-west1"}, "--project", project, "--firestore-database", "offboard-ledger",
			"--ledger-retention=720h")
		mustSucceed(t, r)
		if find(r.calls, "firestore databases create", "database=offboard-ledger", "location=europe-west1", "type=firestore-native") < 0 {
			t.Errorf("offboard-ledger not created in europe-west1: %q", r.calls)
		}
		cond := `expression=resource.name=="projects/my-proj/databases/offboard-ledger",title=chat-offboard-ledger`
		if find(r.calls, "projects add-iam-policy-binding my-proj", "role=roles/datastore.user", "condition="+cond) < 0 {
			t.Errorf("datastore.user not conditioned on offboard-ledger: %q", r.calls)
		}
		st := p.loadState(t)
		if diff := cmp.Diff(wantTTLs("offboard-ledger"), st.TTLs); diff != "" {
			t.Errorf("TTL policies (-want +got):\n%s", diff)
		}
		deploy := find(r.calls, "functions deploy chat-offboard")
		if deploy < 0 {
			t.Fatalf("no deploy: %q", r.calls)
		}
		env := envVars(t, r.calls[deploy])
		if env["FIRESTORE_DATABASE"] != "offboard-ledger" || env["LEDGER_RETENTION"] != "720h" {
			t.Errorf("env FIRESTORE_DATABASE=%q LEDGER_RETENTION=%q, want offboard-ledger and 720h", env["FIRESTORE_DATABASE"], env["LEDGER_RETENTION"])
		}
		// A second run finds it all.
		r = p.run(t, []string{"REGION=europe-west1"}, "--project", project, "--firestore-database", "offboard-ledger",
			"--ledger-retention=720h")
		mustSucceed(t, r)
		if changes := changesOf(r.calls); len(changes) != 0 {
			t.Errorf("second run changed %q", changes)
		}
	})

	t.Run("database ids accepted", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"(default)", "abcd", "a1-b", "l" + strings.Repeat("0", 62)} {
			p := newProject(t)
			r := p.run(t, []string{"FIRESTORE_DATABASE=" + id}, "--project", project, "--dry-run")
			if r.code != 0 {
				t.Errorf("FIRESTORE_DATABASE=%s: exit %d\n%s", id, r.code, r.stderr)
			}
		}
	})

	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		p := newProject(t)
		r := p.run(t, nil, "--project", project, "--dry-run")
		mustSucceed(t, r)
		if len(r.calls) != 0 {
			t.Fatalf("--dry-run ran gcloud: %q", r.calls)
		}
		if _, err := os.Stat(p.state); !os.IsNotExist(err) {
			t.Errorf("--dry-run touched the state: %v", err)
		}
		steps := []string{
			"gcloud services enable ",
			"gcloud firestore databases describe '--database=(default)' --project=my-proj '--format=value(type,locationId)'   # check",
			"gcloud firestore databases create '--database=(default)' --location=us-central1 --type=firestore-native --project=my-proj",
			"gcloud firestore fields ttls list '--database=(default)' --project=my-proj '--format=value(name,ttlConfig.state)'   # check",
			"gcloud firestore fields ttls update expireAt --collection-group=requests --enable-ttl '--database=(default)' --project=my-proj",
			"gcloud firestore fields ttls update expireAt --collection-group=memberships --enable-ttl '--database=(default)' --project=my-proj",
			"gcloud firestore fields ttls update expireAt --collection-group=pages --enable-ttl '--database=(default)' --project=my-proj",
			"gcloud projects get-iam-policy my-proj '--flatten=bindings[].members' '--format=value(bindings.role,bindings.members,bindings.condition.expression)'   # check",
			"gcloud projects add-iam-policy-binding my-proj --member=" + saMember + " --role=roles/datastore.user " +
				`'--condition=expression=resource.name=="projects/my-proj/databases/(default)",title=chat-offboard-ledger'`,
			"gcloud functions deploy ",
		}
		lines := strings.Split(r.stdout, "\n")
		at := 0
		for _, step := range steps {
			i := slices.IndexFunc(lines[at:], func(l string) bool { return strings.HasPrefix(l, step) })
			if i < 0 {
				t.Errorf("plan lacks, in order, %q:\n%s", step, r.stdout)
				continue
			}
			at += i + 1
		}
		if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "gcloud services enable ") }); i < 0 ||
			!strings.Contains(lines[i], " firestore.googleapis.com ") {
			t.Errorf("plan does not enable the Firestore API:\n%s", r.stdout)
		}
	})
}

// TestLedgerRetentionChecked: LEDGER_RETENTION is the function's setting,
// checked by its own code (cmd/function -check-config) before any gcloud
// call. Skipped while that check accepts anything (before the engine reads
// LEDGER_RETENTION).
func TestLedgerRetentionChecked(t *testing.T) {
	t.Parallel()
	bad := []string{"400d", "banana", "-1h"}
	bin := checkConfigBinary(t)
	cmd := exec.Command(bin, "-check-config")
	cmd.Env = []string{"GOOGLE_CLOUD_PROJECT=" + project, "TOKEN_SECRET=projects/my-proj/secrets/s/versions/latest",
		"RESULT_TOPIC=projects/my-proj/topics/r", "LEDGER_RETENTION=" + bad[0]}
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "configuration: LEDGER_RETENTION: ") {
		t.Skipf("cmd/function -check-config does not refuse LEDGER_RETENTION=%s (engine.LoadConfig does not check it yet): %q", bad[0], out)
	}
	for _, v := range bad {
		p := newProject(t)
		for _, dry := range [][]string{nil, {"--dry-run"}} {
			r := p.run(t, nil, append([]string{"--project", project, "--ledger-retention", v}, dry...)...)
			if r.code != 2 || !strings.Contains(r.stderr, "deploy.sh: LEDGER_RETENTION: ") {
				t.Errorf("LEDGER_RETENTION=%s %v: exit %d, want 2 naming LEDGER_RETENTION\nstderr:\n%s", v, dry, r.code, r.stderr)
			}
			if len(r.calls) != 0 || strings.Contains(r.stdout, "gcloud") {
				t.Errorf("LEDGER_RETENTION=%s %v: gcloud called or planned: %q\n%s", v, dry, r.calls, r.stdout)
			}
		}
	}
}
