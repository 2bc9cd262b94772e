// Command offboard is the operators' tool: what an operator of a deployed
// chat-offboard does besides deploying it (docs/operators.md). Run it as
//
//	go run ./cmd/offboard COMMAND [flags]
//
// Commands (offboard help lists them, offboard COMMAND --help tells more):
//
//   - report: the leaver report of requests, from the function's ledger;
//   - reconcile: the Workspace trigger's catch-up from the Reports API, ad hoc
//     (the daily one runs inside the function);
//   - status: what is in flight and the health of the token;
//   - dead-letters: the requests Pub/Sub gave up on, and replay of chosen ones.
//
// Integrators publish requests with cmd/publish, which links neither the
// ledger nor Secret Manager.
//
// # Adding a command
//
// One file per command: it declares its run function and registers it in
// an init function, and nothing else changes:
//
//	func init() {
//		register(command{name: "held", summary: "list the requests held for approval", run: runHeld})
//	}
//
// run gets the arguments after the command's name, standard input, output
// and error, and env in place of os.Getenv (tests drive commands in-process
// through dispatch), and returns the exit code: by convention 0 success, 1
// something needs attention, 2 usage or connection errors; a command may
// have more codes, which its --help names.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
)

// Exit codes shared by the commands.
const (
	exitOK        = 0 // done, nothing needs attention
	exitAttention = 1 // done, something needs attention (each named)
	exitUsage     = 2 // usage, input or connection error, timeout
)

// runFunc is a command's body: it returns the exit code. ctx cancels it (the
// signal handler in main); env replaces os.Getenv, and nothing else of the
// process is read.
type runFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int

// command is one subcommand.
type command struct {
	name    string  // as typed: offboard NAME
	summary string  // one line for the usage
	run     runFunc // the body
}

// commands are the registered commands by name. Written only by the init
// functions (register), read afterwards.
var commands = map[string]command{}

// register adds c; a second command of the same name is a programming
// error.
func register(c command) {
	if _, dup := commands[c.name]; dup || c.name == "" || c.run == nil {
		panic("offboard: bad or duplicate command " + c.name)
	}
	commands[c.name] = c
}

// dispatch runs the command that args name with the rest of args, or
// prints the usage.
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, []string{"--help"}, stdin, stdout, stderr, env)
			}
		}
		usage(stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "offboard: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr, env)
}

// usage lists the commands.
func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: offboard COMMAND [flags]   (go run ./cmd/offboard COMMAND ...)\n\n"+
		"The operators' tool of chat-offboard (docs/operators.md). Commands:\n\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\noffboard COMMAND --help tells more. Integrators publish requests with cmd/publish.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
