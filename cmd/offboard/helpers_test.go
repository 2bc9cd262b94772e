package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/syncbuf"
)

func TestMain(m *testing.M) {
	unpin := firestoretest.Pin() // report and status read a ledger on the Firestore emulator
	code := pubsubtest.RunMain(m)
	unpin()
	os.Exit(code)
}

// syncBuffer is written by a command while the test reads it.
type syncBuffer = syncbuf.Buffer

// invocation is one in-process run of a command.
type invocation struct {
	code           int
	stdout, stderr string
}

// offboard runs offboard args in-process, through dispatch, with the
// environment env and empty standard input.
func offboard(t *testing.T, ctx context.Context, env map[string]string, args ...string) invocation {
	t.Helper()
	var stdout, stderr syncBuffer
	code := dispatch(ctx, args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	t.Logf("offboard %s → exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	return invocation{code, stdout.String(), stderr.String()}
}
