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
//	kiwicache_total{name,status}                  counter: outcomes, status success, redis_error or load_error (the DogStatsD counter kiwicache)
//	kiwicache_reload_duration_seconds{name,outcome}     histogram: reloads from Redis, outcome success or failure
//	kiwicache_refill_duration_seconds{name,outcome}     histogram: refills, from taking the lock to writing the record
//	kiwicache_lock_wait_duration_seconds{name,outcome}  histogram: waits for another process's refill lock
//	kiwicache_has_data{name,suffix}               1 while a snapshot is served, else 0
//	kiwicache_items{name,suffix}                  items in the snapshot
//	kiwicache_record_size_bytes{name,suffix}      bytes of the record the snapshot came from
//	kiwicache_snapshot_age_seconds{name,suffix}   since the snapshot's data left the source (its record timestamp)
//	kiwicache_check_age_seconds{name,suffix}      since a reload last found the record in Redis to be the one served
//	kiwicache_consecutive_failures{name,suffix}   reload and refill attempts failed since the last success
//	kiwicache_push_connected{name,suffix}         1 while the cache listens for notifications of new records
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
	"strings"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBuckets are the upper bounds, in seconds, of the duration histograms:
// from an unchanged record's reload (~60 µs) to a refill that takes as long as
// the lock lives.
var DefaultBuckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30,
}

// Outcome label values of the duration histograms.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// An Option configures New.
type Option func(*options)

type options struct {
	buckets []float64
	now     func() time.Time
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
	now func() time.Time

	outcomes  *prometheus.CounterVec
	durations map[kiwicache.Op]*prometheus.HistogramVec

	hasData, items, recordSize, snapshotAge, checkAge,
	failures, pushConnected, notificationAge *prometheus.Desc
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
	o := options{buckets: DefaultBuckets, now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	histogram := func(op, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiwicache_" + op + "_duration_seconds",
			Help:    help,
			Buckets: o.buckets,
		}, []string{"name", "outcome"})
	}
	gauge := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kiwicache_"+name, help, []string{"name", "suffix"}, nil)
	}
	return &Metrics{
		reg: reg,
		now: o.now,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiwicache_total",
			Help: "Outcomes of kiwicache loads by status (success, redis_error, load_error), as the DogStatsD counter kiwicache.",
		}, []string{"name", "status"}),
		durations: map[kiwicache.Op]*prometheus.HistogramVec{
			kiwicache.OpReload:   histogram("reload", "Time a reload of the snapshot from Redis took, whatever it found."),
			kiwicache.OpRefill:   histogram("refill", "Time a refill took, from taking the lock to writing the record."),
			kiwicache.OpLockWait: histogram("lock_wait", "Time spent waiting for another process's refill lock."),
		},
		hasData:         gauge("has_data", "1 while the cache serves a snapshot, else 0."),
		items:           gauge("items", "Items in the snapshot served."),
		recordSize:      gauge("record_size_bytes", "Bytes of the Redis record the snapshot came from."),
		snapshotAge:     gauge("snapshot_age_seconds", "Seconds since the snapshot's data left the source (its record timestamp)."),
		checkAge:        gauge("check_age_seconds", "Seconds since a reload last found the record in Redis to be the one served."),
		failures:        gauge("consecutive_failures", "Reload and refill attempts that failed since the last success."),
		pushConnected:   gauge("push_connected", "1 while the cache listens for notifications of new records, else 0."),
		notificationAge: gauge("push_notification_age_seconds", "Seconds since the last notification of a new record."),
	}
}

// statuses are the label values Count initializes together, so that a rate
// of load_error exists from a cache's first outcome on.
var statuses = []kiwicache.Status{kiwicache.StatusSuccess, kiwicache.StatusRedisError, kiwicache.StatusLoadError}

// Count increments kiwicache_total{name=cacheName,status=status}. The first
// count of a name creates its series of every status at zero.
func (m *Metrics) Count(cacheName string, status kiwicache.Status) {
	if m == nil {
		return
	}
	c, err := m.outcomes.GetMetricWithLabelValues(cacheName, string(status))
	if err != nil {
		return // a label value Prometheus refuses (not UTF-8): dropped, never a panic
	}
	c.Inc()
	for _, s := range statuses {
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
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeFailure
	}
	if o, err := h.GetMetricWithLabelValues(cacheName, outcome); err == nil {
		o.Observe(d.Seconds())
	}
}

// Describe sends the descriptors of every series m reports.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.outcomes.Describe(ch)
	for _, op := range ops {
		m.durations[op].Describe(ch)
	}
	for _, d := range m.gauges() {
		ch <- d
	}
}

// ops are the Ops in the order Describe and Collect send their histograms.
var ops = []kiwicache.Op{kiwicache.OpReload, kiwicache.OpRefill, kiwicache.OpLockWait}

func (m *Metrics) gauges() []*prometheus.Desc {
	return []*prometheus.Desc{m.hasData, m.items, m.recordSize, m.snapshotAge, m.checkAge,
		m.failures, m.pushConnected, m.notificationAge}
}

// Collect sends the counters and histograms, and the gauges of the Health of
// every cache in the registry, read now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.outcomes.Collect(ch)
	for _, op := range ops {
		m.durations[op].Collect(ch)
	}
	if m.reg == nil {
		return
	}
	now := m.now()
	for _, h := range m.reg.Health() {
		name, suffix := nameAndSuffix(h.Key)
		gauge := func(d *prometheus.Desc, v float64) {
			g, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, name, suffix)
			if err != nil {
				g = prometheus.NewInvalidMetric(d, err) // Gather reports it
			}
			ch <- g
		}
		age := func(d *prometheus.Desc, since time.Time) {
			if !since.IsZero() {
				gauge(d, now.Sub(since).Seconds())
			}
		}
		gauge(m.hasData, boolValue(h.HasData))
		gauge(m.items, float64(h.Items))
		gauge(m.recordSize, float64(h.RecordSize))
		if h.HasData {
			age(m.snapshotAge, h.RecordTime)
		}
		age(m.checkAge, h.CheckedAt)
		gauge(m.failures, float64(h.ConsecutiveFailures))
		gauge(m.pushConnected, boolValue(h.PushConnected))
		age(m.notificationAge, h.LastNotification)
	}
}

// nameAndSuffix splits a record key resource:NAME[:SUFFIX]. A key that
// kiwicache.ParseName refuses (a Refiller of the caller's own) is its own
// name.
func nameAndSuffix(key string) (name, suffix string) {
	name, suffix, err := kiwicache.ParseName(key)
	if err != nil {
		return strings.TrimPrefix(key, "resource:"), ""
	}
	return name, suffix
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
