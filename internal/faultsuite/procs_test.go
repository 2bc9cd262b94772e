package faultsuite

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// fnProcess is the cmd/function binary, killed and restarted on one port.
type fnProcess struct {
	t       *testing.T
	bin     string
	port    string
	env     []string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	kills   int
}

func (p *fnProcess) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p.port, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("function did not listen on %s: %v", p.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no graceful shutdown, requests in flight are lost.
// Safe for concurrent use (the Chat front calls it from its handlers).
func (p *fnProcess) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.t.Errorf("function process %d did not exit after SIGKILL", p.cmd.Process.Pid)
		}
		p.cmd = nil
		p.kills++
	}
}

func (p *fnProcess) killCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills
}

// tcpProxy forwards the function's connections to an emulator (Pub/Sub,
// Firestore); cut closes them all and turns new ones away until heal.
type tcpProxy struct {
	ln      net.Listener
	target  string
	broken  atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.broken.Load() {
				p.refused.Add(1)
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *tcpProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) cut()  { p.broken.Store(true); p.closeAll() }
func (p *tcpProxy) heal() { p.broken.Store(false) }

// Armed kills of the Chat front.
const (
	armNone         int32 = iota
	armBeforeDelete       // SIGKILL when a members.delete arrives: after its intent, before the delete
	armAfterDelete        // SIGKILL when a members.delete answered 200, before the function reads the answer
)

// chatFront is a reverse proxy in front of the Chat emulation that can kill
// the function at a chosen point of a removal: between the intent and the
// delete (the delete never reaches Chat), or between the delete and the
// decision (Chat removed the membership; the function never learns it).
// Connections the emulation drops are dropped towards the function too.
type chatFront struct {
	srv   *httptest.Server
	arm   atomic.Int32
	kill  func()
	fired chan string // the membership named by the delete that fired an armed kill
}

func newChatFront(t *testing.T, chatURL string, kill func()) *chatFront {
	u, err := url.Parse(chatURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &chatFront{kill: kill, fired: make(chan string, 1)}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 200, IdleConnTimeout: 30 * time.Second}
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodDelete && resp.StatusCode == http.StatusOK && f.arm.CompareAndSwap(armAfterDelete, armNone) {
			f.kill()
			f.fired <- membershipOfPath(resp.Request.URL.Path)
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { drop(w) }
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && f.arm.CompareAndSwap(armBeforeDelete, armNone) {
			f.kill()
			f.fired <- membershipOfPath(r.URL.Path)
			drop(w)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	w.WriteHeader(http.StatusBadGateway)
}

func membershipOfPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	return norm(strings.TrimPrefix(p, "v1/"))
}

// deletes counts the Chat emulation's members.delete calls per membership
// (normalised by norm), through its OnCall hook, by what each did (its
// served status: a delete whose answer a Fault with AfterApply lost still
// removed the membership).
type deletes struct {
	mu       sync.Mutex
	ok       map[string]int       // served 200: removed
	lost     map[string]int       // of ok, the answer lost (dropped, or 500/503 in its place)
	notFound map[string]int       // served 404
	lost404  map[string]int       // of notFound, the answer lost: the retry tries again
	lostBy   map[string]int       // every call whose answer was lost, by method and status served
	first    map[string]time.Time // when the first delete served 200 ended
	fsCut    atomic.Bool          // the function's Firestore connection is cut
	duringFS int                  // deletes served 200 while it was cut
}

func newDeletes(c *emulator.Chat) *deletes {
	d := &deletes{ok: map[string]int{}, lost: map[string]int{}, notFound: map[string]int{}, lost404: map[string]int{}, lostBy: map[string]int{}, first: map[string]time.Time{}}
	c.OnCall(func(ci emulator.CallInfo) {
		if ci.AnswerLost {
			d.mu.Lock()
			d.lostBy[fmt.Sprintf("%s:%d", ci.Method, ci.Served)]++
			d.mu.Unlock()
		}
		if ci.Method != "members.delete" || (ci.Served != http.StatusOK && ci.Served != http.StatusNotFound) {
			return
		}
		now := time.Now()
		m := norm(ci.Name)
		d.mu.Lock()
		defer d.mu.Unlock()
		if ci.Served == http.StatusNotFound {
			d.notFound[m]++
			if ci.AnswerLost {
				d.lost404[m]++
			}
			return
		}
		d.ok[m]++
		if ci.AnswerLost {
			d.lost[m]++
		}
		if _, ok := d.first[m]; !ok {
			d.first[m] = now
		}
		if d.fsCut.Load() {
			d.duringFS++
		}
	})
	return d
}

func buildFunction(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "function")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/chat-offboard/chat-offboard/cmd/function")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/function: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func snapshotRoles(ws emulator.Workspace) map[string]string {
	m := map[string]string{}
	for _, s := range ws.Spaces {
		for _, mem := range s.Members {
			m[s.Name+"/members/"+strings.TrimPrefix(mem.User, "users/")] = mem.Role
		}
	}
	return m
}
