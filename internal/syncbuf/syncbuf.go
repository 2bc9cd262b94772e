// Package syncbuf has the writers that several goroutines share: a
// bytes.Buffer that one goroutine may read while others write (the logs and
// output of code under test), and a Writer that serialises whole writes to
// an io.Writer (a command's standard output and error).
package syncbuf

import (
	"bytes"
	"fmt"
	"io"
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

// Writer passes each Write (and each Printf, as one chunk) to an underlying
// io.Writer under a lock, so that the chunks of concurrent writers never
// interleave. Writers made by Share hold the same lock: the chunks written
// to the streams of a pair (standard output and error) never interleave
// either. All methods are safe for concurrent use.
type Writer struct {
	mu *sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer to w with a lock of its own.
func NewWriter(w io.Writer) *Writer { return &Writer{mu: new(sync.Mutex), w: w} }

// Share returns a Writer to w that holds the same lock as l.
func (l *Writer) Share(w io.Writer) *Writer { return &Writer{mu: l.mu, w: w} }

// Write writes p to the underlying writer, under the lock.
func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Printf formats and writes one chunk, under the lock.
func (l *Writer) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// Unwrap returns the underlying writer (for a terminal check, say).
func (l *Writer) Unwrap() io.Writer { return l.w }
