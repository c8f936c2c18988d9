package kiwicache

import (
	"context"
	"fmt"
	"runtime/debug"
)

// A Loader reads the whole dataset from its source (a database table, a
// remote API). The Cache calls it only from the process that holds the refill
// lock, and one call at a time per Cache: a call that has not returned, even
// one whose ctx has ended, keeps the next from starting (ErrLoaderBusy).
//
// Load must honour ctx. The returned map is owned by the Cache afterwards:
// the Loader must not keep or change it.
type Loader[K comparable, V any] interface {
	Load(ctx context.Context) (map[K]V, error)
}

// LoaderFunc adapts a function to a Loader.
type LoaderFunc[K comparable, V any] func(ctx context.Context) (map[K]V, error)

// Load calls f(ctx).
func (f LoaderFunc[K, V]) Load(ctx context.Context) (map[K]V, error) { return f(ctx) }

// callLoader runs the Loader so that nothing it does escapes as a panic or a
// hang: a panic becomes a *PanicError, and when ctx (bounded by
// WithLoadTimeout) ends first the call returns ctx's error while the Loader's
// goroutine is left to finish on its own, holding c.loading until it does.
// Errors wrap ErrLoadFailed.
func (c *Cache[K, V]) callLoader(ctx context.Context) (map[K]V, error) {
	select {
	case c.loading <- struct{}{}:
	default:
		return nil, ErrLoaderBusy
	}
	if c.cfg.loadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.loadTimeout)
		defer cancel()
	}
	type result struct {
		data map[K]V
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: &PanicError{Value: p, Stack: debug.Stack()}}
			}
			<-c.loading
			done <- r
		}()
		r.data, r.err = c.loader.Load(ctx)
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, withKind(ErrLoadFailed, fmt.Errorf("loader did not return: %w", context.Cause(ctx)))
	}
	switch {
	case r.err != nil:
		return nil, withKind(ErrLoadFailed, r.err)
	case len(r.data) == 0 && !c.cfg.allowEmpty:
		return nil, ErrEmptyData
	}
	if r.data == nil {
		r.data = map[K]V{}
	}
	return r.data, nil
}
