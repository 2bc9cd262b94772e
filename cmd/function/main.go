// Command function runs chat-offboard's RemoveMembership locally behind the
// functions framework, as Cloud Run would: it listens on PORT (default 8080)
// and serves FUNCTION_TARGET (default RemoveMembership). It binds 127.0.0.1
// only, unless LOCAL_ONLY=false: the function acts on whatever request
// reaches it, so listening on every interface is an explicit choice.
//
// Point a Pub/Sub push subscription at http://127.0.0.1:PORT/projects/P/topics/T
// (the functions framework turns the push body into a CloudEvent), or POST a
// CloudEvent to it. The configuration is read from the environment at the
// first event (README.md, "Configuration").
//
// With -check-config it serves nothing: it reads the configuration from the
// environment with the function's own code (engine.LoadConfig) and exits 0,
// printing nothing, when the function would accept it, or prints the error,
// which names the variable, and exits 2. deploy.sh runs it on the environment
// it is about to deploy.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	offboard "github.com/chat-offboard/chat-offboard"
	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/logging"
)

func main() {
	checkConfig := flag.Bool("check-config", false,
		"check the configuration in the environment as the function reads it, and exit: 0 valid, 2 invalid (the error names the variable)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "function: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *checkConfig {
		os.Exit(check(os.Getenv, os.Stderr))
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", offboard.FunctionName)
	}
	host, err := listenHost(os.Getenv("LOCAL_ONLY"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "function: %v\n", err)
		os.Exit(2)
	}
	log := logging.New(os.Stderr, slog.LevelInfo)
	log.Info("serving", "function", os.Getenv("FUNCTION_TARGET"), "address", fmt.Sprintf("%s:%s", host, port))
	if err := funcframework.StartHostPort(host, port); err != nil {
		log.Error("functions framework stopped", "error", err.Error())
		os.Exit(1)
	}
}

// listenHost is the host to bind for LOCAL_ONLY: 127.0.0.1 unless it is
// "false" (every interface, ""); anything but "", "true" and "false" is an
// error.
func listenHost(localOnly string) (string, error) {
	switch localOnly {
	case "", "true":
		return "127.0.0.1", nil
	case "false":
		return "", nil
	}
	return "", fmt.Errorf("LOCAL_ONLY=%q: want true (the default: 127.0.0.1 only) or false (every interface)", localOnly)
}

// check loads the configuration through getenv as the function does at its
// first event. A valid one prints nothing and returns 0; an invalid one prints
// the error ("configuration: VAR: reason") on w and returns 2.
func check(getenv func(string) string, w io.Writer) int {
	if _, err := engine.LoadConfig(getenv); err != nil {
		fmt.Fprintln(w, err)
		return 2
	}
	return 0
}
