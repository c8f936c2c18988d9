package kiwiotel_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/kiwiotel"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A service gives its caches to kiwiotel. Here a ManualReader stands for the
// exporter a service configures (OTLP, Prometheus, ...).
func Example() {
	mr, _ := miniredis.Run() // an embedded Redis; a service passes its own client
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	// Gauges for every cache that New registers in DefaultRegistry, and the
	// counter and histograms of every cache given WithMetrics(metrics).
	// Without WithMeterProvider, the global one (otel.SetMeterProvider).
	metrics, err := kiwiotel.New(kiwicache.DefaultRegistry(), kiwiotel.WithMeterProvider(provider))
	if err != nil {
		panic(err)
	}
	defer metrics.Close()

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

	var collected metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &collected); err != nil {
		panic(err)
	}
	for _, scope := range collected.ScopeMetrics {
		for _, m := range scope.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					fmt.Println(m.Name, p.Attributes.Encoded(attribute.DefaultEncoder()), p.Value)
				}
			case metricdata.Gauge[int64]:
				if m.Name == "kiwicache.items" {
					for _, p := range data.DataPoints {
						fmt.Println(m.Name, p.Attributes.Encoded(attribute.DefaultEncoder()), p.Value)
					}
				}
			}
		}
	}
	// Output:
	// kiwicache name=Airlines,status=success 1
	// kiwicache.items name=Airlines 2
}
