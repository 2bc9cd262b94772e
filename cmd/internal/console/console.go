// Package console is what the command-line tools (cmd/...) share to write
// to a terminal: a Writer that serialises whole writes of several
// goroutines, and IsTerminal, which decides whether a tool draws progress
// lines. It is production code of the tools, not test plumbing; the
// deployed function never imports it.
package console

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/term"
)

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

// Unwrap returns the underlying writer (for IsTerminal).
func (l *Writer) Unwrap() io.Writer { return l.w }

// IsTerminal reports whether w is a terminal: a file (anything with an Fd
// method, such as *os.File) that is one. A writer that wraps another (an
// Unwrap() io.Writer method, such as *Writer) is a terminal when the one it
// wraps is. Safe for concurrent use.
func IsTerminal(w io.Writer) bool {
	for {
		switch v := w.(type) {
		case interface{ Fd() uintptr }:
			return term.IsTerminal(int(v.Fd()))
		case interface{ Unwrap() io.Writer }:
			w = v.Unwrap()
		default:
			return false
		}
	}
}
