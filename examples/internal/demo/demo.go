// Package demo holds what the examples share: a source table in embedded
// SQLite and a Redis client (REDIS_URL, or an embedded miniredis), so that
// the examples run with nothing installed.
package demo

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/sqlloader"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// An Airline is one row of the airlines table.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"` // null in the record when the airline has none
	Founded  int     `json:"founded"`
}

// OpenSource opens the example's source: an airlines table in an embedded
// SQLite database (no server needed), standing for a service's real database.
func OpenSource(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	_, err = db.ExecContext(ctx, `
		CREATE TABLE airlines (
			iatacode TEXT PRIMARY KEY,
			name     TEXT NOT NULL,
			country  TEXT NOT NULL,
			alliance TEXT,
			founded  INTEGER NOT NULL
		);
		INSERT INTO airlines VALUES
			('OK', 'Czech Airlines', 'CZ', 'SkyTeam', 1923),
			('LH', 'Lufthansa', 'DE', 'Star Alliance', 1953),
			('BA', 'British Airways', 'GB', 'oneworld', 1974),
			('FR', 'Ryanair', 'IE', NULL, 1984),
			('W6', 'Wizz Air', 'HU', NULL, 2003);`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// AirlinesLoader caches the airlines table keyed by IATA code, as the Python
// SQLAlchemyResource(..., 'airlines', key='iatacode') does.
func AirlinesLoader(db *sql.DB) (kiwicache.Loader[string, Airline], error) {
	return sqlloader.TableLoader[string, Airline](db, sqlloader.Table{Name: "airlines", Key: "iatacode"})
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

// Setup opens what both examples use: Redis (see Redis), the SQLite source
// (see OpenSource) and its loader. Call done to close them.
func Setup(ctx context.Context) (rdb *redis.Client, loader kiwicache.Loader[string, Airline], done func(), err error) {
	rdb, closeRedis, err := Redis()
	if err != nil {
		return nil, nil, nil, err
	}
	source, err := OpenSource(ctx)
	if err != nil {
		closeRedis()
		return nil, nil, nil, err
	}
	done = func() { source.Close(); closeRedis() }
	if loader, err = AirlinesLoader(source); err != nil {
		done()
		return nil, nil, nil, err
	}
	return rdb, loader, done, nil
}
