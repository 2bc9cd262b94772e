package docstest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// forbidden are the strings that point outside the repository. They are
// spelled in two parts so that this file does not contain them.
var forbidden = []string{
	".." + "/shared",
	"shared/" + "DESIGN" + ".md",
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// repositoryFiles lists the repository's files, relative to root with
// slashes: what git tracks plus new files it does not ignore, or, without
// git, every file below root outside .git.
func repositoryFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		seen := map[string]bool{}
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" && !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
		return files
	}
	t.Log("git ls-files is not available; walking the directory tree instead")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNoReferenceOutsideRepository fails naming each file of the repository
// that refers to one of the forbidden strings (the shared directory beside
// the checkout, or the design file in it), which nobody who clones the
// repository has; docs/design.md is the contract. docs/design.md itself may
// not mention them either, and no file is exempt.
func TestNoReferenceOutsideRepository(t *testing.T) {
	root := moduleRoot(t)
	files := repositoryFiles(t, root)
	if len(files) == 0 {
		t.Fatal("no files found in the repository")
	}
	var offenders []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, s := range forbidden {
			if bytes.Contains(data, []byte(s)) {
				found = append(found, s)
			}
		}
		if len(found) > 0 {
			offenders = append(offenders, f+": "+strings.Join(found, ", ")+" (line "+strings.Join(lines(data), ", ")+")")
		}
	}
	sort.Strings(offenders)
	for _, o := range offenders {
		t.Errorf("%s: point to docs/design.md instead", o)
	}
	if _, err := os.Stat(filepath.Join(root, "docs", "design.md")); err != nil {
		t.Errorf("docs/design.md, the contract, is missing: %v", err)
	}
	t.Logf("%d files checked", len(files))
}

// lines returns the numbers of the lines of data that hold a forbidden
// string.
func lines(data []byte) []string {
	var out []string
	for i, l := range bytes.Split(data, []byte("\n")) {
		for _, s := range forbidden {
			if bytes.Contains(l, []byte(s)) {
				out = append(out, strconv.Itoa(i+1))
				break
			}
		}
	}
	return out
}

// TestNoReferenceToMissingDesignFile fails naming each file that refers to
// the upper-case design file by its bare name, as comments and scripts did
// ("see <that file>, Configuration"), while the repository has no file of
// that name: those references meant the file outside the repository, and
// docs/design.md now holds what they pointed to.
func TestNoReferenceToMissingDesignFile(t *testing.T) {
	const name = "DESIGN" + ".md"
	root := moduleRoot(t)
	files := repositoryFiles(t, root)
	for _, f := range files {
		if filepath.Base(f) == name {
			t.Skipf("the repository has %s; references to it are fine", f)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var at []string
		for i, l := range bytes.Split(data, []byte("\n")) {
			if bytes.Contains(l, []byte(name)) {
				at = append(at, strconv.Itoa(i+1))
			}
		}
		if len(at) > 0 {
			t.Errorf("%s (line %s) names %s, which the repository does not have: point to docs/design.md instead", f, strings.Join(at, ", "), name)
		}
	}
}
