package kiwicache

import (
	"bytes"
	"context"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/redistest"
	"log/slog"
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
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"github.com/redis/go-redis/v9"
)

// realRedisURL is the redis-server the integration tests use: REDIS_URL, or
// one that TestMain starts; empty when neither is possible, and then
// noRealRedis says why.
var realRedisURL, noRealRedis string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode)) // a child process of a multi-process test
	}
	realRedisURL = os.Getenv("REDIS_URL")
	stop := func() {}
	if realRedisURL == "" {
		if srv, err := newRedisServer(); err != nil {
			noRealRedis = err.Error() + ", and REDIS_URL is unset"
		} else {
			realRedisURL, stop = srv.url(), srv.stop
		}
	}
	code := m.Run()
	stop()
	// One line per group of skipped tests, which "go test ./..." would
	// otherwise hide behind its "ok" line (make test prints them).
	skipreport.Report("github.com/kiwicache/kiwicache")
	os.Exit(code)
}

// A redisServer is a redis-server process from PATH on a loopback port of its
// own, which a test can kill and start again on the same port.
type redisServer struct {
	bin  string
	port int
	dir  string
	args []string // extra configuration: --requirepass, TLS, ...
	cmd  *exec.Cmd
}

// newRedisServer starts a redis-server with the extra arguments.
func newRedisServer(args ...string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "kiwicache-redis")
	if err != nil {
		return nil, err
	}
	s := &redisServer{bin: bin, port: port, dir: dir, args: args}
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startTestRedis starts a redis-server for one test, or skips the test.
func startTestRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	realRedis(t) // skips, saying why, when there is no redis-server
	s, err := newRedisServer(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
func (s *redisServer) url() string  { return "redis://" + s.addr() + "/0" }

// start starts the server, empty, and waits until it accepts connections.
func (s *redisServer) start() error {
	args := []string{"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir}
	for _, a := range s.args { // later settings win: "--port 0 --tls-port {port}"
		args = append(args, strings.ReplaceAll(a, "{port}", fmt.Sprint(s.port)))
	}
	s.cmd = exec.Command(s.bin, args...)
	redistest.DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	for range 200 {
		if c, err := net.Dial("tcp", s.addr()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on port %d did not start", s.port)
}

// kill ends the server with SIGKILL: no shutdown, no goodbye to clients.
func (s *redisServer) kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *redisServer) stop() {
	s.kill()
	os.RemoveAll(s.dir)
}

// realRedis returns a client of the real redis-server, or skips the test.
func realRedis(t testing.TB) *redis.Client {
	t.Helper()
	if realRedisURL == "" {
		skipreport.Skip(t, "real redis-server", noRealRedis)
	}
	opts, err := redis.ParseURL(realRedisURL)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// uniqueName is a cache name no other test (or earlier run) uses on a shared Redis.
func uniqueName(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return fmt.Sprintf("%s%d", b.String(), time.Now().UnixNano())
}

func newMiniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return mr, rdb
}

// countingLoader returns data and counts its calls.
type countingLoader[K comparable, V any] struct {
	calls atomic.Int64
	load  atomic.Pointer[func(context.Context) (map[K]V, error)]
}

func newCountingLoader[K comparable, V any](f func(context.Context) (map[K]V, error)) *countingLoader[K, V] {
	l := &countingLoader[K, V]{}
	l.set(f)
	return l
}

func (l *countingLoader[K, V]) set(f func(context.Context) (map[K]V, error)) { l.load.Store(&f) }

func (l *countingLoader[K, V]) Load(ctx context.Context) (map[K]V, error) {
	l.calls.Add(1)
	return (*l.load.Load())(ctx)
}

func staticData[K comparable, V any](data map[K]V) func(context.Context) (map[K]V, error) {
	return func(context.Context) (map[K]V, error) { return data, nil }
}

// recordedMetrics counts what a cache counts.
type recordedMetrics struct {
	mu     sync.Mutex
	counts map[string]int // "name/status"
}

func (m *recordedMetrics) Count(name string, s Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[name+"/"+string(s)]++
}

func (m *recordedMetrics) get(name string, s Status) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[name+"/"+string(s)]
}

// logBuffer captures log lines (JSON) for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// has reports whether a line with msg event at level was logged.
func (b *logBuffer) has(level, event string) bool {
	return strings.Contains(b.String(), fmt.Sprintf(`"level":%q,"msg":%q`, level, event))
}

// eventually polls cond until it holds; the deadline only catches a hang.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testOpts are options every unit test wants: its own registry, no stray logs.
//
// Push notifications are off (the reloads they start would add to the commands
// and loads that tests count): tests of push pass withPush (notify_test.go).
func testOpts(extra ...Option) []Option {
	return append([]Option{WithRegistry(new(Registry)), WithLogger(slog.New(slog.DiscardHandler)), WithoutPush()}, extra...)
}

func mustNew[K comparable, V any](t testing.TB, name string, rdb redis.UniversalClient, l Loader[K, V], opts ...Option) *Cache[K, V] {
	t.Helper()
	c, err := New(name, rdb, l, testOpts(opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
