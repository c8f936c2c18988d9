// Command airlines serves a dataset through a kiwicache.Cache: it prints a
// few lookups, and with -addr it answers HTTP requests as a service would.
//
//	go run ./examples/airlines                 # a few lookups, then exit
//	go run ./examples/airlines -addr :8080     # GET /airlines/OK, GET /healthz
//
// It uses REDIS_URL when set, an embedded miniredis otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/examples/internal/demo"
)

func main() {
	addr := flag.String("addr", "", "serve HTTP on this address instead of exiting after the lookups")
	flag.Parse()
	if err := run(os.Stdout, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "airlines:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, addr string) error {
	rdb, loader, done, err := demo.Setup(context.Background())
	if err != nil {
		return err
	}
	defer done()

	airlines, err := kiwicache.New("Airlines", rdb, loader,
		kiwicache.WithReloadTTL(30*time.Second))
	if err != nil {
		return err
	}
	defer airlines.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// The first Get waits for the record (loading the source if Redis has
	// none); every later one is a map lookup.
	for _, code := range []string{"OK", "LH", "FR", "XX"} {
		a, err := airlines.Get(ctx, code)
		switch {
		case errors.Is(err, kiwicache.ErrNotFound):
			fmt.Fprintf(out, "%s: no such airline\n", code)
		case err != nil:
			return err
		default:
			fmt.Fprintf(out, "%s: %s (%s, founded %d)\n", code, a.Name, a.Country, a.Founded)
		}
	}
	h := airlines.Health()
	size := rdb.StrLen(ctx, h.Key).Val()
	fmt.Fprintf(out, "SQLite table airlines -> Redis %s (%d bytes, written %s) -> snapshot of %d items -> Get\n",
		h.Key, size, h.RecordTime.Format(time.RFC3339), h.Items)

	if addr == "" {
		return nil
	}
	return serve(ctx, addr, airlines)
}

func serve(ctx context.Context, addr string, airlines *kiwicache.Cache[string, demo.Airline]) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /airlines/{code}", func(w http.ResponseWriter, r *http.Request) {
		a, err := airlines.Get(r.Context(), r.PathValue("code"))
		switch {
		case errors.Is(err, kiwicache.ErrNotFound):
			http.NotFound(w, r)
		case err != nil:
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
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	slog.Info("serving", "addr", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
