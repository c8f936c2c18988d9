package kiwicache_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// Two processes share a record: a refill in one reaches the other at once,
// though its ReloadTTL is an hour. (Here both run in one program, each with
// its own client, against an embedded Redis.)
func Example_push() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	price := 100
	loader := kiwicache.LoaderFunc[string, int](func(context.Context) (map[string]int, error) {
		return map[string]int{"PRG-LHR": price}, nil
	})
	quiet := kiwicache.WithLogger(slog.New(slog.DiscardHandler))
	ctx := context.Background()

	readerClient := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer readerClient.Close()
	reader, err := kiwicache.New("Fares", readerClient, loader, kiwicache.WithReloadTTL(time.Hour),
		kiwicache.WithRegistry(nil), quiet)
	if err != nil {
		panic(err)
	}
	defer reader.Close()
	v, _ := reader.Get(ctx, "PRG-LHR")
	fmt.Println("reader serves", v)
	for !reader.Health().PushConnected { // it subscribes in the background
		time.Sleep(time.Millisecond)
	}

	writerClient := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer writerClient.Close()
	writer, err := kiwicache.New("Fares", writerClient, loader, kiwicache.WithoutPush(),
		kiwicache.WithRegistry(nil), quiet)
	if err != nil {
		panic(err)
	}
	price = 120
	if err := writer.Refill(ctx); err != nil {
		panic(err)
	}
	for v == 100 {
		time.Sleep(time.Millisecond)
		v, _ = reader.Get(ctx, "PRG-LHR")
	}
	fmt.Println("reader serves", v)
	// Output:
	// reader serves 100
	// reader serves 120
}

// A fleet of instances of a big record: each reads it within 10 s of a
// notification (see SCALING.md for the sizing), and polls every 10 min
// ±20% as the safety net.
func ExampleWithPushSpread() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	c, err := kiwicache.New("Catalog", rdb,
		kiwicache.LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
			return map[string]string{"sku-1": "kettle"}, nil
		}),
		kiwicache.WithPushSpread(10*time.Second), kiwicache.WithReloadTTL(10*time.Minute),
		kiwicache.WithReloadJitter(0.2), kiwicache.WithRegistry(nil), kiwicache.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	v, _ := c.Get(context.Background(), "sku-1")
	fmt.Println(v)
	// Output: kettle
}

// What another writer publishes after writing a record, so that listening
// processes read it at once (PUSH.md).
func ExamplePushChannel() {
	written := time.Unix(1764087331, 412345000)
	fmt.Println(kiwicache.PushChannel("resource:Airlines:EU"))
	fmt.Println(kiwicache.PushPayload(written, 81827))
	// Output:
	// kiwicache:resource:Airlines:EU
	// {"timestamp": 1764087331.412345, "bytes": 81827}
}
