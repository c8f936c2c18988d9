// Package cachetest holds what the tests of the metrics and status packages
// share: caches on an embedded Redis, a Refiller with a Health of the test's
// choosing, and one workload that passes through every metric.
package cachetest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// NewRedis starts an embedded Redis for the test and a client of it that does
// not retry (so that an injected error is met once).
func NewRedis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return mr, rdb
}

// NewCache returns a Cache that logs nothing, does not listen for push
// notifications (their reloads would add to the counts the tests expect), and
// is closed when the test ends.
func NewCache[V any](t testing.TB, name string, rdb redis.UniversalClient, load func(context.Context) (map[string]V, error), opts ...kiwicache.Option) *kiwicache.Cache[string, V] {
	t.Helper()
	opts = append([]kiwicache.Option{kiwicache.WithLogger(slog.New(slog.DiscardHandler)), kiwicache.WithoutPush()}, opts...)
	c, err := kiwicache.New(name, rdb, kiwicache.LoaderFunc[string, V](load), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A Refiller is registered with the Health it is given.
type Refiller struct {
	RecordKey string
	State     kiwicache.Health
}

// Key returns RecordKey.
func (r Refiller) Key() string { return r.RecordKey }

// Refill does nothing.
func (r Refiller) Refill(context.Context) error { return nil }

// Health returns State.
func (r Refiller) Health() kiwicache.Health { return r.State }

// Workload runs, on caches in reg that report to m:
//   - Airlines, loaded by a Get and refilled (two successes), then refilled
//     while Redis fails (a redis_error): 2 items, 1 consecutive failure;
//   - Rates:EUR, refilled twice from a failing source (two load_errors): no
//     data, 2 consecutive failures;
//   - Locked, refilled while another process holds its lock until its ctx
//     ends (a failed lock wait, a failed refill);
//   - Pushed, a Refiller reporting 1 item, a push connection, and a record,
//     a check and a notification 2 s before Workload began.
//
// It returns the Airlines record.
func Workload(t testing.TB, reg *kiwicache.Registry, m kiwicache.Metrics) string {
	t.Helper()
	mr, rdb := NewRedis(t)
	twoSecondsAgo := time.Now().Add(-2 * time.Second)
	reg.Register(Refiller{RecordKey: "resource:Pushed", State: kiwicache.Health{
		HasData: true, Items: 1, RecordTime: twoSecondsAgo, CheckedAt: twoSecondsAgo,
		PushConnected: true, LastNotification: twoSecondsAgo,
	}})
	type airline struct {
		Name string `json:"name"`
	}
	airlines := NewCache(t, "Airlines", rdb, func(context.Context) (map[string]airline, error) {
		return map[string]airline{"OK": {"Czech Airlines"}, "LH": {"Lufthansa"}}, nil
	}, kiwicache.WithMetrics(m), kiwicache.WithRegistry(reg))
	rates := NewCache(t, "Rates", rdb, func(context.Context) (map[string]float64, error) {
		return nil, errors.New("rates source down")
	}, kiwicache.WithSuffix("EUR"), kiwicache.WithMetrics(m), kiwicache.WithRegistry(reg))
	locked := NewCache(t, "Locked", rdb, func(context.Context) (map[string]int, error) {
		return map[string]int{"a": 1}, nil
	}, kiwicache.WithMetrics(m), kiwicache.WithRegistry(reg))

	ctx := context.Background()
	if _, err := airlines.Get(ctx, "OK"); err != nil {
		t.Fatal(err)
	}
	if err := airlines.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := rates.Refill(ctx); err == nil {
			t.Fatal("Refill of a failing source succeeded")
		}
	}
	mr.Set("lock:Locked", "another process")
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := locked.Refill(waitCtx); err == nil {
		t.Fatal("Refill under another process's lock succeeded")
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	airlines.Refill(ctx)
	mr.SetError("")
	record, _ := mr.Get("resource:Airlines")
	if record == "" {
		t.Fatal("no record in Redis")
	}
	return record
}
