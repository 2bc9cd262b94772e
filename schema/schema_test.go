package schema

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// compiled returns the two schemas, compiled from the embedded copies with
// format assertions on (date-time).
func compiled(t *testing.T) (req, res *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, data := range map[string][]byte{RequestID: Request, ResultID: Result} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if req, err = c.Compile(RequestID); err != nil {
		t.Fatalf("request schema: %v", err)
	}
	if res, err = c.Compile(ResultID); err != nil {
		t.Fatalf("result schema: %v", err)
	}
	return req, res
}

// validate reports whether data is one JSON value that s accepts. Data that
// is not a single JSON value is rejected before any schema applies.
func validate(s *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func short(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

// TestSchemaAndValidatorAgree checks the request schema against the Go
// validator (request.Parse, what the function runs) on a corpus of valid
// and invalid requests.
func TestSchemaAndValidatorAgree(t *testing.T) {
	req, _ := compiled(t)
	total := 0
	for _, c := range []struct {
		file  string
		valid bool
	}{{"testdata/requests/valid.jsonl", true}, {"testdata/requests/invalid.jsonl", false}} {
		for i, data := range readLines(t, c.file) {
			total++
			_, goErr := request.Parse(data, "message-id")
			schemaErr := validate(req, data)
			if (goErr == nil) != c.valid {
				t.Errorf("%s:%d: Go validator: %v (want valid=%v): %s", c.file, i+1, goErr, c.valid, short(data))
			}
			if (schemaErr == nil) != c.valid {
				t.Errorf("%s:%d: schema: %v (want valid=%v): %s", c.file, i+1, schemaErr, c.valid, short(data))
			}
		}
	}
	if total < 40 {
		t.Errorf("corpus of %d requests; keep at least 40", total)
	}
}

// TestDocumentedDivergences pins what JSON Schema cannot express (or where
// encoding/json is laxer than the schema). Each line of divergent.jsonl says
// what the Go validator does; the schema does the opposite. Should either
// side change, this test fails and the line moves into the agreed corpus.
//
//   - duplicate keys: a schema sees the parsed object, one key per name;
//   - null: encoding/json leaves a field unset for null, the schema wants
//     the declared type (integrators should leave fields out);
//   - byte limits of non-ASCII text: maxLength counts characters;
//   - the length of an email inside membership: a pattern without
//     look-ahead cannot bound one alternative's length;
//   - the 65536-byte message limit: a property of the encoding;
//   - a bulk request's requestId + "/spaces/{space}" (its children's ids)
//     must fit 512 bytes: a schema cannot relate one field's length to
//     another's values (TestBulkChildIDDivergence pins that one).
func TestDocumentedDivergences(t *testing.T) {
	req, _ := compiled(t)
	for i, line := range readLines(t, "testdata/requests/divergent.jsonl") {
		var d struct {
			Data string `json:"data"`
			Go   string `json:"go"`
			Why  string `json:"why"`
		}
		if err := json.Unmarshal(line, &d); err != nil || d.Why == "" || (d.Go != "accepts" && d.Go != "rejects") {
			t.Fatalf("divergent.jsonl:%d: malformed entry: %v", i+1, err)
		}
		_, goErr := request.Parse([]byte(d.Data), "message-id")
		schemaErr := validate(req, []byte(d.Data))
		if goAccepts := goErr == nil; goAccepts != (d.Go == "accepts") || (schemaErr == nil) == goAccepts {
			t.Errorf("divergent.jsonl:%d (%s): Go %v, schema %v; the divergence changed: %s", i+1, d.Why, goErr, schemaErr, short([]byte(d.Data)))
		}
	}
}

// TestBulkChildIDDivergence pins the one divergence that depends on two
// fields at once: a bulk request's children get the id requestId + "/" +
// the space name, which must fit 512 bytes like any requestId, so the Go
// validator refuses a bulk request whose id leaves no room for a child's;
// the schema bounds requestId alone. The same request with a short id is
// valid on both sides.
func TestBulkChildIDDivergence(t *testing.T) {
	req, _ := compiled(t)
	for _, c := range []struct {
		id       string
		goAccept bool
	}{
		{"bulk-" + strings.Repeat("a", 495), false}, // 500 + len("/spaces/BBBBBBBBBBBB") = 520 bytes
		{"bulk-" + strings.Repeat("a", 480), true},  // 485 + 20 = 505 bytes
	} {
		data, err := json.Marshal(map[string]any{"requestId": c.id, "spaces": []string{"spaces/AAAA", "spaces/BBBBBBBBBBBB"}, "member": "users/1"})
		if err != nil {
			t.Fatal(err)
		}
		_, goErr := request.Parse(data, "message-id")
		if (goErr == nil) != c.goAccept {
			t.Errorf("requestId of %d bytes: Go validator %v, want accepted=%v", len(c.id), goErr, c.goAccept)
		}
		if goErr != nil && !strings.Contains(goErr.Error(), "requestId") {
			t.Errorf("requestId of %d bytes: the Go validator's reason does not name requestId: %v", len(c.id), goErr)
		}
		if err := validate(req, data); err != nil {
			t.Errorf("requestId of %d bytes: the schema rejects it: %v", len(c.id), err)
		}
	}
}

// jsonFields returns the JSON names of a struct's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// schemaProperties returns the property names of a (sub)schema document.
func schemaProperties(t *testing.T, data []byte, path ...string) []string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		doc = doc["properties"].(map[string]any)[p].(map[string]any)
	}
	var out []string
	for k := range doc["properties"].(map[string]any) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSchemasDescribeEveryGoField keeps the schemas and the Go types of the
// wire contract in step: a field added on one side fails here.
func TestSchemasDescribeEveryGoField(t *testing.T) {
	for _, c := range []struct {
		name   string
		schema []byte
		path   []string
		typ    reflect.Type
	}{
		{"request", Request, nil, reflect.TypeFor[request.Request]()},
		{"result", Result, nil, reflect.TypeFor[contract.Result]()},
		{"result.member", Result, []string{"member"}, reflect.TypeFor[contract.Member]()},
		{"result.error", Result, []string{"error"}, reflect.TypeFor[contract.ErrorInfo]()},
		{"result.handOff", Result, []string{"handOff"}, reflect.TypeFor[contract.HandOffLog]()},
	} {
		if got, want := schemaProperties(t, c.schema, c.path...), jsonFields(c.typ); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: schema properties %v, Go fields %v", c.name, got, want)
		}
	}
	// Every property has a description.
	for name, data := range map[string][]byte{"request": Request, "result": Result} {
		var doc struct {
			Properties map[string]map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for p, s := range doc.Properties {
			if d, _ := s["description"].(string); d == "" {
				t.Errorf("%s.%s has no description", name, p)
			}
		}
	}
	// The outcome enum is the set of outcomes.
	var doc struct {
		Properties struct {
			Outcome struct {
				Enum []string `json:"enum"`
			} `json:"outcome"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(Result, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Properties.Outcome.Enum
	sort.Strings(got)
	var want []string
	for _, o := range contract.Outcomes {
		want = append(want, string(o))
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outcome enum %v, want %v", got, want)
	}
}

// checkExample validates one JSON example: a result when it has an outcome,
// a request otherwise.
func checkExample(t *testing.T, where string, data []byte, req, res *jsonschema.Schema) {
	t.Helper()
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		t.Errorf("%s: not a JSON object: %v", where, err)
		return
	}
	if _, ok := probe["outcome"]; ok {
		if err := validate(res, data); err != nil {
			t.Errorf("%s: result does not validate: %v", where, err)
		}
		return
	}
	if err := validate(req, data); err != nil {
		t.Errorf("%s: request does not validate: %v", where, err)
	}
	if _, err := request.Parse(data, "message-id"); err != nil {
		t.Errorf("%s: the Go validator rejects the request: %v", where, err)
	}
}

// TestFixtures validates the examples of the contract (docs/design.md's
// request and result examples among them).
func TestFixtures(t *testing.T) {
	req, res := compiled(t)
	files, err := filepath.Glob("testdata/examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkExample(t, f, data, req, res)
	}
}

var fence = regexp.MustCompile("(?ms)^[ \t]*```json[ \t]*\n(.*?)^[ \t]*```")

// TestDocumentationExamples validates every ```json block of README.md and
// docs/*.md: each block is one JSON object, or JSON lines. Blocks that are
// not meant to validate (illustrations with placeholders) use ```jsonc.
func TestDocumentationExamples(t *testing.T) {
	req, res := compiled(t)
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	blocks := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllSubmatchIndex(data, -1) {
			blocks++
			block := data[m[2]:m[3]]
			line := 1 + bytes.Count(data[:m[2]], []byte("\n"))
			where := f + ":" + strconv.Itoa(line)
			if json.Valid(block) {
				checkExample(t, where, block, req, res)
				continue
			}
			for i, l := range bytes.Split(block, []byte("\n")) {
				if l = bytes.TrimSpace(l); len(l) > 0 {
					checkExample(t, f+":"+strconv.Itoa(line+i), l, req, res)
				}
			}
		}
	}
	t.Logf("%d JSON blocks checked in %v", blocks, files)
}
