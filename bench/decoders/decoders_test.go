// Package decoders measures candidate JSON decoders on the benchmark record of
// BENCHMARKS.md: the time to decode it into typed values, and how much heap
// the decoded data keeps alive (a decoder whose strings point into its input
// keeps the whole input alive with them).
//
// cpu-ns/op is the CPU time of the process per decode, every thread and the
// garbage collector included: on a machine whose cores other processes share,
// it compares decoders more steadily than the time.
//
// It is a module of its own so that the candidates stay out of kiwicache's
// go.mod:
//
//	cd bench/decoders && go test -bench . -count 6
package decoders

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"

	"github.com/bytedance/sonic"
	jsonx "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	gojson "github.com/goccy/go-json"
	"github.com/kiwicache/kiwicache"
	segjson "github.com/segmentio/encoding/json"
)

type item struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Price  float64  `json:"price"`
	Tags   []string `json:"tags"`
	Active bool     `json:"active"`
}

type record struct {
	Data      map[string]item `json:"data"`
	Timestamp float64         `json:"timestamp"`
}

// benchRecord is the n-item record as Python writes it.
func benchRecord(n int) []byte {
	b := []byte(`{"data": {`)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		price := strconv.FormatFloat(float64(i)*1.25, 'f', -1, 64)
		if float64(i)*1.25 == float64(int(float64(i)*1.25)) {
			price += ".0"
		}
		b = fmt.Appendf(b, `"k%d": {"id": %d, "name": "item-%d", "price": %s, "tags": ["a", "b"], "active": %t}`,
			i, i, i, price, i%2 == 0)
	}
	return append(b, `}, "timestamp": 1764087331.4123456}`...)
}

// sizes are the item counts of the benchmark records (93,825, 977,825 and
// 10,177,825 bytes).
var sizes = []int{1_000, 10_000, 100_000}

var records = map[int][]byte{}

func bench(b *testing.B, unmarshal func([]byte, any) error) {
	for _, n := range sizes {
		rec, ok := records[n]
		if !ok {
			rec = benchRecord(n)
			records[n] = rec
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			var kept *record
			cpu := processCPU()
			for b.Loop() {
				var r record
				if err := unmarshal(rec, &r); err != nil || len(r.Data) != n {
					b.Fatal(err)
				}
				kept = &r
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			runtime.GC()
			with := heapObjects()
			runtime.KeepAlive(kept)
			kept = nil
			runtime.GC()
			b.ReportMetric(float64(with-heapObjects())/float64(len(rec)), "retained/record")
		})
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func BenchmarkEncodingJSON(b *testing.B) { bench(b, json.Unmarshal) }
func BenchmarkGoJSONExperiment(b *testing.B) {
	bench(b, func(d []byte, v any) error { return jsonx.Unmarshal(d, v, jsonv1.DefaultOptionsV1()) })
}
func BenchmarkGoccy(b *testing.B)     { bench(b, gojson.Unmarshal) }
func BenchmarkSegmentio(b *testing.B) { bench(b, segjson.Unmarshal) }
func BenchmarkSonic(b *testing.B)     { bench(b, sonic.ConfigStd.Unmarshal) }

// kiwicache's JSONCodec: its own decoder, on every core for large records;
// or its record parsing with sonic decoding the members (JSONCodec.Unmarshal).
func BenchmarkKiwicacheJSONCodec(b *testing.B) {
	benchCodec(b, kiwicache.JSONCodec[string, item]{})
}

func BenchmarkKiwicacheJSONCodecSonic(b *testing.B) {
	benchCodec(b, kiwicache.JSONCodec[string, item]{Unmarshal: sonic.ConfigStd.Unmarshal})
}

func benchCodec(b *testing.B, c kiwicache.JSONCodec[string, item]) {
	bench(b, func(data []byte, v any) error {
		rec, err := c.Decode(data)
		v.(*record).Data = rec.Data
		return err
	})
}
