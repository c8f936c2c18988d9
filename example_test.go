package kiwicache_test

import (
	"context"
	"encoding/json"
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

// Get has three outcomes: the item; ErrNotFound for a key the dataset lacks;
// and, while a cache has no data at all, ErrNoData with the cause (here Redis
// cannot be reached), which a service answers with a 503.
func ExampleCache_Get() {
	rdb, done := exampleRedis()
	defer done()
	airlines, err := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithRegistry(nil))
	if err != nil {
		panic(err)
	}
	defer airlines.Close()

	ctx := context.Background()
	for _, code := range []string{"OK", "XX"} {
		a, err := airlines.Get(ctx, code)
		switch {
		case errors.Is(err, kiwicache.ErrNotFound):
			fmt.Println(code, "no such airline")
		case err != nil:
			fmt.Println(code, "unavailable:", err)
		default:
			fmt.Println(code, a.Name)
		}
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}) // nothing listens there
	defer down.Close()
	unreachable, err := kiwicache.New("Airlines", down, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithRegistry(nil), kiwicache.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer unreachable.Close()
	_, err = unreachable.Get(ctx, "OK")
	fmt.Println(errors.Is(err, kiwicache.ErrNoData), errors.Is(err, kiwicache.ErrRedis))
	// Output:
	// OK Czech Airlines
	// XX no such airline
	// true true
}

// Numbers in an any-typed value keep the text they have in the record, and a
// service that answers with a cached row through encoding/json writes them
// as the same JSON numbers.
func ExampleNumber() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()
	// A row as Python's kiwi-cache or sqlloader writes it: a NUMERIC and an
	// integer beyond what a float64 holds exactly.
	rdb.Set(ctx, "resource:Fares", `{"data": {"PRG-VIE": {"fare": 99.90, "booked": 12345678901234567891}}, "timestamp": 1764087331.412345}`, 0)
	never := kiwicache.LoaderFunc[string, map[string]any](func(context.Context) (map[string]map[string]any, error) {
		return nil, errors.New("not called: the record is in Redis")
	})
	fares, err := kiwicache.New("Fares", rdb, never, kiwicache.WithRegistry(nil))
	if err != nil {
		panic(err)
	}
	defer fares.Close()

	row, err := fares.Get(ctx, "PRG-VIE")
	if err != nil {
		panic(err)
	}
	fare := row["fare"].(kiwicache.Number)
	f, _ := fare.Float64()
	fmt.Println(fare, f)
	out, _ := json.Marshal(row)
	fmt.Println(string(out))
	// Output:
	// 99.90 99.9
	// {"booked":12345678901234567891,"fare":99.90}
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
