package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// run is the whole program; main calls it with the process's arguments and
// standard streams, tests call it in-process. Cancelling ctx (Ctrl-C) stops
// everything cleanly. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	ws, err := loadWorkspace(o.workspace)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitSetup
	}
	samples, err := loadSamples(o.requests)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitSetup
	}
	s := newSandbox(o, ws, samples, stdout, stderr)
	defer s.close()
	if err := s.start(ctx); err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		fmt.Fprintf(s.errw, "sandbox: %v\n", err)
		return exitSetup
	}
	code = s.runSamples(ctx)
	if o.serve && ctx.Err() == nil {
		s.serve(ctx)
		if code == exitInterrupted { // Ctrl-C is how --serve ends
			code = exitOK
		}
	}
	return code
}

// loadWorkspace returns the embedded default workspace, or the one in file,
// decoded strictly and validated.
func loadWorkspace(file string) (emulator.Workspace, error) {
	if file == "" {
		return emulator.Default(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return emulator.Workspace{}, fmt.Errorf("--workspace: %w", err)
	}
	var ws emulator.Workspace
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ws); err != nil {
		return ws, fmt.Errorf("--workspace %s: %w", file, err)
	}
	if dec.More() {
		return ws, fmt.Errorf("--workspace %s: more than one JSON value", file)
	}
	if err := ws.Validate(); err != nil {
		return ws, fmt.Errorf("--workspace %s: %w", file, err)
	}
	if len(ws.Admins) == 0 {
		return ws, fmt.Errorf("--workspace %s: needs at least one admin (the delegated user whose token the function uses)", file)
	}
	return ws, nil
}

// loadSamples returns the embedded samples, or the requests in file.
func loadSamples(file string) ([]sample, error) {
	if file == "" {
		return parseSamples(bytes.NewReader(defaultSamples))
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--requests: %w", err)
	}
	defer f.Close()
	s, err := parseSamples(f)
	if err != nil {
		return nil, fmt.Errorf("--requests %s: %w", file, err)
	}
	return s, nil
}
