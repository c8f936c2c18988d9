package kiwicache

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The dataset of the reference figures (issue 4): N items
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

var benchSizes = []int{1_000, 10_000, 100_000}

// BenchmarkReload measures a reload of the record from a real redis-server
// against the transfer floor, a bare GET of the same record, in the same run.
//
//	get:       GET only (the floor)
//	full:      GET + decode into map[string]item (what a changed record costs)
//	unchanged: Reload when the record is the one the snapshot came from
func BenchmarkReload(b *testing.B) {
	rdb := realRedis(b)
	for _, n := range benchSizes {
		rec := pythonRecord(n, benchTimestamp)
		name := fmt.Sprintf("Reload%d", n)
		key := "resource:" + name
		if err := rdb.Set(b.Context(), key, rec, 0).Err(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d/get", n), func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rdb.Get(b.Context(), key).Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
		c := mustNew(b, name, rdb, LoaderFunc[string, item](staticData(benchItemsData(1))))
		b.Run(fmt.Sprintf("n=%d/full", n), func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			sent := serverSentBytes(b, rdb)
			for b.Loop() {
				if err := c.Reload(b.Context()); err != nil || c.snap.Load().Len() != n {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(serverSentBytes(b, rdb)-sent)/float64(b.N), "B-read/op")
		})
		b.Run(fmt.Sprintf("n=%d/unchanged", n), func(b *testing.B) {
			if err := c.Reload(b.Context()); err != nil {
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
		rdb.Del(context.Background(), key)
	}
}

// BenchmarkDecode compares decoders on the 100,000-item record, without Redis.
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
}

// BenchmarkRefill measures a refill: source data encoded and SET into a
// real redis-server, under the lock.
func BenchmarkRefill(b *testing.B) {
	rdb := realRedis(b)
	for _, n := range benchSizes {
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

// BenchmarkReloadMemory reports the heap during a full reload of the
// 100,000-item record, relative to the record's size: what stays in use
// between reloads (one snapshot), and the peak above that while a changed
// record is read and decoded beside the snapshot being served. It samples the
// heap every 100µs, so its time is not a reload's time.
func BenchmarkReloadMemory(b *testing.B) {
	rdb := realRedis(b)
	const n = 100_000
	records := [][]byte{pythonRecord(n, "1764087331.4123456"), pythonRecord(n, "1764087391.4123456")}
	size := len(records[0])
	c := mustNew(b, uniqueName(b), rdb, LoaderFunc[string, item](staticData(benchItemsData(1))))
	defer rdb.Del(context.Background(), c.Key())
	runtime.GC()
	floor := heapInUse() // the two test records, not the cache's
	var peak, live uint64
	for i := 0; b.Loop(); i++ {
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
			var high uint64
			for {
				high = max(high, heapInUse())
				select {
				case <-stop:
					sampled <- high
					return
				case <-time.After(100 * time.Microsecond):
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
	b.ReportMetric(float64(peak)/float64(size), "peak-extra-heap/record")
}

func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The benchmark record is the one of the reference figures, byte for byte.
func TestPythonRecordSize(t *testing.T) {
	for n, size := range map[int]int{1_000: 93_825, 10_000: 977_825, 100_000: 10_177_825} {
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

// BenchmarkScanObject is the other floor under a full reload: one pass over
// the 100,000-item record to find where its members start and end.
func BenchmarkScanObject(b *testing.B) {
	rec := pythonRecord(100_000, benchTimestamp)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := scanObject(rec, len(`{"data": `)); err != nil {
			b.Fatal(err)
		}
	}
}
