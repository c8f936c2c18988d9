// Package reads measures Get against a plain map and the in-process Go
// caches users would pick instead for reads (otter, ristretto, ttlcache),
// each holding the same items, in the same run.
//
// It is a module of its own so that kiwicache's go.mod does not list the
// other caches: `make bench` runs it, or
//
//	cd bench/reads && go test -bench . -count 6
package reads

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/jellydator/ttlcache/v3"
	"github.com/kiwicache/kiwicache"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

// item is the value of the benchmark dataset (BENCHMARKS.md).
type item struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Price  float64  `json:"price"`
	Tags   []string `json:"tags"`
	Active bool     `json:"active"`
}

// items is how many items each cache holds: the 1,000 of the smallest
// benchmark record, which all fit every cache's size limit.
const items = 1000

func dataset() (map[string]item, []string) {
	data := make(map[string]item, items)
	keys := make([]string, items)
	for i := range items {
		keys[i] = "k" + strconv.Itoa(i)
		data[keys[i]] = item{ID: i, Name: "item-" + strconv.Itoa(i), Price: float64(i) * 1.25, Tags: []string{"a", "b"}, Active: i%2 == 0}
	}
	return data, keys
}

// A getter is one cache's read, set up with the dataset.
type getter func(key string) (item, bool)

func getters(b *testing.B) map[string]getter {
	data, _ := dataset()
	ctx := context.Background()

	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	kc, err := kiwicache.New("Reads", rdb, kiwicache.LoaderFunc[string, item](
		func(context.Context) (map[string]item, error) { return data, nil }),
		kiwicache.WithReloadTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { kc.Close() })
	snap, err := kc.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}

	oc := otter.Must(&otter.Options[string, item]{MaximumSize: 2 * items})
	rc, err := ristretto.NewCache(&ristretto.Config[string, item]{NumCounters: 20 * items, MaxCost: 2 * items, BufferItems: 64, IgnoreInternalCost: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	tc := ttlcache.New[string, item](ttlcache.WithTTL[string, item](time.Hour))
	for k, v := range data {
		oc.Set(k, v)
		rc.Set(k, v, 1)
		tc.Set(k, v, ttlcache.DefaultTTL)
	}
	// ristretto may drop a Set (its buffers are lossy): set again until
	// every item is in.
	for k, v := range data {
		for tries := 0; ; tries++ {
			rc.Wait()
			if _, ok := rc.Get(k); ok {
				break
			}
			if tries == 100 {
				b.Fatalf("ristretto does not keep %s", k)
			}
			rc.Set(k, v, 1)
		}
	}

	return map[string]getter{
		"map": func(k string) (item, bool) { v, ok := data[k]; return v, ok },
		"kiwicache.Cache.Get": func(k string) (item, bool) {
			v, err := kc.Get(ctx, k)
			return v, err == nil
		},
		"kiwicache.Snapshot.Get": snap.Get,
		"otter":                  oc.GetIfPresent,
		"ristretto":              rc.Get,
		"ttlcache": func(k string) (item, bool) {
			it := tc.Get(k)
			if it == nil {
				return item{}, false
			}
			return it.Value(), true
		},
	}
}

// order is the order of the sub-benchmarks, the floor first.
var order = []string{"map", "kiwicache.Snapshot.Get", "kiwicache.Cache.Get", "otter", "ristretto", "ttlcache"}

// sink takes the whole value, as a caller of Get gets it.
var sink item

// BenchmarkGet reads the items in turn, on one goroutine.
func BenchmarkGet(b *testing.B) {
	_, keys := dataset()
	gets := getters(b)
	for _, name := range order {
		get := gets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				v, ok := get(keys[i%items])
				if !ok {
					b.Fatal("missing", keys[i%items])
				}
				sink = v
			}
		})
	}
}

// BenchmarkGetParallel reads on every core at once (compare -cpu 1,2).
func BenchmarkGetParallel(b *testing.B) {
	_, keys := dataset()
	gets := getters(b)
	for _, name := range order {
		get := gets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				sum := 0
				for i := 0; pb.Next(); i++ {
					v, _ := get(keys[i%items])
					sum += v.ID
				}
				_ = sum
			})
		})
	}
}
