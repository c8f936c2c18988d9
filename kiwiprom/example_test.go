package kiwiprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/kiwiprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// A service exports its caches' metrics on /metrics; Prometheus scrapes them
// over HTTP. Here the scrape is an HTTP GET of a test server.
func Example() {
	mr, _ := miniredis.Run() // an embedded Redis; a service passes its own client
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// Gauges for every cache that New registers in DefaultRegistry, and the
	// counters and histograms of every cache given WithMetrics(metrics).
	metrics := kiwiprom.New(kiwicache.DefaultRegistry())
	registry := prometheus.NewRegistry() // or prometheus.MustRegister(metrics)
	registry.MustRegister(metrics)

	airlines, err := kiwicache.New("Airlines", rdb,
		kiwicache.LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
			return map[string]string{"OK": "Czech Airlines", "LH": "Lufthansa"}, nil
		}),
		kiwicache.WithMetrics(metrics))
	if err != nil {
		panic(err)
	}
	defer airlines.Close()
	airlines.Get(context.Background(), "OK") // loads the source, writes the record

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	server := httptest.NewServer(mux)
	defer server.Close()

	resp, err := http.Get(server.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		for _, prefix := range []string{"kiwicache_total", "kiwicache_items", "kiwicache_has_data", "kiwicache_reload_duration_seconds_count"} {
			if strings.HasPrefix(line, prefix) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// kiwicache_has_data{name="Airlines",suffix=""} 1
	// kiwicache_items{name="Airlines",suffix=""} 2
	// kiwicache_reload_duration_seconds_count{name="Airlines",outcome="success"} 1
	// kiwicache_total{name="Airlines",status="load_error"} 0
	// kiwicache_total{name="Airlines",status="not_written"} 0
	// kiwicache_total{name="Airlines",status="redis_error"} 0
	// kiwicache_total{name="Airlines",status="success"} 1
}
