package emulator_test

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// apiPackages are the Google client libraries whose answers the function
// reads, with their discovery documents.
var apiPackages = map[string]string{
	"google.golang.org/api/chat/v1":            "chat/v1/chat-api.json",
	"google.golang.org/api/admin/directory/v1": "admin/directory/v1/admin-api.json",
	"google.golang.org/api/admin/reports/v1":   "admin/reports/v1/admin-api.json",
}

// fieldRead is a field of a client library type that the function's code
// selects (reads, or sets on a request).
type fieldRead struct {
	pkg, goType, json string
	at                string // file:line of the first selection
}

// goCmd runs the go command in the module and returns its output.
func goCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// functionReads type-checks the module's non-test packages that import a
// client library of apiPackages (outside internal/: the function and the
// operators' tools) and lists the fields of the libraries' types they select.
func functionReads(t *testing.T) []fieldRead {
	t.Helper()
	var targets []string
	dirs, files := map[string]string{}, map[string][]string{}
	for _, line := range strings.Split(goCmd(t, "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{join .Imports \",\"}}",
		"github.com/chat-offboard/chat-offboard/..."), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || strings.Contains(f[0], "/internal/") {
			continue
		}
		for _, imp := range strings.Split(f[3], ",") {
			if _, ok := apiPackages[imp]; ok {
				targets = append(targets, f[0])
				dirs[f[0]], files[f[0]] = f[1], strings.Split(f[2], ",")
				break
			}
		}
	}
	if len(targets) == 0 {
		t.Fatal("no package of the module imports a client library")
	}
	exports := map[string]string{}
	for _, line := range strings.Split(goCmd(t, append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}, targets...)...), "\n") {
		if p, e, ok := strings.Cut(line, "\t"); ok && e != "" {
			exports[p] = e
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(exports[path]) })
	seen := map[string]bool{}
	var reads []fieldRead
	for _, pkg := range targets {
		var parsed []*ast.File
		for _, name := range files[pkg] {
			f, err := parser.ParseFile(fset, filepath.Join(dirs[pkg], name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			parsed = append(parsed, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		if _, err := (&types.Config{Importer: imp}).Check(pkg, fset, parsed, info); err != nil {
			t.Fatalf("type-checking %s: %v", pkg, err)
		}
		for expr, sel := range info.Selections {
			if r, ok := apiField(sel); ok && !seen[r.goType+"."+r.json] {
				seen[r.goType+"."+r.json] = true
				r.at = fset.Position(expr.Pos()).String()
				reads = append(reads, r)
			}
		}
	}
	slices.SortFunc(reads, func(a, b fieldRead) int { return strings.Compare(a.goType+"."+a.json, b.goType+"."+b.json) })
	return reads
}

// apiField is the field a selection reads, when it is a JSON field of a
// struct type of a client library.
func apiField(sel *types.Selection) (fieldRead, bool) {
	if sel.Kind() != types.FieldVal || len(sel.Index()) != 1 {
		return fieldRead{}, false
	}
	recv := sel.Recv()
	if p, ok := recv.(*types.Pointer); ok {
		recv = p.Elem()
	}
	named, ok := recv.(*types.Named)
	if !ok || named.Obj().Pkg() == nil {
		return fieldRead{}, false
	}
	if _, ok := apiPackages[named.Obj().Pkg().Path()]; !ok {
		return fieldRead{}, false
	}
	st, ok := named.Underlying().(*types.Struct)
	if !ok {
		return fieldRead{}, false
	}
	name, _, _ := strings.Cut(reflect.StructTag(st.Tag(sel.Index()[0])).Get("json"), ",")
	if name == "" || name == "-" {
		return fieldRead{}, false // ServerResponse, ForceSendFields, NullFields
	}
	return fieldRead{pkg: named.Obj().Pkg().Path(), goType: named.Obj().Name(), json: name}, true
}

// goSchemas maps the Go type names the client library generates from d to
// their schemas: a schema's id, and for an inline object its parent's name
// and the property's.
func goSchemas(d *discoveryDoc) map[string]*schema {
	out := map[string]*schema{}
	var add func(name string, s *schema)
	add = func(name string, s *schema) {
		out[name] = s
		for p, ps := range s.Properties {
			switch {
			case ps.Properties != nil:
				add(name+upperFirst(p), ps)
			case ps.Items != nil && ps.Items.Properties != nil:
				add(name+upperFirst(p), ps.Items)
			}
		}
	}
	for id, s := range d.Schemas {
		add(id, s)
	}
	return out
}

// checkEngineReads fails for a field the function reads that the current
// discovery document does not have, or that the emulation never serves in
// its answers (served, by document and Go type: see fieldWalk).
func checkEngineReads(t *testing.T, served map[string]map[string]bool) {
	t.Helper()
	reads := functionReads(t)
	schemas := map[string]map[string]*schema{}
	for _, r := range reads {
		rel := apiPackages[r.pkg]
		if schemas[rel] == nil {
			schemas[rel] = goSchemas(loadDiscovery(t, rel))
		}
		s := schemas[rel][r.goType]
		if s == nil {
			t.Errorf("%s: the function reads %s.%s, and %s has no schema for %s", r.at, r.goType, r.json, rel, r.goType)
			continue
		}
		if _, ok := s.Properties[r.json]; !ok {
			t.Errorf("%s: the function reads %s.%s, which %s does not have", r.at, r.goType, r.json, rel)
			continue
		}
		if !served[rel+" "+r.goType][r.json] {
			t.Errorf("%s: the function reads %s.%s, which the emulation never serves in its answers", r.at, r.goType, r.json)
		}
	}
	t.Logf("the function reads %d fields of the client libraries' types", len(reads))
}
