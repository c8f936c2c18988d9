package kiwicache

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults, as the Python kiwi-cache 0.4.5 has them.
const (
	DefaultReloadTTL     = time.Minute
	DefaultRefillLockTTL = 5 * time.Second
	// The record lives DefaultCacheTTLFactor x ReloadTTL unless WithCacheTTL or
	// WithNoExpiry says otherwise.
	DefaultCacheTTLFactor = 10
)

// An Option configures a Cache in New.
type Option func(*config)

type config struct {
	suffix        string
	reloadTTL     time.Duration
	cacheTTL      time.Duration // 0 until set; newConfig sets the default
	noExpiry      bool
	refillLockTTL time.Duration
	maxAttempts   int
	allowEmpty    bool
	codec         any // a Codec[K, V], checked in New
	loadTimeout   time.Duration
	metrics       Metrics
	logger        *slog.Logger
	registry      *Registry
	maxRecordSize int
	minItems      int
	maxShrink     float64
	validate      any        // a func(*Snapshot[K, V], map[K]V) error, checked in New
	push          pushConfig // WithoutPush, WithPushSpread, WithReloadJitter: see notify.go
	errs          []error    // from options, reported by New
}

// WithSuffix sets the record key to resource:NAME:SUFFIX (and the lock to
// lock:NAME:SUFFIX), so that one NAME can hold several datasets.
func WithSuffix(suffix string) Option {
	return func(c *config) {
		if err := checkKeyPart("suffix", suffix); err != nil {
			c.errs = append(c.errs, err)
		}
		c.suffix = suffix
	}
}

// WithReloadTTL sets how long a snapshot is served before a read reloads it
// from Redis in the background. Default: DefaultReloadTTL (1 minute).
func WithReloadTTL(d time.Duration) Option {
	return func(c *config) { c.reloadTTL = d }
}

// WithCacheTTL sets the lifetime of the record in Redis; it must be at least
// the ReloadTTL. Redis counts it in whole seconds, rounded up. Default:
// DefaultCacheTTLFactor x ReloadTTL.
func WithCacheTTL(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("cache TTL %v is not positive (use WithNoExpiry for none)", d))
		}
		c.cacheTTL = d
	}
}

// WithNoExpiry writes the record without an expiry: it stays in Redis until
// it is replaced or deleted.
func WithNoExpiry() Option {
	return func(c *config) { c.noExpiry = true }
}

// WithRefillLockTTL sets how long the refill lock lives when its holder dies
// before releasing it; it bounds how long other processes wait for a crashed
// holder. Whole seconds, rounded up. Default: DefaultRefillLockTTL (5 s).
func WithRefillLockTTL(d time.Duration) Option {
	return func(c *config) { c.refillLockTTL = d }
}

// WithMaxAttempts makes a reload try up to n times in a row, and makes a read
// that has no data at all fail with ErrAttemptsExhausted after n failed
// attempts. With n <= 0 (the default, as Python's -1) a reload tries once and a
// failure only keeps the stale data.
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.maxAttempts = n }
}

// WithAllowEmpty accepts an empty dataset from the source and from Redis.
// Without it, empty source data is a load error (ErrEmptyData) and an empty
// record is treated as missing.
func WithAllowEmpty() Option {
	return func(c *config) { c.allowEmpty = true }
}

// WithCodec replaces the record codec. K and V must be the Cache's; New
// reports others as ErrInvalidConfig. Records that Python services read must
// keep the default JSONCodec.
//
// The JSON codec ends every record with its timestamp, so a reload tells an
// unchanged record from its length and last bytes. Other codecs cannot be
// told apart that way: with them every reload reads the whole record, and a
// load that outlived its refill lock writes only where there is no record.
func WithCodec[K comparable, V any](codec Codec[K, V]) Option {
	return func(c *config) {
		if isNil(codec) {
			c.errs = append(c.errs, errors.New("WithCodec: nil codec"))
		}
		c.codec = codec
	}
}

// WithLoadTimeout bounds each call of the Loader to d, on top of the ctx of
// the reload or refill that makes it. Registry.RefillAll gives every cache the
// same ctx: a slow source with a load timeout cannot hold a refill slot past
// it, so the other caches proceed. Default: only the ctx bounds a load.
func WithLoadTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("load timeout %v is not positive", d))
		}
		c.loadTimeout = d
	}
}

// WithMetrics sets where the cache counts its outcomes (see Metrics,
// Observer and DogStatsD). Default: nothing is counted.
func WithMetrics(m Metrics) Option {
	return func(c *config) { c.metrics = m }
}

// WithLogger sets the structured logger. Default: slog.Default() at New.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithRegistry registers the cache in r instead of DefaultRegistry(); nil
// registers it nowhere.
func WithRegistry(r *Registry) Option {
	return func(c *config) { c.registry = r }
}

// WithMaxRecordSize refuses records larger than n bytes: a reload checks the
// record's length before reading it and fails with ErrRecordTooLarge (the old
// snapshot stays, the record is not refilled), and a refill does not write
// source data that encodes larger (a load error). Default: no limit but Redis's
// own (512 MB).
func WithMaxRecordSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("max record size %d is not positive", n))
		}
		c.maxRecordSize = n
	}
}

// WithMinItems refuses source data with fewer than n items: it is a load
// error (ErrRefused), and the record in Redis stays as it was for every
// process. It guards against a query that returns a fraction of the table.
func WithMinItems(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("min items %d is not positive", n))
		}
		c.minItems = n
	}
}

// WithMaxShrink refuses source data that has lost more than fraction (0 < f <
// 1) of the items of the data it would replace: this process's snapshot, or
// the record in Redis when it has none (as in a cron job). A refused result
// is a load error (ErrRefused), and the record stays as it was.
func WithMaxShrink(fraction float64) Option {
	return func(c *config) {
		if !(fraction > 0 && fraction < 1) {
			c.errs = append(c.errs, fmt.Errorf("max shrink %v is not between 0 and 1", fraction))
		}
		c.maxShrink = fraction
	}
}

// WithValidate runs validate on every result of the source before it is
// written, with the data it would replace (nil when there is none; see
// WithMaxShrink). An error refuses the result: it is a load error wrapping
// ErrRefused and the error, and the record stays as it was. K and V must be
// the Cache's; New reports others as ErrInvalidConfig.
func WithValidate[K comparable, V any](validate func(prev *Snapshot[K, V], fresh map[K]V) error) Option {
	return func(c *config) { c.validate = validate }
}

func newConfig(opts []Option) (config, error) {
	c := config{
		reloadTTL:     DefaultReloadTTL,
		refillLockTTL: DefaultRefillLockTTL,
		maxAttempts:   -1,
		metrics:       noMetrics{},
		logger:        slog.Default(),
		registry:      defaultRegistry,
	}
	for i, opt := range opts {
		if opt == nil {
			return c, fmt.Errorf("option %d is nil", i)
		}
		opt(&c)
	}
	switch {
	case len(c.errs) > 0:
		return c, c.errs[0]
	case c.reloadTTL <= 0 || c.reloadTTL > MaxTTL:
		return c, fmt.Errorf("reload TTL %v is not between 0 and MaxTTL", c.reloadTTL)
	case c.refillLockTTL <= 0 || c.refillLockTTL > MaxTTL:
		return c, fmt.Errorf("refill lock TTL %v is not between 0 and MaxTTL", c.refillLockTTL)
	case c.cacheTTL > MaxTTL:
		return c, fmt.Errorf("cache TTL %v is over MaxTTL", c.cacheTTL)
	case c.noExpiry && c.cacheTTL != 0:
		return c, fmt.Errorf("both WithCacheTTL and WithNoExpiry given")
	case c.cacheTTL != 0 && c.cacheTTL < c.reloadTTL:
		return c, fmt.Errorf("cache TTL %v is shorter than reload TTL %v", c.cacheTTL, c.reloadTTL)
	case c.cacheTTL == 0 && !c.noExpiry && c.reloadTTL > MaxTTL/DefaultCacheTTLFactor:
		return c, fmt.Errorf("reload TTL %v makes the default cache TTL (%d x) over MaxTTL: give WithCacheTTL or WithNoExpiry",
			c.reloadTTL, DefaultCacheTTLFactor)
	}
	if c.cacheTTL == 0 && !c.noExpiry {
		c.cacheTTL = DefaultCacheTTLFactor * c.reloadTTL
	}
	// Redis keeps the lock for whole seconds: waits and the watchdog go by
	// what it keeps, not by a shorter figure that would make waiters spin.
	c.refillLockTTL = wholeSeconds(c.refillLockTTL)
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.metrics == nil {
		c.metrics = noMetrics{}
	}
	return c, nil
}

// MaxTTL bounds every TTL option: Redis takes EX up to far beyond it, but a
// longer time.Duration would overflow when rounded to seconds or multiplied
// into the default cache TTL, and a negative TTL would make EXPIRE delete the
// record.
const MaxTTL = 100 * 365 * 24 * time.Hour

// recordTTL is the expiry a record is written with: 0, none, with WithNoExpiry.
func (c config) recordTTL() time.Duration {
	if c.noExpiry {
		return 0
	}
	return wholeSeconds(c.cacheTTL)
}

// wholeSeconds rounds d up to whole seconds: PROTOCOL.md writes EX seconds,
// and go-redis sends EX (not PX) for whole seconds.
func wholeSeconds(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
