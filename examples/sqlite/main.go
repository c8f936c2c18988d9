// Command sqlite caches a database table: the airlines table of an embedded
// SQLite database, loaded by the sqlloader package as the Python library's
// SQLAlchemyResource(redis, session, 'airlines', key='iatacode') loads it,
// once into a struct and once as the rows Python caches (map[string]any).
//
//	go run ./examples/sqlite
//
// It uses the Redis at REDIS_URL when set, and an embedded miniredis
// otherwise. The SQLite driver (modernc.org/sqlite, pure Go, no cgo) takes
// a while to compile the first time; examples/airlines starts faster.
// With another database, import its driver instead (e.g.
// github.com/jackc/pgx/v5/stdlib for PostgreSQL, with $1 placeholders).
//
// The directory holds all of it: copy it out of the repository to start a
// program of your own.
//
//	cp -r examples/sqlite ~/sqlitecache && cd ~/sqlitecache
//	go mod init example.com/sqlitecache && go mod tidy && go run .
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/sqlloader"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// An Airline is one row of the airlines table: columns go to fields by db
// tag, else by name ignoring case; a NULL needs a pointer or sql.Null* field.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"`
	Founded  int     `json:"founded"`
	Rating   float64 `json:"rating"`
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sqlite:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb, closeRedis, err := connectRedis(out)
	if err != nil {
		return err
	}
	defer closeRedis()
	db, err := openSource(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintln(out, "source: table airlines in an embedded SQLite database")

	// Native types: the rows scanned into Airline.
	typed, err := sqlloader.TableLoader[string, Airline](db, sqlloader.Table{Name: "airlines", Key: "iatacode"})
	if err != nil {
		return err
	}
	airlines, err := kiwicache.New("AirlinesTable", rdb, typed, kiwicache.WithRegistry(nil))
	if err != nil {
		return err
	}
	defer airlines.Close()
	ok, err := airlines.Get(ctx, "OK")
	if err != nil {
		return fmt.Errorf("get OK: %w", err)
	}
	fmt.Fprintf(out, "%s: %s (%s, founded %d, alliance %s)\n", airlines.Key(), ok.Name, ok.Country, ok.Founded, *ok.Alliance)

	// The rows as Python's kiwi-cache caches them, so that Python services
	// read the same record: numbers keep their digits (kiwicache.Number), NULL
	// is null. A suffix keeps this record apart from the other.
	rows, err := sqlloader.TableLoader[string, map[string]any](db, sqlloader.Table{
		Name: "airlines", Key: "iatacode", Columns: []string{"name", "alliance", "rating"},
		Where: "founded > ?", Args: []any{1980},
	})
	if err != nil {
		return err
	}
	recent, err := kiwicache.New("AirlinesTable", rdb, rows, kiwicache.WithSuffix("recent"), kiwicache.WithRegistry(nil))
	if err != nil {
		return err
	}
	defer recent.Close()
	fr, err := recent.Get(ctx, "FR")
	if err != nil {
		return fmt.Errorf("get FR: %w", err)
	}
	row, err := json.Marshal(fr) // as a service would answer with it
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d rows, FR: %s\n", recent.Key(), recent.Health().Items, row)
	return nil
}

// openSource opens an airlines table in an embedded SQLite database (no
// server needed), standing for a service's real database.
func openSource(ctx context.Context) (*sql.DB, error) {
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
			founded  INTEGER NOT NULL,
			rating   REAL NOT NULL
		);
		INSERT INTO airlines VALUES
			('OK', 'Czech Airlines', 'CZ', 'SkyTeam', 1923, 3.5),
			('LH', 'Lufthansa', 'DE', 'Star Alliance', 1953, 4.0),
			('BA', 'British Airways', 'GB', 'oneworld', 1974, 3.75),
			('FR', 'Ryanair', 'IE', NULL, 1984, 2.5),
			('W6', 'Wizz Air', 'HU', NULL, 2003, 2.75);`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
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
