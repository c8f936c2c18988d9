package kiwicache

// How the Cache calls its Loader: one call at a time, nothing left running
// once a call has returned, and the call's context ended with it.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutinesIn counts the goroutines whose stack passes through fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// A Load that returns after its caller gave up (it ignored its ctx) leaves
// no goroutine behind: its result has somewhere to go.
func TestAbandonedLoadLeavesNoGoroutine(t *testing.T) {
	_, rdb := newMiniredis(t)
	release := make(chan struct{})
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		<-release // ignores its ctx
		return twoItems, nil
	})
	c := mustNew(t, "Items", rdb, l)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Refill(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refill = %v, want the deadline", err)
	}
	const callLoader = ").callLoader"
	if n := goroutinesIn(callLoader); n != 1 {
		t.Fatalf("%d goroutines in callLoader while the Load hangs, want 1", n)
	}
	close(release)
	eventually(t, "the Load's goroutine ends once it returns", func() bool { return goroutinesIn(callLoader) == 0 })
	// And the next load may start.
	if err := c.Refill(t.Context()); err != nil {
		t.Errorf("Refill after the abandoned Load returned = %v", err)
	}
}

// With WithLoadTimeout, the ctx a Load gets ends when the call is over, so
// that work the Loader started under it stops too.
func TestLoadContextEndsWithTheCall(t *testing.T) {
	_, rdb := newMiniredis(t)
	var loadCtx context.Context
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
		loadCtx = ctx
		return twoItems, nil
	}), WithLoadTimeout(time.Hour))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if loadCtx.Err() == nil {
		t.Error("the Load's ctx is still live after the call returned")
	}
	if _, ok := loadCtx.Deadline(); !ok {
		t.Error("the Load's ctx has no deadline with WithLoadTimeout")
	}
}

// While a call of the Loader has not returned, a new call does not start:
// it fails with ErrLoaderBusy.
func TestLoaderCalledOnceAtATime(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l)
	c.loading <- struct{}{} // a call in progress
	_, err := c.callLoader(t.Context())
	<-c.loading
	if !errors.Is(err, ErrLoaderBusy) || !errors.Is(err, ErrLoadFailed) || l.calls.Load() != 0 {
		t.Errorf("callLoader during another call = %v after %d calls, want ErrLoaderBusy and no call", err, l.calls.Load())
	}
	if err := c.Refill(t.Context()); err != nil || l.calls.Load() != 1 {
		t.Errorf("Refill once the call is over = %v after %d calls", err, l.calls.Load())
	}
}
