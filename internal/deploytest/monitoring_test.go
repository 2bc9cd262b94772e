package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// discovery is a Google discovery document: its schemas, as the client
// library ships them.
type discovery struct {
	Schemas map[string]*discoverySchema `json:"schemas"`
}

// discoverySchema is the part of a discovery schema that says which fields
// and values a message accepts.
type discoverySchema struct {
	Ref                  string                      `json:"$ref"`
	Type                 string                      `json:"type"`
	Format               string                      `json:"format"`
	Enum                 []string                    `json:"enum"`
	Properties           map[string]*discoverySchema `json:"properties"`
	AdditionalProperties *discoverySchema            `json:"additionalProperties"`
	Items                *discoverySchema            `json:"items"`
	ReadOnly             bool                        `json:"readOnly"`
}

// loadDiscovery reads the discovery document rel (such as
// "monitoring/v3/monitoring-api.json") of google.golang.org/api from the
// module cache.
func loadDiscovery(t *testing.T, rel string) *discovery {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		t.Fatalf("go list -m google.golang.org/api: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), rel))
	if err != nil {
		t.Fatal(err)
	}
	d := &discovery{}
	if err := json.Unmarshal(b, d); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return d
}

// check appends to errs every field of v that the schema s does not have,
// every value of the wrong type, every value outside an enum, and every
// output-only field set.
func (d *discovery) check(path string, v any, s *discoverySchema, errs *[]string) {
	if s.Ref != "" {
		ref, ok := d.Schemas[s.Ref]
		if !ok {
			*errs = append(*errs, fmt.Sprintf("%s: unknown schema %s", path, s.Ref))
			return
		}
		s = ref
	}
	bad := func(format string, a ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, a...)) }
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, have %T", v)
			return
		}
		for k, fv := range m {
			switch p := s.Properties[k]; {
			case p != nil && p.ReadOnly:
				bad("%s is output only", k)
			case p != nil:
				d.check(path+"."+k, fv, p, errs)
			case s.AdditionalProperties != nil:
				d.check(path+"."+k, fv, s.AdditionalProperties, errs)
			default:
				bad("no field %q in the reference", k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, have %T", v)
			return
		}
		for i, e := range a {
			d.check(fmt.Sprintf("%s[%d]", path, i), e, s.Items, errs)
		}
	case "string":
		_, isNum := v.(float64)
		str, isStr := v.(string)
		switch {
		case isNum && (s.Format == "int64" || s.Format == "uint64"):
		case !isStr:
			bad("want a string, have %T", v)
		case len(s.Enum) > 0 && !slices.Contains(s.Enum, str):
			bad("%q is not one of %v", str, s.Enum)
		case s.Format == "google-duration" && !regexp.MustCompile(`^[0-9]+(\.[0-9]+)?s$`).MatchString(str):
			bad("%q is not a duration", str)
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			bad("want a number, have %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, have %T", v)
		}
	}
}

// monitoringFiles maps each definition in monitoring/ to the discovery
// document and schema it is sent as.
func monitoringFiles(t *testing.T) map[string][2]string {
	t.Helper()
	files := map[string][2]string{"dashboard.json": {"monitoring/v1/monitoring-api.json", "Dashboard"}}
	for dir, ref := range map[string][2]string{
		"metrics":  {"logging/v2/logging-api.json", "LogMetric"},
		"policies": {"monitoring/v3/monitoring-api.json", "AlertPolicy"},
	} {
		names, err := filepath.Glob(filepath.Join("..", "..", "monitoring", dir, "*.json"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no definitions in monitoring/%s: %v", dir, err)
		}
		for _, n := range names {
			files[dir+"/"+filepath.Base(n)] = ref
		}
	}
	return files
}

// readDefinition reads monitoring/rel as deploy.sh renders it for function
// "fn" and dead-letter subscription "dl-hold".
func readDefinition(t *testing.T, rel string) (string, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "monitoring", rel))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("${FUNCTION}", "fn", "${PROJECT}", "my-proj",
		"${DEAD_LETTER_SUBSCRIPTION}", "dl-hold", "${CONFIG_HASH}", "0123456789abcdef").Replace(string(b))
	var v map[string]any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("monitoring/%s is not JSON: %v", rel, err)
	}
	return text, v
}

// TestMonitoringDefinitionsMatchTheReference: every field of the log-based
// metrics, alert policies and the dashboard is one the API's current
// discovery document has, with a value of its type and enum.
func TestMonitoringDefinitionsMatchTheReference(t *testing.T) {
	t.Parallel()
	docs := map[string]*discovery{}
	for rel, ref := range monitoringFiles(t) {
		d := docs[ref[0]]
		if d == nil {
			d = loadDiscovery(t, ref[0])
			docs[ref[0]] = d
		}
		_, v := readDefinition(t, rel)
		var errs []string
		d.check(rel, v, &discoverySchema{Ref: ref[1]}, &errs)
		for _, e := range errs {
			t.Errorf("%s (%s %s)", e, ref[0], ref[1])
		}
	}
}

// TestDiscoveryCheckFails: the check above refuses an unknown field, a
// wrong type, a value outside an enum and an output-only field.
func TestDiscoveryCheckFails(t *testing.T) {
	t.Parallel()
	d := loadDiscovery(t, "monitoring/v3/monitoring-api.json")
	for _, bad := range []string{
		`{"displayName": "x", "conditionz": []}`,
		`{"displayName": 3}`,
		`{"combiner": "SOMETIMES"}`,
		`{"severity": "LOUD"}`,
		`{"conditions": [{"conditionThreshold": {"duration": "five minutes"}}]}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(bad), &v); err != nil {
			t.Fatal(err)
		}
		var errs []string
		d.check("policy", v, &discoverySchema{Ref: "AlertPolicy"}, &errs)
		if len(errs) == 0 {
			t.Errorf("%s passes the check", bad)
		}
	}
}

// TestMonitoringReadsWhatTheFunctionLogs: every metric a policy or the
// dashboard charts is defined in monitoring/metrics, and every log message
// and field a metric filters on or extracts is one the function logs.
func TestMonitoringReadsWhatTheFunctionLogs(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	for _, dir := range []string{"engine", "tokens", "logging", "ledger", "contract"} {
		names, _ := filepath.Glob(filepath.Join("..", "..", dir, "*.go"))
		for _, n := range names {
			if strings.HasSuffix(n, "_test.go") {
				continue
			}
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	defined := map[string]bool{}
	userMetric := regexp.MustCompile(`logging\.googleapis\.com/user/(fn-[a-z-]+)`)
	logged := regexp.MustCompile(`jsonPayload\.([A-Za-z]+)(?:="([^"]+)")?`)
	files := monitoringFiles(t)
	for rel := range files {
		if !strings.HasPrefix(rel, "metrics/") {
			continue
		}
		text, v := readDefinition(t, rel)
		if want := "fn-" + strings.TrimSuffix(filepath.Base(rel), ".json"); v["name"] != want {
			t.Errorf("%s: name %v, want %s (deploy.sh names it after the file)", rel, v["name"], want)
		}
		defined[v["name"].(string)] = true
		for _, m := range logged.FindAllStringSubmatch(text, -1) {
			if m[1] != "message" && !strings.Contains(src.String(), `"`+m[1]+`"`) {
				t.Errorf("%s reads the field %s, which the function never logs", rel, m[1])
			}
			if m[1] != "message" && m[2] != "" && !strings.Contains(src.String(), `"`+m[2]+`"`) {
				t.Errorf("%s wants %s=%q, a value the function never logs", rel, m[1], m[2])
			}
			if m[1] == "message" && !strings.Contains(src.String(), `"`+m[2]+`"`) {
				t.Errorf("%s counts the message %q, which the function never logs", rel, m[2])
			}
		}
		if d, _ := v["description"].(string); !strings.HasSuffix(d, "[config 0123456789abcdef]") {
			t.Errorf("%s: the description does not end with the config hash deploy.sh compares", rel)
		}
	}
	var used []string
	for rel := range files {
		text, _ := readDefinition(t, rel)
		for _, m := range userMetric.FindAllStringSubmatch(text, -1) {
			used = append(used, m[1])
			if !defined[m[1]] {
				t.Errorf("%s charts %s, which monitoring/metrics does not define", rel, m[1])
			}
		}
	}
	sort.Strings(used)
	for name := range defined {
		if !slices.Contains(used, name) {
			t.Errorf("metric %s is charted and alerted on nowhere", name)
		}
	}
}
