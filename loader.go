package kiwicache

import (
	"context"
	"fmt"
	"runtime/debug"
)

// A Loader reads the whole dataset from its source (a database table, a
// remote API). The Cache calls it only from the process that holds the refill
// lock, and never more than once at a time per Cache.
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

// callLoader runs the loader so that nothing it does escapes as a panic or a
// hang: a panic becomes an error, and when ctx ends first the call returns
// ctx's error while the loader's goroutine is left to finish on its own (a
// loader that ignores ctx costs one goroutine, not the cache).
func callLoader[K comparable, V any](ctx context.Context, l Loader[K, V], allowEmpty bool) (map[K]V, error) {
	type result struct {
		data map[K]V
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("loader panicked: %v\n%s", p, debug.Stack())}
			}
			done <- r
		}()
		r.data, r.err = l.Load(ctx)
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrLoadFailed, context.Cause(ctx))
	}
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrLoadFailed, r.err)
	case len(r.data) == 0 && !allowEmpty:
		return nil, fmt.Errorf("%w: %w", ErrLoadFailed, ErrEmptyData)
	}
	if r.data == nil {
		r.data = map[K]V{}
	}
	return r.data, nil
}
