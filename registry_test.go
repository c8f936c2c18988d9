package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// 12. RefillAll refills each cache from its source and reports every failure.
func TestRefillAll(t *testing.T) {
	mr, rdb := newMiniredis(t)
	reg := new(Registry)
	ok := newCountingLoader[string, item](staticData(twoItems))
	other := newCountingLoader[int, string](staticData(map[int]string{1: "one"}))
	errDB := errors.New("db down")
	bad := newCountingLoader[string, item](func(context.Context) (map[string]item, error) { return nil, errDB })
	newIn := func(name string, l Loader[string, item], opts ...Option) *Cache[string, item] {
		return mustNew(t, name, rdb, l, append(opts, WithRegistry(reg))...)
	}
	newIn("Good", ok)
	newIn("Good", ok, WithSuffix("eu"))
	mustNew(t, "Ints", rdb, other, WithRegistry(reg))
	newIn("Bad", bad)
	newIn("AlsoBad", bad)

	mr.Set("resource:Good", `{"data": {"old": {}}, "timestamp": 1.0}`)
	err := reg.RefillAll(t.Context())

	if n := ok.calls.Load(); n != 2 {
		t.Errorf("good loader calls = %d, want 2 (one per cache, even with a record in Redis)", n)
	}
	if n := other.calls.Load(); n != 1 {
		t.Errorf("int loader calls = %d, want 1", n)
	}
	for _, key := range []string{"resource:Good", "resource:Good:eu", "resource:Ints"} {
		if raw, _ := mr.Get(key); !strings.Contains(raw, `"one"`) {
			t.Errorf("%s = %q, want the source's data", key, raw)
		}
	}
	if !errors.Is(err, errDB) || !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("RefillAll error = %v, want the loaders' errors", err)
	}
	for _, key := range []string{"resource:Bad", "resource:AlsoBad"} {
		if !strings.Contains(err.Error(), key+": ") {
			t.Errorf("RefillAll error %q does not name %s", err, key)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Errorf("RefillAll joined %d errors, want 2", n)
	}
}

func TestRefillAllWithoutFailuresIsNil(t *testing.T) {
	_, rdb := newMiniredis(t)
	reg := new(Registry)
	mustNew(t, "A", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRegistry(reg))
	if err := reg.RefillAll(t.Context()); err != nil {
		t.Errorf("RefillAll = %v", err)
	}
	if err := new(Registry).RefillAll(t.Context()); err != nil {
		t.Errorf("RefillAll on an empty registry = %v", err)
	}
	var zero Registry
	if err := zero.RefillAll(t.Context()); err != nil || len(zero.Keys()) != 0 {
		t.Errorf("zero Registry: RefillAll = %v, Keys = %v", err, zero.Keys())
	}
}

// A later cache with the same key replaces the earlier; closing the earlier
// one leaves the later registered.
func TestRegistryReplaceAndClose(t *testing.T) {
	_, rdb := newMiniredis(t)
	reg := new(Registry)
	first := newCountingLoader[string, item](staticData(twoItems))
	second := newCountingLoader[string, item](staticData(twoItems))
	c1 := mustNew(t, "Same", rdb, first, WithRegistry(reg))
	c2 := mustNew(t, "Same", rdb, second, WithRegistry(reg))
	mustNew(t, "Other", rdb, first, WithRegistry(reg))
	if got := reg.Keys(); !slices.Equal(got, []string{"resource:Other", "resource:Same"}) {
		t.Errorf("Keys = %v", got)
	}

	c1.Close()
	if got := reg.Keys(); !slices.Contains(got, "resource:Same") {
		t.Errorf("closing the replaced cache unregistered its successor: %v", got)
	}
	if err := reg.RefillAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if first.calls.Load() != 1 || second.calls.Load() != 1 {
		t.Errorf("loader calls: replaced cache's = %d (want 1, for Other), replacing cache's = %d (want 1)",
			first.calls.Load(), second.calls.Load())
	}
	c2.Close()
	if got := reg.Keys(); !slices.Equal(got, []string{"resource:Other"}) {
		t.Errorf("Keys after Close = %v", got)
	}
}

func TestDefaultRegistry(t *testing.T) {
	_, rdb := newMiniredis(t)
	name := uniqueName(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c, err := New(name, rdb, l, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !slices.Contains(DefaultRegistry().Keys(), c.Key()) {
		t.Fatalf("New did not register %s in DefaultRegistry: %v", c.Key(), DefaultRegistry().Keys())
	}
	// Other tests' caches use their own registries, so this refills only ours.
	if err := RefillAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("loader calls = %d, want 1", n)
	}
	c.Close()
	if slices.Contains(DefaultRegistry().Keys(), c.Key()) {
		t.Error("Close did not unregister the cache")
	}
}

// RefillAll runs at most Concurrency refills at once, and all of them.
func TestRefillAllConcurrency(t *testing.T) {
	reg := &Registry{Concurrency: 2}
	var running, peak, done atomic.Int64
	for i := range 7 {
		reg.Register(refillFunc{key: fmt.Sprint("resource:R", i), refill: func(context.Context) error {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			done.Add(1)
			return nil
		}})
	}
	if err := reg.RefillAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 7 {
		t.Errorf("refilled %d caches, want 7", done.Load())
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent refills = %d, want 2", p)
	}
}

type refillFunc struct {
	key    string
	refill func(context.Context) error
}

func (r refillFunc) Key() string                      { return r.key }
func (r refillFunc) Refill(ctx context.Context) error { return r.refill(ctx) }
func (r refillFunc) Health() Health                   { return Health{} }

// Registry.Health lists every registered cache, sorted by key, with the state
// its own Health reports: data and size for a cache that loaded, the error and
// failure count for one whose source failed, no data for one never read. A
// closed cache is no longer listed.
func TestRegistryHealth(t *testing.T) {
	_, rdb := newMiniredis(t)
	reg := new(Registry)
	errDB := errors.New("db down")
	good := mustNew(t, "Good", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRegistry(reg))
	bad := mustNew(t, "Bad", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errDB
	}), WithRegistry(reg))
	idle := mustNew(t, "Good", rdb, LoaderFunc[string, item](staticData(twoItems)),
		WithSuffix("idle"), WithRegistry(reg))
	reg.Register(refillFunc{key: "resource:Bare"}) // a Refiller whose Health leaves Key empty

	if _, err := good.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	bad.Refill(t.Context())
	bad.Refill(t.Context())

	hs := reg.Health()
	keys := make([]string, len(hs))
	for i, h := range hs {
		keys[i] = h.Key
	}
	want := []string{"resource:Bad", "resource:Bare", "resource:Good", "resource:Good:idle"}
	if !slices.Equal(keys, want) {
		t.Fatalf("Health keys = %q, want %q", keys, want)
	}
	if h := hs[2]; !h.HasData || h.Items != 2 || h.RecordSize == 0 || h.LoadedAt.IsZero() || !reflect.DeepEqual(h, good.Health()) {
		t.Errorf("loaded cache: %+v, want its own Health with 2 items and a record size", h)
	}
	if h := hs[0]; h.HasData || h.ConsecutiveFailures != 2 || !errors.Is(h.LastError, errDB) {
		t.Errorf("failing cache: %+v, want no data, 2 failures, the source's error", h)
	}
	if h := hs[3]; h.HasData || h.ConsecutiveFailures != 0 || h.LastError != nil {
		t.Errorf("unread cache: %+v, want the zero state", h)
	}

	idle.Close()
	if hs := reg.Health(); len(hs) != 3 || hs[2].Key != "resource:Good" {
		t.Errorf("after Close, Health lists %d caches: %+v", len(hs), hs)
	}
	if hs := new(Registry).Health(); len(hs) != 0 {
		t.Errorf("empty registry: %+v", hs)
	}
}
