// Command refill is the cron job of the kiwicache pattern: it builds the same
// caches as the services, refills every one from its source into Redis, and
// exits non-zero if any failed. Run every few minutes (less than CacheTTL), so
// that no request path ever waits for a source load.
//
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/refill
//
// It uses an embedded miniredis when REDIS_URL is unset.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/examples/internal/demo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refill:", err)
		os.Exit(1)
	}
}

func run() error {
	rdb, loader, done, err := demo.Setup(context.Background())
	if err != nil {
		return err
	}
	defer done()

	// New registers each cache in kiwicache.DefaultRegistry().
	if _, err := kiwicache.New("Airlines", rdb, loader); err != nil {
		return err
	}
	if _, err := kiwicache.New("Airlines", rdb, loader,
		kiwicache.WithSuffix("backup"), kiwicache.WithNoExpiry()); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := kiwicache.RefillAll(ctx); err != nil {
		return err // every failure, each prefixed with its record key
	}
	fmt.Printf("refilled %v in %v\n", kiwicache.DefaultRegistry().Keys(), time.Since(start).Round(time.Millisecond))
	return nil
}
