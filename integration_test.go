package kiwicache

// Integration tests: the same behaviours on a real redis-server (see
// TestMain), where expiry runs on real time and commands go over TCP.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache/internal/jsonexact"
	"github.com/redis/go-redis/v9"
)

func TestRealRedisStampede(t *testing.T) {
	testStampede(t, realRedis(t), uniqueName(t))
}

// Records the Python library wrote, stored under their own keys, read through
// a Cache named as the Python class was.
func TestRealRedisGoldenRecords(t *testing.T) {
	rdb := realRedis(t)
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			key := strings.TrimSpace(string(readGolden(t, name+".key")))
			cacheName, suffix, _ := strings.Cut(strings.TrimPrefix(key, "resource:"), ":")
			if err := rdb.Set(t.Context(), key, readGolden(t, name+".record"), time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rdb.Del(context.Background(), key) })
			opts := []Option{WithAllowEmpty()}
			if suffix != "" {
				opts = append(opts, WithSuffix(suffix))
			}
			l := newCountingLoader[string, any](staticData(map[string]any{"wrong": "source"}))
			c := mustNew(t, cacheName, rdb, l, opts...)
			if c.Key() != key {
				t.Fatalf("Key() = %q, want %q", c.Key(), key)
			}
			s := must(c.Snapshot(t.Context()))
			got := make(map[string]any, s.Len())
			for k, v := range s.All() {
				got[k] = v
			}
			if diff := jsonexact.Diff(got, expectedItems(t, name)); diff != "" {
				t.Error(diff)
			}
			if n := l.calls.Load(); n != 0 {
				t.Errorf("loader called %d times with a valid record in Redis", n)
			}
		})
	}
}

// A refill writes exactly {data, timestamp} with SET EX cache_ttl, and
// releases its lock.
func TestRealRedisRefillWritesRecord(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	c := mustNew(t, name, rdb, LoaderFunc[string, item](staticData(twoItems)), WithReloadTTL(2*time.Second))
	before := time.Now()
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" {
		t.Errorf("Get(a) = %+v", v)
	}
	raw := must(rdb.Get(t.Context(), c.Key()).Bytes())
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || len(members) != 2 {
		t.Fatalf("record %s: members %v, %v", raw, members, err)
	}
	var ts float64
	if err := json.Unmarshal(members["timestamp"], &ts); err != nil || ts < float64(before.Unix()) {
		t.Errorf("timestamp = %s (%v), want float seconds after %d", members["timestamp"], err, before.Unix())
	}
	if ttl := must(rdb.TTL(t.Context(), c.Key()).Result()); ttl != 20*time.Second {
		t.Errorf("record TTL = %v, want 10 x ReloadTTL = 20s", ttl)
	}
	if n := must(rdb.Exists(t.Context(), "lock:"+name).Result()); n != 0 {
		t.Error("lock still held after the refill")
	}
	t.Cleanup(func() { rdb.Del(context.Background(), c.Key()) })
}

// A holder that died leaves a lock that Redis expires after its TTL; then
// one process loads.
func TestRealRedisDeadHolderLockExpires(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	if err := rdb.Set(t.Context(), "lock:"+name, "locked", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	l := newCountingLoader[string, item](staticData(twoItems))
	c1 := mustNew(t, name, rdb, l, WithRefillLockTTL(time.Second))
	c2 := mustNew(t, name, rdb, l, WithRefillLockTTL(time.Second))
	errs := make(chan error, 2)
	for _, c := range []*Cache[string, item]{c1, c2} {
		go func() { _, err := c.Get(t.Context(), "a"); errs <- err }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("loader calls = %d, want 1 once the dead holder's lock expired", n)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), c1.Key()) })
}

// Redis going away: the snapshot is still served, redis_error counted, and
// a reload is attempted once per ReloadTTL, not per read.
func TestRealRedisDown(t *testing.T) {
	srv := startTestRedis(t)
	opts := must(redis.ParseURL(srv.url()))
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	m := &recordedMetrics{}
	logs := &logBuffer{}
	c := mustNew(t, "Down", rdb, LoaderFunc[string, item](staticData(twoItems)),
		WithReloadTTL(100*time.Millisecond), WithMetrics(m), WithLogger(logs.logger()))
	if _, err := c.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}

	srv.kill()
	eventually(t, "a reload fails", func() bool {
		v, err := c.Get(t.Context(), "a")
		if err != nil || v.Name != "one" {
			t.Fatalf("Get with Redis down = %+v, %v", v, err)
		}
		return c.Health().LastError != nil
	})
	if h := c.Health(); !errors.Is(h.LastError, ErrRedis) || !h.HasData {
		t.Errorf("Health = %+v, want a Redis error and data", h)
	}
	if m.get("Down", StatusRedisError) == 0 {
		t.Error("redis_error not counted")
	}
	if !logs.has("ERROR", "kiwicache.load_failed") {
		t.Errorf("no load_failed log: %s", logs)
	}
}
