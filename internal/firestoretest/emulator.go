// Package firestoretest gives tests a Firestore to talk to: the real Cloud
// Firestore emulator of the Cloud SDK, found through FIRESTORE_EMULATOR_HOST
// or started on a free loopback port and stopped again, plus a client helper
// that isolates each test in a project id of its own.
//
// Every started emulator runs in its own process group and is killed, group
// and all, when its last user is done (see [Emulator] and [RunMain]); nothing
// started here is meant to outlive the test binary.
//
// Facts about the emulator observed by this package's tests:
//
//   - it is ready a few seconds after start: GET / on its port answers 200
//     "Ok" (it also opens a WebSocket server on a second, random port);
//   - it serves any number of project ids at once, each with its own data, so a
//     unique project id per test isolates tests without any clean-up;
//   - DELETE /emulator/v1/projects/P/databases/(default)/documents clears the
//     documents of project P (see [Clear]).
package firestoretest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emuproc"
)

// EnvEmulatorHost is the standard variable naming a running emulator; the
// Firestore client library honours it. This package reads it and never sets it.
const EnvEmulatorHost = "FIRESTORE_EMULATOR_HOST"

// InstallHint says how to install the emulator; it appears in skip and error messages.
const InstallHint = "install it with `gcloud components install cloud-firestore-emulator` " +
	"(or `apt-get install google-cloud-cli-firestore-emulator`) and Java 17+, " +
	"or point FIRESTORE_EMULATOR_HOST at a running emulator"

// ErrEmulatorNotFound is returned (wrapped) by [StartEmulator] when neither the
// emulator's jar (with a java binary) nor gcloud can be found.
var ErrEmulatorNotFound = errors.New("firestoretest: Firestore emulator not found")

// emulatorMain is the main class of cloud-firestore-emulator.jar (the SDK's
// cloud_firestore_emulator script runs it the same way).
const emulatorMain = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"

// sdk is where the emulator is in a Cloud SDK and how to run it.
var sdk = emuproc.SDK{
	JarEnv:     "FIRESTORE_EMULATOR_JAR",
	JarGlob:    "platform/cloud-firestore-emulator/cloud-firestore-emulator*.jar",
	JavaArgs:   []string{"-Duser.language=en", "-cp", "{JAR}", emulatorMain, "start", "--host={HOST}", "--port={PORT}"},
	GcloudArgs: []string{"emulators", "firestore", "start", "--host-port={HOST}:{PORT}", "--quiet"},
}

// emulator is the kind of emulator and the one shared by [Emulator].
var emulator = &emuproc.Emulator{
	Name:         "firestoretest",
	HostEnv:      EnvEmulatorHost,
	Find:         sdk.Find,
	NotFound:     ErrEmulatorNotFound,
	Hint:         InstallHint,
	StartTimeout: 90 * time.Second,
}

// StartEmulator returns the host:port of a Firestore emulator and a function
// that stops it: the one FIRESTORE_EMULATOR_HOST names (checked with a TCP
// dial; stop does nothing), or else one of its own, started within ctx and
// 90 s as [emuproc.Emulator.Start] says, with java and the
// cloud-firestore-emulator jar found through $FIRESTORE_EMULATOR_JAR or a
// Cloud SDK, or with `gcloud emulators firestore start`. stop kills its
// process group; it is idempotent and safe to call from any goroutine, and so
// is StartEmulator.
func StartEmulator(ctx context.Context) (host string, stop func() error, err error) {
	return emulator.Start(ctx)
}

// Emulator returns the host:port of a Firestore emulator for tb: the one
// FIRESTORE_EMULATOR_HOST names (as in .ci/run; tb fails if it does not
// accept connections), or else one that [StartEmulator] starts, shared by the
// tests of the binary that use it at the same time and stopped after the last
// of them (see [emuproc.Emulator.Get]), or at the end with [RunMain] or
// [Pin]. Without an emulator it skips tb with [InstallHint], or fails tb when
// CI is "true". Safe for parallel tests.
func Emulator(tb testing.TB) string {
	tb.Helper()
	return emulator.Get(tb)
}

// RunMain runs m and returns its exit code, keeping an emulator that
// [Emulator] starts alive until m.Run returns; it starts none by itself:
//
//	func TestMain(m *testing.M) { os.Exit(firestoretest.RunMain(m)) }
func RunMain(m *testing.M) int { return emulator.RunMain(m) }

// Pin keeps an emulator that [Emulator] starts alive between tests until the
// returned function is called, which stops it (process group and all). It
// is RunMain for a TestMain that runs m through another helper:
//
//	func TestMain(m *testing.M) {
//		unpin := firestoretest.Pin()
//		code := pubsubtest.RunMain(m)
//		unpin()
//		os.Exit(code)
//	}
func Pin() (unpin func()) { return emulator.Pin() }
