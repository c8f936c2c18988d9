package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
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
	name   string // NAME
	id     string // NAME[:SUFFIX]
	record recordStore
	loader Loader[K, V]
	codec  Codec[K, V]
	// validateFn is WithValidate's function, nil without it.
	validateFn func(prev *Snapshot[K, V], fresh map[K]V) error
	cfg        config
	log        *slog.Logger

	snap atomic.Pointer[Snapshot[K, V]]
	// fresh is snap until it is ReloadTTL old, then nil (set by timer), so
	// that Get checks presence and age with one atomic load.
	fresh atomic.Pointer[Snapshot[K, V]]
	stale atomic.Bool // set with fresh = nil; the reader that clears it reloads
	// checkedAt is when a reload last found the served record current (Unix ns).
	checkedAt atomic.Int64

	// exclusive is held by the one reload or refill running, so that
	// snapshots are installed in the order their records were read.
	exclusive chan struct{}
	// loading is held while a Loader call runs, even one whose caller gave
	// up when its ctx ended: no second call starts before it returns.
	loading chan struct{}

	mu          sync.Mutex // guards what follows
	reloading   *reload    // the reload in progress, nil if none
	timer       *time.Timer
	closed      bool
	noDataErr   error // the last load's error, with no snapshot; see noDataError
	noDataUntil time.Time
	failures    int
	lastErr     error
	lastErrTime time.Time
	// unusableReplacedAt is when this Cache last replaced a record it could
	// not use (malformed, of another type, or empty); see mayReplaceUnusable.
	unusableReplacedAt time.Time

	push pushState // notifications of new records: see notify.go
}

// A reload is a reload in progress; reads with no data wait for it.
type reload struct {
	mode readMode
	done chan struct{}
	err  error // set before done is closed
}

// A readMode says how much of the record a reload reads.
type readMode int

const (
	// checkTail reads the record's length and tail first, and the record only
	// when they differ from the served one's (a periodic reload).
	checkTail readMode = iota
	// readNew reads the record in one round trip, and decodes it unless it is
	// the served one (after a notification of a write).
	readNew
	// readWhole reads and decodes the record, whatever it is (Reload).
	readWhole
)

// New returns a Cache for the record resource:NAME (or resource:NAME:SUFFIX
// with WithSuffix) in rdb, filled from loader. It does no I/O: the first Get
// (or Reload) loads the data. Unless WithoutPush, the Cache listens for
// notifications of new records through a subscription of rdb's that
// connects in the background (see PUSH.md).
//
// New registers the Cache in DefaultRegistry() (see WithRegistry), replacing
// a Cache registered with the same record key. An unusable name, client,
// loader, key or value type, or option is an *Error wrapping ErrInvalidConfig.
func New[K comparable, V any](name string, rdb redis.UniversalClient, loader Loader[K, V], opts ...Option) (*Cache[K, V], error) {
	cfg, err := newConfig(opts)
	id := name
	if cfg.suffix != "" {
		id += ":" + cfg.suffix
	}
	if err == nil {
		err = checkKeyPart("name", name)
	}
	var c *Cache[K, V]
	if err == nil {
		c, err = newCache(name, id, rdb, loader, cfg)
	}
	if err != nil {
		if checkKeyPart("id", strings.ReplaceAll(id, ":", "")) != nil {
			id = strconv.Quote(id) // a name refused for what it holds is not printed raw
		}
		return nil, &Error{Cache: id, Op: "new", Err: withKind(ErrInvalidConfig, err)}
	}
	if cfg.registry != nil {
		cfg.registry.Register(c)
	}
	c.startPush()
	return c, nil
}

func newCache[K comparable, V any](name, id string, rdb redis.UniversalClient, loader Loader[K, V], cfg config) (*Cache[K, V], error) {
	codec, err := newCodec[K, V](cfg.codec)
	switch {
	case err != nil:
		return nil, err
	case isNil(rdb):
		return nil, errors.New("nil redis client")
	case isNil(loader):
		return nil, errors.New("nil loader")
	}
	validateFn, ok := cfg.validate.(func(*Snapshot[K, V], map[K]V) error)
	if cfg.validate != nil && !ok {
		return nil, fmt.Errorf("WithValidate: %T is not a %T", cfg.validate, validateFn)
	}
	_, stamped := codec.(tailStamper)
	_, cluster := rdb.(*redis.ClusterClient)
	c := &Cache[K, V]{
		name:       name,
		id:         id,
		loader:     loader,
		codec:      codec,
		validateFn: validateFn,
		cfg:        cfg,
		log:        cfg.logger,
		exclusive:  make(chan struct{}, 1),
		loading:    make(chan struct{}, 1),
		record: recordStore{
			rdb:     rdb,
			name:    name,
			cache:   id,
			key:     "resource:" + id,
			lockKey: "lock:" + id,
			ttl:     cfg.recordTTL(),
			lockTTL: cfg.refillLockTTL,
			maxSize: cfg.maxRecordSize,
			stamped: stamped,
			cluster: cluster,
			metrics: cfg.metrics,
			log:     cfg.logger,
		},
	}
	if !stamped {
		c.log.Info("kiwicache.codec_without_stamp", "key", c.record.key, "codec", fmt.Sprintf("%T", codec),
			"consequence", "every reload reads the whole record; a load that lost its lock writes only where there is no record")
	}
	return c, nil
}

// isNil reports whether v is nil, or a nil pointer, map, func, chan or slice
// in an interface (a typed nil that would panic at the first call).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Name returns the cache's name (NAME in the record key).
func (c *Cache[K, V]) Name() string { return c.name }

// Key returns the record key, resource:NAME[:SUFFIX].
func (c *Cache[K, V]) Key() string { return c.record.key }

// Get returns the item stored under key, or an *Error wrapping ErrNotFound
// when the dataset has none.
//
// Get is a map lookup on the current snapshot. Only while the Cache has no
// snapshot yet does it wait for the first load, until ctx ends; the error then
// wraps ErrNoData (and ErrAttemptsExhausted with WithMaxAttempts) and the cause.
func (c *Cache[K, V]) Get(ctx context.Context, key K) (V, error) {
	// The fast path: one atomic load and the lookup, no clock, no lock.
	if s := c.fresh.Load(); s != nil {
		if v, ok := s.items.get(key); ok {
			return v, nil
		}
	}
	return c.getSlow(ctx, key)
}

// getSlow is Get when the key is absent, the snapshot stale or missing.
func (c *Cache[K, V]) getSlow(ctx context.Context, key K) (V, error) {
	var zero V
	s, err := c.snapshotOrFirstLoad(ctx)
	if err == nil {
		if v, ok := s.items.get(key); ok {
			return v, nil
		}
		err = ErrNotFound
	}
	return zero, &Error{Cache: c.id, Op: "get", Key: keyText(key), Err: err}
}

func keyText[K comparable](key K) string {
	if s, ok := any(key).(string); ok {
		return s
	}
	return fmt.Sprint(key)
}

// Snapshot returns the current snapshot, for reading the whole dataset
// consistently (Len, Keys, All). It waits for data as Get does.
func (c *Cache[K, V]) Snapshot(ctx context.Context) (*Snapshot[K, V], error) {
	if s := c.fresh.Load(); s != nil {
		return s, nil
	}
	s, err := c.snapshotOrFirstLoad(ctx)
	if err != nil {
		return nil, &Error{Cache: c.id, Op: "snapshot", Key: c.record.key, Err: err}
	}
	return s, nil
}

// snapshotOrFirstLoad is the slow path of reads: with a snapshot, it starts a background
// reload if the snapshot is stale and returns it at once; without one, it
// waits for the first load. Its error wraps ErrNoData.
func (c *Cache[K, V]) snapshotOrFirstLoad(ctx context.Context) (*Snapshot[K, V], error) {
	if s := c.snap.Load(); s != nil {
		if c.stale.CompareAndSwap(true, false) { // one reader starts it, the rest carry on
			c.startReload(checkTail)
		}
		return s, nil
	}
	if err := c.noDataError(); err != nil {
		return nil, noData(err)
	}
	r := c.startReload(checkTail)
	if r == nil {
		return nil, noData(ErrClosed)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, noData(context.Cause(ctx))
	}
	if s := c.snap.Load(); s != nil { // r may have failed after a Refill filled it
		return s, nil
	}
	return nil, noData(r.err)
}

func noData(err error) error {
	if errors.Is(err, ErrNoData) {
		return err
	}
	return &kindError{kind: ErrNoData, note: ErrNoData.Error(), err: err}
}

// Reload reads the whole record from Redis in one round trip (a second tells
// no record from another type or an empty string) and serves it, refilling
// it from the source when it is missing or unusable. Unlike the
// periodic reloads, which read only the record's length and tail while they
// match the served record's, Reload reads the record even when its tail is
// unchanged (a record changed in place). If a reload is already running,
// Reload waits for it first. On failure the old snapshot stays.
func (c *Cache[K, V]) Reload(ctx context.Context) error {
	for {
		r := c.startReload(readWhole)
		if r == nil {
			return &Error{Cache: c.id, Op: "reload", Key: c.record.key, Err: ErrClosed}
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return &Error{Cache: c.id, Op: "reload", Key: c.record.key, Err: context.Cause(ctx)}
		}
		if r.mode == readWhole {
			return r.err
		}
	}
}

// Refill loads the dataset from the source and writes it to Redis under the
// refill lock, then serves what it wrote (as the other processes decode it).
// If another process holds the lock, Refill waits for it and takes up the
// record it writes instead of loading the source again.
//
// On a load error the record is kept alive for another CacheTTL, or written
// back from the snapshot if it has expired. If the write to Redis fails, this
// process serves the new data all the same and Refill returns the Redis
// error. If this load outlived its lock and another process wrote a record
// meanwhile, that record (begun later, so newer) is kept and served, and
// Refill returns an error wrapping ErrNotWritten.
//
// A periodic job calls Refill (or RefillAll) so that readers never pay for a
// load.
func (c *Cache[K, V]) Refill(ctx context.Context) error {
	if c.isClosed() {
		return &Error{Cache: c.id, Op: "refill", Key: c.record.key, Err: ErrClosed}
	}
	if err := c.acquireExclusive(ctx); err != nil {
		return &Error{Cache: c.id, Op: "refill", Key: c.record.key, Err: err}
	}
	defer c.releaseExclusive()
	s, err := c.refillForced(ctx)
	if s != nil {
		c.install(s)
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

// startReload returns the reload in progress, starting one that reads as
// mode says if there is none. It returns nil after Close.
func (c *Cache[K, V]) startReload(mode readMode) *reload {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if c.reloading == nil {
		c.reloading = &reload{mode: mode, done: make(chan struct{})}
		go c.runReload(c.reloading)
	}
	return c.reloading
}

// runReload runs r. It is detached from the reader that started it: readers
// give up waiting when their own ctx ends, but the reload goes on for the
// others, bounded by reloadTimeout.
func (c *Cache[K, V]) runReload(r *reload) {
	ctx, cancel := context.WithTimeout(context.Background(), c.reloadTimeout())
	defer cancel()
	r.err = c.reloadWithAttempts(ctx, r.mode)

	c.mu.Lock()
	c.reloading = nil
	c.scheduleReloadLocked() // after a failure too: one attempt per ReloadTTL
	if r.err != nil && c.snap.Load() == nil {
		c.noDataErr = r.err
		c.noDataUntil = time.Now().Add(min(c.cfg.reloadTTL, maxNoDataBackoff))
	}
	c.mu.Unlock()
	close(r.done)
}

// reloadTimeout bounds a background reload: at least a reload period, and
// long enough to wait out one lock holder and load after it.
func (c *Cache[K, V]) reloadTimeout() time.Duration {
	return max(c.cfg.reloadTTL, 2*c.cfg.refillLockTTL)
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

// install serves s from now on, fresh for one ReloadTTL.
func (c *Cache[K, V]) install(s *Snapshot[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Store(s)
	c.checkedAt.Store(s.loadedAt.UnixNano())
	c.scheduleReloadLocked()
}

// scheduleReloadLocked marks the snapshot fresh and makes it stale again in
// ReloadTTL, varied by the reload jitter. Readers see staleness as one atomic
// load, not a clock read.
func (c *Cache[K, V]) scheduleReloadLocked() {
	if c.snap.Load() == nil {
		return
	}
	if c.closed { // no more reloads: serve the newest snapshot for good
		c.stale.Store(false)
		c.fresh.Store(c.snap.Load())
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

func (c *Cache[K, V]) reloadWithAttempts(ctx context.Context, mode readMode) error {
	if err := c.acquireExclusive(ctx); err != nil {
		return &Error{Cache: c.id, Op: "reload", Key: c.record.key, Err: err}
	}
	defer c.releaseExclusive()
	attempts := max(c.cfg.maxAttempts, 1)
	var err error
	for range attempts {
		start := time.Now()
		err = c.reload(ctx, mode)
		observe(c.cfg.metrics, c.name, OpReload, start, err)
		c.noteResult(err)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	c.log.ErrorContext(ctx, "kiwicache.reload_failed", "key", c.record.key, "error", err,
		"stale_data_kept", c.snap.Load() != nil)
	if c.cfg.maxAttempts > 0 && ctx.Err() == nil {
		return &kindError{kind: ErrAttemptsExhausted, note: fmt.Sprintf("%v (%d in a row)", ErrAttemptsExhausted, attempts), err: err}
	}
	return err
}

// reload reads the record and serves it; when it is missing or unusable, it
// refills it. A record that is still the one served (see recordID) is not
// decoded again unless mode is readWhole, nor even read by checkTail.
func (c *Cache[K, V]) reload(ctx context.Context, mode readMode) error {
	known := recordID{size: unknownID}
	if s := c.snap.Load(); s != nil && mode != readWhole {
		known = s.record
	}
	fetch := c.record.fetch
	if mode != checkTail {
		fetch = c.record.read
	}
	f, err := fetch(ctx, known)
	if err != nil {
		return err
	}
	if f.unchanged(known) {
		c.checkedAt.Store(time.Now().UnixNano())
		if mode == readNew {
			c.push.sameReads.Add(1)
		}
		return nil
	}
	c.push.sameReads.Store(0)
	var unusable error // why a record that exists cannot be served
	switch {
	case f.b != nil:
		s, err := c.decode(f.b, f.id)
		if err == nil && (s.Len() > 0 || c.cfg.allowEmpty) {
			c.install(s)
			return nil
		}
		unusable = err
		if err == nil {
			unusable = &Error{Cache: c.id, Op: "decode", Key: c.record.key, Err: errors.New("empty record (WithAllowEmpty is off)")}
		}
	case f.id.size == wrongType:
		unusable = &Error{Cache: c.id, Op: "fetch script", Key: c.record.key, Err: fmt.Errorf("%w: the key holds another Redis type", ErrMalformedRecord)}
	}
	if unusable != nil {
		replace := c.mayReplaceUnusable()
		c.log.WarnContext(ctx, "kiwicache.malformed_cache_data", "key", c.record.key, "error", unusable, "replaced", replace)
		if !replace {
			return unusable
		}
	}
	s, err := c.refill(ctx, refillStart{seen: f.id})
	if s != nil {
		c.install(s)
		if unusable != nil && err == nil {
			c.mu.Lock()
			c.unusableReplacedAt = time.Now()
			c.mu.Unlock()
		}
		if errors.Is(err, ErrNotWritten) {
			return nil // a newer record than this load's is served
		}
	}
	return err
}

// mayReplaceUnusable reports whether this Cache may replace a record it
// cannot use. A Cache that serves a snapshot does so at most once per
// CacheTTL (DefaultCacheTTLFactor x ReloadTTL with WithNoExpiry): during a
// rolling deploy that changes V, old and new processes each find the other's
// record unusable, and would otherwise take turns loading the source at every
// reload; meanwhile each serves its own snapshot. A Cache with no snapshot
// always may: it has nothing else to serve.
func (c *Cache[K, V]) mayReplaceUnusable() bool {
	every := c.cfg.cacheTTL
	if every == 0 {
		every = DefaultCacheTTLFactor * min(c.cfg.reloadTTL, MaxTTL/DefaultCacheTTLFactor)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap.Load() == nil || time.Since(c.unusableReplacedAt) >= every
}

// decode turns the bytes of the record with id into a snapshot. A Codec that
// panics is a malformed record, not a crash: reloads run in the background.
func (c *Cache[K, V]) decode(b []byte, id recordID) (s *Snapshot[K, V], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Cache: c.id, Op: "decode", Key: c.record.key,
				Err: withKind(ErrMalformedRecord, &PanicError{Value: p, Stack: debug.Stack()})}
			c.log.Error("kiwicache.codec_panicked", "key", c.record.key, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	var rec decodedRecord[K, V]
	// A JSONCodec decodes into the snapshot's table; any other Codec, a type
	// that embeds a JSONCodec included, by its Decode, into a map copied.
	switch codec := c.codec.(type) {
	case JSONCodec[K, V]:
		rec, err = codec.decode(b, false)
	case *JSONCodec[K, V]:
		rec, err = codec.decode(b, false)
	default:
		var r Record[K, V]
		r, err = c.codec.Decode(b)
		rec = decodedRecord[K, V]{items: tableOf(r.Data), timestamp: r.Timestamp}
	}
	if err != nil {
		if !errors.Is(err, ErrMalformedRecord) {
			err = withKind(ErrMalformedRecord, err)
		}
		return nil, &Error{Cache: c.id, Op: "decode", Key: c.record.key, Err: err}
	}
	return &Snapshot[K, V]{items: rec.items, timestamp: rec.timestamp, loadedAt: time.Now(), record: id}, nil
}

func (c *Cache[K, V]) acquireExclusive(ctx context.Context) error {
	select {
	case c.exclusive <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *Cache[K, V]) releaseExclusive() { <-c.exclusive }

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
