package console

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
)

// TestWriterShare: chunks written concurrently to two writers sharing one
// lock arrive whole.
func TestWriterShare(t *testing.T) {
	var b syncbuf.Buffer
	out := NewWriter(&b)
	errw := out.Share(&b)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				out.Printf("%s\n", strings.Repeat("o", 100))
			} else {
				_, _ = errw.Write([]byte(strings.Repeat("e", 100) + "\n"))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		if l != strings.Repeat("o", 100) && l != strings.Repeat("e", 100) {
			t.Fatalf("interleaved line %q", l)
		}
	}
	if out.Unwrap() != &b {
		t.Error("Unwrap does not return the underlying writer")
	}
}

// TestIsTerminal: buffers and regular files, wrapped or not, are not
// terminals.
func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		w    io.Writer
	}{
		{"buffer", &bytes.Buffer{}},
		{"regular file", f},
		{"wrapped regular file", NewWriter(f)},
		{"wrapped buffer", NewWriter(&bytes.Buffer{})},
		{"nil", nil},
	} {
		if IsTerminal(tc.w) {
			t.Errorf("IsTerminal(%s) = true, want false", tc.name)
		}
	}
}
