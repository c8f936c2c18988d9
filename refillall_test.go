package kiwicache

// RefillAll's limits and error text, and Unregister's answer.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// peakRefills registers n Refillers that note how many run at once, runs
// RefillAll and returns the peak.
func peakRefills(t *testing.T, reg *Registry, n int) int64 {
	t.Helper()
	var running, peak atomic.Int64
	for i := range n {
		reg.Register(refillFunc{key: fmt.Sprint("resource:P", i), refill: func(context.Context) error {
			now := running.Add(1)
			for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
			}
			time.Sleep(30 * time.Millisecond)
			running.Add(-1)
			return nil
		}})
	}
	if err := reg.RefillAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	return peak.Load()
}

// Concurrency 1 refills one cache at a time; zero means
// DefaultRefillConcurrency.
func TestRefillAllConcurrencyLimits(t *testing.T) {
	if p := peakRefills(t, &Registry{Concurrency: 1}, 5); p != 1 {
		t.Errorf("Concurrency 1: %d refills at once", p)
	}
	if p := peakRefills(t, new(Registry), 2*DefaultRefillConcurrency+1); p != DefaultRefillConcurrency {
		t.Errorf("Concurrency 0: %d refills at once, want DefaultRefillConcurrency (%d)", p, DefaultRefillConcurrency)
	}
	if DefaultRefillConcurrency != 4 {
		t.Errorf("DefaultRefillConcurrency = %d, documented as 4", DefaultRefillConcurrency)
	}
}

// The error of a Refiller that is not a Cache is prefixed with its record
// key; a Cache's *Error already names it, once.
func TestRefillAllNamesOtherRefillers(t *testing.T) {
	reg := new(Registry)
	errBoom := errors.New("boom")
	reg.Register(refillFunc{key: "resource:Other", refill: func(context.Context) error { return errBoom }})
	reg.Register(refillFunc{key: "resource:Fine", refill: func(context.Context) error { return nil }})
	err := reg.RefillAll(t.Context())
	if !errors.Is(err, errBoom) || err.Error() != "resource:Other: boom" {
		t.Errorf("RefillAll = %q, want %q", err, "resource:Other: boom")
	}
}

// Unregister reports whether it removed the Refiller: false when another
// has replaced it under its key, or it was never registered.
func TestUnregisterReports(t *testing.T) {
	reg := new(Registry)
	a := refillFunc{key: "resource:A", refill: func(context.Context) error { return nil }}
	if reg.Unregister(a) {
		t.Error("Unregister of a Refiller never registered = true")
	}
	reg.Register(a)
	_, rdb := newMiniredis(t)
	replacement := mustNew(t, "A", rdb, LoaderFunc[string, item](staticData(twoItems)), WithRegistry(reg))
	if reg.Unregister(a) {
		t.Error("Unregister of a replaced Refiller = true")
	}
	if !reg.Unregister(replacement) {
		t.Error("Unregister of the registered Refiller = false")
	}
	if keys := reg.Keys(); len(keys) != 0 {
		t.Errorf("Keys = %v, want none", keys)
	}
}
