// Package kiwicache keeps a whole, slowly changing dataset (a table of
// airlines, currency rates, feature flags) in process memory, shared through
// one Redis record by every process that reads it, and filled from the source
// by one of them at a time.
//
// It speaks the protocol of the Python library kiwi-cache 0.4.5, so Go and
// Python services can share one Redis: see README.md.
package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Cache serves a dataset from an immutable in-process snapshot, reloads the
// snapshot from the Redis record resource:NAME[:SUFFIX] once it is ReloadTTL
// old, and refills a missing record from its Loader under the refill lock.
//
// Get never waits on Redis or the Loader while the Cache has a snapshot: a
// stale snapshot is served while one background reload replaces it. When a
// reload fails, the last good snapshot stays (stale-if-error) and the next
// attempt comes ReloadTTL later.
//
// A Cache is safe for concurrent use.
type Cache[K comparable, V any] struct {
	name   string
	key    string // resource:NAME[:SUFFIX]
	rdb    redis.UniversalClient
	loader Loader[K, V]
	codec  Codec[K, V]
	lock   refillLock
	// validateFn is WithValidate's function, nil without it.
	validateFn func(prev *Snapshot[K, V], fresh map[K]V) error
	cfg        config
	log        *slog.Logger

	snap atomic.Pointer[Snapshot[K, V]]
	// fresh is snap until it is ReloadTTL old, then nil (set by timer), so
	// that Get checks presence and age with one atomic load.
	fresh atomic.Pointer[Snapshot[K, V]]
	stale atomic.Bool // set with fresh = nil; the reader that clears it reloads

	work chan struct{} // held by the one reload or refill running

	mu          sync.Mutex // guards what follows
	flight      *flight
	timer       *time.Timer
	closed      bool
	noDataErr   error // the last load's error, with no snapshot; see noDataError
	noDataUntil time.Time
	failures    int
	lastErr     error
	lastErrTime time.Time

	push pushState // notifications of new records: see notify.go
}

// A flight is a reload in progress; readers with no snapshot wait for it.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// New returns a Cache for the record resource:NAME (or resource:NAME:SUFFIX
// with WithSuffix) in rdb, filled from loader. It does no I/O: the first Get
// (or Reload) loads the data. Unless WithoutPush, the Cache listens for
// notifications of new records through a subscription of rdb's that
// connects in the background (see PUSH.md).
//
// New registers the Cache in DefaultRegistry() (see WithRegistry), replacing
// a Cache registered with the same record key. An unusable name, client,
// loader, key type or option is an error wrapping ErrInvalidConfig.
func New[K comparable, V any](name string, rdb redis.UniversalClient, loader Loader[K, V], opts ...Option) (*Cache[K, V], error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	codec, err := newCodec[K, V](cfg.codec)
	validateFn, ok := cfg.validate.(func(*Snapshot[K, V], map[K]V) error)
	switch {
	case err != nil:
	case cfg.validate != nil && !ok:
		err = fmt.Errorf("WithValidate: %T is not a %T", cfg.validate, validateFn)
	case rdb == nil:
		err = errors.New("nil redis client")
	case loader == nil:
		err = errors.New("nil loader")
	default:
		err = checkKeyPart("name", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	id := name
	if cfg.suffix != "" {
		id += ":" + cfg.suffix
	}
	c := &Cache[K, V]{
		name:       name,
		key:        "resource:" + id,
		rdb:        rdb,
		loader:     loader,
		codec:      codec,
		validateFn: validateFn,
		lock:       refillLock{rdb: rdb, key: "lock:" + id, ttl: cfg.refillLockTTL},
		cfg:        cfg,
		log:        cfg.logger,
		work:       make(chan struct{}, 1),
	}
	if cfg.registry != nil {
		cfg.registry.Register(c)
	}
	c.startPush()
	return c, nil
}

func newCodec[K comparable, V any](codec any) (Codec[K, V], error) {
	if codec == nil {
		return JSONCodec[K, V]{}, checkKeyType[K]()
	}
	c, ok := codec.(Codec[K, V])
	if !ok {
		var want *Codec[K, V]
		return nil, fmt.Errorf("codec %T is not a %T", codec, want)
	}
	return c, nil
}

// Name returns the cache's name (NAME in the record key).
func (c *Cache[K, V]) Name() string { return c.name }

// Key returns the record key, resource:NAME[:SUFFIX].
func (c *Cache[K, V]) Key() string { return c.key }

// Get returns the item stored under key, or an error wrapping ErrNotFound
// when the dataset has none.
//
// Get is a map lookup on the current snapshot. Only while the Cache has no
// snapshot yet does it wait for the first load, until ctx ends; the error then
// wraps ErrNoData (and ErrAttemptsExhausted with WithMaxAttempts) and the cause.
func (c *Cache[K, V]) Get(ctx context.Context, key K) (V, error) {
	// The fast path: one atomic load and the map lookup, no clock, no lock.
	if s := c.fresh.Load(); s != nil {
		if v, ok := s.data[key]; ok {
			return v, nil
		}
	}
	return c.getSlow(ctx, key)
}

// getSlow is Get when the key is absent, the snapshot stale or missing.
func (c *Cache[K, V]) getSlow(ctx context.Context, key K) (V, error) {
	var zero V
	s, err := c.Snapshot(ctx)
	if err != nil {
		return zero, err
	}
	if v, ok := s.data[key]; ok {
		return v, nil
	}
	return zero, ErrNotFound
}

// Snapshot returns the current snapshot, for reading the whole dataset
// consistently (Len, Keys, All). It waits for data as Get does.
func (c *Cache[K, V]) Snapshot(ctx context.Context) (*Snapshot[K, V], error) {
	if s := c.fresh.Load(); s != nil {
		return s, nil
	}
	return c.current(ctx)
}

// current is the slow path of reads: with a snapshot, it starts a background
// reload if the snapshot is stale and returns it at once; without one, it
// waits for the first load.
func (c *Cache[K, V]) current(ctx context.Context) (*Snapshot[K, V], error) {
	if s := c.snap.Load(); s != nil {
		if c.stale.CompareAndSwap(true, false) { // one reader starts it, the rest carry on
			c.startReload()
		}
		return s, nil
	}
	if err := c.noDataError(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoData, err)
	}
	f := c.startReload()
	if f == nil {
		return nil, fmt.Errorf("%w: %w", ErrNoData, ErrClosed)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrNoData, context.Cause(ctx))
	}
	if s := c.snap.Load(); s != nil { // f may have failed after a Refill filled it
		return s, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNoData, f.err)
}

// Reload replaces the snapshot with the record in Redis, refilling the record
// from the source when it is missing or malformed. If a reload is already
// running, Reload waits for that one and returns its result. On failure the
// old snapshot stays.
func (c *Cache[K, V]) Reload(ctx context.Context) error {
	f := c.startReload()
	if f == nil {
		return ErrClosed
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Refill loads the dataset from the source and writes it to Redis under the
// refill lock, then serves it. If another process holds the lock, Refill waits
// for it (see PROTOCOL.md) and takes up the record it writes instead of
// loading the source again. On a load error the record is kept alive for
// another CacheTTL, or written back from the snapshot if it has expired.
//
// A periodic job calls Refill (or RefillAll) so that readers never pay for a
// load.
func (c *Cache[K, V]) Refill(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.acquireWork(ctx); err != nil {
		return err
	}
	defer c.releaseWork()
	start := time.Now()
	rec, err := c.refill(ctx, true)
	observe(c.cfg.metrics, c.name, OpRefill, start, err)
	if rec != nil {
		c.install(rec)
		c.mu.Lock()
		c.scheduleReloadLocked()
		c.mu.Unlock()
	}
	c.noteResult(err)
	return err
}

// Close unregisters the Cache and stops its reloads. Get keeps serving the
// last snapshot; loads after Close fail with ErrClosed.
func (c *Cache[K, V]) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if c.cfg.registry != nil {
		c.cfg.registry.Unregister(c)
	}
	c.stopPush()
	return nil
}

func (c *Cache[K, V]) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// startReload returns the reload in flight, starting one if there is none.
// It returns nil after Close.
func (c *Cache[K, V]) startReload() *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if c.flight == nil {
		c.flight = &flight{done: make(chan struct{})}
		go c.fly(c.flight)
	}
	return c.flight
}

// fly runs f. It is detached from the reader that started it: readers give
// up waiting when their own ctx ends, but the reload goes on for the others,
// bounded by flightTimeout.
func (c *Cache[K, V]) fly(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), c.flightTimeout())
	defer cancel()
	f.err = c.reloadWithAttempts(ctx)

	c.mu.Lock()
	c.flight = nil
	c.scheduleReloadLocked() // after a failure too: one attempt per ReloadTTL
	if f.err != nil && c.snap.Load() == nil {
		c.noDataErr = f.err
		c.noDataUntil = time.Now().Add(min(c.cfg.reloadTTL, maxNoDataBackoff))
	}
	c.mu.Unlock()
	close(f.done)
}

// maxNoDataBackoff bounds how long reads with no data fail fast after a
// failed load, before one of them tries again.
const maxNoDataBackoff = time.Second

// noDataError returns the last failed load's error while reads with no data
// should fail fast on it (for ReloadTTL, at most maxNoDataBackoff): without a
// snapshot, every read would otherwise start a load, one per read while Redis
// or the source is down.
func (c *Cache[K, V]) noDataError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.noDataUntil) {
		return c.noDataErr
	}
	return nil
}

// scheduleReloadLocked marks the snapshot fresh and makes it stale again in
// ReloadTTL, varied by the reload jitter. Readers see staleness as one atomic
// load, not a clock read.
func (c *Cache[K, V]) scheduleReloadLocked() {
	if c.snap.Load() == nil || c.closed {
		return
	}
	c.stale.Store(false)
	c.fresh.Store(c.snap.Load())
	if c.timer == nil {
		c.timer = time.AfterFunc(c.reloadPeriod(), func() {
			c.stale.Store(true)
			c.fresh.Store(nil)
		})
	} else {
		c.timer.Reset(c.reloadPeriod())
	}
}

// flightTimeout bounds a background reload: no longer than a reload period,
// but long enough to wait out one lock holder.
func (c *Cache[K, V]) flightTimeout() time.Duration {
	return max(c.cfg.reloadTTL, 2*c.cfg.refillLockTTL)
}

func (c *Cache[K, V]) reloadWithAttempts(ctx context.Context) error {
	if err := c.acquireWork(ctx); err != nil {
		return err
	}
	defer c.releaseWork()
	attempts := max(c.cfg.maxAttempts, 1)
	var err error
	for range attempts {
		start := time.Now()
		err = c.reload(ctx)
		observe(c.cfg.metrics, c.name, OpReload, start, err)
		c.noteResult(err)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	c.log.ErrorContext(ctx, "kiwicache.reload_failed", "key", c.key, "error", err,
		"stale_data_kept", c.snap.Load() != nil)
	if c.cfg.maxAttempts > 0 && ctx.Err() == nil {
		return fmt.Errorf("%w (%d in a row): %w", ErrAttemptsExhausted, attempts, err)
	}
	return err
}

// reload: GET the record; when missing or malformed, refill it. A record
// that is still the one the snapshot came from is not read again.
func (c *Cache[K, V]) reload(ctx context.Context) error {
	if s := c.snap.Load(); s != nil {
		if same, err := c.recordUnchanged(ctx, s); same || err != nil {
			return err
		}
	}
	rec, err := c.fetch(ctx)
	if err != nil {
		return err
	}
	if rec == nil {
		rec, err = c.refill(ctx, false)
	}
	if rec != nil {
		c.install(rec)
	}
	return err
}

func (c *Cache[K, V]) install(rec *Record[K, V]) {
	c.snap.Store(newSnapshot(rec))
}

func newSnapshot[K comparable, V any](rec *Record[K, V]) *Snapshot[K, V] {
	return &Snapshot[K, V]{data: rec.Data, timestamp: rec.Timestamp, loadedAt: time.Now(), recordSize: rec.size}
}

// fetch GETs and decodes the record. A missing, malformed or (without
// WithAllowEmpty) empty record is nil with no error.
func (c *Cache[K, V]) fetch(ctx context.Context) (*Record[K, V], error) {
	if err := c.checkRecordSize(ctx); err != nil {
		return nil, err
	}
	b, err := c.rdb.Get(ctx, c.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, c.redisError(ctx, "kiwicache.load_failed", "GET", err)
	}
	rec, err := c.decode(b)
	if err != nil {
		c.log.WarnContext(ctx, "kiwicache.malformed_cache_data", "key", c.key, "error", err)
		return nil, nil
	}
	rec.size = len(b)
	if len(rec.Data) == 0 && !c.cfg.allowEmpty {
		return nil, nil
	}
	return &rec, nil
}

// checkRecordSize refuses, with WithMaxRecordSize, a record too large to read.
func (c *Cache[K, V]) checkRecordSize(ctx context.Context) error {
	if c.cfg.maxRecordSize == 0 {
		return nil
	}
	n, err := c.rdb.StrLen(ctx, c.key).Result()
	if err != nil {
		return c.redisError(ctx, "kiwicache.load_failed", "STRLEN", err)
	}
	if n > int64(c.cfg.maxRecordSize) {
		err := fmt.Errorf("%w: %s has %d bytes, over the maximum %d", ErrRecordTooLarge, c.key, n, c.cfg.maxRecordSize)
		c.log.ErrorContext(ctx, "kiwicache.record_too_large", "key", c.key, "error", err)
		return err
	}
	return nil
}

// decode and encode guard against a Codec that panics: they run in the
// background, where a panic would end the process.
func (c *Cache[K, V]) decode(b []byte) (rec Record[K, V], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: codec panicked: %v", ErrMalformedRecord, p)
		}
	}()
	return c.codec.Decode(b)
}

func (c *Cache[K, V]) encode(rec *Record[K, V]) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("codec panicked: %v", p)
		}
	}()
	return c.codec.Encode(*rec)
}

// redisError counts and logs a failed Redis command and returns the error to
// pass on.
func (c *Cache[K, V]) redisError(ctx context.Context, event, command string, err error) error {
	refreshClusterState(c.rdb) // after a failover, find the promoted master: see notify.go
	c.cfg.metrics.Count(c.name, StatusRedisError)
	c.log.ErrorContext(ctx, event, "key", c.key, "error", err)
	return fmt.Errorf("%w: %s %s: %w", ErrRedis, command, c.key, err)
}

func (c *Cache[K, V]) acquireWork(ctx context.Context) error {
	select {
	case c.work <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *Cache[K, V]) releaseWork() { <-c.work }

func (c *Cache[K, V]) noteResult(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.failures = 0
		return
	}
	c.failures++
	c.lastErr, c.lastErrTime = err, time.Now()
}
