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

// afterCommand runs then after the first command that match has run: another
// process acting between two of this one's commands.
type afterCommand struct {
	match func(redis.Cmder) bool
	then  func()
	done  bool
}

func (h *afterCommand) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterCommand) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !h.done && h.match(cmd) {
			h.done = true
			h.then()
		}
		return err
	}
}
func (h *afterCommand) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
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
					rdb.AddHook(&afterCommand{match: isCommand(tc.check, "resource:Items"), then: func() {
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
