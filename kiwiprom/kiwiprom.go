// Package kiwiprom exports kiwicache's metrics to Prometheus.
//
// A *Metrics is two things at once. Given to kiwicache.WithMetrics, it counts
// each cache's outcomes and times its reloads, refills and lock waits. As a
// prometheus.Collector, it reads the Health of every cache of a
// kiwicache.Registry at each scrape and reports it as gauges, so nothing is
// sampled between scrapes:
//
//	m := kiwiprom.New(kiwicache.DefaultRegistry())
//	prometheus.MustRegister(m)
//	airlines, err := kiwicache.New("Airlines", rdb, loader, kiwicache.WithMetrics(m))
//
// The series, labelled name (the cache's NAME, as the DogStatsD counter's
// name: tag) and, for the gauges, suffix (its SUFFIX, empty without one):
//
//	kiwicache_total{name,status}                          counter: outcomes by status, success, redis_error, load_error or not_written (the DogStatsD counter)
//	kiwicache_reload_duration_seconds{name,outcome}       histogram: reloads from Redis, outcome success or failure
//	kiwicache_refill_duration_seconds{name,outcome}       histogram: refills, from taking the lock to writing the record
//	kiwicache_lock_wait_duration_seconds{name,outcome}    histogram: waits for another process's refill lock
//	kiwicache_has_data{name,suffix}                       1 while a snapshot is served, else 0
//	kiwicache_items{name,suffix}                          items in the snapshot
//	kiwicache_record_size_bytes{name,suffix}              bytes of the record the snapshot came from
//	kiwicache_snapshot_age_seconds{name,suffix}           since the snapshot's data left the source (its record timestamp)
//	kiwicache_check_age_seconds{name,suffix}              since a reload last found the record in Redis to be the one served
//	kiwicache_consecutive_failures{name,suffix}           reload and refill attempts failed since the last success
//	kiwicache_push_connected{name,suffix}                 1 while the cache listens for notifications of new records
//	kiwicache_push_notification_age_seconds{name,suffix}  since the last notification
//
// The age gauges are left out while their time is unknown (no snapshot yet, no
// check, no notification). A snapshot age is measured against this host's
// clock from a timestamp the writer's clock stamped, so clock skew shows in it
// (and can make it negative).
//
// The names are those that OpenTelemetry's Prometheus exporter gives the
// instruments of package kiwiotel, so one dashboard serves both. Counters and
// histograms are per NAME, as the Metrics and Observer interfaces are told:
// caches that differ only by suffix add up there; the gauges are per cache.
package kiwiprom

import (
	"slices"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/metricdefs"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBuckets are the upper bounds, in seconds, of the duration histograms:
// from an unchanged record's reload (~60 µs) to a refill that takes as long as
// the lock lives.
var DefaultBuckets = slices.Clone(metricdefs.Buckets)

// Outcome label values of the duration histograms.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// An Option configures New.
type Option func(*options)

type options struct {
	buckets []float64
}

// WithBuckets sets the duration histograms' upper bounds, in seconds, in
// increasing order. Default: DefaultBuckets.
func WithBuckets(bounds []float64) Option {
	return func(o *options) { o.buckets = bounds }
}

// Metrics is a kiwicache.Metrics, a kiwicache.Observer and a
// prometheus.Collector. It is safe for concurrent use. Register it once, with
// one registry; give it to any number of caches.
type Metrics struct {
	reg *kiwicache.Registry

	outcomes  *prometheus.CounterVec
	durations map[kiwicache.Op]*prometheus.HistogramVec
	gauges    []*prometheus.Desc // of metricdefs.Gauges, in their order
}

var (
	_ kiwicache.Metrics    = (*Metrics)(nil)
	_ kiwicache.Observer   = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)

// New returns Metrics that report the Health of the caches in reg at each
// scrape. With a nil reg it reports no gauges, only what caches count and
// observe through it.
func New(reg *kiwicache.Registry, opts ...Option) *Metrics {
	o := options{buckets: DefaultBuckets}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	m := &Metrics{
		reg: reg,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricdefs.CounterPromName,
			Help: metricdefs.CounterDescription,
		}, []string{"name", "status"}),
		durations: make(map[kiwicache.Op]*prometheus.HistogramVec),
	}
	for _, h := range metricdefs.Histograms {
		m.durations[h.Op] = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    h.PromName,
			Help:    h.Description,
			Buckets: o.buckets,
		}, []string{"name", "outcome"})
	}
	for _, g := range metricdefs.Gauges {
		m.gauges = append(m.gauges, prometheus.NewDesc(g.PromName, g.Description, []string{"name", "suffix"}, nil))
	}
	return m
}

// Count increments kiwicache_total{name=cacheName,status=status}. The first
// count of a name creates its series of every status at zero, so that a rate
// of load_error exists from a cache's first outcome on.
func (m *Metrics) Count(cacheName string, status kiwicache.Status) {
	if m == nil {
		return
	}
	c, err := m.outcomes.GetMetricWithLabelValues(cacheName, string(status))
	if err != nil {
		return // a label value Prometheus refuses (not UTF-8): dropped, never a panic
	}
	c.Inc()
	for _, s := range metricdefs.Statuses {
		m.outcomes.GetMetricWithLabelValues(cacheName, string(s))
	}
}

// Observe records d in the histogram of op. An Op this package does not know
// is dropped.
func (m *Metrics) Observe(cacheName string, op kiwicache.Op, d time.Duration, err error) {
	if m == nil {
		return
	}
	h := m.durations[op]
	if h == nil {
		return
	}
	if o, err := h.GetMetricWithLabelValues(cacheName, metricdefs.Outcome(err)); err == nil {
		o.Observe(d.Seconds())
	}
}

// Describe sends the descriptors of every series m reports.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.outcomes.Describe(ch)
	for _, h := range metricdefs.Histograms {
		m.durations[h.Op].Describe(ch)
	}
	for _, d := range m.gauges {
		ch <- d
	}
}

// Collect sends the counters and histograms, and the gauges of the Health of
// every cache in the registry, read now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.outcomes.Collect(ch)
	for _, h := range metricdefs.Histograms {
		m.durations[h.Op].Collect(ch)
	}
	if m.reg == nil {
		return
	}
	now := time.Now()
	for _, h := range m.reg.Health() {
		name, suffix := metricdefs.NameAndSuffix(h.Key)
		for i, g := range metricdefs.Gauges {
			v, known := g.Value(h, now)
			if !known {
				continue
			}
			metric, err := prometheus.NewConstMetric(m.gauges[i], prometheus.GaugeValue, v, name, suffix)
			if err != nil {
				metric = prometheus.NewInvalidMetric(m.gauges[i], err) // Gather reports it
			}
			ch <- metric
		}
	}
}
