package kiwiprom_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/cachetest"
	"github.com/kiwicache/kiwicache/kiwiprom"
	"github.com/prometheus/client_golang/prometheus"
)

// A scrape of 100 caches' gauges: what reading Health at collection costs.
func BenchmarkGather100Caches(b *testing.B) {
	reg := new(kiwicache.Registry)
	now := time.Now()
	for i := range 100 {
		reg.Register(cachetest.Refiller{RecordKey: fmt.Sprint("resource:Cache", i), State: kiwicache.Health{
			HasData: true, Items: 1000, RecordSize: 94000, RecordTime: now, CheckedAt: now,
		}})
	}
	pr := prometheus.NewRegistry()
	pr.MustRegister(kiwiprom.New(reg))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pr.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// What a cache pays per outcome and per timed operation, on its load path.
func BenchmarkCountAndObserve(b *testing.B) {
	m := kiwiprom.New(nil)
	err := errors.New("x")
	b.ReportAllocs()
	for b.Loop() {
		m.Count("Airlines", kiwicache.StatusSuccess)
		m.Observe("Airlines", kiwicache.OpReload, time.Millisecond, err)
	}
}
