package kiwicache

// Options at their edges: the bounds New accepts and the first value past
// them it refuses, and the TTLs that reach Redis.

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// Every bound is inclusive where the documentation says "at least" or "up
// to", and the next value past it is refused.
func TestOptionBounds(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := LoaderFunc[string, item](staticData(twoItems))
	for _, tc := range []struct {
		name string
		opts []Option
		ok   bool
	}{
		{"reload TTL MaxTTL", []Option{WithReloadTTL(MaxTTL), WithCacheTTL(MaxTTL)}, true},
		{"reload TTL over MaxTTL", []Option{WithReloadTTL(MaxTTL + 1), WithNoExpiry()}, false},
		{"reload TTL 1ns", []Option{WithReloadTTL(1)}, true},
		{"lock TTL MaxTTL", []Option{WithRefillLockTTL(MaxTTL)}, true},
		{"lock TTL over MaxTTL", []Option{WithRefillLockTTL(MaxTTL + 1)}, false},
		{"lock TTL 0", []Option{WithRefillLockTTL(0)}, false},
		{"lock TTL 1ns", []Option{WithRefillLockTTL(1)}, true},
		{"cache TTL MaxTTL", []Option{WithCacheTTL(MaxTTL)}, true},
		{"cache TTL over MaxTTL", []Option{WithCacheTTL(MaxTTL + 1)}, false},
		{"cache TTL equal to reload TTL", []Option{WithReloadTTL(time.Minute), WithCacheTTL(time.Minute)}, true},
		{"cache TTL under reload TTL", []Option{WithReloadTTL(time.Minute), WithCacheTTL(time.Minute - 1)}, false},
		{"cache TTL 1ns", []Option{WithReloadTTL(1), WithCacheTTL(1)}, true},
		{"negative cache TTL", []Option{WithCacheTTL(-time.Second)}, false},
		{"default cache TTL at MaxTTL", []Option{WithReloadTTL(MaxTTL / DefaultCacheTTLFactor)}, true},
		{"default cache TTL over MaxTTL", []Option{WithReloadTTL(MaxTTL/DefaultCacheTTLFactor + 1)}, false},
		{"no expiry with a long reload TTL", []Option{WithReloadTTL(MaxTTL), WithNoExpiry()}, true},
		{"load timeout 1ns", []Option{WithLoadTimeout(1)}, true},
		{"negative load timeout", []Option{WithLoadTimeout(-1)}, false},
		{"max record size 1", []Option{WithMaxRecordSize(1)}, true},
		{"negative max record size", []Option{WithMaxRecordSize(-1)}, false},
		{"min items 1", []Option{WithMinItems(1)}, true},
		{"min items 0", []Option{WithMinItems(0)}, false},
		{"max shrink just under 1", []Option{WithMaxShrink(0.999)}, true},
		{"max shrink 1", []Option{WithMaxShrink(1)}, false},
		{"max shrink just over 0", []Option{WithMaxShrink(0.001)}, true},
		{"negative max shrink", []Option{WithMaxShrink(-0.5)}, false},
		{"an option error after a good option", []Option{WithSuffix("ok"), WithMinItems(0)}, false},
		{"nil logger and metrics", []Option{WithLogger(nil), WithMetrics(nil)}, true},
	} {
		c, err := New("Bounds", rdb, l, append([]Option{WithRegistry(nil), WithLogger(slog.New(slog.DiscardHandler))}, tc.opts...)...)
		if tc.ok && err != nil {
			t.Errorf("%s: New = %v, want it accepted", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", tc.name, err)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TTLs reach Redis in whole seconds rounded up: a lock of 1ns or 1s is kept
// for 1 s, 1.2 s for 2 s; the record's TTL likewise (1.2 s + 1 s for 3 s).
func TestTTLsRoundUpToWholeSeconds(t *testing.T) {
	for _, tc := range []struct {
		lock, want time.Duration
	}{
		{1, time.Second}, {time.Second, time.Second}, {1200 * time.Millisecond, 2 * time.Second}, {DefaultRefillLockTTL, 5 * time.Second},
	} {
		mr, rdb := newMiniredis(t)
		c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRefillLockTTL(tc.lock),
			WithReloadTTL(time.Second), WithCacheTTL(tc.lock+time.Second))
		if _, _, err := c.record.lock(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := mr.TTL("lock:Items"); got != tc.want {
			t.Errorf("lock TTL %v: Redis keeps it %v, want %v", tc.lock, got, tc.want)
		}
		mr.Del("lock:Items")
		if err := c.Refill(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := mr.TTL("resource:Items"), tc.want+time.Second; got != want {
			t.Errorf("cache TTL %v: Redis keeps the record %v, want %v", tc.lock+time.Second, got, want)
		}
	}
}

// With no logger and no metrics given (nil), a failing cache logs and counts
// into nothing rather than panicking.
func TestNilLoggerAndMetricsAreSilent(t *testing.T) {
	_, rdb := newMiniredis(t)
	c, err := New("Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("source down")
	}), WithRegistry(nil), WithLogger(nil), WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Refill(t.Context()); !errors.Is(err, ErrLoadFailed) {
		t.Errorf("Refill = %v", err)
	}
}
