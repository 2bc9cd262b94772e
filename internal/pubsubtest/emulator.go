// Package pubsubtest gives tests (and the sandbox) a Pub/Sub to talk to: the
// real Pub/Sub emulator, started on a free loopback port and stopped again, or
// the in-process fake pstest where no push delivery is involved; plus small
// idempotent helpers to create topics and subscriptions with unique ids.
//
// Every started emulator runs in its own process group and is killed, group
// and all, when its last user is done (see [Emulator] and [RunMain]); nothing
// started here is meant to outlive the test binary or program.
//
// Facts about the emulator (version 0.8.20) observed by this package's tests:
//
//   - it is ready about 1–2 s after start (GET / on its port answers "Ok");
//   - push delivery is a POST (Content-Type: application/json, User-Agent:
//     Java/…, no Authorization, no ce-* headers) of the JSON body
//     {"subscription","message":{"data","attributes","messageId","message_id",
//     "publishTime","publish_time"}} with "attributes":{} when there are none
//     (see TestEmulatorPush for a verbatim example);
//   - push counts only 102, 200, 201, 203 and 204 as an acknowledgement (202 is
//     not), and sends at most 2 requests at a time per subscription.
package pubsubtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emuproc"
)

// EnvEmulatorHost is the standard variable naming a running emulator. This
// package reads it and never sets it.
const EnvEmulatorHost = "PUBSUB_EMULATOR_HOST"

// InstallHint says how to install the emulator; it appears in skip and error messages.
const InstallHint = "install it with `gcloud components install pubsub-emulator beta` " +
	"(or `apt-get install google-cloud-cli-pubsub-emulator`) and Java 17+, " +
	"or point PUBSUB_EMULATOR_HOST at a running emulator"

// ErrEmulatorNotFound is returned (wrapped) by [StartEmulator] when neither the
// emulator's jar (with a java binary) nor gcloud can be found.
var ErrEmulatorNotFound = errors.New("pubsubtest: Pub/Sub emulator not found")

// sdk is where the emulator is in a Cloud SDK and how to run it.
var sdk = emuproc.SDK{
	JarEnv:     "PUBSUB_EMULATOR_JAR",
	JarGlob:    "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar",
	JavaArgs:   []string{"-jar", "{JAR}", "--host={HOST}", "--port={PORT}"},
	GcloudArgs: []string{"beta", "emulators", "pubsub", "start", "--host-port={HOST}:{PORT}", "--data-dir={DIR}", "--quiet"},
}

// emulator is the kind of emulator and the one shared by [Emulator].
var emulator = &emuproc.Emulator{
	Name:         "pubsubtest",
	HostEnv:      EnvEmulatorHost,
	Find:         sdk.Find,
	NotFound:     ErrEmulatorNotFound,
	Hint:         InstallHint,
	StartTimeout: 60 * time.Second,
}

// StartEmulator returns the host:port of a Pub/Sub emulator and a function that
// stops it: the one PUBSUB_EMULATOR_HOST names (checked with a TCP dial; stop
// does nothing), or else one of its own, started within ctx and 60 s as
// [emuproc.Emulator.Start] says, with `java -jar` and the jar found through
// $PUBSUB_EMULATOR_JAR or a Cloud SDK, or with
// `gcloud beta emulators pubsub start`. stop kills its process group; it is
// idempotent and safe to call from any goroutine, and so is StartEmulator.
func StartEmulator(ctx context.Context) (host string, stop func() error, err error) {
	return emulator.Start(ctx)
}

// Emulator returns the host:port of a Pub/Sub emulator for tb: the one
// PUBSUB_EMULATOR_HOST names (as in .ci/run; tb fails if it does not accept
// connections), or else one that [StartEmulator] starts, shared by the tests
// of the binary that use it at the same time and stopped after the last of
// them (see [emuproc.Emulator.Get]), or after m.Run with [RunMain]. Without
// an emulator it skips tb, or fails tb when CI is "true". Safe for parallel
// tests.
func Emulator(tb testing.TB) string {
	tb.Helper()
	return emulator.Get(tb)
}

// RunMain runs m and returns its exit code, keeping an emulator that
// [Emulator] starts alive until m.Run returns; it starts none by itself:
//
//	func TestMain(m *testing.M) { os.Exit(pubsubtest.RunMain(m)) }
func RunMain(m *testing.M) int { return emulator.RunMain(m) }
