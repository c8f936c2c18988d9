package kiwicache

// A Redis failure at any step of a refill is the refill's error, naming the
// command and key: never swallowed, never turned into a wait.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// failNth fails the nth command that match (counting from 1), as a stalled
// Redis would.
type failNth struct {
	match func(redis.Cmder) bool
	n     int64
	seen  atomic.Int64
}

func (f *failNth) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failNth) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.match(cmd) && f.seen.Add(1) == f.n {
			cmd.SetErr(errors.New("i/o timeout (injected)"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (f *failNth) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestRefillStepFailures(t *testing.T) {
	isFetch := isScript(fetchScript)
	isLock := isCommand("set", "lock:Items")
	for _, tc := range []struct {
		step    string
		locked  bool // another process holds the lock at first
		fail    *failNth
		op, key string
	}{
		{"identifying the record", false, &failNth{match: isFetch, n: 1}, "fetch script", "resource:Items"},
		{"taking the lock", false, &failNth{match: isLock, n: 1}, "SET NX", "lock:Items"},
		{"looking again once the lock is taken", false, &failNth{match: isFetch, n: 2}, "fetch script", "resource:Items"},
		{"looking for the holder's record while waiting", true, &failNth{match: isFetch, n: 2}, "fetch script", "resource:Items"},
		{"taking the lock after a wait", true, &failNth{match: isLock, n: 2}, "SET NX", "lock:Items"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", tinyRecord)
			if tc.locked {
				mr.Set("lock:Items", "another process")
			}
			rdb.AddHook(tc.fail)
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithRefillLockTTL(time.Second))
			// Bounded: where the failure is lost, the refill would wait for
			// the other holder's lock (which never expires) for ever.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := c.Refill(ctx)
			var e *Error
			if !errors.Is(err, ErrRedis) || !errors.As(err, &e) || e.Op != tc.op || e.Key != tc.key {
				t.Errorf("Refill = %v, want ErrRedis from %s %s", err, tc.op, tc.key)
			}
			if l.calls.Load() != 0 || must(mr.Get("resource:Items")) != tinyRecord {
				t.Errorf("the source was loaded (%d) or the record replaced", l.calls.Load())
			}
			if got, _ := mr.Get("lock:Items"); !tc.locked && got != "" {
				t.Errorf("lock = %q after the failure, want it released", got)
			}
		})
	}
}

// While an abandoned Load still runs, a Refill fails at once with
// ErrLoaderBusy: it takes no lock and counts no load_error.
func TestBusyLoaderTakesNoLock(t *testing.T) {
	_, rdb := newMiniredis(t)
	m := &recordedMetrics{}
	release := make(chan struct{})
	defer close(release)
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-release // ignores its ctx
		return twoItems, nil
	})
	c := mustNew(t, "Items", rdb, l, WithMetrics(m))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c.Refill(ctx)
	before := m.get("Items", StatusLoadError)
	locks := &countCommands{match: isCommand("set", "lock:Items")}
	rdb.AddHook(locks)
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoaderBusy) {
		t.Fatalf("Refill = %v, want ErrLoaderBusy", err)
	}
	if n := locks.n.Load(); n != 0 {
		t.Errorf("%d lock attempts while the Loader was busy, want none", n)
	}
	if n := m.get("Items", StatusLoadError) - before; n != 0 {
		t.Errorf("%d load_error counted for a busy Loader, want none", n)
	}
}

// A Refill whose ctx ends while it waits for another process's lock returns
// at once, with an error that names the wait and wraps the ctx's.
func TestRefillWaitEndsWithContext(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("lock:Items", "another process")
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRefillLockTTL(5*time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := c.Refill(ctx)
	var e *Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Op != "wait for lock" || e.Key != "lock:Items" {
		t.Errorf("Refill = %v, want the wait for lock:Items ended by the deadline", err)
	}
}
