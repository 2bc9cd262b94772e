package firestoretest

import (
	"context"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

func TestProject(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, in := range []string{"", "TestX/sub_case", "-9abc", "ÄÖ", "a"} {
		p := Project(in)
		if !regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`).MatchString(p) {
			t.Errorf("Project(%q) = %q: not a project id", in, p)
		}
		if seen[p] {
			t.Errorf("Project(%q) = %q twice", in, p)
		}
		seen[p] = true
	}
}

// TestClientRoundTrip writes a document through Client and reads it back.
func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	c, project := Client(t, "round-trip")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc := c.Collection("things").Doc("one")
	if _, err := doc.Create(ctx, map[string]any{"n": 1}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := doc.Create(ctx, map[string]any{"n": 2}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	s, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if n, _ := s.DataAt("n"); n != int64(1) {
		t.Fatalf("n = %v, want 1", n)
	}
	t.Logf("project %s", project)
}

// TestProjectsIsolated: two tests' clients do not see each other's documents,
// and Clear empties a project.
func TestProjectsIsolated(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, pa := Client(t, "iso")
	b, _ := Client(t, "iso")
	if _, err := a.Collection("c").Doc("d").Set(ctx, map[string]any{"x": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Collection("c").Doc("d").Get(ctx); status.Code(err) != codes.NotFound {
		t.Fatalf("b sees a's document: err = %v", err)
	}
	if err := Clear(ctx, Emulator(t), pa, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Collection("c").Doc("d").Get(ctx); status.Code(err) != codes.NotFound {
		t.Fatalf("after Clear: err = %v, want NotFound", err)
	}
}

// TestNotFound: with no java and no gcloud, the emulator is not found and
// the error says how to install it.
func TestNotFound(t *testing.T) {
	t.Setenv(EnvEmulatorHost, "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	_, _, err := StartEmulator(context.Background())
	if !errors.Is(err, ErrEmulatorNotFound) {
		t.Fatalf("err = %v, want ErrEmulatorNotFound", err)
	}
	if !regexp.MustCompile(`FIRESTORE_EMULATOR_HOST`).MatchString(err.Error()) {
		t.Fatalf("error %q gives no hint", err)
	}
}
