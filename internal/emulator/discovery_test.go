package emulator_test

// The emulations held against Google's current discovery documents, the ones
// that ship with the google.golang.org/api module this repository builds with
// (read from the module cache; no network): a method, a query parameter or a
// response field the emulation serves must be in the document. The methods
// and parameters come from the emulation's own router tables
// (emulator.Surface), checked in turn by sending every method of the three
// documents to the emulation; the fields come from its answers to real
// calls.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	directory "google.golang.org/api/admin/directory/v1"
	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/chat/v1"
	"google.golang.org/api/option"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// discoveryMethod is what the test reads of a method in a discovery document.
type discoveryMethod struct {
	ID         string `json:"id"`
	HTTPMethod string `json:"httpMethod"`
	Path       string `json:"path"`
	FlatPath   string `json:"flatPath"`
	Parameters map[string]json.RawMessage
	Response   *struct {
		Ref string `json:"$ref"`
	} `json:"response"`
}

type discoveryResource struct {
	Methods   map[string]discoveryMethod   `json:"methods"`
	Resources map[string]discoveryResource `json:"resources"`
}

// discoveryDoc is a discovery document: its methods by id, its top-level
// (standard) parameters, and its schemas.
type discoveryDoc struct {
	Revision    string                     `json:"revision"`
	ServicePath string                     `json:"servicePath"`
	Parameters  map[string]json.RawMessage `json:"parameters"`
	Resources   map[string]discoveryResource
	Schemas     map[string]*schema `json:"schemas"`
	methods     map[string]discoveryMethod
}

// schema is a discovery schema (or an inline property).
type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties *schema            `json:"additionalProperties"`
}

var (
	apiDirOnce sync.Once
	apiDir     string
	apiDirErr  error
)

// apiModuleDir is the module cache directory of google.golang.org/api.
func apiModuleDir(t *testing.T) string {
	t.Helper()
	apiDirOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
		apiDir, apiDirErr = strings.TrimSpace(string(out)), err
	})
	if apiDirErr != nil || apiDir == "" {
		t.Fatalf("go list -m google.golang.org/api: %v", apiDirErr)
	}
	return apiDir
}

func loadDiscovery(t *testing.T, rel string) *discoveryDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(apiModuleDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	d := &discoveryDoc{methods: map[string]discoveryMethod{}}
	if err := json.Unmarshal(b, d); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	var walk func(map[string]discoveryResource)
	walk = func(rs map[string]discoveryResource) {
		for _, r := range rs {
			for _, m := range r.Methods {
				d.methods[m.ID] = m
			}
			walk(r.Resources)
		}
	}
	walk(d.Resources)
	if len(d.methods) == 0 {
		t.Fatalf("%s: no methods", rel)
	}
	return d
}

// TestSurfaceIsInTheDiscoveryDocuments: every method the emulations serve,
// and every query parameter they take, is in the current document.
func TestSurfaceIsInTheDiscoveryDocuments(t *testing.T) {
	t.Parallel()
	docs := map[string]*discoveryDoc{}
	for _, m := range emulator.Surface() {
		d := docs[m.Document]
		if d == nil {
			d = loadDiscovery(t, m.Document)
			docs[m.Document] = d
			t.Logf("%s: revision %s", m.Document, d.Revision)
		}
		dm, ok := d.methods[m.ID]
		if !ok {
			t.Errorf("the emulation serves %s, which %s (revision %s) does not have", m.ID, m.Document, d.Revision)
			continue
		}
		for _, p := range m.Params {
			_, method := dm.Parameters[p]
			_, standard := d.Parameters[p]
			if !method && !standard {
				t.Errorf("the emulation takes the query parameter %s of %s, which %s (revision %s) does not have", p, m.ID, m.Document, d.Revision)
			}
		}
	}
}

// pathVar is a path template variable of a discovery document.
var pathVar = regexp.MustCompile(`\{\+?[^}]+\}`)

// TestOnlyTheSurfaceIsRouted: each method of the three documents, sent to
// the emulation without a token, is routed (401) exactly when Surface lists
// it, and answered 404 (URL not found) otherwise. Surface is thus the
// emulation's routing, not a list beside it.
func TestOnlyTheSurfaceIsRouted(t *testing.T) {
	t.Parallel()
	st := startStack(t, emulator.ChatOptions{})
	rep := emulator.NewReports(emulator.Default(), st.OAuth)
	t.Cleanup(rep.Close)
	base := map[string]string{
		"chat/v1/chat-api.json":             st.Chat.URL(),
		"admin/directory/v1/admin-api.json": st.Directory.URL(),
		"admin/reports/v1/admin-api.json":   rep.URL(),
	}
	served := map[string]bool{}
	for _, m := range emulator.Surface() {
		served[m.ID] = true
	}
	routed := 0
	for rel, url := range base {
		d := loadDiscovery(t, rel)
		for _, id := range slices.Sorted(func(yield func(string) bool) {
			for id := range d.methods {
				if !yield(id) {
					return
				}
			}
		}) {
			m := d.methods[id]
			p := m.FlatPath
			if p == "" {
				p = m.Path
			}
			uri := "/" + d.ServicePath + pathVar.ReplaceAllString(p, "x1")
			code, body := rawRequest(t, url, m.HTTPMethod, uri, "")
			switch {
			case served[id] && code != http.StatusUnauthorized:
				t.Errorf("%s (%s %s) is in Surface but answered %d %s, not 401", id, m.HTTPMethod, uri, code, body)
			case !served[id] && code != http.StatusNotFound:
				t.Errorf("%s (%s %s) is not in Surface but the emulation routes it: %d %s", id, m.HTTPMethod, uri, code, body)
			case served[id]:
				routed++
			}
		}
	}
	if routed != len(served) {
		t.Errorf("%d methods of Surface routed, want %d", routed, len(served))
	}
}

// recorder keeps the JSON bodies the emulations answer, by method id.
type recorder struct {
	mu      sync.Mutex
	current string
	bodies  map[string][][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.bodies[r.current] = append(r.bodies[r.current], b)
	r.mu.Unlock()
	return resp, nil
}

// as records the answers of call under method id; call must succeed.
func (r *recorder) as(t *testing.T, id string, call func() error) {
	t.Helper()
	r.mu.Lock()
	r.current = id
	r.mu.Unlock()
	if err := call(); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
}

// TestServedFieldsAreInTheDiscoveryDocuments: every field of every answer
// the emulations give to the calls the function makes (through the real
// client libraries) is a field of the method's response schema in the
// current document.
func TestServedFieldsAreInTheDiscoveryDocuments(t *testing.T) {
	t.Parallel()
	// The seed workspace with what the answers can carry: a group in a
	// space and among a person's groups, a non-editable alias, deleted
	// users.
	ws := emulator.Default()
	ws.Groups = []emulator.Group{{ID: "g1", Email: "eng-team@example.com", Name: "Eng team", Members: []string{"users/101", "users/102"}},
		{ID: "g2", Email: "all@example.com", Name: "All", Members: []string{"users/101"}}}
	ws.Spaces[0].Groups = []string{"groups/g1"}
	ws.Users[1].NonEditableAliases = []string{"alice@example.org"}
	ws.Users = append(ws.Users, emulator.User{ID: "107", Email: "gone@example.com", Name: "Gus Gone", Deleted: true},
		emulator.User{ID: "108", Email: "left@example.com", Name: "Lea Left", Deleted: true})
	st := startStackWith(t, ws, emulator.ChatOptions{})
	rep := emulator.NewReports(ws, st.OAuth)
	t.Cleanup(rep.Close)
	rep.Add(emulator.AdminUserEvent("SUSPEND_USER", "frank@example.com", "admin@example.com", time.Now().Add(-time.Hour)))
	rec := &recorder{bodies: map[string][][]byte{}}
	ctx := context.Background()
	hc := func(scopes ...string) option.ClientOption {
		return option.WithHTTPClient(&http.Client{Transport: &oauth2.Transport{Source: tokenSource(t, st, admin, scopes...), Base: rec}})
	}
	all := append(slices.Clone(emulator.StackScopes), emulator.ScopeAdminReportsAuditReadonly)
	cs, err := chat.NewService(ctx, option.WithEndpoint(st.Chat.URL()), hc(all...))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := directory.NewService(ctx, option.WithEndpoint(st.Directory.URL()), hc(all...))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := reports.NewService(ctx, option.WithEndpoint(rep.URL()), hc(all...))
	if err != nil {
		t.Fatal(err)
	}
	m := cs.Spaces.Members
	rec.as(t, "chat.spaces.search", func() error {
		return cs.Spaces.Search().UseAdminAccess(true).PageSize(2).
			Query(`customer = "customers/my_customer" AND spaceType = "SPACE"`).Pages(ctx, func(*chat.SearchSpacesResponse) error { return nil })
	})
	rec.as(t, "chat.spaces.members.list", func() error {
		return m.List("spaces/ENG").UseAdminAccess(true).ShowGroups(true).PageSize(2).Filter(`member.type != "BOT"`).
			Pages(ctx, func(*chat.ListMembershipsResponse) error { return nil })
	})
	rec.as(t, "chat.spaces.members.get", func() error { _, err := m.Get("spaces/ENG/members/102").Do(); return err })
	rec.as(t, "chat.spaces.members.patch", func() error {
		_, err := m.Patch("spaces/ENG/members/102", &chat.Membership{Role: "ROLE_MANAGER"}).UpdateMask("role").Do()
		return err
	})
	rec.as(t, "chat.spaces.members.delete", func() error { _, err := m.Delete("spaces/ENG/members/103").Do(); return err })
	rec.as(t, "chat.spaces.members.create", func() error {
		_, err := m.Create("spaces/ENG", &chat.Membership{Member: &chat.User{Name: "users/103", Type: "HUMAN"}}).Do()
		return err
	})
	rec.as(t, "directory.users.get", func() error {
		if _, err := ds.Users.Get("frank@example.com").Do(); err != nil {
			return err
		}
		if _, err := ds.Users.Get("alice@example.com").Do(); err != nil {
			return err
		}
		_, err := ds.Users.Get("alice@example.com").ViewType("domain_public").Do()
		return err
	})
	rec.as(t, "directory.users.list", func() error {
		return ds.Users.List().Customer("my_customer").ShowDeleted("true").MaxResults(1).Pages(ctx, func(*directory.Users) error { return nil })
	})
	rec.as(t, "directory.groups.list", func() error {
		return ds.Groups.List().UserKey("alice@example.com").MaxResults(1).Pages(ctx, func(*directory.Groups) error { return nil })
	})
	rec.as(t, "reports.activities.list", func() error {
		_, err := rs.Activities.List("all", "admin").EventName("SUSPEND_USER").Do()
		return err
	})

	served := map[string]map[string]bool{} // document and Go type of the client library -> JSON fields
	docOf := map[string]string{}
	for _, s := range emulator.Surface() {
		docOf[s.ID] = s.Document
	}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range rec.bodies {
			if !yield(id) {
				return
			}
		}
	}) {
		d := loadDiscovery(t, docOf[id])
		dm := d.methods[id]
		for _, b := range rec.bodies[id] {
			if dm.Response == nil {
				if s := strings.TrimSpace(string(b)); s != "" && s != "{}" {
					t.Errorf("%s has no response in %s but the emulation answered %s", id, docOf[id], s)
				}
				continue
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			w := &fieldWalk{d: d, doc: docOf[id], served: served}
			w.walk(&schema{Ref: dm.Response.Ref}, dm.Response.Ref, dm.Response.Ref, v)
			for _, bad := range w.bad {
				t.Errorf("%s: the emulation serves %s, which %s (revision %s) does not have", id, bad, docOf[id], d.Revision)
			}
		}
	}
	checkEngineReads(t, served)
}

// fieldWalk walks answers against the schemas of a document: bad lists the
// fields the schema lacks, served the fields seen, by the Go type the client
// library decodes them into (a schema's id; an inline object is its parent's
// type and the property's name, as the generator names them).
type fieldWalk struct {
	d      *discoveryDoc
	doc    string // d's path, which keys served with the Go type
	bad    []string
	served map[string]map[string]bool
}

// walk checks v (at path) against s, decoded into Go type goType.
func (w *fieldWalk) walk(s *schema, goType, path string, v any) {
	for s != nil && s.Ref != "" {
		goType = s.Ref
		s = w.d.Schemas[s.Ref]
	}
	if s == nil {
		w.bad = append(w.bad, path+" (no schema)")
		return
	}
	if s.Type == "any" {
		return // the document does not describe it further
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p, ok := s.Properties[k]
			if !ok && s.AdditionalProperties != nil {
				w.walk(s.AdditionalProperties, goType, path+"."+k, x[k])
				continue
			}
			if !ok {
				w.bad = append(w.bad, path+"."+k)
				continue
			}
			key := w.doc + " " + goType
			if w.served[key] == nil {
				w.served[key] = map[string]bool{}
			}
			w.served[key][k] = true
			w.walk(p, goType+upperFirst(k), path+"."+k, x[k])
		}
	case []any:
		for i, e := range x {
			w.walk(s.Items, goType, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
