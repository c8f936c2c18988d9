package kiwicache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

type Airline struct {
	Name    string `json:"name"`
	Country string `json:"country"`
}

// loadAirlines stands for a database query.
func loadAirlines(ctx context.Context) (map[string]Airline, error) {
	return map[string]Airline{
		"OK": {Name: "Czech Airlines", Country: "CZ"},
		"LH": {Name: "Lufthansa", Country: "DE"},
	}, nil
}

// exampleRedis starts an embedded Redis; a service passes its own client.
func exampleRedis() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }
}

func Example() {
	rdb, done := exampleRedis()
	defer done()

	airlines, err := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithReloadTTL(time.Minute))
	if err != nil {
		panic(err)
	}
	defer airlines.Close()

	ctx := context.Background()
	// The first Get finds no record in Redis: it loads the source, writes
	// resource:Airlines, and serves the snapshot.
	a, err := airlines.Get(ctx, "OK")
	fmt.Println(a.Name, err)

	_, err = airlines.Get(ctx, "XX")
	fmt.Println(errors.Is(err, kiwicache.ErrNotFound))
	// Output:
	// Czech Airlines <nil>
	// true
}

// A record that another process (Go or Python) wrote is read, not reloaded
// from the source.
func ExampleNew_pythonRecord() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()
	rdb.Set(ctx, "resource:Rates:EUR", `{"data": {"CZK": 25.3, "USD": 1.0}, "timestamp": 1764087331.412345}`, 0)

	never := kiwicache.LoaderFunc[string, float64](func(context.Context) (map[string]float64, error) {
		return nil, errors.New("not called: the record is in Redis")
	})
	rates, err := kiwicache.New("Rates", rdb, never, kiwicache.WithSuffix("EUR"),
		kiwicache.WithRegistry(nil))
	if err != nil {
		panic(err)
	}
	usd, err := rates.Get(ctx, "USD")
	fmt.Println(rates.Key(), usd, err)
	// Output:
	// resource:Rates:EUR 1 <nil>
}

func ExampleCache_Snapshot() {
	rdb, done := exampleRedis()
	defer done()
	airlines, err := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithRegistry(nil))
	if err != nil {
		panic(err)
	}

	// One snapshot gives a consistent view of the whole dataset.
	s, err := airlines.Snapshot(context.Background())
	if err != nil {
		panic(err)
	}
	codes := slices.Sorted(s.Keys())
	fmt.Println(s.Len(), codes)
	// Output:
	// 2 [LH OK]
}

func ExampleCache_Health() {
	rdb, done := exampleRedis()
	defer done()
	failing := kiwicache.LoaderFunc[string, Airline](func(context.Context) (map[string]Airline, error) {
		return nil, errors.New("database is down")
	})
	airlines, err := kiwicache.New("Airlines", rdb, failing,
		kiwicache.WithRegistry(nil), kiwicache.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}

	_, err = airlines.Get(context.Background(), "OK")
	fmt.Println(errors.Is(err, kiwicache.ErrNoData), errors.Is(err, kiwicache.ErrLoadFailed))
	h := airlines.Health()
	fmt.Println(h.HasData, h.ConsecutiveFailures, h.LastError != nil)
	// Output:
	// true true
	// false 1 true
}

// A cron job refills every cache from its source, so that no request ever
// waits for a load.
func ExampleRegistry_RefillAll() {
	rdb, done := exampleRedis()
	defer done()
	reg := new(kiwicache.Registry)
	airlines, _ := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithRegistry(reg))
	countries, _ := kiwicache.New("Countries", rdb,
		kiwicache.LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
			return map[string]string{"CZ": "Czechia"}, nil
		}), kiwicache.WithRegistry(reg))
	defer airlines.Close()
	defer countries.Close()

	err := reg.RefillAll(context.Background())
	fmt.Println(reg.Keys(), err)
	fmt.Println(rdb.Exists(context.Background(), "resource:Airlines", "resource:Countries").Val())
	// Output:
	// [resource:Airlines resource:Countries] <nil>
	// 2
}

// A source that suddenly returns a fraction of the table is refused, and
// every service keeps the data it had.
func ExampleWithMaxShrink() {
	rdb, done := exampleRedis()
	defer done()
	rows := 100
	source := kiwicache.LoaderFunc[int, string](func(context.Context) (map[int]string, error) {
		data := map[int]string{}
		for i := range rows {
			data[i] = fmt.Sprint("row ", i)
		}
		return data, nil
	})
	c, err := kiwicache.New("Rows", rdb, source, kiwicache.WithMaxShrink(0.5), kiwicache.WithRegistry(nil),
		kiwicache.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	fmt.Println(c.Refill(ctx))

	rows = 10 // a bad query
	err = c.Refill(ctx)
	fmt.Println(errors.Is(err, kiwicache.ErrRefused))
	s, _ := c.Snapshot(ctx)
	fmt.Println(s.Len())
	// Output:
	// <nil>
	// true
	// 100
}
