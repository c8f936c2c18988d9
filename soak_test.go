package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs a randomized mix of the faults of the fault suite for
// KIWICACHE_SOAK (e.g. 60s; `make soak`) while readers check every value
// they read against the snapshot it came from: zero wrong reads, zero
// panics, zero failed reads. It prints what it did.
func TestSoak(t *testing.T) {
	length, err := time.ParseDuration(os.Getenv("KIWICACHE_SOAK"))
	if err != nil {
		t.Skip("soak test: set KIWICACHE_SOAK to a duration (make soak)")
	}
	srv := startTestRedis(t)
	admin := faultClient(t, srv.addr())
	proxy := newFaultProxy(t, srv.addr())
	name := uniqueName(t)
	const items = 200

	var version atomic.Int64
	version.Store(1)
	var sourceFault atomic.Value // "", "error", "panic", "empty", "hang"
	sourceFault.Store("")
	var loads atomic.Int64
	loader := LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
		loads.Add(1)
		switch sourceFault.Load() {
		case "error":
			return nil, errors.New("source down")
		case "panic":
			panic("source bug")
		case "empty":
			return map[string]item{}, nil
		case "hang":
			time.Sleep(3 * time.Second) // ignores ctx
		}
		return versionData(items, version.Load()), nil
	})
	var caches []*Cache[string, item]
	for range 3 {
		c := mustNew(t, name, faultClient(t, proxy.addr()), loader, WithReloadTTL(50*time.Millisecond),
			WithCacheTTL(2*time.Second), WithRefillLockTTL(time.Second))
		must(c.Snapshot(t.Context()))
		caches = append(caches, c)
	}

	var reads, wrong, failed, panics atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range caches {
		for range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					func() {
						defer func() {
							if p := recover(); p != nil {
								panics.Add(1)
								t.Errorf("panic in a read: %v", p)
							}
						}()
						checkSnapshotRead(c, items, &reads, &wrong, &failed)
					}()
					time.Sleep(200 * time.Microsecond)
				}
			})
		}
	}

	faults := map[string]int{}
	deadline := time.Now().Add(length)
	for time.Now().Before(deadline) {
		kind := []string{"kill", "pause", "cut", "drop", "slow", "source", "new data"}[rand.IntN(7)]
		faults[kind]++
		switch kind {
		case "kill":
			srv.kill()
			time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
			if err := srv.start(); err != nil {
				t.Fatal(err)
			}
		case "pause":
			admin.Do(context.Background(), "CLIENT", "PAUSE", "500", "ALL")
			time.Sleep(600 * time.Millisecond)
		case "cut":
			proxy.cutAfter(int64(1 + rand.IntN(5000)))
			time.Sleep(300 * time.Millisecond)
			proxy.cutAfter(0)
		case "drop":
			proxy.dropAll()
		case "slow":
			proxy.delay.Store(int64(5 * time.Millisecond))
			time.Sleep(500 * time.Millisecond)
			proxy.delay.Store(0)
		case "source":
			fault := []string{"error", "panic", "empty", "hang"}[rand.IntN(4)]
			faults["source "+fault]++
			sourceFault.Store(fault)
			admin.Del(context.Background(), "resource:"+name) // make them load
			time.Sleep(time.Second)
			sourceFault.Store("")
		case "new data":
			version.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			caches[rand.IntN(len(caches))].Refill(ctx) // a cron job; may meet a fault
			cancel()
		}
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
	}

	// Faults off, new data written by one cron run: every cache must converge
	// on it by its own reloads.
	version.Add(1)
	want := fmt.Sprint("v", version.Load())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := caches[0].Refill(ctx); err != nil {
		t.Logf("the last cron refill failed (%v): the record's expiry brings the data instead", err)
	}
	cancel()
	for _, c := range caches {
		eventually(t, "every cache serves the last data", func() bool {
			v, err := c.Get(t.Context(), "k1")
			return err == nil && v.Name == want
		})
	}
	converged := time.Since(start)
	close(stop)
	wg.Wait()

	if wrong.Load()+failed.Load()+panics.Load() != 0 {
		t.Errorf("%d wrong reads, %d failed reads, %d panics", wrong.Load(), failed.Load(), panics.Load())
	}
	var kinds []string
	for k, n := range faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	t.Logf("soak %v: %d reads, %d wrong, %d failed, %d panics; source loads %d; faults: %s; converged in %v",
		length, reads.Load(), wrong.Load(), failed.Load(), panics.Load(), loads.Load(),
		strings.Join(kinds, ", "), converged.Round(time.Millisecond))
}

// checkSnapshotRead reads a few items from one snapshot, and one through Get:
// every item of a snapshot comes from one version of the data.
func checkSnapshotRead(c *Cache[string, item], items int, reads, wrong, failed *atomic.Int64) {
	s, err := c.Snapshot(context.Background())
	if err != nil {
		failed.Add(1)
		return
	}
	first, _ := s.Get("k0")
	for range 5 {
		i := rand.IntN(items)
		v, ok := s.Get(fmt.Sprint("k", i))
		reads.Add(1)
		if !ok || v.ID != i || v.Name != first.Name || s.Len() != items {
			wrong.Add(1)
		}
	}
	i := rand.IntN(items)
	v, err := c.Get(context.Background(), fmt.Sprint("k", i))
	reads.Add(1)
	switch {
	case err != nil:
		failed.Add(1)
	case v.ID != i:
		wrong.Add(1)
	}
}
