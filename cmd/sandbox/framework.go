package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/cloudevents/sdk-go/v2/event"
)

// frameworkTarget is the name under which the sandbox registers its
// CloudEvent function with the functions framework. The framework serves
// FUNCTION_TARGET at "/" (any path, so a push to /projects/P/topics/T too);
// the sandbox sets FUNCTION_TARGET to this name, so that the framework
// serves this function, not offboard.RemoveMembership (which would configure
// itself from the environment), and prints nothing on standard output.
const frameworkTarget = "ChatOffboardSandbox"

// The functions framework has one global registry and its servers cannot be
// stopped. The sandbox registers one dispatching function once; each
// framework server (one per run, on its own port) finds the handler of its
// run by the local address of the connection.
var (
	registerOnce sync.Once
	handlersMu   sync.RWMutex
	handlers     = map[string]func(context.Context, event.Event) error{}
)

// errStopped answers events that reach a framework server whose sandbox has
// ended (the server itself cannot be stopped).
var errStopped = errors.New("the sandbox serving this port has stopped")

func dispatch(ctx context.Context, e event.Event) error {
	addr, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if addr == nil {
		return errors.New("sandbox: no local address in the request context")
	}
	handlersMu.RLock()
	h := handlers[addr.String()]
	handlersMu.RUnlock()
	if h == nil {
		return errStopped
	}
	return h(ctx, e)
}

// serveFunction serves h behind the real functions framework on
// 127.0.0.1:port (a free port when port is 0) and returns the base URL and a
// function that detaches h (events then get an error answer). It sets
// FUNCTION_TARGET in the process environment.
func serveFunction(ctx context.Context, port int, h func(context.Context, event.Event) error) (string, func(), error) {
	// Served as the function itself is (engine.EventHandler): the
	// framework's CloudEvent wrapper can strand requests (function.go).
	registerOnce.Do(func() { functions.HTTP(frameworkTarget, engine.EventHandler(dispatch).ServeHTTP) })
	if err := os.Setenv("FUNCTION_TARGET", frameworkTarget); err != nil {
		return "", nil, fmt.Errorf("setting FUNCTION_TARGET: %w", err)
	}
	// The framework binds the address itself: check that it is free first,
	// so that a busy --port is reported as such.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", nil, fmt.Errorf("function port: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	handlersMu.Lock()
	handlers[addr] = h
	handlersMu.Unlock()
	detach := func() {
		handlersMu.Lock()
		delete(handlers, addr)
		handlersMu.Unlock()
	}
	host, p, _ := net.SplitHostPort(addr)
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(host, p) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-errc:
			detach()
			return "", nil, fmt.Errorf("functions framework on %s: %w", addr, err)
		case <-ctx.Done():
			detach()
			return "", nil, ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "http://" + addr, detach, nil
		}
		if time.Now().After(deadline) {
			detach()
			return "", nil, fmt.Errorf("functions framework did not listen on %s: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
