package kiwicache

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The dataset of the reference figures: N items
// "k<i>": {"id": i, "name": "item-<i>", "price": i*1.25, "tags": ["a","b"], "active": i%2==0},
// written as the Python library writes it.
func benchItemsData(n int) map[string]item {
	data := make(map[string]item, n)
	for i := range n {
		data["k"+strconv.Itoa(i)] = item{ID: i, Name: "item-" + strconv.Itoa(i), Price: float64(i) * 1.25,
			Tags: []string{"a", "b"}, Active: i%2 == 0}
	}
	return data
}

// pythonRecord writes data as Python's json.dumps does: ", " and ": "
// separators, insertion order, timestamp last.
func pythonRecord(n int, timestamp string) []byte {
	b := []byte(`{"data": {`)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, `"k%d": {"id": %d, "name": "item-%d", "price": `, i, i, i)
		b = appendPythonFloat(b, float64(i)*1.25, 64)
		b = fmt.Appendf(b, `, "tags": ["a", "b"], "active": %t}`, i%2 == 0)
	}
	return append(append(append(b, `}, "timestamp": `...), timestamp...), '}')
}

// benchTimestamp is as Python writes time.time(): 17 significant digits.
const benchTimestamp = "1764087331.4123456"

// benchSizes are the item counts the reload benchmarks run at:
// KIWICACHE_BENCH_SIZES (comma-separated), or 1,000, 10,000 and 100,000.
// `make bench BIG=1` adds 1,000,000 (a 100 MB record).
func benchSizes(b *testing.B) []int {
	env := os.Getenv("KIWICACHE_BENCH_SIZES")
	if env == "" {
		return []int{1_000, 10_000, 100_000}
	}
	var sizes []int
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("KIWICACHE_BENCH_SIZES=%q: %q is not a count of items", env, f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// BenchmarkReload measures a reload side by side with the Python library's,
// in the same run, on the same record in the same redis-server:
//
//	n=N/get:       a bare GET of the record, the floor of any reload
//	n=N/go:        a reload after the record changed, in one round trip:
//	               Cache.Reload, as a reload after a notification of the
//	               write reads a record of up to 1 MiB (a GETRANGE),
//	               decoded into map[string]item, installed
//	n=N/go-polled: the same as a periodic reload finds the change: the
//	               fetch script (length and tail), then a GETRANGE
//	n=N/python:    Python kiwi-cache 0.4.5's reload_from_cache (GET,
//	               simplejson.loads, the member check), by
//	               bench/python_reload.py; skipped, saying why, without
//	               python3 and its redis and simplejson modules
//	n=N/unchanged: a periodic reload when the record is the one served
//
// The go and python figures are medians of single reloads (their ns/op is
// the median, not the mean), so that a reload slowed down by another
// process on a shared machine does not move them; go also reports the
// quartiles (p25-ns, p75-ns). `make bench` runs it with -count 6, which
// interleaves the runs of Go and Python, and bench/report prints the table
// of BENCHMARKS.md from the output.
func BenchmarkReload(b *testing.B) {
	rdb := realRedis(b)
	ctx := context.Background()
	for _, n := range benchSizes(b) {
		// Two records of the same items and size, written at different
		// times, as two refills would write them.
		stamps := [2]string{"1764087331.4123456", "1764087391.4123456"}
		records := [2][]byte{pythonRecord(n, stamps[0]), pythonRecord(n, stamps[1])}
		name := fmt.Sprintf("Reload%d", n)
		key := "resource:" + name
		set := func(b *testing.B, rec []byte) {
			if err := rdb.Set(ctx, key, rec, 0).Err(); err != nil {
				b.Fatal(err)
			}
		}
		set(b, records[0])
		b.Run(fmt.Sprintf("n=%d/get", n), func(b *testing.B) {
			b.SetBytes(int64(len(records[0])))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(records[0])), "record-bytes")
		})
		c := mustNew(b, name, rdb, LoaderFunc[string, item](staticData(benchItemsData(1))))
		// changed times reload after each change of the record, and checks
		// that c serves the new one.
		changed := func(b *testing.B, reload func() error) {
			b.SetBytes(int64(len(records[0])))
			b.ReportAllocs()
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				set(b, records[i%2])
				b.StartTimer()
				start := time.Now()
				err := reload()
				times = append(times, time.Since(start))
				if s := must(c.Snapshot(ctx)); err != nil || s.Len() != n || !s.Timestamp().Equal(must(parseUnixSeconds(stamps[i%2]))) {
					b.Fatalf("reload %d: %d items at %v, %v", i, s.Len(), s.Timestamp(), err)
				}
			}
			b.ReportMetric(float64(median(times)), "ns/op") // sorts times
			// The quartiles show the collector: at 10,000 items about every
			// other reload runs while it marks (BENCHMARKS.md).
			b.ReportMetric(float64(times[len(times)/4]), "p25-ns")
			b.ReportMetric(float64(times[len(times)*3/4]), "p75-ns")
		}
		b.Run(fmt.Sprintf("n=%d/go", n), func(b *testing.B) {
			changed(b, func() error { return c.Reload(ctx) })
		})
		b.Run(fmt.Sprintf("n=%d/go-polled", n), func(b *testing.B) {
			changed(b, func() error { return c.reloadWithAttempts(ctx, checkTail) })
		})
		b.Run(fmt.Sprintf("n=%d/python", n), func(b *testing.B) {
			python := pythonReference(b)
			set(b, records[0])
			// One run of the script is enough reloads for about a second.
			reps := max(3, min(500, 100_000/n))
			var medians []time.Duration
			var rss float64
			for b.Loop() {
				cmd := exec.Command(python, "bench/python_reload.py", key, strconv.Itoa(reps))
				cmd.Env = append(os.Environ(), "REDIS_URL="+realRedisURL)
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("bench/python_reload.py: %v", err)
				}
				var res struct {
					Bytes, Items int
					MedianMS     float64 `json:"median_ms"`
					MaxRSSMB     float64 `json:"maxrss_mb"`
				}
				if err := json.Unmarshal(out, &res); err != nil || res.Items != n || res.Bytes != len(records[0]) {
					b.Fatalf("bench/python_reload.py: %s (%v)", out, err)
				}
				medians = append(medians, time.Duration(res.MedianMS*1e6))
				rss = max(rss, res.MaxRSSMB)
			}
			ns := float64(median(medians))
			b.ReportMetric(ns, "ns/op")
			b.ReportMetric(float64(len(records[0]))/(ns/1e3), "MB/s")
			b.ReportMetric(rss, "py-maxrss-MB")
		})
		b.Run(fmt.Sprintf("n=%d/unchanged", n), func(b *testing.B) {
			if err := c.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			sent := serverSentBytes(b, rdb)
			for b.Loop() {
				if err := c.reloadWithAttempts(b.Context(), checkTail); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(serverSentBytes(b, rdb)-sent)/float64(b.N), "B-read/op")
		})
		rdb.Del(ctx, key)
	}
}

// median returns the median of ds (sorting them).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)/2]
}

// pythonReference returns the python3 to run bench/python_reload.py with:
// KIWICACHE_PYTHON, else the first python3 on PATH or /usr/bin/python3 with
// the redis and simplejson modules (a pyenv python3 may lack Debian's). It
// skips the benchmark, saying what is missing, if there is none.
func pythonReference(b *testing.B) string {
	pythonOnce.Do(func() {
		candidates := []string{os.Getenv("KIWICACHE_PYTHON")}
		if p, err := exec.LookPath("python3"); err == nil {
			candidates = append(candidates, p)
		}
		candidates = append(candidates, "/usr/bin/python3")
		pythonMissing = "python3 is not installed"
		for _, python := range candidates {
			if python == "" {
				continue
			}
			out, err := exec.Command(python, "-c", "import redis, simplejson").CombinedOutput()
			if err == nil {
				pythonPath = python
				return
			}
			if _, statErr := os.Stat(python); statErr == nil || strings.Contains(python, "/") {
				pythonMissing = python + " lacks the redis or simplejson module (Debian: python3-redis python3-simplejson): " +
					lastLine(string(out))
			}
		}
	})
	if pythonPath == "" {
		pythonSaid.Do(func() { // once, and without -v too: the table says why it has no Python
			fmt.Fprintln(os.Stderr, "BenchmarkReload: no Python reference, Go figures only:", pythonMissing)
		})
		b.Skip("no Python reference, Go figures only: " + pythonMissing)
	}
	return pythonPath
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

var (
	pythonOnce    sync.Once
	pythonSaid    sync.Once
	pythonPath    string
	pythonMissing string
)

// BenchmarkDecode compares decoders on the 100,000-item record, without Redis:
// encoding/json and JSONCodec.Decode into a map, and JSONCodec into the
// snapshot's table, as a Cache decodes (JSONCodec/snapshot).
func BenchmarkDecode(b *testing.B) {
	rec := pythonRecord(100_000, benchTimestamp)
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		b.ReportAllocs()
		for b.Loop() {
			var r struct {
				Data      map[string]item
				Timestamp float64
			}
			if err := json.Unmarshal(rec, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONCodec", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (JSONCodec[string, item]{}).Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONCodec/snapshot", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (JSONCodec[string, item]{}).decode(rec, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRefill measures a refill: source data encoded and SET into a
// real redis-server, under the lock.
func BenchmarkRefill(b *testing.B) {
	rdb := realRedis(b)
	for _, n := range benchSizes(b) {
		data := benchItemsData(n)
		name := fmt.Sprintf("Refill%d", n)
		c := mustNew(b, name, rdb, LoaderFunc[string, item](staticData(data)))
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Refill(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
		rdb.Del(context.Background(), c.Key())
	}
}

// serverSentBytes is what the redis-server has sent to all its clients. The
// INFO reply itself is counted too (about 2 kB per call, twice per benchmark
// run, so it is noise in a per-op figure over many ops).
func serverSentBytes(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_net_output_bytes:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no total_net_output_bytes in INFO stats")
	return 0
}

// BenchmarkReloadMemory reports the heap of a Cache reloading a changed
// record, at each size, absolute and relative to the record's size: what
// stays in use between reloads (one snapshot: live-heap), and the most in use
// above that while the new record is read and decoded beside the snapshot
// being served (peak-extra-heap). It samples the heap every 100µs, so its
// time is not a reload's time.
func BenchmarkReloadMemory(b *testing.B) {
	rdb := realRedis(b)
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			records := [][]byte{pythonRecord(n, "1764087331.4123456"), pythonRecord(n, "1764087391.4123456")}
			size := len(records[0])
			c := mustNew(b, uniqueName(b), rdb, LoaderFunc[string, item](staticData(benchItemsData(1))))
			defer rdb.Del(context.Background(), c.Key())
			runtime.GC()
			floor := heapInUse() // the two test records, not the cache's
			var peak, live uint64
			// At least 3 reloads, so that live is measured beside a snapshot
			// even where one reload takes longer than -benchtime.
			b.ResetTimer()
			for i := 0; i < max(b.N, 3); i++ {
				b.StopTimer()
				if err := rdb.Set(b.Context(), c.Key(), records[i%2], time.Minute).Err(); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				base := heapInUse()
				if i > 0 {
					live = max(live, base-floor)
				}
				stop := make(chan struct{})
				sampled := make(chan uint64)
				go func() {
					tick := time.NewTicker(100 * time.Microsecond)
					defer tick.Stop()
					var high uint64
					for {
						high = max(high, heapInUse())
						select {
						case <-stop:
							sampled <- high
							return
						case <-tick.C:
						}
					}
				}()
				b.StartTimer()
				if err := c.Reload(b.Context()); err != nil {
					b.Fatal(err)
				}
				close(stop)
				peak = max(peak, <-sampled-base)
			}
			if s := must(c.Snapshot(b.Context())); s.Len() != n {
				b.Fatalf("snapshot has %d items, want %d", s.Len(), n)
			}
			b.ReportMetric(float64(live)/float64(size), "live-heap/record")
			b.ReportMetric(float64(live)/1e6, "live-heap-MB")
			b.ReportMetric(float64(peak)/float64(size), "peak-extra-heap/record")
			b.ReportMetric(float64(peak)/1e6, "peak-extra-heap-MB")
		})
	}
}

func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The benchmark record is the one of the reference figures, byte for byte.
func TestPythonRecordSize(t *testing.T) {
	for n, size := range map[int]int{1_000: 93_825, 10_000: 977_825, 100_000: 10_177_825, 1_000_000: 105_777_825} {
		if got := len(pythonRecord(n, benchTimestamp)); got != size {
			t.Errorf("%d-item record: %d bytes, want %d", n, got, size)
		}
	}
}

// BenchmarkMapBuild is a floor under any reload of the 100,000-item record,
// even one that decoded nothing: making a map of its keys.
func BenchmarkMapBuild(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := make(map[string]int32, len(keys))
		for i, k := range keys {
			m[k] = int32(i)
		}
	}
}
