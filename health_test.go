package kiwicache

// Health, counts and log records of failures and recoveries, and the retries
// of a reload.

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Consecutive failures count refills and reloads that failed in a row, and
// go back to zero after a success; the last error stays for the record.
func TestConsecutiveFailuresReset(t *testing.T) {
	_, rdb := newMiniredis(t)
	errDown := errors.New("source down")
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) { return nil, errDown })
	c := mustNew(t, "Items", rdb, l)
	for i := 1; i <= 3; i++ {
		c.Refill(t.Context())
		if h := c.Health(); h.ConsecutiveFailures != i || !errors.Is(h.LastError, errDown) || h.LastErrorTime.IsZero() {
			t.Fatalf("after %d failed refills: %+v", i, h)
		}
	}
	failedAt := c.Health().LastErrorTime
	l.set(staticData(twoItems))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.ConsecutiveFailures != 0 || !errors.Is(h.LastError, errDown) || !h.LastErrorTime.Equal(failedAt) {
		t.Errorf("after a successful refill: %+v; want 0 failures, the last error kept", h)
	}
	l.set(func(context.Context) (map[string]item, error) { return nil, errDown })
	c.Refill(t.Context())
	if err := c.Reload(t.Context()); err != nil { // the record is there: the reload succeeds
		t.Fatal(err)
	}
	if h := c.Health(); h.ConsecutiveFailures != 0 {
		t.Errorf("after a successful reload: %d consecutive failures, want 0", h.ConsecutiveFailures)
	}
}

// Source data that the codec cannot write (a NaN) is a load error: counted
// as load_error, logged, reported by Refill, and nothing is written.
func TestEncodeFailureIsLoadError(t *testing.T) {
	mr, rdb := newMiniredis(t)
	m, logs := &recordedMetrics{}, &logBuffer{}
	c := mustNew(t, "Floats", rdb, LoaderFunc[string, float64](staticData(map[string]float64{"nan": math.NaN()})),
		WithMetrics(m), WithLogger(logs.logger()))
	err := c.Refill(t.Context())
	var e *Error
	if !errors.Is(err, ErrLoadFailed) || !errors.As(err, &e) || e.Op != "encode" {
		t.Errorf("Refill = %v, want an encode error wrapping ErrLoadFailed", err)
	}
	if n := m.get("Floats", StatusLoadError); n != 1 {
		t.Errorf("load_error counted %d times, want 1", n)
	}
	if !logs.has("ERROR", "kiwicache.source_exception") {
		t.Errorf("the failed encode was not logged:\n%s", logs)
	}
	if mr.Exists("resource:Floats") {
		t.Error("a record was written")
	}
}

// A reload that gives up logs kiwicache.reload_failed at error level, saying
// whether stale data is still served.
func TestReloadFailedIsLogged(t *testing.T) {
	mr, rdb := newMiniredis(t)
	logs := &logBuffer{}
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	c := mustNew(t, "Items", rdb, l, WithLogger(logs.logger()))
	if err := c.Reload(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Reload = %v", err)
	}
	if !logs.has("ERROR", "kiwicache.reload_failed") || !strings.Contains(logs.String(), `"stale_data_kept":false`) {
		t.Errorf("want kiwicache.reload_failed with stale_data_kept false:\n%s", logs)
	}
	l.set(staticData(twoItems))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	mr.Del("resource:Items")
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	c.Reload(t.Context())
	if !strings.Contains(logs.String(), `"stale_data_kept":true`) {
		t.Errorf("want kiwicache.reload_failed with stale_data_kept true:\n%s", logs)
	}
}

// With WithMaxAttempts, a reload whose time runs out stops retrying at once:
// the source is not called again, and the error is the deadline, not
// ErrAttemptsExhausted (the attempts were not all made).
func TestRetriesStopWhenContextEnds(t *testing.T) {
	_, rdb := newMiniredis(t)
	var calls atomic.Int64
	l := LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
		calls.Add(1)
		<-ctx.Done() // a source slower than the reload's time
		return nil, ctx.Err()
	})
	// A reload is given max(ReloadTTL, 2 x RefillLockTTL): 2 s here.
	c := mustNew(t, "Items", rdb, l, WithMaxAttempts(5), WithReloadTTL(100*time.Millisecond), WithRefillLockTTL(time.Second))
	_, err := c.Get(t.Context(), "a")
	if !errors.Is(err, ErrNoData) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrAttemptsExhausted) {
		t.Errorf("Get = %v, want ErrNoData and the deadline, not ErrAttemptsExhausted", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the source was called %d times, want 1: retries must stop when the reload's time is up", n)
	}
}

// Each failed attempt of a reload counts as a failure; the reload's error
// says how many attempts were made.
func TestAttemptsAreCounted(t *testing.T) {
	_, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("source down")
	}), WithMaxAttempts(3))
	err := c.Reload(t.Context())
	if !errors.Is(err, ErrAttemptsExhausted) || !strings.Contains(err.Error(), "(3 in a row)") {
		t.Errorf("Reload = %v, want ErrAttemptsExhausted after 3 in a row", err)
	}
	if h := c.Health(); h.ConsecutiveFailures != 3 {
		t.Errorf("ConsecutiveFailures = %d, want 3", h.ConsecutiveFailures)
	}
}
