// Command fleet measures what a fleet of processes serving one record costs
// the Redis server that holds it: commands and bytes per instance per reload
// period while the record is unchanged, and in all after one change of the
// record, with the time until every instance serves the change. Each
// instance is a goroutine with its own Redis client (its own connections and
// its own push subscription) and its own Cache, reading continuously.
//
//	go run ./bench/fleet [-instances 50] [-items 116000] [-period 1s] [-periods 10] [-change] [-spread -1] [-partitions 1] [-gzip]
//
// It starts its own redis-server (from PATH), so that the server's counters
// (INFO stats, commandstats, cpu) count this fleet only. SCALING.md reports
// its figures and extrapolates them.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// An item is shaped as the items of BENCHMARKS.md's dataset.
type item struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Price  float64  `json:"price"`
	Tags   []string `json:"tags"`
	Active bool     `json:"active"`
}

func main() {
	instances := flag.Int("instances", 50, "instances (goroutines with a client and a Cache each)")
	items := flag.Int("items", 116_000, "items in the dataset (116,000: a 10 MB record)")
	period := flag.Duration("period", time.Second, "ReloadTTL of every instance")
	periods := flag.Int("periods", 10, "reload periods measured with the record unchanged (0: none)")
	spread := flag.Duration("spread", -1, "WithPushSpread (default: the library's, by record size)")
	partitions := flag.Int("partitions", 1, "split the dataset into this many records (WithSuffix); a change touches one")
	gz := flag.Bool("gzip", false, "write records gzip-compressed (a Codec for Go-only fleets)")
	change := flag.Bool("change", true, "measure one change of the record (use a long -period: only push then brings it)")
	flag.Parse()
	if err := run(*instances, *items, *period, *periods, *spread, *partitions, *gz, *change); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// data is partition p of the dataset, with version as the id of its first item.
func data(items, partitions, p, version int) map[string]item {
	m := make(map[string]item, items/partitions+1)
	first := true
	for i := p; i < items; i += partitions {
		it := item{ID: i, Name: "item-" + strconv.Itoa(i), Price: float64(i) * 1.25, Tags: []string{"a", "b"}, Active: i%2 == 0}
		if first {
			it.ID, first = version, false
		}
		m["k"+strconv.Itoa(i)] = it
	}
	return m
}

// gzipCodec compresses the default codec's record. Python cannot read it: for
// fleets of Go services only. After the compressed record it writes the
// timestamp member again, {"timestamp": ...}, so that the reload's O(1) tail
// check (which reads the record's last bytes) still recognizes an unchanged
// record; without it every reload would read the whole record.
type gzipCodec struct {
	kiwicache.JSONCodec[string, item]
}

func (g gzipCodec) Encode(rec kiwicache.Record[string, item]) ([]byte, error) {
	b, err := g.JSONCodec.Encode(rec)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	w.Write(b)
	w.Close()
	tail := b[bytes.LastIndex(b, []byte(`"timestamp"`)):] // "timestamp": N}
	buf.WriteByte('{')
	buf.Write(tail)
	return buf.Bytes(), nil
}

func (g gzipCodec) Decode(b []byte) (kiwicache.Record[string, item], error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return kiwicache.Record[string, item]{}, fmt.Errorf("%w: %w", kiwicache.ErrMalformedRecord, err)
	}
	r.Multistream(false) // the timestamp trailer follows the compressed member
	plain, err := io.ReadAll(r)
	if err != nil {
		return kiwicache.Record[string, item]{}, fmt.Errorf("%w: %w", kiwicache.ErrMalformedRecord, err)
	}
	return g.JSONCodec.Decode(plain)
}

type counters struct {
	commands, in, out int64
	cpu               float64 // seconds of Redis CPU, user + sys
	calls             map[string]int64
}

func readCounters(ctx context.Context, addr string, sections ...string) (counters, error) {
	c := counters{calls: map[string]int64{}}
	if len(sections) == 0 {
		sections = []string{"all"}
	}
	text, err := redistest.Do(ctx, addr, append([]string{"INFO"}, sections...)...)
	if err != nil {
		return c, err
	}
	for line := range strings.SplitSeq(text, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case k == "total_commands_processed":
			c.commands, _ = strconv.ParseInt(v, 10, 64)
		case k == "total_net_input_bytes":
			c.in, _ = strconv.ParseInt(v, 10, 64)
		case k == "total_net_output_bytes":
			c.out, _ = strconv.ParseInt(v, 10, 64)
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			c.cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			c.calls[strings.TrimPrefix(k, "cmdstat_")], _ = strconv.ParseInt(calls, 10, 64)
		}
	}
	return c, nil
}

// minus returns the difference, without the INFO commands of the measurement.
func (c counters) minus(d counters) counters {
	r := counters{commands: c.commands - d.commands - (c.calls["info"] - d.calls["info"]), in: c.in - d.in, out: c.out - d.out, cpu: c.cpu - d.cpu,
		calls: map[string]int64{}}
	for k, v := range c.calls {
		if n := v - d.calls[k]; n != 0 {
			r.calls[k] = n
		}
	}
	return r
}

func (c counters) callList() string {
	var parts []string
	for _, k := range []string{"evalsha_ro", "eval_ro", "type", "strlen", "getrange", "get", "set", "evalsha", "eval", "publish", "expire", "ping", "subscribe"} {
		if n := c.calls[k]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ToUpper(k), n))
		}
	}
	return strings.Join(parts, ", ")
}

func run(instances, items int, period time.Duration, periods int, spread time.Duration, partitions int, gz, change bool) error {
	ctx := context.Background()
	srv, err := redistest.Start()
	if err != nil {
		return err
	}
	defer srv.Stop()
	quiet := kiwicache.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	common := []kiwicache.Option{kiwicache.WithRegistry(nil), kiwicache.WithReloadTTL(period), kiwicache.WithCacheTTL(time.Hour), quiet}
	if gz {
		common = append(common, kiwicache.WithCodec(gzipCodec{}))
	}
	suffix := func(p int) kiwicache.Option {
		if partitions == 1 {
			return kiwicache.WithSuffix("all")
		}
		return kiwicache.WithSuffix("p" + strconv.Itoa(p))
	}

	// The writer fills every partition once.
	writerClient := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer writerClient.Close()
	var version atomic.Int64
	version.Store(1)
	writers := make([]*kiwicache.Cache[string, item], partitions)
	for p := range partitions {
		w, err := kiwicache.New("Fleet", writerClient, kiwicache.LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
			return data(items, partitions, p, int(version.Load())), nil
		}), append(common, suffix(p), kiwicache.WithoutPush())...)
		if err != nil {
			return err
		}
		if err := w.Refill(ctx); err != nil {
			return err
		}
		writers[p] = w
	}
	size, _ := writerClient.StrLen(ctx, writers[0].Key()).Result()

	// The fleet: each instance serves every partition and reads all the time,
	// so that a stale snapshot is reloaded at once.
	type instance struct {
		client *redis.Client
		caches []*kiwicache.Cache[string, item]
	}
	fleet := make([]instance, instances)
	opts := append([]kiwicache.Option{}, common...)
	if spread >= 0 {
		opts = append(opts, kiwicache.WithPushSpread(spread))
	}
	start := time.Now()
	for i := range fleet {
		// A long read timeout: here 50 instances share two cores, and one
		// can wait seconds for the CPU to read its 10 MB.
		fleet[i].client = redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 2, ReadTimeout: time.Minute})
		for p := range partitions {
			c, err := kiwicache.New("Fleet", fleet[i].client, kiwicache.LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
				return nil, fmt.Errorf("instances do not load")
			}), append(opts, suffix(p))...)
			if err != nil {
				return err
			}
			fleet[i].caches = append(fleet[i].caches, c)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64 // instances serving the latest version of partition 0
	var errs atomic.Int64
	for i := range fleet {
		wg.Go(func() {
			seen := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for p, c := range fleet[i].caches {
					v, err := c.Get(ctx, "k"+strconv.Itoa(p))
					if err != nil {
						errs.Add(1)
						continue
					}
					if p == 0 && v.ID > seen {
						seen = v.ID
						if seen == int(version.Load()) {
							served.Add(1)
						}
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		for _, in := range fleet {
			for _, c := range in.caches {
				c.Close()
			}
			in.client.Close()
		}
	}()
	for served.Load() < int64(instances) {
		time.Sleep(time.Millisecond)
	}
	for _, in := range fleet {
		for _, c := range in.caches {
			for h := c.Health(); !h.PushConnected || !h.HasData; h = c.Health() {
				time.Sleep(time.Millisecond)
			}
		}
	}
	coldStart := time.Since(start)
	errs.Store(0)                            // from here on, no read may fail
	time.Sleep(min(2*period, 2*time.Second)) // reloads that the start-up scheduled are done

	codec := "JSON (default)"
	if gz {
		codec = "gzip(JSON)"
	}
	fmt.Printf("fleet: %d instances, %d items in %d record(s) of %d bytes each, codec %s, ReloadTTL %v, push spread %s\n",
		instances, items, partitions, size, codec, period, spreadText(spread, size))
	fmt.Printf("cold start: all instances served the record %v after they started\n", coldStart.Round(time.Millisecond))

	// Unchanged record: the tail checks of every period.
	before, err := readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	time.Sleep(time.Duration(periods) * period)
	after, err := readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	d := after.minus(before)
	per := float64(instances * periods)
	if periods > 0 {
		fmt.Printf("unchanged, per instance per period: %.2f commands, %.0f bytes in, %.0f bytes out (Redis CPU %.2f ms per period for the fleet) [%s]\n",
			float64(d.commands)/per, float64(d.in)/per, float64(d.out)/per, d.cpu*1000/float64(periods), d.callList())
	}

	if !change {
		return nil
	}

	// One change, of partition 0.
	version.Store(2)
	served.Store(0)
	before, err = readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	// Sample Redis's memory (GET replies wait in its output buffers) and
	// note when it has sent the fleet its copies of the record.
	var peakMem, baseMem int64
	var sent time.Duration
	memDone := make(chan struct{})
	start = time.Now()
	go func() {
		defer close(memDone)
		for served.Load() < int64(instances) {
			if c, err := readCounters(ctx, srv.Addr(), "stats"); err == nil && sent == 0 && c.out-before.out >= int64(instances)*size {
				sent = time.Since(start)
			}
			if m, err := redistest.Info(ctx, srv.Addr(), "used_memory"); err == nil {
				n, _ := strconv.ParseInt(m, 10, 64)
				if baseMem == 0 {
					baseMem = n
				}
				peakMem = max(peakMem, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if err := writers[0].Refill(ctx); err != nil {
		return err
	}
	for served.Load() < int64(instances) {
		time.Sleep(100 * time.Microsecond)
	}
	converged := time.Since(start)
	<-memDone
	after, err = readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	d = after.minus(before)
	fmt.Printf("one change: Redis had sent every instance the record %v after Refill began, and every instance served it after %v; "+
		"Redis sent %.1f MB (%.2f MB per instance), ran %d commands (%.1f per instance), used %.0f ms CPU; "+
		"its memory peaked %.1f MB above its level before [%s]\n",
		sent.Round(time.Millisecond), converged.Round(time.Millisecond), float64(d.out)/1e6, float64(d.out)/1e6/float64(instances),
		d.commands, float64(d.commands)/float64(instances), d.cpu*1000, float64(peakMem-baseMem)/1e6, d.callList())
	if n := errs.Load(); n != 0 {
		return fmt.Errorf("%d reads failed", n)
	}

	// The floor: every instance's client GETs the record at once and
	// discards it, no decoding: what Redis and loopback can send here.
	before, err = readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	start = time.Now()
	var getWG sync.WaitGroup
	for _, in := range fleet {
		getWG.Go(func() {
			if err := in.client.Get(ctx, writers[0].Key()).Err(); err != nil {
				errs.Add(1)
			}
		})
	}
	getWG.Wait()
	bare := time.Since(start)
	after, err = readCounters(ctx, srv.Addr())
	if err != nil {
		return err
	}
	fmt.Printf("floor: %d concurrent bare GETs of the record took %v (%.0f MB/s from Redis) and %.0f ms of Redis CPU\n",
		instances, bare.Round(time.Millisecond), float64(int64(instances)*size)/1e6/bare.Seconds(), after.minus(before).cpu*1000)
	return nil
}

func spreadText(spread time.Duration, size int64) string {
	if spread >= 0 {
		return spread.String()
	}
	return "default (" + (time.Duration(size) * kiwicache.DefaultPushSpreadPerMB / 1e6).String() + ")"
}
