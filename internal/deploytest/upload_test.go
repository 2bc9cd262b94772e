package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// root is the repository, relative to this package: the directory that
// `gcloud functions deploy --source=.` uploads.
const root = "../.."

// realGcloud returns the installed gcloud, or skips the test when there is
// none, except in CI (CI=true), where a missing gcloud is a failure.
func realGcloud(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("gcloud")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("gcloud is not on PATH, and CI=true: install the Google Cloud CLI (%v)", err)
		}
		t.Skipf("gcloud is not on PATH: this test runs the real `gcloud meta list-files-for-upload` (offline); install the Google Cloud CLI (%v)", err)
	}
	return g
}

// listUploadsReal runs the real `gcloud meta list-files-for-upload dir`
// with a configuration directory of its own.
func listUploadsReal(t *testing.T, gcloud, dir string) []string {
	t.Helper()
	cmd := exec.Command(gcloud, "meta", "list-files-for-upload", dir)
	cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+t.TempDir(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gcloud meta list-files-for-upload %s: %v\n%s", dir, err, stderr.String())
	}
	var files []string
	for _, f := range strings.Split(stdout.String(), "\n") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, filepath.ToSlash(f))
		}
	}
	slices.Sort(files)
	return files
}

// buildFiles returns what building the root package needs from this module,
// relative to the root: go.mod, go.sum and the non-test source files of every
// package of the module in `go list -deps .`.
func buildFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", ".")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list -deps -json .: %v\n%s", err, stderr.String())
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(&stdout)
	var own []string
	for {
		var pkg struct {
			ImportPath string
			Dir        string
			Module     *struct{ Main bool }
			GoFiles, CgoFiles, IgnoredGoFiles, CFiles, HFiles, SFiles,
			SysoFiles, EmbedFiles []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		own = append(own, pkg.ImportPath)
		rel, err := filepath.Rel(abs, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range [][]string{pkg.GoFiles, pkg.CgoFiles, pkg.IgnoredGoFiles, pkg.CFiles, pkg.HFiles,
			pkg.SFiles, pkg.SysoFiles, pkg.EmbedFiles} {
			for _, f := range list {
				if strings.HasSuffix(f, "_test.go") {
					continue
				}
				files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(own) < 2 {
		t.Fatalf("go list -deps . found only %q of this module", own)
	}
	t.Logf("packages of this module the function is built from: %q", own)
	slices.Sort(files)
	return files
}

// TestUploadAllowList: .gcloudignore uploads exactly what building the
// function needs, go.mod, go.sum and the non-test files of the module's
// packages that the root package depends on, and nothing else (no tests,
// testdata, docs, commands, deploy.sh or stray files). It fails the day the
// root package imports a package of this module that .gcloudignore does not
// re-include.
func TestUploadAllowList(t *testing.T) {
	t.Parallel()
	gcloud := realGcloud(t)
	want := buildFiles(t)
	got := listUploadsReal(t, gcloud, root)
	if !slices.Equal(got, want) {
		var missing, extra []string
		for _, f := range want {
			if !slices.Contains(got, f) {
				missing = append(missing, f)
			}
		}
		for _, f := range got {
			if !slices.Contains(want, f) {
				extra = append(extra, f)
			}
		}
		t.Errorf(".gcloudignore does not upload exactly the build's files:\n  not uploaded but needed: %q\n  uploaded but not needed: %q\n(re-include the package's directory in .gcloudignore, as tokens/ and request/ are)", missing, extra)
	}
}

// copyScript puts a copy of deploy.sh in a new directory of p and makes p
// run it: the copy deploys that directory (deploy.sh uploads its own
// directory), where a test may leave files.
func copyScript(t *testing.T, p *fakeProject) string {
	t.Helper()
	src := filepath.Join(p.dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "deploy.sh"), string(b))
	// and the monitoring definitions it creates beside the function.
	if err := os.CopyFS(filepath.Join(src, "monitoring"), os.DirFS(filepath.Join(filepath.Dir(script), "monitoring"))); err != nil {
		t.Fatal(err)
	}
	p.script = filepath.Join(src, "deploy.sh")
	return src
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialFilesRefused: deploy.sh lists what gcloud would upload and
// stops, before changing anything, when something looks like a credential,
// naming every such file.
func TestCredentialFilesRefused(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	src := copyScript(t, p)
	files := map[string]string{
		"go.mod":                    "module example.com/x\n",
		"function.go":               "package x // \"refresh_token\" in Go source is code, not a credential\n",
		"README.txt":                "nothing secret\n",
		"client_secret_x.json":      `{"installed":{"client_id":"x","client_secret":"y"}}`,
		"creds.json":                `{"type":"authorized_user","refresh_token":"1//x"}`,
		"schema/stray.json":         `{}`,
		"tls/server.pem":            "-----BEGIN CERTIFICATE-----\n",
		"key.p12":                   "binary",
		"id.key":                    "-----BEGIN PRIVATE KEY-----\n",
		"token":                     `{"type":"authorized_user","client_id":"x","refresh_token":"1//x"}`,
		"notes/sa":                  "-----BEGIN RSA PRIVATE KEY-----\n",
		"request/request.go":        "package request\n",
		"tokens/sub/urls_helper.go": "package sub\n",
	}
	var list []string
	for name, content := range files {
		writeFile(t, filepath.Join(src, name), content)
		list = append(list, name)
	}
	slices.Sort(list)
	uploads := filepath.Join(p.dir, "uploads.txt")
	writeFile(t, uploads, strings.Join(list, "\n")+"\n")

	r := p.run(t, []string{"FAKEGCLOUD_UPLOADS=" + uploads}, "--project", project)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	leaks := []string{"client_secret_x.json", "creds.json", "schema/stray.json", "tls/server.pem", "key.p12", "id.key", "token", "notes/sa"}
	for _, f := range leaks {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(f) + `$`).MatchString(r.stderr) {
			t.Errorf("stderr does not name %s:\n%s", f, r.stderr)
		}
	}
	for _, f := range []string{"go.mod", "function.go", "README.txt", "request/request.go", "tokens/sub/urls_helper.go"} {
		if regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(f) + `$`).MatchString(r.stderr) {
			t.Errorf("stderr names %s, which is no credential:\n%s", f, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "refusing to deploy") {
		t.Errorf("stderr does not say it refuses:\n%s", r.stderr)
	}
	if changes := changesOf(r.calls); len(changes) != 0 {
		t.Errorf("changed %q before refusing", changes)
	}
	if len(r.calls) != 1 || strings.Join(words(r.calls[0]), " ") != "meta list-files-for-upload ." {
		t.Errorf("calls = %q, want only the upload listing", r.calls)
	}

	// The same tree without the credentials deploys.
	var clean []string
	for _, f := range list {
		if !slices.Contains(leaks, f) {
			clean = append(clean, f)
		}
	}
	writeFile(t, uploads, strings.Join(clean, "\n")+"\n")
	mustSucceed(t, p.run(t, []string{"FAKEGCLOUD_UPLOADS=" + uploads}, "--project", project))
}

// TestCredentialFilesRefusedRealGcloud: the same with the real gcloud's
// listing (the fake delegates `meta list-files-for-upload` to it). A
// client_secret_x.json in a tree without .gcloudignore would be uploaded:
// refused. With the repository's .gcloudignore it is not uploaded: deployed.
func TestCredentialFilesRefusedRealGcloud(t *testing.T) {
	t.Parallel()
	gcloud := realGcloud(t)
	p := newProject(t)
	src := copyScript(t, p)
	for _, f := range []string{"go.mod", "go.sum", "function.go"} {
		writeFile(t, filepath.Join(src, f), "placeholder\n")
	}
	writeFile(t, filepath.Join(src, "client_secret_x.json"), `{"installed":{"client_id":"x","client_secret":"y"}}`)
	env := []string{"FAKEGCLOUD_REAL_GCLOUD=" + gcloud, "CLOUDSDK_CORE_DISABLE_PROMPTS=1"}

	r := p.run(t, env, "--project", project)
	if r.code != 3 || !strings.Contains(r.stderr, "\n  client_secret_x.json\n") {
		t.Fatalf("exit %d, want 3 naming client_secret_x.json\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if changes := changesOf(r.calls); len(changes) != 0 {
		t.Errorf("changed %q before refusing", changes)
	}

	b, err := os.ReadFile(filepath.Join(root, ".gcloudignore"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, ".gcloudignore"), string(b))
	r = p.run(t, env, "--project", project)
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "upload: 3 files, no credentials") {
		t.Errorf("the allow-list should upload go.mod, go.sum and function.go only:\n%s", r.stdout)
	}
}
