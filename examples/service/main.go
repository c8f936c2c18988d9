// Command service is an HTTP service that answers from a kiwicache.Cache:
// each request is a map lookup on the snapshot in memory, never a query to
// Redis or the database, and /healthz tells a load balancer whether the cache
// has data and how old it is.
//
//	go run ./examples/service                  # on localhost:8080
//	curl localhost:8080/airlines/OK            # {"name":"Czech Airlines",...}
//	curl localhost:8080/healthz
//
// It uses the Redis at REDIS_URL when set, and an embedded miniredis
// otherwise. Interrupt it (Ctrl-C) to stop it.
//
// The directory holds all of it: copy it out of the repository to start a
// service of your own.
//
//	cp -r examples/service ~/service && cd ~/service
//	go mod init example.com/service && go mod tidy && go run .
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// An Airline is one item of the dataset.
type Airline struct {
	Name     string  `json:"name"`
	Country  string  `json:"country"`
	Alliance *string `json:"alliance"` // null in the record when the airline has none
	Founded  int     `json:"founded"`
}

// loadAirlines is the source: a database query in a real service.
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
	addr := flag.String("addr", "localhost:8080", "serve HTTP on this address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, out io.Writer, addr string) error {
	rdb, closeRedis, err := connectRedis(out)
	if err != nil {
		return err
	}
	defer closeRedis()
	airlines, err := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, Airline](loadAirlines),
		kiwicache.WithReloadTTL(30*time.Second))
	if err != nil {
		return err
	}
	defer airlines.Close()

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(airlines)}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(out, "serving on http://%s (GET /airlines/{code}, GET /healthz)\n", l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(airlines *kiwicache.Cache[string, Airline]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /airlines/{code}", func(w http.ResponseWriter, r *http.Request) {
		a, err := airlines.Get(r.Context(), r.PathValue("code"))
		switch {
		case errors.Is(err, kiwicache.ErrNotFound):
			http.NotFound(w, r)
		case err != nil: // no data yet: Redis unreachable and no record to serve
			http.Error(w, "airlines unavailable", http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(a)
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := airlines.Health()
		if !h.HasData {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "items=%d record_age=%s consecutive_failures=%d\n",
			h.Items, time.Since(h.RecordTime).Round(time.Second), h.ConsecutiveFailures)
	})
	return mux
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
