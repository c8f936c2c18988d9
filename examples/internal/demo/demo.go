// Package demo holds what the examples share: a source table and a Redis
// client (REDIS_URL, or an embedded miniredis so that the examples run with
// nothing installed).
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// An Airline is one row of the source table.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"` // null in the record when the airline has none
	Founded  int     `json:"founded"`
}

func ptr(s string) *string { return &s }

// airlines stands for the airlines table of a database.
var airlines = map[string]Airline{
	"OK": {Name: "Czech Airlines", Country: "CZ", Alliance: ptr("SkyTeam"), Founded: 1923},
	"LH": {Name: "Lufthansa", Country: "DE", Alliance: ptr("Star Alliance"), Founded: 1953},
	"BA": {Name: "British Airways", Country: "GB", Alliance: ptr("oneworld"), Founded: 1974},
	"FR": {Name: "Ryanair", Country: "IE", Founded: 1984},
	"W6": {Name: "Wizz Air", Country: "HU", Founded: 2003},
}

// LoadAirlines is the Loader's source query. It takes a little time, as a
// query would.
func LoadAirlines(ctx context.Context) (map[string]Airline, error) {
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	slog.InfoContext(ctx, "loaded airlines from the source", "rows", len(airlines))
	return airlines, nil
}

// Redis connects to REDIS_URL, or starts an embedded miniredis when it is
// unset. Call the returned function to close both.
func Redis() (*redis.Client, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb := redis.NewClient(opts)
		slog.Info("using Redis", "addr", opts.Addr)
		return rdb, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	slog.Info("REDIS_URL is unset: using an embedded miniredis", "addr", mr.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }, nil
}
