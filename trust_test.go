package kiwicache

// Trust: no silently stale data, no fleet-wide blow-up from one bad record,
// one Loader call at a time. Each test runs on the real redis-server.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// pyRecord is a record as Python 0.4.5 writes it, with the timestamp
// given as text (a clock ahead of ours, or a value Go refuses).
func pyRecord(name, timestamp string) string {
	return fmt.Sprintf(`{"data": {"a": {"id": 1, "name": %q, "price": 1.5, "tags": [], "active": true}}, "timestamp": %s}`, name, timestamp)
}

// A record from a writer whose clock is ahead, or with a timestamp Go refuses
// to parse, never blocks a refill: no decision compares clocks.
func TestRefillIgnoresWritersClock(t *testing.T) {
	rdb := realRedis(t)
	for _, ts := range []string{
		fmt.Sprintf("%.6f", float64(time.Now().Add(10*time.Minute).UnixMicro())/1e6), // 10 minutes ahead
		fmt.Sprintf("%.6f", float64(time.Now().Add(100*24*time.Hour).UnixMicro())/1e6),
		"9e9", "1e400", "99999999999",
	} {
		t.Run(ts, func(t *testing.T) {
			name := uniqueName(t)
			key := "resource:" + name
			rdb.Set(t.Context(), key, pyRecord("python", ts), 0)
			t.Cleanup(func() { rdb.Del(context.Background(), key) })
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, name, rdb, l, WithNoExpiry())
			if err := c.Refill(t.Context()); err != nil {
				t.Fatalf("Refill = %v", err)
			}
			if got := rdb.Get(t.Context(), key).Val(); !strings.Contains(got, `"one"`) {
				t.Errorf("record after Refill = %s, want the source's data", got)
			}
			other := mustNew(t, name, rdb, newCountingLoader[string, item](staticData(twoItems)))
			if v := must(other.Get(t.Context(), "a")); v.Name != "one" {
				t.Errorf("another process serves %+v, want the source's data", v)
			}
		})
	}
}

// A record with a timestamp Go refuses is replaced once, then reloads find
// the replacement unchanged: the source is not loaded at every reload.
func TestRefusedTimestampIsReplacedOnce(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	rdb.Set(t.Context(), "resource:"+name, pyRecord("python", "9e9"), 0)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name) })
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, name, rdb, l, WithReloadTTL(50*time.Millisecond))
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		c.Get(t.Context(), "a")
		time.Sleep(5 * time.Millisecond)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("source loads in 1s with ReloadTTL 50ms = %d, want 1", n)
	}
	t.Logf("figures: %d source load in 1 s of reads with ReloadTTL 50ms, record timestamp 9e9", l.calls.Load())
}

// Two loads overlap: A began first and lost its lock (it stalled), B took the
// lock and read newer data. Whichever writes first, B's data ends in Redis
// and in every process, and a load that does not write says so.
func TestOverlappingLoadsKeepNewerData(t *testing.T) {
	for _, aFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("olderWritesFirst=%v", aFirst), func(t *testing.T) {
			rdb := realRedis(t)
			name := uniqueName(t)
			key := "resource:" + name
			t.Cleanup(func() { rdb.Del(context.Background(), key, "lock:"+name) })
			rdb.Set(t.Context(), key, pyRecord("v0", "1764087331.5"), 0)

			aRead, aWrite := make(chan struct{}), make(chan struct{})
			a := mustNew(t, name, rdb, LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
				close(aRead)
				<-aWrite
				return map[string]item{"a": {Name: "v1"}}, nil
			}))
			b := mustNew(t, name, redis.NewClient(rdb.Options()), LoaderFunc[string, item](staticData(map[string]item{"a": {Name: "v2"}})))

			aDone := make(chan error, 1)
			go func() { aDone <- a.Refill(t.Context()) }()
			<-aRead
			rdb.Del(t.Context(), "lock:"+name) // A's lock expired while it stalled
			var bErr error
			if aFirst {
				close(aWrite)
				if err := <-aDone; err != nil {
					t.Errorf("A (the record was still the one it saw) = %v, want nil", err)
				}
				bErr = b.Refill(t.Context())
				if bErr != nil {
					t.Errorf("B (holds the lock) = %v, want nil", bErr)
				}
			} else {
				go func() {
					// A writes after B: wait for B's record, then let A go on.
					for !strings.Contains(rdb.Get(context.Background(), key).Val(), "v2") {
						time.Sleep(time.Millisecond)
					}
					close(aWrite)
				}()
				if bErr = b.Refill(t.Context()); bErr != nil {
					t.Errorf("B = %v, want nil", bErr)
				}
				if err := <-aDone; !errors.Is(err, ErrNotWritten) {
					t.Errorf("A (lost its lock, record changed) = %v, want ErrNotWritten", err)
				}
			}
			if got := rdb.Get(t.Context(), key).Val(); !strings.Contains(got, "v2") {
				t.Errorf("record = %s, want B's v2", got)
			}
			for who, c := range map[string]*Cache[string, item]{"A": a, "B": b} {
				if err := c.Reload(t.Context()); err != nil {
					t.Fatal(err)
				}
				if v := must(c.Get(t.Context(), "a")); v.Name != "v2" {
					t.Errorf("%s serves %q, want v2", who, v.Name)
				}
			}
		})
	}
}

// The process that loads serves exactly what every other process decodes
// from the record it wrote.
func TestLoaderProcessServesTheRecord(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name) })
	type row struct {
		N      any     `json:"n"`
		F      float64 `json:"f"`
		S      string  `json:"s"`
		Secret string  `json:"-"`
	}
	data := map[string]row{
		"int":     {N: 5, F: 2.0, S: "x"},
		"float":   {N: 2.0, S: "\xff bad utf-8"},
		"secret":  {N: "text", Secret: "only in the loader's map"},
		"big":     {N: uint64(math.MaxUint64)},
		"nested":  {N: map[string]any{"k": []any{1, 2.5, "s"}}},
		"float32": {N: float32(0.1)},
	}
	loading := mustNew(t, name, rdb, LoaderFunc[string, row](staticData(data)))
	if err := loading.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	reading := mustNew(t, name, redis.NewClient(rdb.Options()), LoaderFunc[string, row](staticData(map[string]row{})))
	sl := must(loading.Snapshot(t.Context()))
	sr := must(reading.Snapshot(t.Context()))
	for k := range data {
		vl, _ := sl.Get(k)
		vr, _ := sr.Get(k)
		if !reflect.DeepEqual(vl, vr) {
			t.Errorf("%s: the loading process serves %#v, another %#v", k, vl, vr)
		}
	}
	if v, _ := sl.Get("int"); v.N != Number("5") {
		t.Errorf("int in an any = %#v, want Number(5) as the record holds it", v.N)
	}
}

// A key of another Redis type where the record should be is replaced, as
// Python's SET replaces it.
func TestWrongTypeRecordIsRefilled(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	rdb.HSet(t.Context(), key, "field", "value")
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, name, rdb, l)
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
		t.Fatalf("Get = %+v, %v; want the source's data", v, err)
	}
	if typ := rdb.Type(t.Context(), key).Val(); typ != "string" || l.calls.Load() != 1 {
		t.Errorf("key type %s after %d loads, want a string record after 1", typ, l.calls.Load())
	}
}

// countingCodec counts Decode calls.
type countingCodec struct {
	JSONCodec[string, item]
	decodes *atomic.Int64
}

func (c countingCodec) Decode(b []byte) (Record[string, item], error) {
	c.decodes.Add(1)
	return c.JSONCodec.Decode(b)
}

// A malformed record is decoded once per reload and logged once, however the
// refill goes on.
func TestMalformedRecordDecodedOnce(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key, "lock:"+name) })
	logs := &logBuffer{}
	decodes := &atomic.Int64{}
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("source down")
	})
	c := mustNew(t, name, rdb, l, WithCodec[string, item](countingCodec{decodes: decodes}), WithLogger(logs.logger()))
	rdb.Set(t.Context(), key, `{"data": {"a": 1,,,}, "timestamp": 1.5}`, 0)
	c.Reload(t.Context())
	if n := decodes.Load(); n != 1 {
		t.Errorf("Decode called %d times in one reload, want 1", n)
	}
	if n := strings.Count(logs.String(), "kiwicache.malformed_cache_data"); n != 1 {
		t.Errorf("malformed_cache_data logged %d times, want 1:\n%s", n, logs)
	}
}

// During a rolling deploy that changes V, old and new processes find each
// other's record unusable: each replaces it at most once per CacheTTL, and
// serves its own snapshot meanwhile.
func TestSchemaChangeRefillsAreBounded(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name) })
	type oldRow struct {
		ID int `json:"id"`
	}
	type newRow struct {
		ID string `json:"id"`
	}
	opts := []Option{WithReloadTTL(100 * time.Millisecond), WithCacheTTL(time.Second)}
	oldLoads, newLoads := &atomic.Int64{}, &atomic.Int64{}
	old := mustNew(t, name, rdb, LoaderFunc[string, oldRow](func(context.Context) (map[string]oldRow, error) {
		oldLoads.Add(1)
		return map[string]oldRow{"a": {ID: 1}}, nil
	}), opts...)
	neu := mustNew(t, name, redis.NewClient(rdb.Options()), LoaderFunc[string, newRow](func(context.Context) (map[string]newRow, error) {
		newLoads.Add(1)
		return map[string]newRow{"a": {ID: "one"}}, nil
	}), opts...)
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if v, err := old.Get(t.Context(), "a"); err != nil || v.ID != 1 {
			t.Fatalf("old process: %+v, %v", v, err)
		}
		if v, err := neu.Get(t.Context(), "a"); err != nil || v.ID != "one" {
			t.Fatalf("new process: %+v, %v", v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	most := 2 * (int64(elapsed/time.Second) + 1) // one per CacheTTL per process
	if n := oldLoads.Load() + newLoads.Load(); n > most {
		t.Errorf("%d source loads in %v (old %d, new %d), want at most %d", n, elapsed, oldLoads.Load(), newLoads.Load(), most)
	}
	t.Logf("figures: %d + %d source loads in %v, ReloadTTL 100ms, CacheTTL 1s", oldLoads.Load(), newLoads.Load(), elapsed.Round(time.Millisecond))
}

// concurrencyLoader records how many Load calls run at once.
type concurrencyLoader struct {
	running, most atomic.Int64
	calls         atomic.Int64
	load          func(ctx context.Context) (map[string]item, error)
}

func (l *concurrencyLoader) Load(ctx context.Context) (map[string]item, error) {
	l.calls.Add(1)
	n := l.running.Add(1)
	defer l.running.Add(-1)
	for m := l.most.Load(); n > m && !l.most.CompareAndSwap(m, n); m = l.most.Load() {
	}
	return l.load(ctx)
}

// A Loader that ignores its ctx is never called again before it returns:
// later loads fail with ErrLoaderBusy, goroutines do not pile up, and none is
// left once it returns and the Cache is closed.
func TestLoaderIgnoringContextRunsOnce(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	l := &concurrencyLoader{load: func(context.Context) (map[string]item, error) {
		<-release // ignores ctx
		return twoItems, nil
	}}
	c := mustNew(t, name, rdb, l, WithReloadTTL(100*time.Millisecond), WithRefillLockTTL(time.Second))
	var busy int
	for range 10 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		if err := c.Refill(ctx); errors.Is(err, ErrLoaderBusy) {
			busy++
		}
		cancel()
	}
	if l.most.Load() != 1 || l.calls.Load() != 1 {
		t.Errorf("Load calls %d, at most %d at once; want 1 and 1", l.calls.Load(), l.most.Load())
	}
	if busy != 9 {
		t.Errorf("%d of the 9 later Refills failed with ErrLoaderBusy", busy)
	}
	if n := runtime.NumGoroutine(); n > before+3 {
		t.Errorf("goroutines %d -> %d with one hung Load", before, n)
	}
	during := runtime.NumGoroutine()
	close(release)
	c.Close()
	eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before+2 })
	t.Logf("figures: 10 Refills of 100 ms against a hung Load: %d Load call, %d ErrLoaderBusy; goroutines %d before, %d while hung, %d after Close",
		l.calls.Load(), busy, before, during, runtime.NumGoroutine())
}

// A Loader that honours ctx but returns late: Refills one after the other,
// each with a shorter timeout, never run two Load calls at once.
func TestSlowLoaderRunsOneAtATime(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
	l := &concurrencyLoader{load: func(ctx context.Context) (map[string]item, error) {
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond) // returns late
		return nil, ctx.Err()
	}}
	c := mustNew(t, name, rdb, l)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		c.Refill(ctx)
		cancel()
	}
	if m := l.most.Load(); m != 1 {
		t.Errorf("%d Load calls ran at once, want 1", m)
	}
	eventually(t, "the last Load returns", func() bool { return l.running.Load() == 0 })
}

// The lock watchdog: a load longer than RefillLockTTL keeps its lock, so a
// second process waits and takes its record instead of loading too.
func TestLockWatchdogKeepsSlowHolder(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
	started := make(chan struct{})
	slow := newCountingLoader[string, item](func(ctx context.Context) (map[string]item, error) {
		close(started)
		time.Sleep(2500 * time.Millisecond) // 2.5 lock TTLs
		return twoItems, nil
	})
	other := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "other"}}))
	opts := []Option{WithRefillLockTTL(time.Second)}
	a := mustNew(t, name, rdb, slow, opts...)
	b := mustNew(t, name, redis.NewClient(rdb.Options()), other, opts...)
	done := make(chan error, 1)
	go func() { done <- a.Refill(t.Context()) }()
	<-started
	if err := b.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if other.calls.Load() != 0 {
		t.Error("the second process loaded while the slow holder was alive")
	}
	if v := must(b.Get(t.Context(), "a")); v.Name != "one" {
		t.Errorf("the second process serves %+v, want the slow holder's data", v)
	}
	t.Logf("figures: a 2.5 s load under a 1 s lock kept it; the other process's source loads: %d", other.calls.Load())
}

// A ctx that ends during RefillAll is the caller's deadline, not a Redis
// failure; WithLoadTimeout bounds a slow source so the others proceed.
func TestRefillAllDeadlineIsNotRedisError(t *testing.T) {
	rdb := realRedis(t)
	reg := new(Registry)
	reg.Concurrency = 1
	m := &recordedMetrics{}
	logs := &logBuffer{}
	var names []string
	slowLoader := LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	for i := range 4 {
		name := fmt.Sprintf("%s%d", uniqueName(t), i)
		names = append(names, name)
		t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
		opts := []Option{WithRegistry(reg), WithMetrics(m), WithLogger(logs.logger())}
		if i == 0 {
			mustNew(t, name, rdb, slowLoader, append(opts, WithLoadTimeout(100*time.Millisecond))...)
		} else {
			mustNew(t, name, rdb, LoaderFunc[string, item](staticData(twoItems)), opts...)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err := reg.RefillAll(ctx)
	if !errors.Is(err, ErrLoadFailed) || !strings.Contains(err.Error(), names[0]) {
		t.Errorf("RefillAll = %v, want the slow cache's load error", err)
	}
	for _, name := range names[1:] {
		if rdb.Exists(t.Context(), "resource:"+name).Val() != 1 {
			t.Errorf("%s was not written: the slow source held the only slot", name)
		}
	}

	slow := mustNew(t, names[0]+"x", rdb, slowLoader, WithRegistry(nil), WithMetrics(m), WithLogger(logs.logger()))
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := slow.Refill(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refill past its deadline = %v, want context.DeadlineExceeded", err)
	}
	for _, name := range names {
		if n := m.get(name, StatusRedisError); n != 0 {
			t.Errorf("%s: %d redis_error counted for a deadline", name, n)
		}
	}
	if strings.Contains(logs.String(), "refill_lock_failed") || m.get(names[0]+"x", StatusRedisError) != 0 {
		t.Errorf("a deadline was logged or counted as a Redis failure:\n%s", logs)
	}
	t.Logf("figures: RefillAll, Concurrency 1, a source that waits for ctx with WithLoadTimeout(100ms): %d of %d other records written; redis_error counted: 0",
		len(names)-1, len(names)-1)
}

// WithMaxRecordSize holds for what is read, even when a writer alternates
// small and large records between the reader's commands.
func TestMaxRecordSizeHoldsUnderRace(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	small := pyRecord(strings.Repeat("s", 1000), "1764087331.5")
	large := pyRecord(strings.Repeat("L", 2500<<10), "1764087332.5")
	const max = 1 << 20
	c := mustNew(t, name, rdb, LoaderFunc[string, item](staticData(twoItems)), WithMaxRecordSize(max))
	ctx, cancel := context.WithCancel(t.Context())
	writer := redis.NewClient(rdb.Options())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			writer.Set(ctx, key, []string{small, large}[i%2], 0)
		}
	})
	installed := 0
	for range 300 {
		if c.Reload(t.Context()) == nil {
			installed++
		}
		if s := c.snap.Load(); s != nil && s.size() > max {
			t.Fatalf("a snapshot of %d bytes was installed, over the maximum %d", s.size(), max)
		}
	}
	cancel()
	wg.Wait()
	if installed == 0 {
		t.Error("no reload installed the small record: the race was not exercised")
	}
	t.Logf("figures: 300 reloads against a writer alternating 1 KB and 2.5 MB records: %d installed the small one, %d refused the large one, none over 1 MiB",
		installed, 300-installed)
}

// New refuses what Redis or the arithmetic cannot take, and every value
// that would fail later at run time.
func TestNewRefusesUnusableConfig(t *testing.T) {
	_, rdb := newMiniredis(t)
	var typedNil *redis.Client
	good := LoaderFunc[string, item](staticData(twoItems))
	cases := map[string]func() error{
		"reload TTL 30 years": func() error {
			_, err := New("A", rdb, good, WithReloadTTL(30*365*24*time.Hour))
			return err
		},
		"reload TTL MaxInt64": func() error { _, err := New("A", rdb, good, WithReloadTTL(math.MaxInt64)); return err },
		"lock TTL MaxInt64":   func() error { _, err := New("A", rdb, good, WithRefillLockTTL(math.MaxInt64)); return err },
		"cache TTL MaxInt64":  func() error { _, err := New("A", rdb, good, WithCacheTTL(math.MaxInt64)); return err },
		"typed nil client":    func() error { _, err := New("A", typedNil, good); return err },
		"nil option":          func() error { _, err := New("A", rdb, good, nil); return err },
		"nil LoaderFunc":      func() error { _, err := New("A", rdb, LoaderFunc[string, item](nil)); return err },
		"chan values":         func() error { _, err := New("A", rdb, LoaderFunc[string, chan int](nil)); return err },
		"func field": func() error {
			_, err := New("A", rdb, LoaderFunc[string, struct{ F func() }](nil))
			return err
		},
		"name with U+0085":    func() error { _, err := New("A\u0085", rdb, good); return err },
		"name with U+202E":    func() error { _, err := New("A\u202eB", rdb, good); return err },
		"name with U+00A0":    func() error { _, err := New("A\u00a0B", rdb, good); return err },
		"name with U+2028":    func() error { _, err := New("A\u2028B", rdb, good); return err },
		"name with U+009B":    func() error { _, err := New("A\u009bB", rdb, good); return err },
		"name not UTF-8":      func() error { _, err := New("A\xff", rdb, good); return err },
		"suffix with U+202E":  func() error { _, err := New("A", rdb, good, WithSuffix("x\u202e")); return err },
		"load timeout 0":      func() error { _, err := New("A", rdb, good, WithLoadTimeout(0)); return err },
		"nil codec":           func() error { _, err := New("A", rdb, good, WithCodec[string, item](nil)); return err },
		"codec of other type": func() error { _, err := New("A", rdb, good, WithCodec(JSONCodec[int, item]{})); return err },
	}
	for what, f := range cases {
		err := f()
		var e *Error
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &e) || e.Op != "new" {
			t.Errorf("%s: New = %v, want an *Error wrapping ErrInvalidConfig", what, err)
		}
	}
	// A value type that holds a func only behind json:"-", or an any, is fine.
	if _, err := New("A", rdb, LoaderFunc[string, struct {
		F func() `json:"-"`
		X any
	}](staticData(map[string]struct {
		F func() `json:"-"`
		X any
	}{})), WithRegistry(nil)); err != nil {
		t.Errorf("New with a json:\"-\" func field: %v", err)
	}
}

// With WithNoExpiry, a failed load never sends EXPIRE (whose non-positive TTL
// would delete the record) and a deleted record is written back.
func TestNoExpiryFailedLoadKeepsRecord(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, name, rdb, l, WithNoExpiry())
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Refill = %v, want ErrLoadFailed", err)
	}
	if ttl := rdb.TTL(t.Context(), key).Val(); ttl != -1 {
		t.Errorf("record TTL after a failed load = %v, want none (-1)", ttl)
	}
	rdb.Del(t.Context(), key)
	c.Refill(t.Context())
	if got := rdb.Get(t.Context(), key).Val(); !strings.Contains(got, `"one"`) {
		t.Errorf("record after a failed load with the record deleted = %q, want it written back", got)
	}
}

// Refill asks for fresh data: a record written while it waited for another
// process's lock is taken only if it was read from its source after Refill
// began, not the write-back of an older snapshot after that process's
// source failed. A record read later is taken without loading again.
func TestForcedRefillWaitsForFreshData(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		t.Run(fmt.Sprintf("holderWritesFresh=%v", fresh), func(t *testing.T) {
			rdb := realRedis(t)
			name := uniqueName(t)
			key := "resource:" + name
			t.Cleanup(func() { rdb.Del(context.Background(), key, "lock:"+name) })
			rdb.Set(t.Context(), "lock:"+name, "a service's token", 5*time.Second)
			l := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "cron's"}}))
			cron := mustNew(t, name, rdb, l)
			go func() {
				time.Sleep(200 * time.Millisecond)
				ts := "1764087331.5" // the service's old snapshot, written back
				if fresh {
					ts = fmt.Sprintf("%.6f", float64(time.Now().UnixMicro())/1e6)
				}
				rdb.Set(context.Background(), key, pyRecord("holder's", ts), 0)
				rdb.Del(context.Background(), "lock:"+name)
			}()
			if err := cron.Refill(t.Context()); err != nil {
				t.Fatalf("Refill = %v", err)
			}
			want, calls := "cron's", int64(1)
			if fresh {
				want, calls = "holder's", 0
			}
			if v := must(cron.Get(t.Context(), "a")); v.Name != want || l.calls.Load() != calls {
				t.Errorf("Refill serves %q after %d loads, want %q after %d", v.Name, l.calls.Load(), want, calls)
			}
			if got := rdb.Get(t.Context(), key).Val(); !strings.Contains(got, want) {
				t.Errorf("record = %s, want %q", got, want)
			}
		})
	}
}

// A process with no data that cannot replace an unusable record (its source
// is down a moment) tries again at its next reload, not a CacheTTL later.
func TestUnusableRecordRetriedWithoutData(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	rdb.Set(t.Context(), key, "not a record", 0)
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("source down a moment")
	})
	c := mustNew(t, name, rdb, l, WithReloadTTL(100*time.Millisecond), WithCacheTTL(time.Hour))
	if _, err := c.Get(t.Context(), "a"); !errors.Is(err, ErrNoData) {
		t.Fatalf("Get = %v, want ErrNoData while the source is down", err)
	}
	l.set(staticData(twoItems))
	eventually(t, "data once the source is back", func() bool {
		v, err := c.Get(t.Context(), "a")
		return err == nil && v.Name == "one"
	})
}

// failFirst makes the first command that match fails (as if Redis had
// stalled), once.
type failFirst struct {
	match func(redis.Cmder) bool
	// applied: the command reaches Redis and only its reply is lost.
	applied bool
	done    atomic.Bool
}

func (f *failFirst) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.match(cmd) && f.done.CompareAndSwap(false, true) {
			if f.applied {
				next(ctx, cmd)
			}
			cmd.SetErr(errors.New("i/o timeout (injected)"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (f *failFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func isScript(s *redis.Script) func(redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		args := cmd.Args()
		return len(args) > 1 && strings.HasPrefix(cmd.Name(), "evalsha") && args[1] == s.Hash()
	}
}

// One failed extension does not stop the watchdog: a live holder keeps its
// lock through a stall of Redis, and nobody else loads meanwhile.
func TestWatchdogSurvivesFailedExtension(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
	holderRdb := redis.NewClient(rdb.Options())
	holderRdb.AddHook(&failFirst{match: isScript(extendLockScript)})
	started := make(chan struct{})
	slow := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		close(started)
		time.Sleep(2500 * time.Millisecond)
		return twoItems, nil
	})
	other := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "other"}}))
	a := mustNew(t, name, holderRdb, slow, WithRefillLockTTL(time.Second))
	b := mustNew(t, name, rdb, other, WithRefillLockTTL(time.Second))
	done := make(chan error, 1)
	go func() { done <- a.Refill(t.Context()) }()
	<-started
	if err := b.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := other.calls.Load(); n != 0 {
		t.Errorf("the other process loaded %d times while the holder was alive", n)
	}
}

// A SET NX whose reply is lost (applied, then timed out) leaves no lock
// behind to block every refill for the lock's TTL.
func TestLostLockReplyReleasesLock(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "lock:"+name) })
	holderRdb := redis.NewClient(rdb.Options())
	holderRdb.AddHook(&failFirst{applied: true, match: func(cmd redis.Cmder) bool {
		return cmd.Name() == "set" && cmd.Args()[1] == "lock:"+name
	}})
	c := mustNew(t, name, holderRdb, LoaderFunc[string, item](staticData(twoItems)))
	if _, _, err := c.record.lock(t.Context()); !errors.Is(err, ErrRedis) {
		t.Fatalf("lock = %v, want the injected error", err)
	}
	if n := rdb.Exists(t.Context(), "lock:"+name).Val(); n != 0 {
		t.Error("the lock whose reply was lost is still held")
	}
}

// A lock TTL under a second is kept by Redis for a second: waiters pause by
// that, not by the shorter figure, and do not spin.
func TestTinyLockTTLDoesNotSpin(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "lock:"+name) })
	rdb.Set(t.Context(), "lock:"+name, "another process", 2*time.Second)
	cmds := &commandLog{}
	waiter := redis.NewClient(rdb.Options())
	waiter.AddHook(cmds)
	c := mustNew(t, name, waiter, LoaderFunc[string, item](staticData(twoItems)), WithRefillLockTTL(time.Nanosecond))
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	c.Refill(ctx)
	if n := len(cmds.take()); n > 10 {
		t.Errorf("%d commands in 1.5 s of waiting for the lock, want a few", n)
	}
}

// A user whose ACL allows only reads of resource:* reloads, as Python's
// plain GET does.
func TestReadOnlyUserReloads(t *testing.T) {
	srv, err := newRedisServer()
	if err != nil {
		t.Skip("integration test skipped:", err)
	}
	t.Cleanup(srv.stop)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	admin.Set(t.Context(), "resource:RO", tinyRecord, 0)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "reader", "on", ">pw", "%R~resource:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: "reader", Password: "pw"})
	t.Cleanup(func() { rdb.Close() })
	c := mustNew(t, "RO", rdb, LoaderFunc[string, item](staticData(twoItems)))
	if v, err := c.Get(t.Context(), "k0"); err != nil || v.Name != "item-0" {
		t.Errorf("Get by a read-only user = %+v, %v", v, err)
	}
}

// A deadline that cuts a command in flight (the client times it out while
// Redis is paused) is the deadline, not a Redis failure.
func TestDeadlineInFlightIsNotRedisError(t *testing.T) {
	srv, err := newRedisServer()
	if err != nil {
		t.Skip("integration test skipped:", err)
	}
	t.Cleanup(srv.stop)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	m := &recordedMetrics{}
	logs := &logBuffer{}
	c := mustNew(t, "Paused", rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m), WithLogger(logs.logger()))
	rdb.Ping(t.Context()) // a connection before the pause
	admin.Do(t.Context(), "CLIENT", "PAUSE", "1000", "ALL")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = c.Refill(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refill = %v, want the deadline", err)
	}
	if n := m.get("Paused", StatusRedisError); n != 0 || strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("%d redis_error counted for a deadline; log:\n%s", n, logs)
	}
}

// A Refill that Close interrupts still serves what it wrote: the newest
// snapshot, for good.
func TestCloseDuringRefillServesNewest(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l)
	must(c.Get(t.Context(), "a"))
	release := make(chan struct{})
	l.set(func(context.Context) (map[string]item, error) {
		<-release
		return map[string]item{"a": {Name: "v2"}}, nil
	})
	done := make(chan error, 1)
	go func() { done <- c.Refill(t.Context()) }()
	eventually(t, "the load runs", func() bool { return l.calls.Load() == 2 })
	c.Close()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "v2" {
		t.Errorf("after Close, Get = %q, want the refill's v2", v.Name)
	}
}

// A load that lost its lock because Redis restarted empty writes its record:
// there is none to protect.
func TestLostLockWritesWhereNoRecord(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	rdb.Set(t.Context(), key, pyRecord("old", "1764087331.5"), 0)
	release := make(chan struct{})
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-release
		return twoItems, nil
	})
	c := mustNew(t, name, rdb, l)
	done := make(chan error, 1)
	go func() { done <- c.Refill(t.Context()) }()
	eventually(t, "the load runs", func() bool { return l.calls.Load() == 1 })
	rdb.Del(t.Context(), key, "lock:"+name) // the restart
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Refill = %v, want nil", err)
	}
	if got := rdb.Get(t.Context(), key).Val(); !strings.Contains(got, `"one"`) {
		t.Errorf("record = %q, want the load's", got)
	}
}

// Source keys that would merge when written (invalid UTF-8 becomes U+FFFD)
// are a load error, not a silently smaller dataset: counted as load_error,
// logged, and nothing is written.
func TestMergingKeysAreRefused(t *testing.T) {
	mr, rdb := newMiniredis(t)
	m, logs := &recordedMetrics{}, &logBuffer{}
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(map[string]item{
		"\xff": {Name: "one"}, "\xfe": {Name: "two"}, "ok": {Name: "three"},
	})), WithMetrics(m), WithLogger(logs.logger()))
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) || !strings.Contains(err.Error(), "1 of the source's 3 keys") {
		t.Errorf("Refill = %v, want a load error about merged keys", err)
	}
	if n := m.get("Items", StatusLoadError); n != 1 || !logs.has("ERROR", "kiwicache.source_exception") {
		t.Errorf("load_error counted %d times, logged: %v; want once, logged", n, logs.has("ERROR", "kiwicache.source_exception"))
	}
	if mr.Exists("resource:Items") {
		t.Error("a record was written")
	}
}

// Errors print what they name safely: a refused name with terminal escapes
// is quoted, and RefillAll names each cache once.
func TestErrorTextIsSafeAndSingle(t *testing.T) {
	_, rdb := newMiniredis(t)
	_, err := New("A\x1b[31m\n", rdb, LoaderFunc[string, item](staticData(twoItems)))
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Errorf("New error = %q, want the name quoted", err)
	}
	reg := new(Registry)
	mustNew(t, "C00", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("down")
	}), WithRegistry(reg))
	if err := reg.RefillAll(t.Context()); err == nil || strings.Count(err.Error(), "resource:C00") != 1 {
		t.Errorf("RefillAll = %v, want the cache named once", err)
	}
}

// A load that hangs with a ctx that never ends (a cron job's
// context.Background()) keeps the lock through the watchdog only for a
// bounded time (10 lock TTLs without WithLoadTimeout): then another process
// takes the lock and loads.
func TestHungLoadReleasesLockEventually(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name, "lock:"+name) })
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	hung := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-hang // ignores its context
		return nil, errors.New("released")
	})
	a := mustNew(t, name, rdb, hung, WithRefillLockTTL(time.Second))
	go a.Refill(context.Background())
	eventually(t, "the hung load runs", func() bool { return hung.calls.Load() == 1 })
	start := time.Now()
	b := mustNew(t, name, redis.NewClient(rdb.Options()), LoaderFunc[string, item](staticData(twoItems)), WithRefillLockTTL(time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := b.Refill(ctx); err != nil {
		t.Fatalf("the other process's Refill = %v, want it to load once the hung holder's lock expired", err)
	}
	t.Logf("figures: a hung load with context.Background() held a 1 s lock for %v", time.Since(start).Round(100*time.Millisecond))
}
