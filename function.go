// Package offboard is chat-offboard's Cloud Run function: it takes people out
// of Google Chat spaces when an HR or directory system publishes a removal
// request, and publishes one result event per decision.
//
// This package holds only what Cloud Functions needs: the registration of
// RemoveMembership with the functions framework, and RemoveMembership
// itself, which builds the instance's engine once from the environment and
// hands it every event. The engine (package engine) does the work;
// docs/design.md holds the contract.
package offboard

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/chat-offboard/chat-offboard/engine"
	"github.com/chat-offboard/chat-offboard/logging"
)

// FunctionName is the entry point registered with the functions framework.
const FunctionName = "RemoveMembership"

// init registers RemoveMembership behind engine.EventHandler, as an HTTP
// function: the framework's own CloudEvent wrapper can leave a request
// unanswered until another one arrives and run an event under another
// request's context (engine.EventHandler says why).
func init() {
	functions.HTTP(FunctionName, engine.EventHandler(RemoveMembership).ServeHTTP)
}

// instance is this process's engine, built at the first event from the
// environment with context.Background(), and shared by every event after.
var instance struct {
	once sync.Once
	e    *engine.Engine
	err  error
}

// RemoveMembership is the CloudEvent function. It may run concurrently for
// many events; they share one engine. Bad configuration is logged once, as
// one line naming the variable, and every event is then answered with an
// error so that nothing is acknowledged (and lost) until it is fixed.
func RemoveMembership(ctx context.Context, e event.Event) error {
	instance.once.Do(func() {
		log := logging.New(os.Stderr, slog.LevelInfo)
		cfg, err := engine.LoadConfig(os.Getenv)
		if err != nil {
			instance.err = err
			log.Log(ctx, logging.LevelCritical, "the function is misconfigured; no event will be processed until it is fixed", "error", err.Error())
			return
		}
		if instance.e, instance.err = engine.New(context.Background(), cfg); instance.err != nil {
			log.Log(ctx, logging.LevelCritical, "the function could not start", "error", instance.err.Error())
		}
	})
	if instance.err != nil {
		return instance.err
	}
	return instance.e.Handle(ctx, e)
}
