package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A Refiller is what a Registry holds: every *Cache is one.
type Refiller interface {
	// Key is the record key, resource:NAME[:SUFFIX].
	Key() string
	// Refill loads the dataset from its source into Redis.
	Refill(ctx context.Context) error
	// Health reports the cache's state without I/O, for status pages and
	// metrics (see Registry.Health).
	Health() Health
}

// A Registry holds caches by record key, so that a periodic job can refill
// them all (the Python library's `instances`). New registers every Cache in
// DefaultRegistry() unless WithRegistry says otherwise.
//
// The zero value is an empty registry ready to use.
type Registry struct {
	// Concurrency bounds how many caches RefillAll refills at once. Zero means
	// DefaultRefillConcurrency. Set it before the first RefillAll.
	Concurrency int

	mu      sync.Mutex
	entries map[string]Refiller
}

// DefaultRefillConcurrency is how many caches RefillAll refills at once when
// Registry.Concurrency is zero.
const DefaultRefillConcurrency = 4

var defaultRegistry = new(Registry)

// DefaultRegistry returns the registry that New uses by default.
func DefaultRegistry() *Registry { return defaultRegistry }

// RefillAll refills every cache in DefaultRegistry().
func RefillAll(ctx context.Context) error { return defaultRegistry.RefillAll(ctx) }

// Register adds c under c.Key(). A later Refiller with the same key replaces
// the earlier one, as in the Python library.
func (r *Registry) Register(c Refiller) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[string]Refiller)
	}
	r.entries[c.Key()] = c
}

// Unregister removes c if it is still the one registered under its key, and
// reports whether it did.
func (r *Registry) Unregister(c Refiller) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries[c.Key()] != c {
		return false
	}
	delete(r.entries, c.Key())
	return true
}

// Keys returns the registered record keys, sorted.
func (r *Registry) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.entries))
	for k := range r.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Health returns the Health of every registered cache, sorted by key. It does
// no I/O, so a status page or a metrics collector may call it on every
// request or scrape.
func (r *Registry) Health() []Health {
	entries := r.sortedEntries()
	hs := make([]Health, len(entries))
	for i, c := range entries {
		hs[i] = c.Health()
		// Key repeats the registration key, so that a Refiller whose Health
		// leaves it out still shows which cache it is.
		hs[i].Key = c.Key()
	}
	return hs
}

// sortedEntries returns the registered caches sorted by key. The caller calls
// them without holding r.mu, so that a slow Refill or Health never blocks
// Register or Unregister.
func (r *Registry) sortedEntries() []Refiller {
	r.mu.Lock()
	entries := make([]Refiller, 0, len(r.entries))
	for _, c := range r.entries {
		entries = append(entries, c)
	}
	r.mu.Unlock()
	slices.SortFunc(entries, func(a, b Refiller) int { return strings.Compare(a.Key(), b.Key()) })
	return entries
}

// RefillAll refills every registered cache from its source, Concurrency at a
// time, and returns every failure joined (nil when all succeeded). Each names
// its cache: a Cache's errors are *Error; another Refiller's are prefixed with
// its record key.
func (r *Registry) RefillAll(ctx context.Context) error {
	r.mu.Lock()
	limit := r.Concurrency
	r.mu.Unlock()
	if limit <= 0 {
		limit = DefaultRefillConcurrency
	}
	entries := r.sortedEntries()

	errs := make([]error, len(entries))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, c := range entries {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.Refill(ctx)
			if e := (*Error)(nil); err != nil && !errors.As(err, &e) {
				err = fmt.Errorf("%s: %w", c.Key(), err)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
