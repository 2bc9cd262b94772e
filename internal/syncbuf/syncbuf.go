// Package syncbuf is test plumbing: a bytes.Buffer that one goroutine may
// read while others write (the logs and output of code under test). The
// tools' own writer that serialises whole writes is console.Writer
// (cmd/internal/console); no production code imports this package.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer whose content may be read at any time. All methods
// are safe for concurrent use; the zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
