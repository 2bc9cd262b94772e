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
