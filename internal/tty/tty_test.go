package tty

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
)

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
		{"wrapped regular file", syncbuf.NewWriter(f)},
		{"wrapped buffer", syncbuf.NewWriter(&bytes.Buffer{})},
		{"nil", nil},
	} {
		if IsTerminal(tc.w) {
			t.Errorf("IsTerminal(%s) = true, want false", tc.name)
		}
	}
}
