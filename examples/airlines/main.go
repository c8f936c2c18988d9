// Command airlines is kiwicache at work: a dataset of five airlines served
// from process memory through a kiwicache.Cache, shared through one Redis
// record. It prints what happens, step by step, and a few lookups.
//
//	go run ./examples/airlines
//
// It uses the Redis at REDIS_URL (redis://localhost:6379/0) when set, and an
// embedded miniredis otherwise, so it runs with nothing installed. Its source
// is a function standing for a database query. The other examples:
// examples/service answers HTTP requests from a cache, examples/sqlite caches
// a real SQL table through the sqlloader package, examples/refill is the cron
// job that refills every cache.
//
// The directory holds all of it: copy it out of the repository to start a
// program of your own.
//
//	cp -r examples/airlines ~/airlines && cd ~/airlines
//	go mod init example.com/airlines && go mod tidy && go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// An Airline is one row of the source table.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"` // null in the record when the airline has none
	Founded  int     `json:"founded"`
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "airlines:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	rdb, closeRedis, err := connectRedis(out)
	if err != nil {
		return err
	}
	defer closeRedis()

	source := &airlinesSource{out: out}
	airlines, err := kiwicache.New("Airlines", rdb, source,
		kiwicache.WithReloadTTL(30*time.Second))
	if err != nil {
		return err // a bad name or option: errors.Is(err, kiwicache.ErrInvalidConfig)
	}
	defer airlines.Close()
	fmt.Fprintf(out, "cache Airlines: Redis record %s, reloaded from Redis every 30s\n", airlines.Key())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The first Get waits for the record: it reads it from Redis, or, when
	// Redis has none, takes a lock, loads the source and writes the record
	// for every other process. Every later Get is a map lookup.
	fmt.Fprintln(out, "first Get: reading the record from Redis (or loading the source if there is none)...")
	for _, code := range []string{"OK", "LH", "FR", "XX"} {
		a, err := airlines.Get(ctx, code)
		switch {
		case errors.Is(err, kiwicache.ErrNotFound):
			fmt.Fprintf(out, "%s: no such airline\n", code)
		case err != nil:
			// No data at all (kiwicache.ErrNoData): Redis is unreachable
			// and the source failed, or the context ended.
			return fmt.Errorf("get %s: %w", code, err)
		default:
			fmt.Fprintf(out, "%s: %s (%s, founded %d)\n", code, a.Name, a.Country, a.Founded)
		}
	}
	h := airlines.Health()
	fmt.Fprintf(out, "source loaded %d time(s) -> Redis %s (%d bytes, written %s) -> snapshot of %d items -> Get\n",
		source.loads.Load(), airlines.Key(), h.RecordSize, h.RecordTime.Format(time.RFC3339), h.Items)
	return nil
}

// airlinesSource is the cache's Loader. It stands for a database query
// (examples/sqlite runs a real one).
type airlinesSource struct {
	out   io.Writer
	loads atomic.Int64
}

func (s *airlinesSource) Load(ctx context.Context) (map[string]Airline, error) {
	s.loads.Add(1)
	fmt.Fprintln(s.out, "source: loading the airlines (Redis has no record)")
	skyTeam, star, oneworld := "SkyTeam", "Star Alliance", "oneworld"
	return map[string]Airline{
		"OK": {Name: "Czech Airlines", Country: "CZ", Alliance: &skyTeam, Founded: 1923},
		"LH": {Name: "Lufthansa", Country: "DE", Alliance: &star, Founded: 1953},
		"BA": {Name: "British Airways", Country: "GB", Alliance: &oneworld, Founded: 1974},
		"FR": {Name: "Ryanair", Country: "IE", Founded: 1984},
		"W6": {Name: "Wizz Air", Country: "HU", Founded: 2003},
	}, nil
}

// connectRedis connects to REDIS_URL, or starts an embedded miniredis when it
// is unset. A service passes its own client. Call the returned function to
// close both.
func connectRedis(out io.Writer) (*redis.Client, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		fmt.Fprintf(out, "Redis: %s (REDIS_URL)\n", opts.Addr)
		rdb := redis.NewClient(opts)
		return rdb, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(out, "Redis: an embedded miniredis on %s (set REDIS_URL to use a real one)\n", mr.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }, nil
}
