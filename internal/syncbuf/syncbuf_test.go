package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestWriterShare: chunks written concurrently to two writers sharing one
// lock arrive whole.
func TestWriterShare(t *testing.T) {
	var b Buffer
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
