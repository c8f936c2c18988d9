package kiwiprom_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/cachetest"
	"github.com/kiwicache/kiwicache/kiwiprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// Gathered from a registry that checks every collected metric against its
// description: the outcome counter holds exactly what the caches counted,
// with every status of a counted name at zero from the start; the duration
// histograms saw each reload, refill and lock wait with its outcome; the
// gauges report each cache's Health, per NAME and SUFFIX; and the names pass
// Prometheus' own lint.
func TestGather(t *testing.T) {
	start := time.Now()
	reg := new(kiwicache.Registry)
	m := kiwiprom.New(reg)
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(m)
	record := cachetest.Workload(t, reg, m)
	scraped := time.Now()

	families, err := pr.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := index(families)

	wantCount := map[string]float64{
		`kiwicache_total{name="Airlines",status="success"}`:     2,
		`kiwicache_total{name="Airlines",status="redis_error"}`: 1,
		`kiwicache_total{name="Airlines",status="load_error"}`:  0,
		`kiwicache_total{name="Airlines",status="not_written"}`: 0,
		`kiwicache_total{name="Rates",status="load_error"}`:     2,
		`kiwicache_total{name="Rates",status="success"}`:        0,
		`kiwicache_total{name="Rates",status="redis_error"}`:    0,
	}
	for series, want := range wantCount {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}

	wantHistogramCount := map[string]float64{
		`kiwicache_reload_duration_seconds{name="Airlines",outcome="success"}`:  1,
		`kiwicache_refill_duration_seconds{name="Airlines",outcome="failure"}`:  1,
		`kiwicache_refill_duration_seconds{name="Rates",outcome="failure"}`:     2,
		`kiwicache_refill_duration_seconds{name="Locked",outcome="failure"}`:    1,
		`kiwicache_lock_wait_duration_seconds{name="Locked",outcome="failure"}`: 1,
	}
	for series, want := range wantHistogramCount {
		if v, ok := got[series+"_count"]; !ok || v != want {
			t.Errorf("%s sample count = %v (present %v), want %v", series, v, ok, want)
		}
	}
	// The Get's refill, inside its reload, may be timed as a refill too.
	if v := got[`kiwicache_refill_duration_seconds{name="Airlines",outcome="success"}_count`]; v < 1 {
		t.Errorf("Airlines' successful refills timed: %v, want at least the Refill", v)
	}
	if v := got[`kiwicache_lock_wait_duration_seconds{name="Locked",outcome="failure"}_sum`]; v <= 0 || v > scraped.Sub(start).Seconds() {
		t.Errorf("lock wait sum = %vs, want the wait's duration, within the test's %v", v, scraped.Sub(start))
	}

	wantGauge := map[string]float64{
		`kiwicache_has_data{name="Airlines",suffix=""}`:             1,
		`kiwicache_items{name="Airlines",suffix=""}`:                2,
		`kiwicache_record_size_bytes{name="Airlines",suffix=""}`:    float64(len(record)),
		`kiwicache_consecutive_failures{name="Airlines",suffix=""}`: 1, // the Refill that met a Redis error
		`kiwicache_push_connected{name="Airlines",suffix=""}`:       0,
		`kiwicache_has_data{name="Rates",suffix="EUR"}`:             0,
		`kiwicache_items{name="Rates",suffix="EUR"}`:                0,
		`kiwicache_consecutive_failures{name="Rates",suffix="EUR"}`: 2,
		`kiwicache_has_data{name="Locked",suffix=""}`:               0,
		`kiwicache_push_connected{name="Pushed",suffix=""}`:         1,
	}
	for series, want := range wantGauge {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if v := got[`kiwicache_push_notification_age_seconds{name="Pushed",suffix=""}`]; v < 2 || v > time.Since(start).Seconds()+2 {
		t.Errorf("notification age = %vs, want 2 s and the test's %v at most", v, time.Since(start))
	}
	// The snapshot's data left the source during this test.
	for _, series := range []string{
		`kiwicache_snapshot_age_seconds{name="Airlines",suffix=""}`,
		`kiwicache_check_age_seconds{name="Airlines",suffix=""}`,
	} {
		if v, ok := got[series]; !ok || v < 0 || v > time.Since(start).Seconds() {
			t.Errorf("%s = %v (present %v), want an age within the test's %v", series, v, ok, time.Since(start))
		}
	}
	// No snapshot, no check: no age to report.
	for _, series := range []string{
		`kiwicache_snapshot_age_seconds{name="Rates",suffix="EUR"}`,
		`kiwicache_check_age_seconds{name="Rates",suffix="EUR"}`,
		`kiwicache_push_notification_age_seconds{name="Airlines",suffix=""}`,
	} {
		if v, ok := got[series]; ok {
			t.Errorf("%s = %v, want no such series", series, v)
		}
	}

	problems, err := testutil.GatherAndLint(pr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// The gauges are read from Health when Prometheus collects, not when the
// cache changes: a refill with more items shows at the next scrape, and a
// closed cache (no longer in the registry) is no longer reported.
func TestGaugesReadAtCollection(t *testing.T) {
	_, rdb := cachetest.NewRedis(t)
	reg := new(kiwicache.Registry)
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(kiwiprom.New(reg)) // the cache does not even report to it
	n := 1
	c := cachetest.NewCache(t, "Growing", rdb, func(context.Context) (map[string]int, error) {
		data := map[string]int{}
		for i := range n {
			data[string(rune('a'+i))] = i
		}
		return data, nil
	}, kiwicache.WithRegistry(reg))
	items := func() float64 {
		t.Helper()
		if err := testutil.GatherAndCompare(pr, strings.NewReader(""), "kiwicache_total"); err != nil {
			t.Errorf("a cache without WithMetrics(m) has outcome series: %v", err)
		}
		families, err := pr.Gather()
		if err != nil {
			t.Fatal(err)
		}
		v, ok := index(families)[`kiwicache_items{name="Growing",suffix=""}`]
		if !ok {
			return math.NaN()
		}
		return v
	}

	if v := items(); v != 0 {
		t.Errorf("items before the first read = %v, want 0", v)
	}
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := items(); v != 1 {
		t.Errorf("items after the first refill = %v, want 1", v)
	}
	n = 3
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := items(); v != 3 {
		t.Errorf("items after a refill with 3 = %v, want 3", v)
	}
	c.Close()
	if v := items(); !math.IsNaN(v) {
		t.Errorf("items of a closed cache = %v, want no series", v)
	}
}

// Bad input never panics: a Refiller of the caller's own whose key is no
// valid name, and label values Prometheus refuses (not UTF-8), are reported
// or dropped.
func TestBadNames(t *testing.T) {
	reg := new(kiwicache.Registry)
	reg.Register(cachetest.Refiller{RecordKey: "not a resource key", State: kiwicache.Health{HasData: true, Items: 7}})
	m := kiwiprom.New(reg)
	m.Count("bad\xff", kiwicache.StatusSuccess)
	m.Observe("bad\xff", kiwicache.OpReload, time.Millisecond, nil)
	m.Observe("Fine", kiwicache.Op("a future op"), time.Millisecond, nil)
	var none *kiwiprom.Metrics // a nil *Metrics given to WithMetrics counts nothing
	none.Count("Fine", kiwicache.StatusSuccess)
	none.Observe("Fine", kiwicache.OpReload, time.Millisecond, nil)
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(m)
	families, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := index(families)
	if v := got[`kiwicache_items{name="not a resource key",suffix=""}`]; v != 7 {
		t.Errorf("a Refiller with a key of its own: items = %v, want 7 under its key; got %v", v, got)
	}
	for series := range got {
		if strings.Contains(series, "bad") || strings.Contains(series, "Fine") {
			t.Errorf("series %s, want the invalid name and the unknown op dropped", series)
		}
	}
}

// index flattens gathered families into "name{labels}" -> value; histograms
// give name{labels}_count and name{labels}_sum.
func index(families []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			series := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[series] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[series] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[series+"_count"] = float64(m.Histogram.GetSampleCount())
				out[series+"_sum"] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}
