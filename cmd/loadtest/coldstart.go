package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
	"github.com/chat-offboard/chat-offboard/internal/pubsubtest"
	"github.com/chat-offboard/chat-offboard/internal/pusher"
	"github.com/chat-offboard/chat-offboard/internal/workspaces"
)

// coldRun is one run of the cold-start mode: the built cmd/function, the
// environment it runs in, and the client that sends it events.
type coldRun struct {
	fl     flags
	done   cleanups
	bin    string
	host   string // the Pub/Sub emulator
	env    []string
	client *http.Client
	next   int // the next removal request to send
}

// coldStart builds cmd/function and measures its start-up K times, then its
// RSS after M events.
func coldStart(fl flags) error {
	c := &coldRun{fl: fl, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 2 * time.Minute}}
	defer c.done.run()
	if err := c.build(); err != nil {
		return err
	}
	if err := c.setup(context.Background()); err != nil {
		return err
	}
	var ready, listening []time.Duration
	for range fl.coldStart {
		toListen, toReady, err := c.startOnce()
		if err != nil {
			return err
		}
		ready = append(ready, toReady)
		listening = append(listening, toListen)
	}
	out := map[string]any{
		"coldStartRuns":      fl.coldStart,
		"toListen":           summary(listening),
		"toFirstEventServed": summary(ready),
		"pubsub":             c.host,
	}
	if fl.rssEvents > 0 {
		if err := c.rss(out); err != nil {
			return err
		}
	}
	return print(out, fl.jsonOut)
}

// build builds cmd/function into a temporary directory.
func (c *coldRun) build() error {
	dir, err := os.MkdirTemp("", "loadtest-function-")
	if err != nil {
		return err
	}
	c.done.add(func() { os.RemoveAll(dir) })
	c.bin = filepath.Join(dir, "function")
	build := exec.Command("go", "build", "-o", c.bin, "github.com/chat-offboard/chat-offboard/cmd/function")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building cmd/function: %w", err)
	}
	return nil
}

// setup starts the Pub/Sub emulator, the results topic and the emulations,
// and sets the function's environment to use them.
func (c *coldRun) setup(ctx context.Context) error {
	host, stopPS, err := pubsubtest.StartEmulator(ctx)
	if err != nil {
		return fmt.Errorf("Pub/Sub emulator: %w", err)
	}
	c.done.addErr(stopPS)
	c.host = host
	ps, err := pubsub.NewClient(ctx, project, pubsubtest.ClientOptions(host)...)
	if err != nil {
		return err
	}
	c.done.addErr(ps.Close)
	resTopic := pubsubtest.UniqueID("results")
	if err := pubsubtest.CreateTopic(ctx, ps, project, resTopic); err != nil {
		return err
	}
	stack, err := emulator.StartAll(workspaces.Crowd(space, c.fl.coldStart+c.fl.rssEvents+1), emulator.ChatOptions{})
	if err != nil {
		return err
	}
	c.done.add(stack.Close)
	c.env = append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+project,
		"TOKEN_SECRET="+stack.SecretName+"/versions/latest",
		"RESULT_TOPIC="+pubsubtest.TopicName(project, resTopic),
		"CHAT_ENDPOINT="+stack.Chat.URL(),
		"DIRECTORY_ENDPOINT="+stack.Directory.URL(),
		"SECRET_MANAGER_ENDPOINT="+stack.Secrets.Addr(),
		"PUBSUB_EMULATOR_HOST="+host,
		"CHAT_WRITES_PER_MINUTE=100000000", "CHAT_READS_PER_MINUTE=100000000",
		"LOCAL_ONLY=true")
	return nil
}

// post sends the next removal request to url.
func (c *coldRun) post(url string) (int, error) {
	i := c.next
	c.next++
	return postEvent(c.client, url, i)
}

// start starts the function on a free port; it returns the process, the
// address it will listen on, its URL and when it was started.
func (c *coldRun) start() (cmd *exec.Cmd, addr, url string, t0 time.Time, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", time.Time{}, err
	}
	addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd = exec.Command(c.bin)
	cmd.Env = append(c.env, "PORT="+port)
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", "", t0, err
	}
	return cmd, addr, "http://" + addr + "/", t0, nil
}

// stop kills the function and waits for it.
func stop(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// startOnce starts the function once and measures the time until it
// listens and until it has answered an event 2xx; then it stops it.
func (c *coldRun) startOnce() (toListen, toReady time.Duration, err error) {
	cmd, addr, url, t0, err := c.start()
	if err != nil {
		return 0, 0, err
	}
	defer stop(cmd)
	for {
		if toListen == 0 {
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				toListen = time.Since(t0)
			}
		}
		if toListen != 0 {
			st, err := c.post(url)
			if err == nil && st/100 == 2 {
				return toListen, time.Since(t0), nil
			}
			if err == nil {
				return 0, 0, fmt.Errorf("first event answered %d", st)
			}
		}
		if time.Since(t0) > 30*time.Second {
			return 0, 0, errors.New("the function did not serve an event within 30 s")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// rss starts the function once more, sends it -rss-events events (80 at a
// time) and adds its RSS, after the first and after all, to out.
func (c *coldRun) rss(out map[string]any) error {
	cmd, _, url, _, err := c.start()
	if err != nil {
		return err
	}
	defer stop(cmd)
	for {
		if st, err := c.post(url); err == nil && st/100 == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	afterOne := rssMiB(cmd.Process.Pid)
	sem := make(chan struct{}, 80)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := 1; i < c.fl.rssEvents; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if st, err := postEvent(c.client, url, c.next+i); err != nil || st/100 != 2 {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	out["rssAfterFirstEventMiB"] = fmt.Sprintf("%.1f", afterOne)
	out["rssAfterEventsMiB"] = fmt.Sprintf("%.1f after %d events (concurrency 80), %d failed", rssMiB(cmd.Process.Pid), c.fl.rssEvents, failed.Load())
	out["vmHWMMiB"] = fmt.Sprintf("%.1f", hwmMiB(cmd.Process.Pid))
	return nil
}

// postEvent POSTs removal request i as Eventarc delivers a Pub/Sub message
// (internal/pusher's binary-mode CloudEvent).
func postEvent(c *http.Client, url string, i int) (int, error) {
	now := time.Now().UTC()
	m := &pubsub.Message{
		ID:          "cold-" + strconv.Itoa(i) + "-" + strconv.FormatInt(now.UnixNano(), 36),
		Data:        request(i),
		PublishTime: now,
	}
	req, err := pusher.NewRequest(context.Background(), pusher.CloudEventBinary, url,
		pubsubtest.TopicName(project, "requests"), pubsubtest.SubscriptionName(project, "requests"), m)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
