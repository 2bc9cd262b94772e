// Command function runs chat-offboard's RemoveMembership locally behind the
// functions framework, as Cloud Run would: it listens on PORT (default 8080)
// and serves FUNCTION_TARGET (default RemoveMembership). With
// LOCAL_ONLY=true it binds 127.0.0.1 only.
//
// Point a Pub/Sub push subscription at http://127.0.0.1:PORT/projects/P/topics/T
// (the functions framework turns the push body into a CloudEvent), or POST a
// CloudEvent to it. The configuration is read from the environment at the
// first event (README.md, "Configuration").
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	offboard "github.com/chat-offboard/chat-offboard"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", offboard.FunctionName)
	}
	host := ""
	if os.Getenv("LOCAL_ONLY") == "true" {
		host = "127.0.0.1"
	}
	log := offboard.NewLogger(os.Stderr, slog.LevelInfo)
	log.Info("serving", "function", os.Getenv("FUNCTION_TARGET"), "address", fmt.Sprintf("%s:%s", host, port))
	if err := funcframework.StartHostPort(host, port); err != nil {
		log.Error("functions framework stopped", "error", err.Error())
		os.Exit(1)
	}
}
