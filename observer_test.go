package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// observations records what an Observer is told.
type observations struct {
	recordedMetrics
	mu  sync.Mutex
	ops []string // "op ok" or "op error"
}

func (o *observations) Observe(name string, op Op, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	if d < 0 {
		outcome = "negative duration"
	}
	o.ops = append(o.ops, fmt.Sprintf("%s:%s %s", name, op, outcome))
}

func (o *observations) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ops := o.ops
	o.ops = nil
	slices.Sort(ops)
	return ops
}

// Metrics that are also an Observer are told the duration and outcome of
// each reload, refill and wait for another process's lock.
func TestObserverIsToldEachTimedOperation(t *testing.T) {
	mr, rdb := newMiniredis(t)
	o := &observations{}
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithMetrics(o), WithRefillLockTTL(time.Second))
	must(c.Get(t.Context(), "a")) // a reload that finds no record refills it
	if got, want := o.take(), []string{"Items:refill ok", "Items:reload ok"}; !slices.Equal(got, want) {
		t.Errorf("first read: observed %q, want %q", got, want)
	}
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := o.take(), []string{"Items:refill ok"}; !slices.Equal(got, want) {
		t.Errorf("Refill: observed %q, want %q", got, want)
	}
	l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
	c.Refill(t.Context())
	if got, want := o.take(), []string{"Items:refill error"}; !slices.Equal(got, want) {
		t.Errorf("failed Refill: observed %q, want %q", got, want)
	}
	mr.SetError("LOADING")
	c.Refill(t.Context())
	if got, want := o.take(), []string{"Items:refill error"}; !slices.Equal(got, want) {
		t.Errorf("Refill with Redis down: observed %q, want %q", got, want)
	}
	mr.SetError("")
	mr.Set("lock:Items", "another process")
	go func() {
		time.Sleep(200 * time.Millisecond)
		mr.Del("lock:Items")
	}()
	l.set(staticData(twoItems))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := o.take(), []string{"Items:lock_wait ok", "Items:refill ok"}; !slices.Equal(got, want) {
		t.Errorf("Refill that waited for the lock: observed %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	mr.Set("lock:Items", "another process")
	c.Refill(ctx)
	if got, want := o.take(), []string{"Items:lock_wait error", "Items:refill error"}; !slices.Equal(got, want) {
		t.Errorf("Refill whose wait ran out of time: observed %q, want %q", got, want)
	}
}
