// Package layouttest holds the checks that keep the repository's layout
// honest: what the deployed function is built from, and how long functions
// and files may grow.
package layouttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/chat-offboard/chat-offboard"

// Limits on non-test code (issue 12): a longer file states why at its top,
// in a comment line starting with longFileMark.
const (
	maxFuncLines = 80
	maxFileLines = 600
	longFileMark = "// Long file:"
)

// root is the module root: two levels above this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDeployedPackages: the function (the root package) is built from
// production packages only, never from test plumbing, the emulations or a
// command. .gcloudignore uploads exactly these (internal/deploytest checks
// the allow-list).
func TestDeployedPackages(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	var own []string
	for _, p := range strings.Fields(string(out)) {
		if p != module && !strings.HasPrefix(p, module+"/") {
			continue
		}
		own = append(own, p)
		rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
		if strings.HasPrefix(rel, "internal/") || strings.HasPrefix(rel, "cmd/") || strings.Contains(rel, "test") {
			t.Errorf("the deployed function imports %s: test plumbing, an emulation or a command", p)
		}
	}
	t.Logf("the function is built from %s", strings.Join(own, ", "))
}

// TestFunctionAndFileLength: no non-test function is longer than
// maxFuncLines, and no non-test file longer than maxFileLines unless it says
// why at its top.
func TestFunctionAndFileLength(t *testing.T) {
	base := root(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(base, path)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines && !strings.Contains(string(src[:min(len(src), 4096)]), longFileMark) {
			t.Errorf("%s: %d lines, more than %d, and no %q line at its top saying why", rel, n, maxFileLines, longFileMark)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			lines := fset.Position(fn.Body.End()).Line - fset.Position(fn.Body.Pos()).Line - 1
			if lines > maxFuncLines {
				t.Errorf("%s: func %s has %d lines, more than %d", rel, fn.Name.Name, lines, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// cardTopLevel is the design card's top level (issue 25): every entry must
// exist at the module root, so that no later step removes one again.
var cardTopLevel = []string{
	"function.go", "function_test.go", "tokens", "cmd", "go.mod", "go.sum", "deploy.sh", "README.md",
}

// TestDesignCardTopLevel fails when an entry of the design card's top level
// is missing from the module root.
func TestDesignCardTopLevel(t *testing.T) {
	if missing := missingEntries(root(t), cardTopLevel); len(missing) > 0 {
		t.Errorf("the design card's top level is incomplete: missing %s", strings.Join(missing, ", "))
	}
}

// missingEntries returns the names in entries that do not exist under dir.
func missingEntries(dir string, entries []string) []string {
	var missing []string
	for _, name := range entries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	return missing
}

// TestMissingEntriesNamesEachAbsentEntry: the check behind
// TestDesignCardTopLevel names every entry it does not find, so that a
// removed file fails the layout test.
func TestMissingEntriesNamesEachAbsentEntry(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"function.go", "go.mod", "tokens"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := missingEntries(dir, cardTopLevel)
	want := []string{"function_test.go", "cmd", "go.sum", "deploy.sh", "README.md"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("missingEntries = %v, want %v", got, want)
	}
}
