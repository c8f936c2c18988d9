// Package kiwiotel exports kiwicache's metrics through OpenTelemetry.
//
// A *Metrics, given to kiwicache.WithMetrics, counts each cache's outcomes and
// records the durations of its reloads, refills and lock waits. Its
// observable gauges read the Health of every cache of a kiwicache.Registry
// when the SDK collects, so nothing is sampled between collections:
//
//	m, err := kiwiotel.New(kiwicache.DefaultRegistry()) // the global MeterProvider
//	defer m.Close()
//	airlines, err := kiwicache.New("Airlines", rdb, loader, kiwicache.WithMetrics(m))
//
// The instruments (meter ScopeName), with the attribute name (the cache's
// NAME, as the DogStatsD counter's name: tag) and, for the gauges, suffix
// (its SUFFIX, left out without one):
//
//	kiwicache                        counter {outcome}, with status: success, redis_error, load_error or not_written (the DogStatsD counter)
//	kiwicache.reload.duration        histogram s, with outcome: success or failure: reloads from Redis
//	kiwicache.refill.duration        histogram s, with outcome: refills, from taking the lock to writing the record
//	kiwicache.lock_wait.duration     histogram s, with outcome: waits for another process's refill lock
//	kiwicache.has_data               gauge: 1 while a snapshot is served, else 0
//	kiwicache.items                  gauge {item}: items in the snapshot
//	kiwicache.record.size            gauge By: bytes of the record the snapshot came from
//	kiwicache.snapshot.age           gauge s: since the snapshot's data left the source (its record timestamp)
//	kiwicache.check.age              gauge s: since a reload last found the record in Redis to be the one served
//	kiwicache.consecutive_failures   gauge {failure}: reload and refill attempts failed since the last success
//	kiwicache.push.connected         gauge: 1 while the cache listens for notifications of new records
//	kiwicache.push.notification.age  gauge s: since the last notification
//
// The counter keeps the DogStatsD name kiwicache (rather than a name of the
// kiwicache.* namespace), so that a pipeline into Datadog counts under the
// name and tags that 0.4.5 dashboards query. OpenTelemetry's Prometheus
// exporter turns these into the names package kiwiprom uses
// (kiwicache_total, kiwicache_record_size_bytes, ...), so one dashboard
// serves both.
//
// The age gauges are left out while their time is unknown (no snapshot yet, no
// check, no notification). A snapshot age is measured against this host's
// clock from a timestamp the writer's clock stamped, so clock skew shows in it.
// Counters and histograms are per NAME, as the Metrics and Observer interfaces
// are told: caches that differ only by suffix add up there; the gauges are per
// cache.
package kiwiotel

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/metricdefs"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the meter.
const ScopeName = "github.com/kiwicache/kiwicache/kiwiotel"

// DefaultBuckets are the advised bucket boundaries, in seconds, of the
// duration histograms: from an unchanged record's reload (~60 µs) to a refill
// that takes as long as the lock lives. A View of the SDK overrides them.
var DefaultBuckets = slices.Clone(metricdefs.Buckets)

// Outcome attribute values of the duration histograms.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// An Option configures New.
type Option func(*options)

type options struct {
	provider metric.MeterProvider
	buckets  []float64
}

// WithMeterProvider sets the MeterProvider. Default: otel.GetMeterProvider()
// at New.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.provider = mp }
}

// WithBuckets sets the advised boundaries, in seconds and increasing order,
// of the duration histograms. Default: DefaultBuckets.
func WithBuckets(bounds []float64) Option {
	return func(o *options) { o.buckets = bounds }
}

// Metrics is a kiwicache.Metrics and a kiwicache.Observer. It is safe for
// concurrent use; give it to any number of caches.
type Metrics struct {
	outcomes     metric.Int64Counter
	durations    map[kiwicache.Op]metric.Float64Histogram
	registration metric.Registration // of the gauges' callback; nil without a registry
	closeOnce    sync.Once
	closeErr     error
}

var (
	_ kiwicache.Metrics  = (*Metrics)(nil)
	_ kiwicache.Observer = (*Metrics)(nil)
)

// New creates the instruments and registers the gauges' callback, which
// reads the Health of the caches in reg at each collection. With a nil reg
// there are no gauges, only what caches count and observe through the
// Metrics. The error is the meter's, for an instrument it refused.
func New(reg *kiwicache.Registry, opts ...Option) (*Metrics, error) {
	o := options{buckets: DefaultBuckets}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.provider == nil {
		o.provider = otel.GetMeterProvider()
	}
	meter := o.provider.Meter(ScopeName)

	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	m := &Metrics{durations: make(map[kiwicache.Op]metric.Float64Histogram)}
	var err error
	m.outcomes, err = meter.Int64Counter(metricdefs.CounterName, metric.WithUnit(metricdefs.CounterUnit),
		metric.WithDescription(metricdefs.CounterDescription))
	keep(err)
	for _, h := range metricdefs.Histograms {
		m.durations[h.Op], err = meter.Float64Histogram(h.Name, metric.WithUnit("s"),
			metric.WithDescription(h.Description), metric.WithExplicitBucketBoundaries(o.buckets...))
		keep(err)
	}
	if reg != nil {
		g, err := newGauges(meter)
		keep(err)
		if err == nil {
			m.registration, err = meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
				g.observe(obs, reg.Health(), time.Now())
				return nil
			}, g.instruments...)
			keep(err)
		}
	}
	if len(errs) > 0 {
		m.Close()
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// Close unregisters the gauges' callback: the Health of the registry's caches
// is no longer reported. The counter and histograms keep working.
func (m *Metrics) Close() error {
	if m == nil {
		return nil
	}
	m.closeOnce.Do(func() {
		if m.registration != nil {
			m.closeErr = m.registration.Unregister()
		}
	})
	return m.closeErr
}

// Count adds one to the counter kiwicache, with attributes name and status.
func (m *Metrics) Count(cacheName string, status kiwicache.Status) {
	if m == nil {
		return
	}
	m.outcomes.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("name", cacheName), attribute.String("status", string(status))))
}

// Observe records d, in seconds, in the histogram of op, with attributes name
// and outcome. An Op this package does not know is dropped.
func (m *Metrics) Observe(cacheName string, op kiwicache.Op, d time.Duration, err error) {
	if m == nil {
		return
	}
	h := m.durations[op]
	if h == nil {
		return
	}
	h.Record(context.Background(), d.Seconds(), metric.WithAttributes(
		attribute.String("name", cacheName), attribute.String("outcome", metricdefs.Outcome(err))))
}

// gauges are the observable instruments of metricdefs.Gauges, in their order:
// each an Int64ObservableGauge or a Float64ObservableGauge.
type gauges struct {
	instruments []metric.Observable
}

func newGauges(meter metric.Meter) (*gauges, error) {
	g := new(gauges)
	var errs []error
	for _, def := range metricdefs.Gauges {
		var inst metric.Observable
		var err error
		if def.Integer {
			inst, err = meter.Int64ObservableGauge(def.Name, metric.WithUnit(def.Unit), metric.WithDescription(def.Description))
		} else {
			inst, err = meter.Float64ObservableGauge(def.Name, metric.WithUnit(def.Unit), metric.WithDescription(def.Description))
		}
		g.instruments = append(g.instruments, inst)
		errs = append(errs, err)
	}
	return g, errors.Join(errs...)
}

// observe reports each Health, as of now.
func (g *gauges) observe(obs metric.Observer, healths []kiwicache.Health, now time.Time) {
	for _, h := range healths {
		attrs := metric.WithAttributeSet(cacheAttributes(h.Key))
		for i, def := range metricdefs.Gauges {
			v, known := def.Value(h, now)
			if !known {
				continue
			}
			switch inst := g.instruments[i].(type) {
			case metric.Int64ObservableGauge:
				obs.ObserveInt64(inst, int64(v), attrs)
			case metric.Float64ObservableGauge:
				obs.ObserveFloat64(inst, v, attrs)
			}
		}
	}
}

// cacheAttributes are name and, when there is one, suffix of a record key.
func cacheAttributes(key string) attribute.Set {
	name, suffix := metricdefs.NameAndSuffix(key)
	if suffix == "" {
		return attribute.NewSet(attribute.String("name", name))
	}
	return attribute.NewSet(attribute.String("name", name), attribute.String("suffix", suffix))
}
