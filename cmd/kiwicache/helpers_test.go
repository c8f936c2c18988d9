package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/redistest"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// binary is the command, built by TestMain: the tests run it as users do.
var binary string

// sharedRedis is the address of the redis-server the tests share, each in
// a database of its own: REDIS_URL's server, or one TestMain starts. Empty
// when there is none.
var sharedRedis string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiwicache-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kiwicache")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	stop := func() {}
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "REDIS_URL:", err)
			os.Exit(1)
		}
		sharedRedis = opts.Addr
	} else if s, err := newRedisServer(dir); err != nil {
		fmt.Fprintln(os.Stderr, "kiwicache CLI tests: no real redis-server, those tests skip:", err)
	} else {
		sharedRedis, stop = s.addr, s.stop
	}
	code := m.Run()
	stop()
	os.RemoveAll(dir)
	skipreport.Report("github.com/kiwicache/kiwicache/cmd/kiwicache")
	os.Exit(code)
}

// A redisServer is a redis-server process from PATH on a loopback port.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
}

func newRedisServer(dir string, args ...string) (*redisServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return newRedisServerAt(addr, dir, args...)
}

// newRedisServerAt starts a redis-server on addr, a loopback address.
func newRedisServerAt(addr, dir string, args ...string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (apt-get install redis-server)")
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, args...)...)
	redistest.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &redisServer{addr, cmd}
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("redis-server on %s did not start", addr)
}

func (s *redisServer) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// startRedis starts a redis-server of the test's own, configured by args, or
// skips the test.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	s, err := newRedisServer(t.TempDir(), args...)
	if err != nil {
		skipreport.Skip(t, "real redis-server", err.Error())
	}
	t.Cleanup(s.stop)
	return s.addr
}

var lastDB atomic.Int32

// realRedis returns the URL of an empty database of the shared redis-server
// that no other test of this package uses, or skips the test.
func realRedis(t *testing.T) string {
	t.Helper()
	if sharedRedis == "" {
		skipreport.Skip(t, "real redis-server", "no redis-server on PATH and REDIS_URL is unset")
	}
	db := lastDB.Add(1)
	if db > 15 {
		t.Fatal("more tests than the 15 databases of a redis-server beyond 0")
	}
	url := fmt.Sprintf("redis://%s/%d", sharedRedis, db)
	client(t, url).FlushDB(context.Background())
	return url
}

// miniRedis returns the URL of a miniredis of the test's own.
func miniRedis(t *testing.T) string {
	return "redis://" + miniredis.RunT(t).Addr() + "/0"
}

// backends are the servers a test runs against: miniredis, and a database
// of the real redis-server when there is one.
func backends(t *testing.T) map[string]func(*testing.T) string {
	b := map[string]func(*testing.T) string{"miniredis": miniRedis}
	if sharedRedis != "" {
		b["redis-server"] = realRedis
	} else {
		t.Log("no redis-server: the real-server half of this test is skipped")
	}
	return b
}

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// result is what a run of the command printed and its exit status.
type result struct {
	stdout, stderr string
	status         int
}

func (r result) String() string {
	return fmt.Sprintf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
}

// kiwicacheCmd runs the command with REDIS_URL=url.
func kiwicacheCmd(t *testing.T, url string, args ...string) result {
	t.Helper()
	return kiwicacheStdin(t, url, nil, args...)
}

func kiwicacheStdin(t *testing.T, url string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// expect checks the exit status and that stdout holds each of want.
func expect(t *testing.T, r result, status int, want ...string) {
	t.Helper()
	expectIn(t, r, status, "stdout", r.stdout, want)
}

// expectErr checks the exit status and that stderr holds each of want.
func expectErr(t *testing.T, r result, status int, want ...string) {
	t.Helper()
	expectIn(t, r, status, "stderr", r.stderr, want)
}

func expectIn(t *testing.T, r result, status int, name, output string, want []string) {
	t.Helper()
	if r.status != status {
		t.Errorf("exit status %d, want %d\n%s", r.status, status, r)
	}
	for _, s := range want {
		if !strings.Contains(output, s) {
			t.Errorf("%s lacks %q\n%s", name, s, r)
		}
	}
}

// A running is a command still running, its stdout read line by line.
type running struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
}

// A syncBuffer is a bytes.Buffer that a test may read while a process
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitStderr waits until the command has written s to stderr.
func (r *running) waitStderr(s string) {
	r.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(r.stderr.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q on stderr in 20s: %s", s, r.stderr)
		}
	}
}

func startCmd(t *testing.T, url string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{t: t, cmd: cmd, lines: make(chan string, 100), stderr: &syncBuffer{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			r.lines <- s.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return r
}

// next returns the next line of output. The bound only keeps a broken
// test from hanging; no assertion is made on how soon the line comes.
func (r *running) next() string {
	r.t.Helper()
	select {
	case line, ok := <-r.lines:
		if !ok {
			r.t.Fatalf("the command ended; stderr: %s", r.stderr)
		}
		return line
	case <-time.After(20 * time.Second):
		r.t.Fatalf("no line in 20s; stderr: %s", r.stderr)
	}
	return ""
}

// wait waits for the command's end and returns its exit status and the rest
// of its output.
func (r *running) wait() (int, []string) {
	r.t.Helper()
	var rest []string
	deadline := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-r.lines:
			if ok {
				rest = append(rest, line)
			}
			done = !ok
		case <-deadline:
			r.cmd.Process.Kill()
			r.t.Fatalf("the command did not end in 20s; stderr: %s", r.stderr)
		}
	}
	err := r.cmd.Wait()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		r.t.Fatal(err)
	}
	return r.cmd.ProcessState.ExitCode(), rest
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
