package emuproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a tiny emulator: with envHelper set it does what
// the variable says instead of running tests.
const (
	envHelper  = "EMUPROC_TEST_HELPER"  // serve, exit or sleep
	envPidFile = "EMUPROC_TEST_PIDFILE" // serve: where to write the child's pid
)

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "":
		os.Exit(m.Run())
	case "serve":
		serve()
	case "exit":
		fmt.Println("helper exiting")
		os.Exit(3)
	case "sleep":
		select {}
	}
	os.Exit(2)
}

// serve answers GET / with 200 "Ok" on 127.0.0.1:os.Args[1], like the
// emulators, after starting a child of its own (in its process group) that
// sleeps, whose pid it writes to $EMUPROC_TEST_PIDFILE.
func serve() {
	if len(os.Args) > 2 && os.Args[2] != "" {
		if _, err := os.Stat(os.Args[2]); err != nil {
			fmt.Println(err)
			os.Exit(4)
		}
	}
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), envHelper+"=sleep")
	if err := child.Start(); err != nil {
		fmt.Println(err)
		os.Exit(5)
	}
	if f := os.Getenv(envPidFile); f != "" {
		_ = os.WriteFile(f, []byte(strconv.Itoa(child.Process.Pid)), 0o600)
	}
	err := http.ListenAndServe(net.JoinHostPort("127.0.0.1", os.Args[1]), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Ok"))
	}))
	fmt.Println(err)
	os.Exit(6)
}

// helperArgv is the argv that starts the test binary as a helper.
func helperArgv(t *testing.T, mode string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envHelper, mode)
	return []string{exe, "{PORT}", "{DIR}"}
}

func TestStartExited(t *testing.T) {
	argv := helperArgv(t, "exit")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, argv)
	if err == nil {
		_ = p.Stop()
		t.Fatal("Start of a process that exits at once succeeded")
	}
	if !strings.Contains(err.Error(), "process exited") || !strings.Contains(err.Error(), "helper exiting") {
		t.Fatalf("err = %v, want the exit and the output", err)
	}
}

// testEmulator is an Emulator that starts the serving helper.
func testEmulator(t *testing.T) *Emulator {
	argv := helperArgv(t, "serve")
	t.Setenv(envPidFile, "")
	t.Setenv("EMUPROC_TEST_HOST", "")
	return &Emulator{
		Name:         "emuproctest",
		HostEnv:      "EMUPROC_TEST_HOST",
		Find:         func() ([]string, error) { return argv, nil },
		NotFound:     errors.New("emuproctest: not found"),
		Hint:         "install nothing",
		StartTimeout: 30 * time.Second,
	}
}

func answers(host string) bool {
	return DialCheck(context.Background(), host) == nil
}

// TestShared: tests running at the same time share one emulator, which stops
// with the last of them; pinned, it stays until unpinned.
func TestShared(t *testing.T) {
	e := testEmulator(t)
	var h1, h2 string
	t.Run("users", func(t *testing.T) {
		h1 = e.Get(t)
		h2 = e.Get(t)
	})
	if h1 == "" || h1 != h2 {
		t.Fatalf("Get returned %q then %q, want one shared emulator", h1, h2)
	}
	if answers(h1) {
		t.Fatalf("%s still answers after its last user is done", h1)
	}

	unpin := e.Pin()
	t.Run("pinned", func(t *testing.T) { h1 = e.Get(t) })
	t.Run("pinned again", func(t *testing.T) { h2 = e.Get(t) })
	if h1 != h2 || !answers(h1) {
		t.Fatalf("pinned: Get returned %q then %q (answers: %v), want one emulator kept", h1, h2, answers(h1))
	}
	unpin()
	if answers(h1) {
		t.Fatalf("%s still answers after unpin", h1)
	}
}

func TestHostEnv(t *testing.T) {
	e := testEmulator(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv(e.HostEnv, l.Addr().String())
	if h := e.Get(t); h != l.Addr().String() {
		t.Fatalf("Get = %q, want %s", h, l.Addr())
	}
	h, stop, err := e.Start(context.Background())
	if err != nil || h != l.Addr().String() {
		t.Fatalf("Start = %q, %v", h, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !answers(h) {
		t.Fatal("stop closed an emulator named by the environment")
	}
}

// fakeTB records Skipf and Fatalf and ends the goroutine like testing does.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Skipf(format string, a ...any) {
	f.skipped = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

// TestNotFound: no emulator skips a test outside CI and fails it under
// CI=true; the error wraps NotFound and carries the hint.
func TestNotFound(t *testing.T) {
	e := testEmulator(t)
	e.Find = func() ([]string, error) { return nil, errors.New("no java") }
	_, _, err := e.Start(context.Background())
	if !errors.Is(err, e.NotFound) || !strings.Contains(err.Error(), "no java") || !strings.Contains(err.Error(), e.Hint) {
		t.Fatalf("err = %v", err)
	}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		f := &fakeTB{}
		f.run(func(tb testing.TB) { e.Get(tb) })
		if skip := ci != "true"; skip != (f.skipped != "") || skip == (f.failed != "") {
			t.Errorf("CI=%q: skipped %q, failed %q", ci, f.skipped, f.failed)
		}
	}
}
