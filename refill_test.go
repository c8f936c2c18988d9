package kiwicache

// Refill from the caller's side: what it serves at once, what it takes from
// a lock holder and what it never takes, what it returns when its write
// fails, and the write-back after a failed load that never overwrites a
// newer record.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// After Refill on a cache that already serves data, Get serves the new data
// at once, not a ReloadTTL later, and Health describes the new snapshot.
func TestRefillServesNewDataAtOnce(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithReloadTTL(time.Hour))
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" {
		t.Fatalf("Get = %+v", v)
	}
	before := c.Health()
	l.set(staticData(map[string]item{"a": {Name: "new"}, "b": {}, "c": {}}))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "new" {
		t.Errorf("Get right after Refill = %q, want the new data", v.Name)
	}
	if s := must(c.Snapshot(t.Context())); s.Len() != 3 {
		t.Errorf("Snapshot right after Refill holds %d items, want 3", s.Len())
	}
	h := c.Health()
	if h.Items != 3 || !h.LoadedAt.After(before.LoadedAt) || !h.RecordTime.After(before.RecordTime) ||
		!h.CheckedAt.Equal(h.LoadedAt) || h.RecordSize <= before.RecordSize {
		t.Errorf("Health after Refill = %+v, before %+v; want the new snapshot", h, before)
	}
}

// A forced Refill that waits for another process's lock never takes the
// record that was there before it waited, even one stamped later than the
// Refill began (a writer's clock ahead): when the holder goes without
// writing, Refill loads its own source.
func TestForcedRefillNeverTakesRecordSeenBefore(t *testing.T) {
	mr, rdb := newMiniredis(t)
	ahead := pyRecord("before the wait", fmtUnix(time.Now().Add(time.Hour)))
	mr.Set("resource:Items", ahead)
	mr.Set("lock:Items", "a Python process")
	l := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "source"}}))
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(time.Second))
	go func() {
		time.Sleep(300 * time.Millisecond)
		mr.Del("lock:Items") // the holder's load failed: it releases without writing
	}()
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "source" || l.calls.Load() != 1 {
		t.Errorf("Refill serves %q after %d source loads, want its own source's data", v.Name, l.calls.Load())
	}
}

// fmtUnix is t as a record's timestamp.
func fmtUnix(t time.Time) string { return fmt.Sprintf("%.6f", float64(t.UnixMicro())/1e6) }

// A Refill whose write to Redis fails serves the new data in this process
// all the same, returns the Redis error, counts and reports it, and releases
// its lock; the record in Redis is left as it was.
func TestRefillWriteFails(t *testing.T) {
	mr, rdb := newMiniredis(t)
	m := &recordedMetrics{}
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithMetrics(m))
	must(c.Snapshot(t.Context()))
	before := must(mr.Get("resource:Items"))

	rdb.AddHook(&failFirst{match: isScript(writeScript)})
	l.set(staticData(map[string]item{"a": {Name: "new"}}))
	err := c.Refill(t.Context())
	var e *Error
	if !errors.Is(err, ErrRedis) || !errors.As(err, &e) || e.Op != "write script" || e.Key != "resource:Items" {
		t.Errorf("Refill = %v, want the write script's Redis error on resource:Items", err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "new" {
		t.Errorf("Get after a failed write = %q, want the new data", v.Name)
	}
	if got := must(mr.Get("resource:Items")); got != before {
		t.Errorf("record = %.60s, want the old one", got)
	}
	if mr.Exists("lock:Items") {
		t.Error("the lock was not released")
	}
	if h := c.Health(); h.ConsecutiveFailures != 1 || !errors.Is(h.LastError, ErrRedis) {
		t.Errorf("Health = %+v, want the failure", h)
	}
	if m.get("Items", StatusRedisError) != 1 || m.get("Items", StatusSuccess) != 1 {
		t.Errorf("counts: redis_error %d, success %d; want 1 and 1 (the first load)",
			m.get("Items", StatusRedisError), m.get("Items", StatusSuccess))
	}
}

// atCommand runs then after the first command that match has run (before
// it is sent, with before): another process acting between two of this
// one's commands.
type atCommand struct {
	match  func(redis.Cmder) bool
	then   func()
	before bool
	done   bool
}

func (h *atCommand) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *atCommand) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		run := !h.done && h.match(cmd)
		if run {
			h.done = true
		}
		if run && h.before {
			h.then()
		}
		err := next(ctx, cmd)
		if run && !h.before {
			h.then()
		}
		return err
	}
}
func (h *atCommand) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func isCommand(name, key string) func(redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		return cmd.Name() == name && len(cmd.Args()) > 1 && cmd.Args()[1] == key
	}
}

// After a failed load, a record that has expired is written back from the
// snapshot, but never over a record that another process wrote between
// this process finding it gone and writing it back.
func TestWriteBackNeverOverwritesNewerRecord(t *testing.T) {
	for name, tc := range map[string]struct {
		opts  []Option
		check string // the command that finds the record gone
	}{
		"cache TTL": {check: "expire"},
		"no expiry": {opts: []Option{WithNoExpiry()}, check: "exists"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, other := range []bool{false, true} {
				mr, rdb := newMiniredis(t)
				l := newCountingLoader[string, item](staticData(twoItems))
				c := mustNew(t, "Items", rdb, l, tc.opts...)
				must(c.Snapshot(t.Context()))
				newer := pyRecord("newer", fmtUnix(time.Now()))
				if other {
					rdb.AddHook(&atCommand{match: isCommand(tc.check, "resource:Items"), then: func() {
						mr.Set("resource:Items", newer)
					}})
				}
				mr.Del("resource:Items")
				l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
				if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
					t.Fatalf("Refill = %v, want ErrLoadFailed", err)
				}
				got := must(mr.Get("resource:Items"))
				if other && got != newer {
					t.Errorf("record = %.60s, want the one another process wrote meanwhile", got)
				}
				if !other && !strings.Contains(got, `"one"`) {
					t.Errorf("record = %.60s, want the snapshot written back", got)
				}
				if ttl := mr.TTL("resource:Items"); !other && (ttl == 0) != (name == "no expiry") {
					t.Errorf("record written back with TTL %v", ttl)
				}
			}
		})
	}
}

// A failed load with no snapshot to write back leaves a missing record
// missing; an empty snapshot is written back only with WithAllowEmpty.
func TestFailedLoadWithoutDataWritesNothing(t *testing.T) {
	mr, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("source down")
	}))
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Refill = %v", err)
	}
	if mr.Exists("resource:Items") {
		t.Errorf("with no snapshot, a record was written: %q", must(mr.Get("resource:Items")))
	}

	mr, rdb = newMiniredis(t)
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) { return nil, nil })
	c = mustNew(t, "Items", rdb, l, WithAllowEmpty())
	must(c.Snapshot(t.Context()))
	mr.Del("resource:Items")
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	c.Refill(t.Context())
	if got, _ := mr.Get("resource:Items"); !strings.HasPrefix(got, `{"data": {}`) {
		t.Errorf("empty snapshot with WithAllowEmpty: record = %q, want it written back", got)
	}
}

// A process that found the record missing, then took the lock after another
// process had written the record and released the lock, takes that record:
// it does not load its source.
func TestRefillTakesRecordWrittenBeforeItsLock(t *testing.T) {
	mr, rdb := newMiniredis(t)
	other := pyRecord("the other process's", fmtUnix(time.Now()))
	rdb.AddHook(&atCommand{before: true, match: isCommand("set", "lock:Items"), then: func() { mr.Set("resource:Items", other) }})
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l)
	if v := must(c.Get(t.Context(), "a")); v.Name != "the other process's" || l.calls.Load() != 0 {
		t.Errorf("Get = %q after %d source loads, want the other process's record and none", v.Name, l.calls.Load())
	}
	if got := must(mr.Get("resource:Items")); got != other {
		t.Errorf("record = %.60s, want the other process's kept", got)
	}
	if mr.Exists("lock:Items") {
		t.Error("the lock was not released")
	}
}

// A process waiting for another's lock does not take a record it could not
// serve (empty without WithAllowEmpty, or malformed): once the lock is free
// it loads its source.
func TestWaiterSkipsUnusableRecord(t *testing.T) {
	for name, record := range map[string]string{
		"empty":     `{"data": {}, "timestamp": 1764087331.5}`,
		"malformed": `{"data": {"a": 1,,}, "timestamp": 1764087331.5}`,
	} {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("lock:Items", "another process")
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(time.Second))
			go func() {
				time.Sleep(200 * time.Millisecond)
				mr.Set("resource:Items", record)
				time.Sleep(1200 * time.Millisecond) // past the waiter's first look
				mr.Del("lock:Items")
			}()
			if v := must(c.Get(t.Context(), "a")); v.Name != "one" || l.calls.Load() != 1 {
				t.Errorf("Get = %+v after %d source loads, want the source's data", v, l.calls.Load())
			}
			if mr.Exists("lock:Items") {
				t.Error("the lock it took after the wait was not released")
			}
		})
	}
}

// A refill whose ctx ends during the load still releases its lock, at once:
// the others need not wait out the lock's TTL.
func TestLockReleasedWhenContextEnds(t *testing.T) {
	mr, rdb := newMiniredis(t)
	hang := make(chan struct{})
	defer close(hang)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		<-hang
		return twoItems, nil
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Refill(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refill = %v", err)
	}
	if mr.Exists("lock:Items") {
		t.Error("the lock is still held after the refill gave up")
	}
}

// forgetfulCodec writes records it cannot read back.
type forgetfulCodec struct{ JSONCodec[string, item] }

func (forgetfulCodec) Decode([]byte) (Record[string, item], error) {
	return Record[string, item]{}, errors.New("cannot read this")
}

// Data that the codec writes but cannot read back is not written: a load
// error, since no process could serve the record.
func TestCodecThatCannotReadBackIsLoadError(t *testing.T) {
	mr, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithCodec[string, item](forgetfulCodec{}))
	err := c.Refill(t.Context())
	var e *Error
	if !errors.Is(err, ErrLoadFailed) || !errors.As(err, &e) || e.Op != "encode" || !strings.Contains(err.Error(), "cannot read back") {
		t.Errorf("Refill = %v, want an encode error: the codec cannot read back what it wrote", err)
	}
	if mr.Exists("resource:Items") {
		t.Error("a record no process can read was written")
	}
}

// switchingCodec stops encoding once told to.
type switchingCodec struct {
	JSONCodec[string, item]
	broken *atomic.Bool
}

func (c switchingCodec) Encode(rec Record[string, item]) ([]byte, error) {
	if c.broken.Load() {
		return nil, errors.New("encoder broken")
	}
	return c.JSONCodec.Encode(rec)
}

// A write-back after a failed load whose encoding fails is logged
// (kiwicache.save_failed); nothing is written.
func TestWriteBackEncodeFailureIsLogged(t *testing.T) {
	mr, rdb := newMiniredis(t)
	logs := &logBuffer{}
	broken := &atomic.Bool{}
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithCodec[string, item](switchingCodec{broken: broken}), WithLogger(logs.logger()))
	must(c.Snapshot(t.Context()))
	mr.Del("resource:Items")
	broken.Store(true)
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	c.Refill(t.Context())
	if !logs.has("ERROR", "kiwicache.save_failed") || !strings.Contains(logs.String(), "encoder broken") {
		t.Errorf("want kiwicache.save_failed with the encoder's error:\n%s", logs)
	}
	if mr.Exists("resource:Items") {
		t.Error("a record was written")
	}
}

// The watchdog stops at a lock that another process has taken, and says so
// once (kiwicache.refill_lock_lost); it leaves that process's lock alone.
func TestWatchdogStopsOnLostLock(t *testing.T) {
	mr, rdb := newMiniredis(t)
	logs := &logBuffer{}
	release := make(chan struct{})
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-release
		return twoItems, nil
	})
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(time.Second), WithLogger(logs.logger()))
	done := make(chan error, 1)
	go func() { done <- c.Refill(t.Context()) }()
	eventually(t, "the load runs", func() bool { return l.calls.Load() == 1 })
	mr.Set("lock:Items", "another process's token")
	mr.SetTTL("lock:Items", 5*time.Second)
	eventually(t, "the watchdog notices", func() bool { return logs.has("WARN", "kiwicache.refill_lock_lost") })
	time.Sleep(700 * time.Millisecond) // two more ticks of a watchdog that went on
	if n := strings.Count(logs.String(), "kiwicache.refill_lock_lost"); n != 1 {
		t.Errorf("refill_lock_lost logged %d times, want once: the watchdog stops", n)
	}
	if ttl := mr.TTL("lock:Items"); ttl != 5*time.Second {
		t.Errorf("the other process's lock TTL = %v, want its own 5s untouched", ttl)
	}
	close(release)
	<-done
	if got := must(mr.Get("lock:Items")); got != "another process's token" {
		t.Errorf("lock = %q, want the other process's", got)
	}
}

// A record that is gone is not data to take, even for a codec that reads
// an empty string as an empty dataset: a process that found the record
// malformed and waits for another's lock, and sees the record deleted
// meanwhile, loads its source once the lock is free.
func TestWaiterNeverTakesAMissingRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Items", `{"data": {"a": 1,,}, "timestamp": 1764087331.5}`)
	mr.Set("lock:Items", "another process")
	rdb.AddHook(&atCommand{match: isCommand("set", "lock:Items"), then: func() {
		// The holder deletes the record and releases its lock.
		mr.Del("resource:Items")
		mr.Del("lock:Items")
	}})
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(time.Second), WithAllowEmpty(),
		WithCodec[string, item](emptyIsEmptyCodec{}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if v, err := c.Get(ctx, "a"); err != nil || v.Name != "one" || l.calls.Load() != 1 {
		t.Errorf("Get = %+v, %v after %d source loads, want the source's data", v, err, l.calls.Load())
	}
}

// emptyIsEmptyCodec reads an empty string as an empty dataset.
type emptyIsEmptyCodec struct{ JSONCodec[string, item] }

func (c emptyIsEmptyCodec) Decode(b []byte) (Record[string, item], error) {
	if len(b) == 0 {
		return Record[string, item]{Timestamp: time.Now()}, nil
	}
	return c.JSONCodec.Decode(b)
}

// The write-back after a failed load restores any snapshot this process
// may serve: one item is data too.
func TestWriteBackOfOneItem(t *testing.T) {
	mr, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "only"}}))
	c := mustNew(t, "Items", rdb, l)
	must(c.Snapshot(t.Context()))
	mr.Del("resource:Items")
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Refill = %v, want ErrLoadFailed", err)
	}
	if got, _ := mr.Get("resource:Items"); !strings.Contains(got, `"only"`) {
		t.Errorf("record = %q, want the one-item snapshot written back", got)
	}
}

// Refill returns only once its lock's watchdog has stopped: no extension of
// the lock is still running when Refill returns (it would run after the
// lock's release, and find it lost).
func TestRefillStopsItsWatchdog(t *testing.T) {
	_, rdb := newMiniredis(t)
	extending := make(chan struct{}, 1)
	var ended atomic.Bool
	rdb.AddHook(&instead{match: isScript(extendLockScript), do: func(ctx context.Context) error {
		select {
		case extending <- struct{}{}:
		default:
		}
		<-ctx.Done() // the watchdog is stopped
		time.Sleep(100 * time.Millisecond)
		ended.Store(true)
		return ctx.Err()
	}})
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-extending // the load lasts until the watchdog extends the lock
		return twoItems, nil
	})
	c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(300*time.Millisecond))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatalf("Refill = %v", err)
	}
	if !ended.Load() {
		t.Error("Refill returned while its watchdog was still extending the lock")
	}
}

// instead runs do in place of the commands that match.
type instead struct {
	match func(redis.Cmder) bool
	do    func(ctx context.Context) error
}

func (h *instead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *instead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match(cmd) {
			err := h.do(ctx)
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (h *instead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
