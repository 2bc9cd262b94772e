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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
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

const (
	startTimeout = 90 * time.Second
	stopTimeout  = 10 * time.Second

	// emulatorMain is the main class of cloud-firestore-emulator.jar (the
	// SDK's cloud_firestore_emulator script runs it the same way).
	emulatorMain = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
)

// StartEmulator returns the host:port of a Firestore emulator and a function
// that stops it.
//
// If FIRESTORE_EMULATOR_HOST is set, that emulator is used: StartEmulator only
// checks that it accepts TCP connections, and stop does nothing. Otherwise it
// starts the emulator's jar with java directly (found through
// $FIRESTORE_EMULATOR_JAR, $CLOUDSDK_ROOT_DIR, the gcloud on PATH with its
// symbolic links resolved, or the usual SDK locations such as
// /usr/lib/google-cloud-sdk, under platform/cloud-firestore-emulator) or,
// failing that, `gcloud emulators firestore start`, on a free 127.0.0.1 port,
// in its own process group, and waits until it answers. stop kills the whole
// process group and waits for it; it is idempotent and safe to call from any
// goroutine.
//
// ctx bounds the start-up only (it is also capped at 90 s); the emulator keeps
// running until stop is called. Calls to StartEmulator may run concurrently;
// each call that does not use FIRESTORE_EMULATOR_HOST starts its own emulator.
func StartEmulator(ctx context.Context) (host string, stop func() error, err error) {
	if h := os.Getenv(EnvEmulatorHost); h != "" {
		if err := dialCheck(ctx, h); err != nil {
			return "", nil, fmt.Errorf("firestoretest: %s=%s is not reachable: %w", EnvEmulatorHost, h, err)
		}
		return h, func() error { return nil }, nil
	}
	argv, err := findEmulator()
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var lastErr error
	for try := 0; try < 3; try++ { // a free port can be taken between probe and bind
		p, err := startProcess(ctx, argv)
		if err == nil {
			return p.host, p.stop, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return "", nil, lastErr
}

// dialCheck makes sure something listens on host.
func dialCheck(ctx context.Context, host string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}

// findEmulator prefers the jar run by java directly (one process, killed with
// its group), then gcloud (a python process that forks java). The argv has
// "{PORT}" placeholders.
func findEmulator() ([]string, error) {
	java := os.Getenv("JAVA_HOME")
	if java != "" {
		java = filepath.Join(java, "bin", "java")
		if _, err := os.Stat(java); err != nil {
			java = ""
		}
	}
	if java == "" {
		java, _ = exec.LookPath("java")
	}
	if java != "" {
		if jar := findJar(); jar != "" {
			return []string{java, "-Duser.language=en", "-cp", jar, emulatorMain, "start",
				"--host=127.0.0.1", "--port={PORT}"}, nil
		}
	}
	if gcloud, err := exec.LookPath("gcloud"); err == nil && java != "" {
		return []string{gcloud, "emulators", "firestore", "start", "--host-port=127.0.0.1:{PORT}", "--quiet"}, nil
	}
	if java == "" {
		return nil, fmt.Errorf("%w (no java on PATH or in JAVA_HOME); %s", ErrEmulatorNotFound, InstallHint)
	}
	return nil, fmt.Errorf("%w (no cloud-firestore-emulator.jar, no gcloud); %s", ErrEmulatorNotFound, InstallHint)
}

// sdkRoots lists the places where a Cloud SDK may be installed, best first.
func sdkRoots() []string {
	var roots []string
	if r := os.Getenv("CLOUDSDK_ROOT_DIR"); r != "" {
		roots = append(roots, r)
	}
	if g, err := exec.LookPath("gcloud"); err == nil {
		if real, err := filepath.EvalSymlinks(g); err == nil {
			roots = append(roots, filepath.Dir(filepath.Dir(real))) // ROOT/bin/gcloud
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, "google-cloud-sdk"))
	}
	return append(roots, "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk",
		"/opt/google-cloud-sdk", "/usr/local/google-cloud-sdk", "/snap/google-cloud-cli/current")
}

// findJar looks for platform/cloud-firestore-emulator/cloud-firestore-emulator*.jar.
func findJar() string {
	if j := os.Getenv("FIRESTORE_EMULATOR_JAR"); j != "" {
		if _, err := os.Stat(j); err == nil {
			return j
		}
	}
	for _, r := range sdkRoots() {
		m, _ := filepath.Glob(filepath.Join(r, "platform", "cloud-firestore-emulator", "cloud-firestore-emulator*.jar"))
		if len(m) > 0 {
			sort.Strings(m)
			return m[len(m)-1]
		}
	}
	return ""
}

// process is one started emulator.
type process struct {
	host    string
	cmd     *exec.Cmd
	out     *tailBuffer
	done    chan struct{} // closed when cmd.Wait returned
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func startProcess(ctx context.Context, argvTmpl []string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("firestoretest: no free port: %w", err)
	}
	p := &process{host: net.JoinHostPort("127.0.0.1", port), out: &tailBuffer{max: 32 << 10}, done: make(chan struct{})}
	argv := make([]string, len(argvTmpl))
	for i, a := range argvTmpl {
		argv[i] = strings.ReplaceAll(a, "{PORT}", port)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.Env = os.Environ()
	p.cmd.WaitDelay = 2 * time.Second
	setProcessGroup(p.cmd)
	started := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("firestoretest: starting %s: %w", argv[0], err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("firestoretest: emulator %q did not become ready after %v: %w\n--- emulator output ---\n%s",
			strings.Join(argv, " "), time.Since(started).Round(time.Millisecond), err, p.out.String())
	}
	return p, nil
}

// waitReady polls GET http://host/ (the emulator answers 200 "Ok") until it
// answers, the process exits or ctx is done.
func (p *process) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.host+"/", nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("process exited: %v", p.waitErr)
		case <-tick.C:
		}
	}
}

// stop terminates the process group (SIGTERM, then SIGKILL after a grace
// period) and waits for the process. Idempotent.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			_ = signalGroup(p.cmd, true) // the leader is gone; its group may not be
			return
		default:
		}
		_ = signalGroup(p.cmd, false)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = signalGroup(p.cmd, true)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				p.stopErr = fmt.Errorf("firestoretest: emulator (pid %d) did not exit", p.cmd.Process.Pid)
				return
			}
		}
		// Make sure no member of the group (gcloud's java child) survives.
		_ = signalGroup(p.cmd, true)
	})
	return p.stopErr
}

// tailBuffer keeps the last bytes written to it, up to max.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > b.max {
		keep := b.buf.Bytes()[b.buf.Len()-b.max/2:]
		nb := append([]byte("…\n"), keep...)
		b.buf.Reset()
		b.buf.Write(nb)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// shared is the emulator that Emulator hands out to the tests of one binary.
var shared struct {
	mu       sync.Mutex
	host     string
	stop     func() error
	refs     int   // tests currently using it
	pinned   bool  // RunMain is active: keep it until m.Run returns
	notFound error // sticky: don't look again in this binary
}

// Emulator returns the host:port of a running Firestore emulator for tb.
//
// With FIRESTORE_EMULATOR_HOST set (as .ci/run does) it returns that address
// after a short TCP dial, failing tb if nothing listens there. Otherwise it
// starts one emulator (see [StartEmulator]) that is shared by all tests of the
// binary that use it at the same time: it is reference-counted and stopped,
// process group and all, by the tb.Cleanup of its last user. To keep one
// emulator for the whole binary instead of one per run of overlapping tests,
// call [RunMain] from TestMain; it stops the emulator after m.Run.
//
// If no emulator can be found, Emulator skips tb with a message saying how to
// install one, or fails tb when the environment variable CI is "true".
// Emulator may be called from parallel tests; a start-up in progress blocks
// other callers until it is done.
func Emulator(tb testing.TB) string {
	tb.Helper()
	if h := os.Getenv(EnvEmulatorHost); h != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := dialCheck(ctx, h); err != nil {
			tb.Fatalf("firestoretest: %s=%s is set but not reachable: %v", EnvEmulatorHost, h, err)
		}
		return h
	}
	host, err := acquire()
	if err != nil {
		if errors.Is(err, ErrEmulatorNotFound) && os.Getenv("CI") != "true" {
			tb.Skipf("skipping: %v", err)
		}
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(release)
	return host
}

func acquire() (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.notFound != nil {
		return "", shared.notFound
	}
	if shared.host == "" {
		h, stop, err := StartEmulator(context.Background())
		if err != nil {
			if errors.Is(err, ErrEmulatorNotFound) {
				shared.notFound = err
			}
			return "", err
		}
		shared.host, shared.stop = h, stop
	}
	shared.refs++
	return shared.host, nil
}

func release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.refs--
	if shared.refs == 0 && !shared.pinned {
		stopSharedLocked()
	}
}

func stopSharedLocked() {
	if shared.stop != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	shared.host, shared.stop = "", nil
}

// RunMain runs m and returns its exit code, keeping an emulator started by
// [Emulator] alive between tests and stopping it, process group and all,
// after m.Run. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(firestoretest.RunMain(m)) }
//
// It does not start an emulator by itself: binaries whose tests don't ask for
// one pay nothing. Call it once, from TestMain only.
func RunMain(m *testing.M) int {
	defer Pin()()
	return m.Run()
}

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
func Pin() (unpin func()) {
	shared.mu.Lock()
	shared.pinned = true
	shared.mu.Unlock()
	return func() {
		shared.mu.Lock()
		shared.pinned = false
		if shared.refs == 0 {
			stopSharedLocked()
		}
		shared.mu.Unlock()
	}
}
