package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestBuffer: concurrent writes all arrive, and String may be read while
// they are written.
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.Write([]byte("x\n"))
			_ = b.String()
		}()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "x\n"); got != 50 {
		t.Fatalf("%d writes arrived, want 50", got)
	}
}
