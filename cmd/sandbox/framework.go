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
)

// frameworkTarget is the name under which the sandbox registers its HTTP
// function with the functions framework. The framework serves
// FUNCTION_TARGET at "/" (any path, so a push to /projects/P/topics/T too);
// the sandbox sets FUNCTION_TARGET to this name, so that the framework
// serves this function, not offboard.RemoveMembership (which would configure
// itself from the environment), and prints nothing on standard output.
const frameworkTarget = "ChatOffboardSandbox"

// The functions framework has one global registry and its servers cannot be
// stopped. The sandbox registers one function once, which routes each
// request to the handler of its run (the run's engine.EventHandler), found
// by the local address of the connection: each run has its own framework
// server, on its own port.
var (
	registerOnce sync.Once
	handlersMu   sync.RWMutex
	handlers     = map[string]http.Handler{}
)

// errStopped answers requests that reach a framework server whose sandbox
// has ended (the server itself cannot be stopped).
var errStopped = errors.New("the sandbox serving this port has stopped")

// route serves r with the handler of the run that listens on r's local
// address.
func route(w http.ResponseWriter, r *http.Request) {
	addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if addr == nil {
		http.Error(w, "sandbox: no local address in the request context", http.StatusInternalServerError)
		return
	}
	handlersMu.RLock()
	h := handlers[addr.String()]
	handlersMu.RUnlock()
	if h == nil {
		http.Error(w, errStopped.Error(), http.StatusInternalServerError)
		return
	}
	h.ServeHTTP(w, r)
}

// serveFunction serves h behind the real functions framework on
// 127.0.0.1:port (a free port when port is 0), as function.go registers
// RemoveMembership: h is engine.EventHandler of the run's function. It
// returns the base URL and a function that detaches h (requests then get an
// error answer). It sets FUNCTION_TARGET in the process environment.
func serveFunction(ctx context.Context, port int, h http.Handler) (string, func(), error) {
	registerOnce.Do(func() { functions.HTTP(frameworkTarget, route) })
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
	if err := awaitListening(ctx, addr, errc); err != nil {
		detach()
		return "", nil, err
	}
	return "http://" + addr, detach, nil
}

// awaitListening waits up to 10 s for the framework to listen on addr; errc
// reports its failure to start.
func awaitListening(ctx context.Context, addr string, errc <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("functions framework on %s: %w", addr, err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("functions framework did not listen on %s: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
