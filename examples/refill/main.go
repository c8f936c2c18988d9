// Command refill is the cron job of the kiwicache pattern: it builds the same
// caches as the services, refills every one from its source into Redis, and
// exits non-zero if any failed. Run every few minutes (less than CacheTTL), so
// that no request path ever waits for a source load.
//
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/refill
//
// It uses an embedded miniredis when REDIS_URL is unset. The directory holds
// all of it: copy it out of the repository to start a job of your own.
//
//	cp -r examples/refill ~/refill && cd ~/refill
//	go mod init example.com/refill && go mod tidy && go run .
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// An Airline is one item of the Airlines dataset, as the services declare it.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"` // null in the record when the airline has none
	Founded  int     `json:"founded"`
}

// loadAirlines is the source: a database query in a real job.
func loadAirlines(ctx context.Context) (map[string]Airline, error) {
	skyTeam, star, oneworld := "SkyTeam", "Star Alliance", "oneworld"
	return map[string]Airline{
		"OK": {Name: "Czech Airlines", Country: "CZ", Alliance: &skyTeam, Founded: 1923},
		"LH": {Name: "Lufthansa", Country: "DE", Alliance: &star, Founded: 1953},
		"BA": {Name: "British Airways", Country: "GB", Alliance: &oneworld, Founded: 1974},
		"FR": {Name: "Ryanair", Country: "IE", Founded: 1984},
		"W6": {Name: "Wizz Air", Country: "HU", Founded: 2003},
	}, nil
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "refill:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	rdb, closeRedis, err := connectRedis(out)
	if err != nil {
		return err
	}
	defer closeRedis()

	// New registers each cache in kiwicache.DefaultRegistry(); the job only
	// refills them, it never reads. The second is a backup copy that never
	// expires, under its own key (resource:Airlines:backup).
	source := kiwicache.LoaderFunc[string, Airline](loadAirlines)
	if _, err := kiwicache.New("Airlines", rdb, source); err != nil {
		return err
	}
	if _, err := kiwicache.New("Airlines", rdb, source,
		kiwicache.WithSuffix("backup"), kiwicache.WithNoExpiry()); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := kiwicache.RefillAll(ctx); err != nil {
		return err // every failure, each prefixed with its record key
	}
	fmt.Fprintf(out, "refilled %v in %v\n", kiwicache.DefaultRegistry().Keys(), time.Since(start).Round(time.Millisecond))
	return nil
}

// connectRedis connects to REDIS_URL, or starts an embedded miniredis when it
// is unset. Call the returned function to close both.
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
