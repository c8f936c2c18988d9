package kiwicache

import (
	"context"
	"fmt"
	"testing"
)

// The benchmarks compare Get with a plain map lookup of the same data in the
// same run: Get should cost a map lookup plus an atomic load, and allocate
// nothing. Run them with `make bench`; bench/reads compares Get with other
// caches, and on every core.

const benchItems = 1000

func benchData[K comparable](key func(int) K) (map[K]item, []K) {
	data := make(map[K]item, benchItems)
	keys := make([]K, benchItems)
	for i := range benchItems {
		keys[i] = key(i)
		data[keys[i]] = item{ID: i}
	}
	return data, keys
}

// benchCache returns a Cache holding data, and the ctx to read it with
// (b.Context takes a lock: calling it per read would measure that).
func benchCache[K comparable](b *testing.B, data map[K]item) (*Cache[K, item], context.Context) {
	_, rdb := newMiniredis(b)
	c := mustNew(b, "Bench", rdb, LoaderFunc[K, item](staticData(data)))
	ctx := b.Context()
	if _, err := c.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	return c, ctx
}

// sink takes the whole value, as a caller of Get gets it.
var sink item

func BenchmarkGet(b *testing.B) {
	strData, strKeys := benchData(func(i int) string { return fmt.Sprint("k", i) })
	intData, intKeys := benchData(func(i int) int { return i * 7919 })

	b.Run("string/map", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = strData[strKeys[i%benchItems]]
		}
	})
	b.Run("string/cache", func(b *testing.B) {
		c, ctx := benchCache(b, strData)
		for i := 0; b.Loop(); i++ {
			sink, _ = c.Get(ctx, strKeys[i%benchItems])
		}
	})
	b.Run("string/snapshot", func(b *testing.B) {
		c, ctx := benchCache(b, strData)
		s := must(c.Snapshot(ctx))
		for i := 0; b.Loop(); i++ {
			sink, _ = s.Get(strKeys[i%benchItems])
		}
	})
	b.Run("int/map", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = intData[intKeys[i%benchItems]]
		}
	})
	b.Run("int/cache", func(b *testing.B) {
		c, ctx := benchCache(b, intData)
		for i := 0; b.Loop(); i++ {
			sink, _ = c.Get(ctx, intKeys[i%benchItems])
		}
	})
}
