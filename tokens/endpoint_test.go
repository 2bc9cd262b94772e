package tokens_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// TestCheckAPIEndpoint: an API endpoint (CHAT_ENDPOINT, DIRECTORY_ENDPOINT,
// REPORTS_ENDPOINT) is https to a Google API host or a loopback emulator,
// parsed as a URL: "http://127.0.0.1:1@evil.example/" is evil.example with
// user info, not a loopback address.
func TestCheckAPIEndpoint(t *testing.T) {
	for _, raw := range []string{
		"https://chat.googleapis.com/", "https://admin.googleapis.com", "https://www.googleapis.com/",
		"https://chat.googleapis.com:443/", "https://Chat.GoogleAPIs.com/", "https://chat.mtls.googleapis.com/",
		"http://127.0.0.1:8080/", "http://127.3.2.1:1", "http://[::1]:9000/", "http://localhost:4000/", "https://127.0.0.1/",
	} {
		if err := tokens.CheckAPIEndpoint("CHAT_ENDPOINT", raw); err != nil {
			t.Errorf("%q refused: %v", raw, err)
		}
	}
	for _, raw := range []string{
		"http://127.0.0.1:1@evil.example/", // the attack: user info, host evil.example
		"https://127.0.0.1@evil.example/",
		"https://user@chat.googleapis.com/",
		"https://user:pw@chat.googleapis.com/",
		"http://chat.googleapis.com/", // plaintext off this machine
		"http://10.0.0.1:8080/",
		"https://evil.example/",
		"https://chat.googleapis.com.evil.example/",
		"https://evil.example/chat.googleapis.com/",
		"https://evil.example#.googleapis.com",
		"https://evil.example?.googleapis.com",
		"https://googleapis.com/",
		"https://chat.googleapis.com./",
		"https://x_y.googleapis.com/",
		"https://chat.googleapis.com:8443/",
		"https://chat.googleapis.com/?alt=json",
		"https://chat.googleapis.com/#x",
		"http://127.0.0.1:0x50/",
		"ftp://chat.googleapis.com/",
		"chat.googleapis.com",
		"//chat.googleapis.com/",
		"https:chat.googleapis.com",
		"http://[::1",
		"",
	} {
		err := tokens.CheckAPIEndpoint("CHAT_ENDPOINT", raw)
		if err == nil {
			t.Errorf("%q accepted", raw)
			continue
		}
		if !strings.Contains(err.Error(), "CHAT_ENDPOINT") {
			t.Errorf("%q: the error does not name the variable: %v", raw, err)
		}
	}
	for _, hp := range []string{"127.0.0.1:1@evil.example", "127.0.0.1:x", "127.0.0.1:0", "evil.example:443", "127.0.0.1"} {
		if tokens.CheckLoopback(hp) == nil {
			t.Errorf("CheckLoopback(%q) accepted", hp)
		}
	}
	if err := tokens.CheckLoopback("[::1]:8085"); err != nil {
		t.Error(err)
	}
}

// recorder is a server that records the Authorization header and body of
// what it receives.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.seen = append(r.seen, req.URL.Path+" "+req.Header.Get("Authorization")+" "+string(body))
		r.mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// redirector answers every request with a 307 to target + the path.
func redirector(t *testing.T, target func(path string) string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/same" {
			w.Write([]byte(`{}`))
			return
		}
		http.Redirect(w, req, target(req.URL.Path), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestNoRedirectToAnotherHost: an API (or anything answering in its place)
// that redirects to another host does not get the admin's bearer token
// sent there; a redirect on the same host is followed. The token refresh
// (a POST carrying the refresh token, which a 307 would repeat) is not
// redirected to another host either.
func TestNoRedirectToAnotherHost(t *testing.T) {
	st := stack(t)
	src := newSource(t, st, nil)
	other := newRecorder(t)
	var api *httptest.Server
	api = redirector(t, func(path string) string {
		if path == "/here" {
			return api.URL + "/same"
		}
		return other.URL + path
	})
	hc := tokens.NewHTTPClient(src, nil, 0)
	_, err := hc.Get(api.URL + "/away")
	if !errors.Is(err, tokens.ErrCrossHostRedirect) {
		t.Errorf("a redirect to another host: %v, want ErrCrossHostRedirect", err)
	}
	if got := other.requests(); len(got) != 0 {
		t.Errorf("the other host received %q", got)
	}
	resp, err := hc.Get(api.URL + "/here")
	if err != nil {
		t.Fatalf("a redirect on the same host: %v", err)
	}
	resp.Body.Close()

	// The token endpoint redirecting the refresh elsewhere.
	tokenRedirect := redirector(t, func(path string) string { return other.URL + path })
	refresh, err := tokens.New(context.Background(), tokens.Config{
		Secret: st.SecretName + "/versions/latest", SecretManagerEndpoint: st.Secrets.Addr(), TokenURL: tokenRedirect.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer refresh.Close()
	if _, err := refresh.Token(); err == nil {
		t.Error("a refresh redirected to another host succeeded")
	}
	if got := other.requests(); len(got) != 0 {
		t.Errorf("the other host received the refresh: %.40q", got)
	}
}
