package kiwicache

// The fault suite: real redis-server processes killed, paused and
// cut off, sources that fail in every way, and real OS processes competing
// for the lock. Each test logs the figures that RELIABILITY.md reports.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// versionData is n items whose names carry the version of the source data.
func versionData(n int, version int64) map[string]item {
	data := make(map[string]item, n)
	for i := range n {
		data[fmt.Sprint("k", i)] = item{ID: i, Name: fmt.Sprint("v", version)}
	}
	return data
}

// faultClient is a client as a service would configure one: short timeouts,
// no retries (the cache has its own schedule).
func faultClient(t testing.TB, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// readers read key from every cache until stop is called, and count.
type readers struct {
	reads, errs, wrong atomic.Int64
	stop               chan struct{}
	wg                 sync.WaitGroup
}

func startReaders(t testing.TB, caches []*Cache[string, item], perCache int, key string, id int) *readers {
	r := &readers{stop: make(chan struct{})}
	for _, c := range caches {
		for range perCache {
			r.wg.Go(func() {
				for {
					select {
					case <-r.stop:
						return
					default:
					}
					v, err := c.Get(context.Background(), key)
					r.reads.Add(1)
					switch {
					case err != nil:
						r.errs.Add(1)
					case v.ID != id:
						r.wrong.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
				}
			})
		}
	}
	t.Cleanup(r.close)
	return r
}

func (r *readers) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// Redis killed (SIGKILL) while caches serve and reload, then
// restarted empty: reads never fail, the record is refilled once, and every
// cache converges on the source's data.
func TestFaultRedisKilledAndRestarted(t *testing.T) {
	srv := startTestRedis(t)
	name := uniqueName(t)
	debugLogs := &logBuffer{}
	defer func() {
		if t.Failed() {
			t.Log(debugLogs)
		}
	}()
	var version atomic.Int64
	version.Store(1)
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		return versionData(100, version.Load()), nil
	})
	var caches []*Cache[string, item]
	for range 3 { // three processes, each with its own connections
		c := mustNew(t, name, faultClient(t, srv.addr()), l,
			WithReloadTTL(100*time.Millisecond), WithCacheTTL(time.Minute), WithRefillLockTTL(time.Second),
			WithLogger(debugLogs.logger()))
		must(c.Get(t.Context(), "k7"))
		caches = append(caches, c)
	}
	r := startReaders(t, caches, 4, "k7", 7)

	srv.kill()
	readsBefore := r.reads.Load()
	time.Sleep(500 * time.Millisecond) // five reload periods without Redis
	readsDuring := r.reads.Load() - readsBefore
	version.Store(2)
	loadsBefore := l.calls.Load()
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for _, c := range caches {
		eventually(t, "every cache serves the refilled data", func() bool {
			v, err := c.Get(t.Context(), "k7")
			return err == nil && v.Name == "v2"
		})
	}
	converged := time.Since(restarted)
	r.close()

	if n := r.errs.Load() + r.wrong.Load(); n != 0 {
		t.Errorf("%d reads failed or were wrong while Redis was down or empty", n)
	}
	if n := l.calls.Load() - loadsBefore; n != 1 {
		t.Errorf("source loaded %d times after the restart, want exactly 1", n)
	}
	t.Logf("figures: %d reads served while Redis was dead (500ms), %d errors; %d reads in all; "+
		"%d source load after restart; converged %v after restart",
		readsDuring, r.errs.Load(), r.reads.Load(), l.calls.Load()-loadsBefore, converged.Round(time.Millisecond))
}

// Redis hung (CLIENT PAUSE): reads are not blocked, reloads give
// up at the client's timeout and count redis_error, goroutines stay bounded.
func TestFaultRedisHung(t *testing.T) {
	srv := startTestRedis(t)
	admin := faultClient(t, srv.addr())
	name := uniqueName(t)
	m := &recordedMetrics{}
	c := mustNew(t, name, faultClient(t, srv.addr()), LoaderFunc[string, item](staticData(versionData(100, 1))),
		WithReloadTTL(50*time.Millisecond), WithMetrics(m))
	must(c.Get(t.Context(), "k1"))
	base := runtime.NumGoroutine()

	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	var reads, errs int
	var slowest time.Duration
	peak := base
	for time.Since(paused) < 1200*time.Millisecond { // well inside the pause
		start := time.Now()
		if _, err := c.Get(t.Context(), "k1"); err != nil {
			errs++
		}
		reads++
		slowest = max(slowest, time.Since(start))
		peak = max(peak, runtime.NumGoroutine())
		time.Sleep(time.Millisecond)
	}
	if errs != 0 {
		t.Errorf("%d of %d reads failed during the pause", errs, reads)
	}
	if peak > base+10 {
		t.Errorf("goroutines grew from %d to %d during the pause", base, peak)
	}
	redisErrors := m.get(name, StatusRedisError)
	if redisErrors == 0 {
		t.Error("no redis_error counted while Redis was paused")
	}
	// After the pause, reloads work again.
	time.Sleep(time.Until(paused.Add(1600 * time.Millisecond)))
	if err := admin.Set(t.Context(), c.Key(), `{"data": {"k1": {"id": 1, "name": "after"}}, "timestamp": 2000000000.0}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cache reloads after the pause", func() bool {
		v, _ := c.Get(t.Context(), "k1")
		return v.Name == "after"
	})
	t.Logf("figures: %d reads during a 1.2s pause, %d errors, slowest %v; goroutines %d -> peak %d; %d redis_error counted",
		reads, errs, slowest.Round(time.Microsecond), base, peak, redisErrors)
}

// A proxy that cuts a 10 MB reply, delays and drops connections:
// never a partial snapshot; the failure is counted as redis_error.
func TestFaultProxy(t *testing.T) {
	srv := startTestRedis(t)
	admin := faultClient(t, srv.addr())
	p := newFaultProxy(t, srv.addr())
	name := uniqueName(t)
	key := "resource:" + name
	const n = 100_000
	records := []string{
		string(pythonRecord(n, "1764087331.000001")),
		string(pythonRecord(n, "1764087391.000002")),
		string(pythonRecord(n, "1764087451.000003")),
	}
	admin.Set(t.Context(), key, records[0], time.Minute)
	m := &recordedMetrics{}
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), ReadTimeout: 10 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := mustNew(t, name, rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	whole := func(when string, versions ...int) {
		t.Helper()
		s := must(c.Snapshot(t.Context()))
		ok := false
		for _, v := range versions {
			ok = ok || s.Timestamp().Equal(must(JSONCodec[string, any]{}.Decode([]byte(`{"data": {}, "timestamp": `+records[v][len(records[v])-18:]))).Timestamp)
		}
		if s.Len() != n || !ok {
			t.Errorf("%s: snapshot of %d items at %v, want all %d of version %v", when, s.Len(), s.Timestamp(), n, versions)
		}
	}

	admin.Set(t.Context(), key, records[1], time.Minute)
	p.cutAfter(5 << 20) // the reply stops halfway
	err := c.Reload(t.Context())
	if !errors.Is(err, ErrRedis) {
		t.Errorf("Reload through a cut reply: %v, want ErrRedis", err)
	}
	whole("after a cut reply", 0)
	cutErrors := m.get(name, StatusRedisError)
	if cutErrors == 0 {
		t.Error("the cut reply was not counted as redis_error")
	}

	p.cutAfter(0)
	p.delay.Store(int64(2 * time.Millisecond)) // per 64 KiB: ~0.3s for the record
	start := time.Now()
	if err := c.Reload(t.Context()); err != nil {
		t.Errorf("Reload through a slow proxy: %v", err)
	}
	slow := time.Since(start)
	whole("after a slow reply", 1)

	admin.Set(t.Context(), key, records[2], time.Minute)
	done := make(chan error)
	go func() { done <- c.Reload(t.Context()) }()
	time.Sleep(50 * time.Millisecond)
	p.dropAll() // mid-reply
	dropErr := <-done
	whole("after dropped connections", 1, 2)
	p.delay.Store(0)
	if err := c.Reload(t.Context()); err != nil {
		t.Errorf("Reload after the faults: %v", err)
	}
	whole("after the faults", 2)
	t.Logf("figures: cut at 5 MiB of 10 MB -> %v; %d redis_error; slow reply reloaded in %v; drop mid-reply -> %v",
		err, cutErrors, slow.Round(time.Millisecond), dropErr)
}

// A loader that hangs past its context holds the lock only while its reload
// lasts (the watchdog extends the lock while a load runs, and stops when the
// load's ctx ends): another process then loads, and the hung one takes up its
// record. Source data 100 times larger is then taken by all.
func TestFaultHungLoader(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	hung := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-hang // ignores its context
		return versionData(10, 0), nil
	})
	good := newCountingLoader[string, item](staticData(versionData(10, 1)))
	opts := []Option{WithReloadTTL(100 * time.Millisecond), WithCacheTTL(time.Minute), WithRefillLockTTL(time.Second)}
	a := mustNew(t, name, rdb, hung, opts...)
	b := mustNew(t, name, rdb, good, opts...)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name) })

	go a.Reload(t.Context())
	eventually(t, "the hung process holds the lock", func() bool { return hung.calls.Load() == 1 })
	start := time.Now()
	eventually(t, "the other process loads", func() bool {
		v, err := b.Get(t.Context(), "k1")
		return err == nil && v.Name == "v1"
	})
	waited := time.Since(start)
	eventually(t, "the hung process serves the other's record", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		v, err := a.Get(ctx, "k1")
		return err == nil && v.Name == "v1"
	})
	if good.calls.Load() != 1 {
		t.Errorf("good loader called %d times, want 1", good.calls.Load())
	}

	good.set(staticData(versionData(1000, 2))) // 100 times the data
	if err := b.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both serve the larger data", func() bool {
		sa, _ := a.Snapshot(t.Context())
		sb, _ := b.Snapshot(t.Context())
		return sa.Len() == 1000 && sb.Len() == 1000
	})
	t.Logf("figures: the other process got data %v after the hung holder took the lock (lock TTL 1s, reload timeout 2s); "+
		"source loads: hung %d, good %d", waited.Round(time.Millisecond), hung.calls.Load(), good.calls.Load())
}

// Child processes of the multi-process tests (TestMain runs them).
const (
	helperEnv     = "KIWICACHE_TEST_HELPER"
	helperNameEnv = "KIWICACHE_TEST_NAME"
)

func runHelper(mode string) int {
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		fmt.Println("REDIS_URL:", err)
		return 2
	}
	rdb := redis.NewClient(opts)
	name := os.Getenv(helperNameEnv)
	countedLoad := func(ctx context.Context) (map[string]item, error) {
		rdb.Incr(ctx, "loads:"+name)
		if mode == "lockholder" {
			fmt.Println("loading")
			select {} // killed before it writes
		}
		time.Sleep(200 * time.Millisecond)
		return versionData(100, 1), nil
	}
	c, err := New(name, rdb, LoaderFunc[string, item](countedLoad), WithRefillLockTTL(2*time.Second),
		WithRegistry(nil))
	if err != nil {
		fmt.Println(err)
		return 2
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Go(func() {
			if v, err := c.Get(context.Background(), "k3"); err != nil || v.ID != 3 {
				fmt.Println("Get:", v, err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 1
	}
	fmt.Println("ok")
	return 0
}

func helperCommand(t *testing.T, mode, name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperNameEnv+"="+name, "REDIS_URL="+realRedisURL)
	cmd.Stderr = os.Stderr
	return cmd
}

// A real process takes the lock and is killed (SIGKILL) before it
// writes: the others get the data within RefillLockTTL plus one pause, with
// exactly one more source load.
func TestFaultLockHolderKilled(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "loads:"+name) })
	holder := helperCommand(t, "lockholder", name)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "loading\n" {
		t.Fatalf("lock holder said %q, %v", line, err)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	killed := time.Now()

	loader := newCountingLoader[string, item](func(ctx context.Context) (map[string]item, error) {
		rdb.Incr(ctx, "loads:"+name)
		return versionData(100, 1), nil
	})
	const lockTTL = 2 * time.Second
	c := mustNew(t, name, rdb, loader, WithRefillLockTTL(lockTTL))
	if v, err := c.Get(t.Context(), "k3"); err != nil || v.ID != 3 {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	took := time.Since(killed)
	loads := must(rdb.Get(t.Context(), "loads:"+name).Int())
	if loads != 2 {
		t.Errorf("source loads = %d, want 2 (the killed holder's and one more)", loads)
	}
	if most := lockTTL + lockTTL; took > most+time.Second { // the lock, plus one pause (≤ lock TTL)
		t.Errorf("data came %v after the holder died, want within %v", took, most)
	}
	t.Logf("figures: data %v after the lock holder was killed (lock TTL %v); source loads in all: %d",
		took.Round(time.Millisecond), lockTTL, loads)
}

// 8 processes x 20 goroutines on an empty Redis: the source is
// loaded exactly once in all (counted with INCR inside the loader).
func TestFaultStampedeAcrossProcesses(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "loads:"+name) })
	var procs []*exec.Cmd
	var outs []*strings.Builder
	for range 8 {
		cmd := helperCommand(t, "stampede", name)
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, outs = append(procs, cmd), append(outs, out)
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil || outs[i].String() != "ok\n" {
			t.Errorf("process %d: %v, said %q", i, err, outs[i].String())
		}
	}
	loads := must(rdb.Get(t.Context(), "loads:"+name).Int())
	if loads != 1 {
		t.Errorf("source loaded %d times by 8 processes, want exactly 1", loads)
	}
	served := 0
	for _, out := range outs {
		served += 20 * strings.Count(out.String(), "ok\n") // a process says ok when its 20 reads succeeded
	}
	t.Logf("figures: 8 processes x 20 goroutines, %d of 160 reads served; source loads: %d", served, loads)
}
