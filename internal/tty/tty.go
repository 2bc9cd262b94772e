// Package tty tells whether a command's output goes to a terminal, which
// decides whether it draws progress lines.
package tty

import (
	"io"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal: a file (anything with an Fd
// method, such as *os.File) that is one. A writer that wraps another (an
// Unwrap() io.Writer method, such as *syncbuf.Writer) is a terminal when
// the one it wraps is. Safe for concurrent use.
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
