// Command propagation measures how long a refill takes to reach other
// processes through push notifications: a writer process refills a record
// round after round; reader processes, each with its own Redis client and a
// ReloadTTL of an hour (so that only a notification can bring the new data),
// report the moment their Cache first serves each new version. Two latencies
// are reported for each reader and refill: from the moment the writer called
// Refill (its lock, load, encode and SET included), and from the moment
// Redis executed the SET, as a connection of the writer's that tracks the key
// learns of it (the earliest any process can).
//
//	go run ./bench/propagation -readers 20 -rounds 50 [-items 1000] [-listen tracking|keyspace|publish] [-spread 20ms]
//
// It starts its own redis-server (from PATH) unless -redis is given, and
// prints p50, p99 and max over readers x rounds. -listen chooses how the
// readers listen, by configuring the server it starts (PUSH.md): client
// tracking; keyspace notifications (client tracking refused by ACL); the
// library's publish channels (client tracking and CONFIG refused).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/redistest"
	"github.com/redis/go-redis/v9"
)

const (
	roleEnv = "KIWICACHE_PROPAGATION_ROLE" // "reader" in a child process
	name    = "Propagation"
)

func main() {
	readers := flag.Int("readers", 20, "reader processes")
	rounds := flag.Int("rounds", 50, "refills")
	items := flag.Int("items", 1000, "items in the record")
	listen := flag.String("listen", "tracking", "how readers listen: tracking, keyspace or publish")
	spread := flag.Duration("spread", -1, "readers' WithPushSpread (default: the library's, by record size)")
	url := flag.String("redis", "", "redis:// URL of a server to use (default: start one)")
	flag.Parse()
	if os.Getenv(roleEnv) == "reader" {
		os.Exit(reader(*spread))
	}
	if err := run(*readers, *rounds, *items, *listen, *spread, *url); err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(1)
	}
}

// An item is shaped as the items of BENCHMARKS.md's dataset (94 bytes a
// record member at 1,000 items).
type item struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Price  float64  `json:"price"`
	Tags   []string `json:"tags"`
	Active bool     `json:"active"`
}

// data is the dataset of a round: BENCHMARKS.md's, with the round number as
// the id of item k0.
func data(items, round int) map[string]item {
	m := make(map[string]item, items)
	for i := range items {
		m["k"+strconv.Itoa(i)] = item{ID: i, Name: "item-" + strconv.Itoa(i), Price: float64(i) * 1.25,
			Tags: []string{"a", "b"}, Active: i%2 == 0}
	}
	m["k0"] = item{ID: round, Name: "item-0", Tags: []string{"a", "b"}}
	return m
}

func run(readers, rounds, items int, listen string, spread time.Duration, url string) error {
	writerURL, readerURL := url, url
	if url == "" {
		args := []string{}
		switch listen {
		case "tracking":
		case "keyspace":
			args = []string{"--notify-keyspace-events", "K$g", "--user", "reader", "on", ">pw", "~*", "&*", "+@all", "-client"}
		case "publish":
			args = []string{"--user", "reader", "on", ">pw", "~*", "&*", "+@all", "-client", "-config"}
		default:
			return fmt.Errorf("-listen %q: want tracking, keyspace or publish", listen)
		}
		srv, err := redistest.Start(args...)
		if err != nil {
			return err
		}
		defer srv.Stop()
		writerURL, readerURL = srv.URL(), srv.URL()
		if listen != "tracking" {
			readerURL = "redis://reader:pw@" + srv.Addr() + "/0"
		}
	}
	opts, err := redis.ParseURL(writerURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	round := 0
	writer, err := kiwicache.New(name, rdb, kiwicache.LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return data(items, round), nil
	}), kiwicache.WithoutPush(), kiwicache.WithRegistry(nil), kiwicache.WithReloadTTL(time.Hour),
		kiwicache.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	if err := writer.Refill(ctx); err != nil {
		return err
	}

	// seen[r] receives the version and Unix ns of each new snapshot reader r serves.
	type sighting struct {
		version int
		at      time.Time
	}
	seen := make(chan sighting, readers*4)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	ready := make(chan struct{}, readers)
	for range readers {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), roleEnv+"=reader", "REDIS_URL="+readerURL)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 1 && f[0] == "ready":
					ready <- struct{}{}
				case len(f) == 3 && f[0] == "seen":
					v, _ := strconv.Atoi(f[1])
					ns, _ := strconv.ParseInt(f[2], 10, 64)
					seen <- sighting{v, time.Unix(0, ns)}
				}
			}
		}()
	}
	for range readers {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("readers did not start listening within 30s")
		}
	}

	written, err := watchWrites(ctx, opts, writer.Key())
	if err != nil {
		return err
	}
	var latencies, fromSet []time.Duration
	var refillTime time.Duration
	for round = 1; round <= rounds; round++ {
		start := time.Now()
		if err := writer.Refill(ctx); err != nil {
			return err
		}
		refillTime += time.Since(start)
		var set time.Time
		select {
		case set = <-written:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("round %d: the SET was not seen by the tracking connection", round)
		}
		got := 0
		timeout := time.After(10 * time.Second)
		for got < readers {
			select {
			case s := <-seen:
				if s.version == round {
					latencies = append(latencies, s.at.Sub(start))
					fromSet = append(fromSet, s.at.Sub(set))
					got++
				}
			case <-timeout:
				return fmt.Errorf("round %d: %d of %d readers served the new data within 10s", round, got, readers)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(latencies)
	slices.Sort(fromSet)
	size, _ := rdb.StrLen(ctx, writer.Key()).Result()
	spreadText := "the default (" + (time.Duration(size) * kiwicache.DefaultPushSpreadPerMB / 1e6).String() + ")"
	if spread >= 0 {
		spreadText = spread.String()
	}
	fmt.Printf("propagation: %d reader processes x %d refills, record %d items (%d bytes), listening by %s, push spread %s\n",
		readers, rounds, items, size, listen, spreadText)
	fmt.Printf("Refill called -> served: %s  (Refill itself: mean %v)\n", percentiles(latencies),
		(refillTime / time.Duration(rounds)).Round(10*time.Microsecond))
	fmt.Printf("SET executed  -> served: %s\n", percentiles(fromSet))
	return nil
}

// percentiles formats p50, p99 and max of sorted durations.
func percentiles(d []time.Duration) string {
	at := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))].Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v  p99 %v  max %v", at(0.50), at(0.99), d[len(d)-1].Round(10*time.Microsecond))
}

// watchWrites sends the moment each write of key is announced to a
// connection of its own: RESP2, client tracking redirected to itself, as
// PUSH.md's listeners do.
func watchWrites(ctx context.Context, opts *redis.Options, key string) (<-chan time.Time, error) {
	o := *opts
	o.Protocol = 2
	o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		return cn.Do(ctx, "CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST", "PREFIX", key).Err()
	}
	ps := redis.NewClient(&o).Subscribe(ctx, "__redis__:invalidate")
	if _, err := ps.Receive(ctx); err != nil {
		return nil, fmt.Errorf("tracking connection: %w", err)
	}
	written := make(chan time.Time, 16)
	go func() {
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			if slices.Contains(msg.PayloadSlice, key) {
				written <- time.Now()
			}
		}
	}()
	return written, nil
}

// reader serves the record with a ReloadTTL of an hour and reports each new
// version it serves, checking every millisecond.
func reader(spread time.Duration) int {
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rdb := redis.NewClient(opts)
	cacheOpts := []kiwicache.Option{kiwicache.WithRegistry(nil), kiwicache.WithReloadTTL(time.Hour),
		kiwicache.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if spread >= 0 {
		cacheOpts = append(cacheOpts, kiwicache.WithPushSpread(spread))
	}
	c, err := kiwicache.New(name, rdb, kiwicache.LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, fmt.Errorf("readers do not load")
	}), cacheOpts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	last, err := c.Get(ctx, "k0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for !c.Health().PushConnected {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Millisecond)
		v, err := c.Get(ctx, "k0")
		if err == nil && v.ID != last.ID {
			fmt.Printf("seen %d %d\n", v.ID, time.Now().UnixNano())
			last = v
		}
	}
}
