package kiwicache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type item struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Price  float64  `json:"price"`
	Tags   []string `json:"tags"`
	Active bool     `json:"active"`
}

var twoItems = map[string]item{
	"a": {ID: 1, Name: "one", Price: 5, Tags: []string{"x"}},
	"b": {ID: 2, Name: "two", Price: 2.5, Active: true},
}

// must returns v, or fails the test (by panicking: it is called inline).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// First read: record present -> snapshot from it.
func TestFirstReadUsesRecordInRedis(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Tiny", string(readGolden(t, "tiny.record")))
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Tiny", rdb, l)

	got := must(c.Get(t.Context(), "k1"))
	want := item{ID: 1, Name: "item-1", Price: 1.25, Tags: []string{"a", "b"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Get(k1) = %+v, want %+v", got, want)
	}
	if n := l.calls.Load(); n != 0 {
		t.Errorf("loader called %d times with a record in Redis", n)
	}
	if _, err := c.Get(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(absent) error = %v, want ErrNotFound", err)
	}
}

// First read: record absent -> lock, loader, SET ... EX cache_ttl, snapshot.
func TestFirstReadRefillsMissingRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	m := &recordedMetrics{}
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithMetrics(m))

	if got := must(c.Get(t.Context(), "b")); got.Name != "two" {
		t.Errorf("Get(b) = %+v", got)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("loader calls = %d, want 1", n)
	}
	raw := must(mr.Get("resource:Items"))
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &members); err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members["data"] == nil || members["timestamp"] == nil {
		t.Errorf("record members = %v, want exactly data and timestamp", raw)
	}
	if ttl := mr.TTL("resource:Items"); ttl != 10*DefaultReloadTTL {
		t.Errorf("record TTL = %v, want the default 10 x ReloadTTL", ttl)
	}
	if mr.Exists("lock:Items") {
		t.Error("the refill lock was not released")
	}
	if m.get("Items", StatusSuccess) != 1 {
		t.Errorf("success count = %d, want 1", m.get("Items", StatusSuccess))
	}
}

// After ReloadTTL a read picks up a record that another process wrote.
func TestReloadPicksUpNewRecord(t *testing.T) {
	_, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)),
		WithReloadTTL(30*time.Millisecond))
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	other := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return map[string]item{"a": {Name: "new"}}, nil
	}))
	if err := other.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cache serves the new record", func() bool {
		v, _ := c.Get(t.Context(), "a")
		return v.Name == "new"
	})
	if _, err := c.Get(t.Context(), "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("b after the reload: error = %v, want ErrNotFound", err)
	}
}

// Stampede: 3 Cache values x 50 goroutines on an empty Redis: one load.
func TestStampedeLoadsOnce(t *testing.T) {
	_, rdb := newMiniredis(t)
	testStampede(t, rdb, "Stampede")
}

func testStampede(t *testing.T, rdb redis.UniversalClient, name string) {
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		time.Sleep(50 * time.Millisecond) // let everyone pile up on the lock
		return twoItems, nil
	})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 3 {
		c := mustNew(t, name, rdb, l, WithRefillLockTTL(time.Second))
		for range 50 {
			wg.Go(func() {
				v, err := c.Get(t.Context(), "a")
				if err != nil || v.Name != "one" {
					failures.Add(1)
					t.Errorf("Get = %+v, %v", v, err)
				}
			})
		}
	}
	wg.Wait()
	if n := l.calls.Load(); n != 1 {
		t.Errorf("loader calls = %d, want exactly 1", n)
	}
}

// With a snapshot, reads never wait; one background reload at a time.
func TestReadsWithSnapshotNeverWait(t *testing.T) {
	mr, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithReloadTTL(10*time.Millisecond))
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var running, most atomic.Int64
	l.set(func(context.Context) (map[string]item, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		return map[string]item{"a": {Name: "fresh"}}, nil
	})
	mr.Del("resource:Items") // the next reload must go to the (blocked) loader
	time.Sleep(30 * time.Millisecond)

	done := make(chan struct{})
	go func() { // if a Get waited on the blocked loader, this would never finish
		defer close(done)
		for range 200 {
			if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
				t.Errorf("Get during the reload = %+v, %v; want the old snapshot", v, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Get waited on a reload while a snapshot existed")
	}
	eventually(t, "the loader is called", func() bool { return l.calls.Load() == 2 })
	close(release)
	eventually(t, "the fresh data is served", func() bool {
		v, _ := c.Get(t.Context(), "a")
		return v.Name == "fresh"
	})
	if m := most.Load(); m != 1 {
		t.Errorf("%d loads ran at once, want 1", m)
	}
}

// Only the very first load blocks, and it honours ctx.
func TestFirstLoadHonoursContext(t *testing.T) {
	_, rdb := newMiniredis(t)
	release := make(chan struct{})
	defer close(release)
	l := LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		<-release
		return twoItems, nil
	})
	c := mustNew(t, "Items", rdb, l)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "a")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoData) {
		t.Errorf("Get with a short ctx: error = %v, want DeadlineExceeded and ErrNoData", err)
	}
}

// Loader error / panic / empty result: last good data served, record
// re-written from local data after it expired, load_error counted, logged.
func TestLoaderFailureKeepsGoodData(t *testing.T) {
	cases := map[string]struct {
		load func(context.Context) (map[string]item, error)
		want error
	}{
		"error": {func(context.Context) (map[string]item, error) { return nil, errors.New("db down") }, ErrLoadFailed},
		"panic": {func(context.Context) (map[string]item, error) { panic("boom") }, ErrLoadFailed},
		"empty": {func(context.Context) (map[string]item, error) { return map[string]item{}, nil }, ErrEmptyData},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			m, logs := &recordedMetrics{}, &logBuffer{}
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithMetrics(m), WithLogger(logs.logger()))
			if _, err := c.Get(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
			first := c.Health().RecordTime

			l.set(tc.load)
			mr.Del("resource:Items") // the record expired
			err := c.Reload(t.Context())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Reload error = %v, want %v", err, tc.want)
			}
			if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
				t.Errorf("Get after a failed load = %+v, %v; want the last good data", v, err)
			}
			rec := must(JSONCodec[string, item]{}.Decode([]byte(must(mr.Get("resource:Items")))))
			if len(rec.Data) != 2 || !rec.Timestamp.Equal(first) {
				t.Errorf("record written back = %+v, want the local data with its timestamp %v", rec, first)
			}
			if got := m.get("Items", StatusLoadError); got != 1 {
				t.Errorf("load_error count = %d, want 1", got)
			}
			if !logs.has("ERROR", "kiwicache.source_exception") {
				t.Errorf("no kiwicache.source_exception logged: %s", logs)
			}
			if h := c.Health(); !errors.Is(h.LastError, tc.want) || h.ConsecutiveFailures != 1 {
				t.Errorf("Health = %+v", h)
			}
		})
	}
}

// A failed load prolongs the record's TTL so other processes keep it.
func TestLoaderFailureProlongsRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithCacheTTL(time.Hour))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	mr.SetTTL("resource:Items", 3*time.Second)
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("db down") })
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Refill error = %v, want ErrLoadFailed", err)
	}
	if ttl := mr.TTL("resource:Items"); ttl != time.Hour {
		t.Errorf("record TTL after a failed load = %v, want it prolonged to 1h", ttl)
	}
}

// Redis down: last good data served, redis_error counted, at most one
// Redis attempt per ReloadTTL, not one per read.
func TestRedisDownServesStaleData(t *testing.T) {
	mr, rdb := newMiniredis(t)
	var commands atomic.Int64
	rdb.AddHook(countHook{&commands})
	m := &recordedMetrics{}
	const reloadTTL = 50 * time.Millisecond
	c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)),
		WithReloadTTL(reloadTTL), WithMetrics(m))
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	commands.Store(0)
	start := time.Now()
	reads := 0
	for time.Since(start) < 5*reloadTTL {
		if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
			t.Fatalf("Get with Redis down = %+v, %v", v, err)
		}
		reads++
	}
	elapsed := time.Since(start)
	eventually(t, "a redis_error is counted", func() bool { return m.get("Items", StatusRedisError) > 0 })
	// Each reload attempt is one round trip; allow one for the period in progress.
	if n, most := commands.Load(), int64(elapsed/reloadTTL)+1; n > most {
		t.Errorf("%d Redis commands in %v for %d reads, want at most %d (one per ReloadTTL)", n, elapsed, reads, most)
	}
	if h := c.Health(); h.LastError == nil || !errors.Is(h.LastError, ErrRedis) {
		t.Errorf("Health.LastError = %v, want ErrRedis", h.LastError)
	}
}

type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// MaxAttempts > 0: ErrAttemptsExhausted after that many failures with no
// data; negative: one attempt, no such error.
func TestMaxAttempts(t *testing.T) {
	fail := func(context.Context) (map[string]item, error) { return nil, errors.New("db down") }
	for _, tc := range []struct {
		max       int
		calls     int64
		exhausted bool
	}{{max: 3, calls: 3, exhausted: true}, {max: -1, calls: 1, exhausted: false}} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			_, rdb := newMiniredis(t)
			l := newCountingLoader[string, item](fail)
			c := mustNew(t, "Items", rdb, l, WithMaxAttempts(tc.max))
			_, err := c.Get(t.Context(), "a")
			if !errors.Is(err, ErrNoData) || !errors.Is(err, ErrLoadFailed) {
				t.Errorf("error = %v, want ErrNoData and ErrLoadFailed", err)
			}
			if errors.Is(err, ErrAttemptsExhausted) != tc.exhausted {
				t.Errorf("errors.Is(%v, ErrAttemptsExhausted) = %v, want %v", err, !tc.exhausted, tc.exhausted)
			}
			if n := l.calls.Load(); n != tc.calls {
				t.Errorf("loader calls = %d, want %d", n, tc.calls)
			}
		})
	}
}

// AllowEmpty.
func TestAllowEmpty(t *testing.T) {
	empty := func(context.Context) (map[string]item, error) { return nil, nil }
	t.Run("allowed", func(t *testing.T) {
		mr, rdb := newMiniredis(t)
		c := mustNew(t, "Empty", rdb, LoaderFunc[string, item](empty), WithAllowEmpty())
		if _, err := c.Get(t.Context(), "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get = %v, want ErrNotFound from an empty snapshot", err)
		}
		rec := must(JSONCodec[string, item]{}.Decode([]byte(must(mr.Get("resource:Empty")))))
		if rec.Data == nil || len(rec.Data) != 0 {
			t.Errorf("record data = %v, want {}", rec.Data)
		}
	})
	t.Run("refused", func(t *testing.T) {
		mr, rdb := newMiniredis(t)
		c := mustNew(t, "Empty", rdb, LoaderFunc[string, item](empty))
		if _, err := c.Get(t.Context(), "a"); !errors.Is(err, ErrEmptyData) || !errors.Is(err, ErrNoData) {
			t.Errorf("Get = %v, want ErrEmptyData and ErrNoData", err)
		}
		if mr.Exists("resource:Empty") {
			t.Error("empty data was written to Redis")
		}
	})
	t.Run("empty record is refilled", func(t *testing.T) {
		mr, rdb := newMiniredis(t)
		mr.Set("resource:EmptyTable", string(readGolden(t, "empty.record")))
		l := newCountingLoader[string, item](staticData(twoItems))
		c := mustNew(t, "EmptyTable", rdb, l)
		if _, err := c.Get(t.Context(), "a"); err != nil || l.calls.Load() != 1 {
			t.Errorf("Get = %v after %d loads; an empty record must be refilled without WithAllowEmpty", err, l.calls.Load())
		}
	})
}

// Key suffix, no-expiry and CacheTTL options.
func TestKeysAndExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		key     string
		wantTTL time.Duration
	}{
		{"default", nil, "resource:Rates", 10 * time.Minute},
		{"reload ttl", []Option{WithReloadTTL(3 * time.Second)}, "resource:Rates", 30 * time.Second},
		{"cache ttl", []Option{WithCacheTTL(90 * time.Minute)}, "resource:Rates", 90 * time.Minute},
		{"sub-second rounds up", []Option{WithReloadTTL(10 * time.Millisecond)}, "resource:Rates", time.Second},
		{"no expiry", []Option{WithNoExpiry()}, "resource:Rates", 0},
		{"suffix", []Option{WithSuffix("EUR")}, "resource:Rates:EUR", 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			c := mustNew(t, "Rates", rdb, LoaderFunc[string, item](staticData(twoItems)), tc.opts...)
			if c.Key() != tc.key {
				t.Errorf("Key() = %q, want %q", c.Key(), tc.key)
			}
			if _, err := c.Get(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
			if !mr.Exists(tc.key) {
				t.Fatalf("no record at %s; keys: %v", tc.key, mr.Keys())
			}
			if ttl := mr.TTL(tc.key); ttl != tc.wantTTL {
				t.Errorf("TTL = %v, want %v", ttl, tc.wantTTL)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := LoaderFunc[string, item](staticData(twoItems))
	for name, tc := range map[string]struct {
		name string
		rdb  redis.UniversalClient
		opts []Option
	}{
		"empty name":             {name: ""},
		"name with colon":        {name: "A:B"},
		"name with space":        {name: "A B"},
		"name with glob":         {name: "A*"},
		"name with newline":      {name: "A\nB"},
		"empty suffix":           {opts: []Option{WithSuffix("")}},
		"suffix with space":      {opts: []Option{WithSuffix("E R")}},
		"nil client":             {rdb: nil},
		"zero reload ttl":        {opts: []Option{WithReloadTTL(0)}},
		"negative lock ttl":      {opts: []Option{WithRefillLockTTL(-time.Second)}},
		"cache ttl below reload": {opts: []Option{WithReloadTTL(time.Minute), WithCacheTTL(time.Second)}},
		"zero cache ttl":         {opts: []Option{WithCacheTTL(0)}},
		"cache ttl and none":     {opts: []Option{WithCacheTTL(time.Hour), WithNoExpiry()}},
		"codec of other types":   {opts: []Option{WithCodec(JSONCodec[int, item]{})}},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.name == "" && name != "empty name" {
				tc.name = "Valid"
			}
			if tc.rdb == nil && name != "nil client" {
				tc.rdb = rdb
			}
			if _, err := New(tc.name, tc.rdb, l, testOpts(tc.opts...)...); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New[string, item]("Valid", rdb, nil, testOpts()...); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a nil loader: error = %v, want ErrInvalidConfig", err)
	}
	type point struct{ X, Y int }
	if _, err := New("Valid", rdb, LoaderFunc[point, int](nil), testOpts()...); !errors.Is(err, ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "key type") {
		t.Errorf("New with a struct key: error = %v, want ErrInvalidConfig about the key type", err)
	}
}

// Malformed records: warning logged, treated as missing, refilled.
func TestMalformedRecordIsRefilled(t *testing.T) {
	for _, name := range []string{"not_json", "no_timestamp", "extra_member", "data_is_array",
		"timestamp_is_string", "truncated", "empty", "null"} {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", string(readGolden(t, "malformed/"+name+".record")))
			logs := &logBuffer{}
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithLogger(logs.logger()))
			if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
				t.Fatalf("Get = %+v, %v", v, err)
			}
			if l.calls.Load() != 1 {
				t.Errorf("loader calls = %d, want 1", l.calls.Load())
			}
			if !logs.has("WARN", "kiwicache.malformed_cache_data") {
				t.Errorf("no malformed_cache_data warning: %s", logs)
			}
			if _, err := (JSONCodec[string, item]{}).Decode([]byte(must(mr.Get("resource:Items")))); err != nil {
				t.Errorf("the record was not replaced by a good one: %v", err)
			}
		})
	}
}

// Values of the wrong type for V make the record malformed, not a panic.
func TestWrongValueTypeIsMalformed(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Items", `{"data": {"a": {"id": "not a number"}}, "timestamp": 1.5}`)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l)
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" || l.calls.Load() != 1 {
		t.Errorf("Get = %+v, %v after %d loads", v, err, l.calls.Load())
	}
}

// A Codec that panics is contained: its Decode as a malformed record, its
// Encode as a failed load. Data that cannot be written is not served either:
// every process serves what the record holds.
func TestPanickingCodecIsContained(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Items", "anything")
	logs := &logBuffer{}
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithCodec[string, item](panicCodec{}),
		WithLogger(logs.logger()))
	var p *PanicError
	if _, err := c.Get(t.Context(), "a"); !errors.Is(err, ErrNoData) || !errors.Is(err, ErrLoadFailed) || !errors.As(err, &p) {
		t.Errorf("Get = %v; want ErrNoData, ErrLoadFailed and a *PanicError", err)
	}
	if h := c.Health(); !errors.Is(h.LastError, ErrLoadFailed) || !strings.Contains(h.LastError.Error(), "panic: encode") ||
		strings.Contains(h.LastError.Error(), "goroutine") {
		t.Errorf("Health.LastError = %v, want the encode panic as ErrLoadFailed, without a stack", h.LastError)
	}
	if got, _ := mr.Get("resource:Items"); got != "anything" {
		t.Errorf("record = %q, want it untouched", got)
	}
	// Both panics are logged with their stacks, the one of Decode and the
	// one of Encode.
	if n := strings.Count(logs.String(), `"msg":"kiwicache.codec_panicked"`); n < 2 ||
		!strings.Contains(logs.String(), `"panic":"encode"`) || !strings.Contains(logs.String(), `"panic":"decode"`) {
		t.Errorf("codec_panicked logged %d times, want the panics of Decode and Encode:\n%s", n, logs.String())
	}
}

type panicCodec struct{}

func (panicCodec) Encode(Record[string, item]) ([]byte, error) { panic("encode") }
func (panicCodec) Decode([]byte) (Record[string, item], error) { panic("decode") }

// A process that finds the lock taken waits and takes up the record the
// holder writes, without calling its own loader.
func TestLockedRefillWaitsForHolder(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("lock:Items", "locked") // a Python process holds the lock
	logs := &logBuffer{}
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(200*time.Millisecond), WithLogger(logs.logger()))

	go func() { // the holder finishes
		time.Sleep(300 * time.Millisecond)
		b, _ := JSONCodec[string, item]{}.Encode(Record[string, item]{
			Data: map[string]item{"a": {Name: "holder's"}}, Timestamp: time.Now()})
		mr.Set("resource:Items", string(b))
		mr.Del("lock:Items")
	}()
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "holder's" {
		t.Errorf("Get = %+v, %v; want the holder's record", v, err)
	}
	if n := l.calls.Load(); n != 0 {
		t.Errorf("loader called %d times while another process held the lock", n)
	}
	if !logs.has("WARN", "kiwicache.refill_locked") {
		t.Errorf("no refill_locked warning: %s", logs)
	}
}

// A holder that dies leaves a lock that expires; the next process loads.
func TestDeadHolderLockExpires(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("lock:Items", "locked")
	mr.SetTTL("lock:Items", 5*time.Second)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(50*time.Millisecond))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // miniredis time moves only when told
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				mr.FastForward(500 * time.Millisecond)
			}
		}
	}()
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
		t.Errorf("Get = %+v, %v", v, err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("loader calls = %d, want 1 after the dead holder's lock expired", n)
	}
}

// Release deletes only a lock this process holds, and every holder's token
// is its own.
func TestReleaseOnlyOwnLock(t *testing.T) {
	mr, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)))
	token, held, err := c.record.lock(t.Context())
	if err != nil || !held {
		t.Fatalf("lock = %v, %v", held, err)
	}
	if ttl := mr.TTL("lock:Items"); ttl != 5*time.Second {
		t.Errorf("lock TTL = %v, want 5s", ttl)
	}
	if _, held, _ := c.record.lock(t.Context()); held {
		t.Error("a second lock took a held lock")
	}
	mr.Set("lock:Items", "someone else's") // ours expired and another took it
	c.record.unlock(t.Context(), token)
	if !mr.Exists("lock:Items") {
		t.Error("unlock deleted another process's lock")
	}
	mr.Del("lock:Items")
	token2, _, _ := c.record.lock(t.Context())
	if token2 == token {
		t.Errorf("two holders got the same token %q", token)
	}
	c.record.unlock(t.Context(), token2)
	if mr.Exists("lock:Items") {
		t.Error("unlock of our own lock left it")
	}
}

// The pause doubles from 1 s up to the lock TTL.
func TestLockPauses(t *testing.T) {
	var got []time.Duration
	for p := nextLockPause(0, 5*time.Second); len(got) < 5; p = nextLockPause(p, 5*time.Second) {
		got = append(got, p)
	}
	if want := []time.Duration{1e9, 2e9, 4e9, 5e9, 5e9}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pauses = %v, want %v", got, want)
	}
	if p := nextLockPause(0, 300*time.Millisecond); p != 300*time.Millisecond {
		t.Errorf("first pause with a 300ms lock = %v", p)
	}
}

// Snapshot: whole-dataset reads, consistent and read-only.
func TestSnapshot(t *testing.T) {
	_, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)))
	s := must(c.Snapshot(t.Context()))
	if s.Len() != 2 {
		t.Errorf("Len = %d", s.Len())
	}
	keys := map[string]bool{}
	for k := range s.Keys() {
		keys[k] = true
	}
	for k, v := range s.All() {
		if twoItems[k].Name != v.Name {
			t.Errorf("All: %s = %+v", k, v)
		}
	}
	if len(keys) != 2 || !keys["a"] || !keys["b"] {
		t.Errorf("Keys = %v", keys)
	}
	v, _ := s.Get("a")
	v.Name = "changed by a caller"
	if again, _ := c.Get(t.Context(), "a"); again.Name != "one" {
		t.Errorf("a caller's change reached the cache: %+v", again)
	}
	if s.Timestamp().IsZero() || s.LoadedAt().Before(s.Timestamp()) {
		t.Errorf("Timestamp %v, LoadedAt %v", s.Timestamp(), s.LoadedAt())
	}
	var empty *Snapshot[string, item]
	if empty.Len() != 0 || len(collect(empty.Keys())) != 0 {
		t.Error("a nil Snapshot is not empty")
	}
}

func collect[K any](seq func(func(K) bool)) []K {
	var out []K
	for k := range seq {
		out = append(out, k)
	}
	return out
}

func TestCloseStopsLoading(t *testing.T) {
	_, rdb := newMiniredis(t)
	r := new(Registry)
	c, err := New("Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if len(r.Keys()) != 0 {
		t.Errorf("registry after Close: %v", r.Keys())
	}
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Errorf("Get after Close = %v, want the last snapshot", err)
	}
	if err := c.Reload(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close = %v, want ErrClosed", err)
	}
	if err := c.Refill(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Refill after Close = %v, want ErrClosed", err)
	}
}

// Get allocates nothing (with string and int keys).
func TestGetDoesNotAllocate(t *testing.T) {
	_, rdb := newMiniredis(t)
	cs := mustNew(t, "S", rdb, LoaderFunc[string, item](staticData(twoItems)))
	ci := mustNew(t, "I", rdb, LoaderFunc[int, item](staticData(map[int]item{7: {Name: "seven"}})))
	ctx := t.Context()
	cs.Get(ctx, "a")
	ci.Get(ctx, 7)
	if n := testing.AllocsPerRun(1000, func() { cs.Get(ctx, "a") }); n != 0 {
		t.Errorf("Get[string] allocates %v per run", n)
	}
	// A miss allocates its *Error, which names the cache and the key.
	if n := testing.AllocsPerRun(1000, func() { cs.Get(ctx, "missing") }); n != 1 {
		t.Errorf("Get[string] of a missing key allocates %v per run, want 1", n)
	}
	if n := testing.AllocsPerRun(1000, func() { ci.Get(ctx, 7) }); n != 0 {
		t.Errorf("Get[int] allocates %v per run", n)
	}
}

// With no data at all, a failed load makes reads fail fast for a while
// (ReloadTTL, at most a second) instead of each read hitting Redis again.
func TestNoDataFailsFast(t *testing.T) {
	mr, rdb := newMiniredis(t)
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)),
		WithReloadTTL(200*time.Millisecond))
	start := time.Now()
	for range 1000 {
		if _, err := c.Get(t.Context(), "a"); !errors.Is(err, ErrNoData) || !errors.Is(err, ErrRedis) {
			t.Fatalf("Get = %v, want ErrNoData and ErrRedis", err)
		}
	}
	elapsed := time.Since(start)
	if got, most := cmds.take(), int(elapsed/(200*time.Millisecond))+1; len(got) > most {
		t.Errorf("Redis commands %v for 1000 reads in %v, want at most %d (one per 200ms)", got, elapsed, most)
	}
	mr.SetError("")
	time.Sleep(200 * time.Millisecond)
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
		t.Errorf("Get once Redis is back = %+v, %v", v, err)
	}
}
