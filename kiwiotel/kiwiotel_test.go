package kiwiotel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/cachetest"
	"github.com/kiwicache/kiwicache/kiwiotel"
	"github.com/kiwicache/kiwicache/kiwiprom"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Collected by an SDK ManualReader: the counter kiwicache holds exactly what
// the caches counted, by name and status, as a monotonic cumulative sum; the
// duration histograms saw each reload, refill and lock wait with its outcome,
// in seconds; the gauges report each cache's Health by name and suffix, the
// ages only when known.
func TestManualReader(t *testing.T) {
	start := time.Now()
	reader, mp := newManualReader(t)
	reg := new(kiwicache.Registry)
	m, err := kiwiotel.New(reg, kiwiotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	record := cachetest.Workload(t, reg, m)

	got, meta := collect(t, reader)
	if sum := meta["kiwicache"]; sum.kind != "sum" || !sum.monotonic || sum.unit != "{outcome}" {
		t.Errorf("kiwicache is %+v, want a monotonic sum of {outcome}", sum)
	}
	for name, unit := range map[string]string{
		"kiwicache.reload.duration": "s", "kiwicache.refill.duration": "s", "kiwicache.lock_wait.duration": "s",
		"kiwicache.record.size": "By", "kiwicache.snapshot.age": "s", "kiwicache.items": "{item}",
	} {
		if meta[name].unit != unit || meta[name].description == "" {
			t.Errorf("%s: unit %q, description %q; want unit %q and a description", name, meta[name].unit, meta[name].description, unit)
		}
	}

	want := map[string]float64{
		"kiwicache{name=Airlines,status=success}":     2,
		"kiwicache{name=Airlines,status=redis_error}": 1,
		"kiwicache{name=Rates,status=load_error}":     2,

		"kiwicache.reload.duration{name=Airlines,outcome=success}_count":  1,
		"kiwicache.refill.duration{name=Airlines,outcome=failure}_count":  1,
		"kiwicache.refill.duration{name=Rates,outcome=failure}_count":     2,
		"kiwicache.refill.duration{name=Locked,outcome=failure}_count":    1,
		"kiwicache.lock_wait.duration{name=Locked,outcome=failure}_count": 1,

		"kiwicache.has_data{name=Airlines}":                     1,
		"kiwicache.items{name=Airlines}":                        2,
		"kiwicache.record.size{name=Airlines}":                  float64(len(record)),
		"kiwicache.consecutive_failures{name=Airlines}":         1,
		"kiwicache.push.connected{name=Airlines}":               0,
		"kiwicache.has_data{name=Rates,suffix=EUR}":             0,
		"kiwicache.items{name=Rates,suffix=EUR}":                0,
		"kiwicache.consecutive_failures{name=Rates,suffix=EUR}": 2,
		"kiwicache.has_data{name=Locked}":                       0,
		"kiwicache.push.connected{name=Pushed}":                 1,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	if v := got["kiwicache.refill.duration{name=Airlines,outcome=success}_count"]; v < 1 {
		t.Errorf("Airlines' successful refills timed: %v, want at least the Refill", v)
	}
	if v := got["kiwicache.lock_wait.duration{name=Locked,outcome=failure}_sum"]; v <= 0 || v > time.Since(start).Seconds() {
		t.Errorf("lock wait sum = %vs, want the wait's duration in seconds, within the test's %v", v, time.Since(start))
	}
	for _, series := range []string{"kiwicache.snapshot.age{name=Airlines}", "kiwicache.check.age{name=Airlines}"} {
		if v, ok := got[series]; !ok || v < 0 || v > time.Since(start).Seconds() {
			t.Errorf("%s = %v (present %v), want an age within the test's %v", series, v, ok, time.Since(start))
		}
	}
	if v := got["kiwicache.push.notification.age{name=Pushed}"]; v < 2 || v > time.Since(start).Seconds()+2 {
		t.Errorf("notification age = %vs, want 2 s and the test's %v at most", v, time.Since(start))
	}
	for _, series := range []string{
		"kiwicache.snapshot.age{name=Rates,suffix=EUR}",
		"kiwicache.check.age{name=Rates,suffix=EUR}",
		"kiwicache.push.notification.age{name=Airlines}",
	} {
		if v, ok := got[series]; ok {
			t.Errorf("%s = %v, want no such data point", series, v)
		}
	}
}

// The gauges are read from Health at each collection: a refill with more
// items shows at the next one, a closed cache is no longer reported, and after
// Metrics.Close no gauge is.
func TestGaugesReadAtCollection(t *testing.T) {
	_, rdb := cachetest.NewRedis(t)
	reader, mp := newManualReader(t)
	reg := new(kiwicache.Registry)
	m, err := kiwiotel.New(reg, kiwiotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	load := func(context.Context) (map[string]int, error) {
		data := map[string]int{}
		for i := range n {
			data[fmt.Sprint(i)] = i
		}
		return data, nil
	}
	c := cachetest.NewCache(t, "Growing", rdb, load, kiwicache.WithRegistry(reg))
	cachetest.NewCache(t, "Other", rdb, load, kiwicache.WithRegistry(reg))
	items := func(name string) (float64, bool) {
		got, _ := collect(t, reader)
		v, ok := got["kiwicache.items{name="+name+"}"]
		return v, ok
	}

	if v, ok := items("Growing"); !ok || v != 0 {
		t.Errorf("items before the first read = %v (present %v), want 0", v, ok)
	}
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	n = 3
	if v, _ := items("Growing"); v != 1 {
		t.Errorf("items after a refill of 1 = %v, want 1", v)
	}
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, _ := items("Growing"); v != 3 {
		t.Errorf("items after a refill of 3 = %v, want 3", v)
	}
	c.Close()
	if v, ok := items("Growing"); ok {
		t.Errorf("items of a closed cache = %v, want no data point", v)
	}
	if _, ok := items("Other"); !ok {
		t.Error("an open cache is not reported")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got, _ := collect(t, reader); len(got) != 0 {
		t.Errorf("after Close: %v, want no gauges", got)
	}
}

// Bad input never panics: a nil *Metrics counts nothing; an Op this package
// does not know is dropped; a Refiller whose key is no valid name is reported
// under its key.
func TestBadInput(t *testing.T) {
	var none *kiwiotel.Metrics
	none.Count("Fine", kiwicache.StatusSuccess)
	none.Observe("Fine", kiwicache.OpReload, time.Millisecond, nil)
	none.Close()

	reader, mp := newManualReader(t)
	reg := new(kiwicache.Registry)
	reg.Register(cachetest.Refiller{RecordKey: "not a resource key", State: kiwicache.Health{HasData: true, Items: 7}})
	m, err := kiwiotel.New(reg, kiwiotel.WithMeterProvider(mp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Observe("Fine", kiwicache.Op("a future op"), time.Millisecond, nil)
	got, _ := collect(t, reader)
	if v := got["kiwicache.items{name=not a resource key}"]; v != 7 {
		t.Errorf("a Refiller with a key of its own: %v, want items 7 under its key", got)
	}
	for series := range got {
		if strings.Contains(series, "Fine") {
			t.Errorf("%s: want the unknown op dropped", series)
		}
	}
}

// The same workload exported by OpenTelemetry's own Prometheus exporter and
// by package kiwiprom gives the same metric families with the same label
// names, so one dashboard or alert serves either.
func TestSameNamesAsKiwiprom(t *testing.T) {
	viaOTel := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(viaOTel), otelprom.WithoutTargetInfo(),
		otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	otelReg := new(kiwicache.Registry)
	m, err := kiwiotel.New(otelReg, kiwiotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cachetest.Workload(t, otelReg, m)

	viaProm := prometheus.NewRegistry()
	promReg := new(kiwicache.Registry)
	pm := kiwiprom.New(promReg)
	viaProm.MustRegister(pm)
	cachetest.Workload(t, promReg, pm)

	otelFamilies, promFamilies := families(t, viaOTel), families(t, viaProm)
	t.Logf("families:\n%s", strings.Join(otelFamilies, "\n"))
	if !slices.Equal(otelFamilies, promFamilies) {
		t.Errorf("families through OpenTelemetry's Prometheus exporter:\n%s\nthrough kiwiprom:\n%s",
			strings.Join(otelFamilies, "\n"), strings.Join(promFamilies, "\n"))
	}
}

// families lists "name{label names}" of every gathered series, sorted,
// without duplicates; the suffix label (empty or absent alike in Prometheus)
// and the exporter's own otel_scope_* labels are left out.
func families(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range mfs {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "suffix" && !strings.HasPrefix(l.GetName(), "otel_scope_") {
					labels = append(labels, l.GetName())
				}
			}
			out = append(out, fmt.Sprintf("%s %s{%s}", f.GetType(), f.GetName(), strings.Join(labels, ",")))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// newManualReader returns an SDK MeterProvider read by a ManualReader, shut
// down when the test ends.
func newManualReader(t *testing.T) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return reader, mp
}

type instrument struct {
	kind, unit, description string
	monotonic               bool
}

// collect flattens what reader collects into "instrument{attr=value,...}" ->
// value (histograms: _count and _sum), and describes each instrument.
func collect(t *testing.T, reader *sdkmetric.ManualReader) (map[string]float64, map[string]instrument) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	values, meta := map[string]float64{}, map[string]instrument{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != kiwiotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, kiwiotel.ScopeName)
		}
		for _, md := range sm.Metrics {
			in := instrument{unit: md.Unit, description: md.Description}
			switch data := md.Data.(type) {
			case metricdata.Sum[int64]:
				in.kind, in.monotonic = "sum", data.IsMonotonic
				if data.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: temporality %v", md.Name, data.Temporality)
				}
				for _, p := range data.DataPoints {
					values[key(md.Name, p.Attributes.ToSlice())] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				in.kind = "gauge"
				for _, p := range data.DataPoints {
					values[key(md.Name, p.Attributes.ToSlice())] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				in.kind = "gauge"
				for _, p := range data.DataPoints {
					values[key(md.Name, p.Attributes.ToSlice())] = p.Value
				}
			case metricdata.Histogram[float64]:
				in.kind = "histogram"
				for _, p := range data.DataPoints {
					k := key(md.Name, p.Attributes.ToSlice())
					values[k+"_count"] = float64(p.Count)
					values[k+"_sum"] = p.Sum
				}
			default:
				t.Errorf("%s: unexpected data %T", md.Name, md.Data)
			}
			meta[md.Name] = in
		}
	}
	return values, meta
}

// key is "name{k=v,...}", attributes in their set's (sorted) order.
func key(name string, attrs []attribute.KeyValue) string {
	var kv []string
	for _, a := range attrs {
		kv = append(kv, string(a.Key)+"="+a.Value.Emit())
	}
	return name + "{" + strings.Join(kv, ",") + "}"
}
