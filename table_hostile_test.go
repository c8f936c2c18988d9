package kiwicache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// floatKey is a key read with strconv.ParseFloat: "NaN" is a key unequal to
// itself, which a map[K]V holds once per member, each found by no Get.
type floatKey float64

func (f *floatKey) UnmarshalText(b []byte) error {
	v, err := strconv.ParseFloat(string(b), 64)
	*f = floatKey(v)
	return err
}

func (f floatKey) MarshalText() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
}

// Keys unequal to themselves (NaN) are each an item of their own, as in a
// map[K]V, through the compactions that repeated names cause: Len, All and
// Keys agree with encoding/json, nothing panics, and the other keys keep
// their last values.
func TestTableHostileKeysUnequalToThemselves(t *testing.T) {
	for _, repeats := range []int{1, 65, 200, 5000} {
		var b strings.Builder
		b.WriteString(`{"NaN": -1, "NaN": -2`)
		for i := range repeats {
			fmt.Fprintf(&b, `, "%d": %d`, i%3, i)
			if i%50 == 0 {
				fmt.Fprintf(&b, `, "NaN": %d`, -i-3)
			}
		}
		b.WriteString(`}`)
		data := []byte(b.String())
		t.Run(fmt.Sprintf("%d repeats", repeats), func(t *testing.T) {
			withCores(t, 1)
			// encoding/json: reflect.DeepEqual and diffDecode find no NaN key.
			var ref map[floatKey]int
			if err := json.Unmarshal(data, &ref); err != nil {
				t.Fatal(err)
			}
			rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1.5}`...)
			dr, err := JSONCodec[floatKey, int]{}.decode(rec, false)
			if err != nil {
				t.Fatal(err)
			}
			s := &Snapshot[floatKey, int]{items: dr.items}
			want := must(JSONCodec[floatKey, int]{}.Decode(rec)).Data
			if len(want) != len(ref) {
				t.Errorf("JSONCodec.Decode: %d items, encoding/json %d", len(want), len(ref))
			}
			want = ref
			nans, all := 0, 0
			for k, v := range s.All() {
				all++
				if math.IsNaN(float64(k)) {
					nans++
					continue
				}
				if want[k] != v {
					t.Errorf("All: %v = %d, want %d", k, v, want[k])
				}
			}
			keys := 0
			for range s.Keys() {
				keys++
			}
			if s.Len() != len(want) || all != len(want) || keys != len(want) {
				t.Errorf("Len %d, All %d, Keys %d, want %d items", s.Len(), all, keys, len(want))
			}
			if n := len(s.items.values); n > s.Len() {
				t.Errorf("%d values for %d items", n, s.Len())
			}
		})
	}
}

// runTableOps stores ops random members of keys different keys in a table
// made with hint, through next and put (as the decoder does) and set (as
// drainInto does), and checks it against a map[K]V after every step that
// may compact, and trimmed and reset at the end; value makes the value of
// step i, equal tells two values apart.
func runTableOps[V any](t *testing.T, what string, seed uint64, keys, ops, hint int, value func(i int) V, equal func(a, b V) bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(hint)))
	tb, want := newTable[floatKey, V](hint), map[floatKey]V{}
	nans := 0
	check := func(stage string) {
		t.Helper()
		if tb.len() != len(want)+nans {
			t.Fatalf("%s, %s: len %d, want %d", what, stage, tb.len(), len(want)+nans)
		}
		seen := 0
		for k, v := range tb.all() {
			seen++
			if k != k {
				continue
			}
			if w, ok := want[k]; !ok || !equal(v, w) {
				t.Fatalf("%s, %s: all gives %v = %v, want %v (present %v)", what, stage, k, v, w, ok)
			}
		}
		if seen != len(want)+nans || len(tb.toMap()) != len(want)+nans {
			t.Fatalf("%s, %s: all gives %d items, toMap %d, want %d", what, stage, seen, len(tb.toMap()), len(want)+nans)
		}
		for k, w := range want {
			if v, ok := tb.get(k); !ok || !equal(v, w) {
				t.Fatalf("%s, %s: get(%v) = %v, %v, want %v", what, stage, k, v, ok, w)
			}
		}
		if _, ok := tb.get(floatKey(math.NaN())); ok {
			t.Fatalf("%s, %s: get(NaN) found a value", what, stage)
		}
		if _, ok := tb.get(floatKey(-1)); ok {
			t.Fatalf("%s, %s: get of an absent key found a value", what, stage)
		}
		if live := tb.len() - nans; len(tb.values) != live+tb.dead || tb.dead > max(len(tb.values)/8, 64) || tb.repeats && tb.dead != 0 {
			t.Fatalf("%s, %s: %d values, %d dead, for %d keys", what, stage, len(tb.values), tb.dead, live)
		}
		var zero V
		for i, v := range tb.values[len(tb.values):cap(tb.values)] {
			if !equal(v, zero) {
				t.Fatalf("%s, %s: spare value %d is %v, not zero", what, stage, i, v)
			}
		}
	}
	for i := range ops {
		var k floatKey
		switch r := rng.IntN(100); {
		case r == 0:
			k = floatKey(math.NaN())
			nans++
		case r < 10:
			k = floatKey(rng.IntN(3)) // a few keys, repeated a lot
		default:
			k = floatKey(rng.IntN(keys))
		}
		v := value(i)
		before := tb.dead
		if rng.IntN(2) == 0 {
			tb.set(k, v)
		} else {
			*tb.next() = v
			tb.put(k)
		}
		if k == k {
			want[k] = v
		}
		if tb.dead < before || i%997 == 0 || i == ops-1 {
			check(fmt.Sprintf("op %d", i)) // just compacted, or now and then
		}
	}
	tb.trim()
	check("trimmed")
	// Room to spare: at most an eighth, or what the allocator rounds a
	// slice of exactly the values up to (its size class, no extra memory).
	roomy := func(s []V) bool { return cap(s) > max(len(s)+len(s)/8, cap(slices.Clone(s))) }
	if n := len(tb.values); tb.dead != 0 || roomy(tb.values) || tb.scratch != nil || roomy(tb.unequal) {
		t.Errorf("%s, trimmed: %d values (capacity %d), %d dead, scratch %d, %d unequal (capacity %d)",
			what, n, cap(tb.values), tb.dead, len(tb.scratch), len(tb.unequal), cap(tb.unequal))
	}
	tb.reset()
	want, nans = map[floatKey]V{}, 0
	check("reset")
	for i := range 3 * keys {
		k := floatKey(i % keys)
		tb.set(k, value(i))
		want[k] = value(i)
	}
	check("refilled")
}

// A table serves what a map[K]V serves after the same stores, for values
// of no size, large ones and ones with pointers, any hint, any mix of new,
// repeated and NaN keys, before and after each compaction, trimmed, reset
// and refilled; its spare room is always zero, so it keeps nothing alive.
func TestTableHostileMatchesAMap(t *testing.T) {
	type big [1024]byte
	for _, keys := range []int{1, 2, 63, 64, 65, 70, 520, 3000} {
		for _, hint := range []int{0, 1, keys - 1, keys, 8 * keys, 100_000} {
			ops := max(20*keys, 2000)
			what := fmt.Sprintf("%d keys, hint %d", keys, hint)
			seed := uint64(keys)
			runTableOps(t, what+", int", seed, keys, ops, hint,
				func(i int) int { return i }, func(a, b int) bool { return a == b })
			runTableOps(t, what+", struct{}", seed, keys, ops, hint,
				func(int) struct{} { return struct{}{} }, func(a, b struct{}) bool { return true })
			runTableOps(t, what+", *int", seed, keys, ops, hint,
				func(i int) *int { return &i }, func(a, b *int) bool { return a == b || a != nil && b != nil && *a == *b })
			runTableOps(t, what+", string", seed, keys, ops, hint,
				func(i int) string { return strconv.Itoa(i) }, func(a, b string) bool { return a == b })
			if keys <= 520 && hint <= 8*keys {
				runTableOps(t, what+", [1024]byte", seed, keys, min(ops, 5000), hint,
					func(i int) big { var b big; b[i%1024] = byte(i | 1); return b }, func(a, b big) bool { return a == b })
			}
		}
	}
}

// foldKey is a key that many member names make: UnmarshalText keeps the
// lower case of the name without its leading zeros, so "K01", "k1" and
// "k001" are one key, repeated.
type foldKey string

func (f *foldKey) UnmarshalText(b []byte) error {
	s := strings.ToLower(string(b))
	if rest, ok := strings.CutPrefix(s, "k"); ok {
		s = "k" + strings.TrimLeft(rest, "0")
	}
	*f = foldKey(s)
	return nil
}

func (f foldKey) MarshalText() ([]byte, error) { return []byte(f), nil }

// hostileData is a data object of n members (more than one piece's worth
// of bytes) whose member names name(i) repeat as each layout says.
func hostileData(n int, name func(i int) string, value func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: %s", name(i), value(i))
	}
	b.WriteString("}")
	return []byte(b.String())
}

// hostileLayouts are data objects of mostly repeated member names.
func hostileLayouts() map[string][]byte {
	small := func(i int) string { return strconv.Itoa(i) }
	obj := func(i int) string {
		return fmt.Sprintf(`{"id": %d, "name": "n%d", "tags": ["t%d", "x"], "active": %t}`, i, i, i%5, i%2 == 0)
	}
	const n = 12_000
	return map[string][]byte{
		// One name, every time: the table must stay one value.
		"one name": hostileData(60_000, func(int) string { return "1" }, small),
		// Many names, then all of them again, twice.
		"all again": hostileData(3*n, func(i int) string { return strconv.Itoa(i % n) }, obj),
		// Two names alternating across every piece.
		"alternating": hostileData(n, func(i int) string { return strconv.Itoa(i % 2) }, obj),
		// Each name once early and once in a later piece.
		"across pieces": hostileData(n, func(i int) string { return strconv.Itoa((i * 7919) % (n / 2)) }, obj),
		// Integer names that an int key reads as one: 1, 01, +1, 001.
		"merged integers": hostileData(n, func(i int) string {
			return []string{"", "0", "+", "00", "+0"}[i%5] + strconv.Itoa(i%(n/5))
		}, obj),
		// Names a TextUnmarshaler folds into one key.
		"folded names": hostileData(n, func(i int) string {
			return []string{"k", "K", "k0", "K00"}[i%4] + strconv.Itoa(i%(n/4))
		}, obj),
	}
}

// Records made mostly of repeated member names, cut into pieces decoded on
// 1, 3 and 8 cores, decode as encoding/json decodes them (the last value of
// each name, decoded fresh), into a table as a Cache serves it that holds
// one value per key and little spare room, whose Len, Keys, All and Get
// agree with JSONCodec.Decode's map.
func TestTableHostileRepeatedRecords(t *testing.T) {
	for name, data := range hostileLayouts() {
		if len(data) < 2*minPiece {
			t.Fatalf("%s: %d bytes, not cut into pieces", name, len(data))
		}
		rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1.5}`...)
		for _, cores := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("%s/%d cores", name, cores), func(t *testing.T) {
				withCores(t, cores)
				switch name {
				case "one name":
					diffDecode[int, int](t, data)
					checkSnapshotOf[int, int](t, rec)
				case "folded names":
					diffDecode[foldKey, item](t, data)
					checkSnapshotOf[foldKey, item](t, rec)
				default:
					diffDecode[int, item](t, data)
					diffDecode[string, any](t, data)
					checkSnapshotOf[int, item](t, rec)
					checkSnapshotOf[string, item](t, rec)
				}
			})
		}
	}
}

// checkSnapshotOf decodes rec as a Cache does and checks the snapshot
// against JSONCodec.Decode and its table against checkTrimmed.
func checkSnapshotOf[K comparable, V any](t *testing.T, rec []byte) {
	t.Helper()
	dr, err := JSONCodec[K, V]{}.decode(rec, false)
	if err != nil {
		t.Fatal(err)
	}
	want := must(JSONCodec[K, V]{}.Decode(rec)).Data
	s := &Snapshot[K, V]{items: dr.items}
	checkTrimmed(t, fmt.Sprintf("%T", want), &s.items)
	if got := maps.Collect(s.All()); s.Len() != len(want) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%T: snapshot of %d items, All %d, Decode %d", want, s.Len(), len(got), len(want))
	}
	if keys := slices.Collect(s.Keys()); len(keys) != len(want) {
		t.Fatalf("%T: Keys gives %d, want %d", want, len(keys), len(want))
	}
	for k, w := range want {
		if v, ok := s.Get(k); !ok || !reflect.DeepEqual(v, w) {
			t.Fatalf("%T: Get(%v) = %v, %v, want %v", want, k, v, ok, w)
		}
	}
}

// markingCodec embeds JSONCodec and decodes with it, then marks what it
// read: a Cache must serve what its Decode returns, not what the embedded
// JSONCodec would.
type markingCodec struct{ JSONCodec[string, int] }

func (c markingCodec) Decode(b []byte) (Record[string, int], error) {
	rec, err := c.JSONCodec.Decode(b)
	for k, v := range rec.Data {
		rec.Data[k] = v + 1000
	}
	if rec.Data != nil {
		rec.Data["marked"] = 1
	}
	return rec, err
}

// embeddingCodec embeds JSONCodec and nothing else: its Decode is
// JSONCodec's, through a map.
type embeddingCodec struct{ JSONCodec[string, int] }

// A Cache serves a raw record written to a real Redis as its codec decodes
// it: one that embeds a JSONCodec with a Decode of its own (by value or by
// pointer) through that Decode; one that only embeds it, and JSONCodec by
// value or by pointer, as encoding/json reads the record, repeated names
// across the record's pieces included, at 1 to 8 cores.
func TestTableHostileCacheHonorsItsCodec(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	data := hostileData(20_000, func(i int) string { return strconv.Itoa(i % 7_000) }, strconv.Itoa)
	rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1764087331.5}`...)
	if err := rdb.Set(t.Context(), "resource:"+name, rec, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var want map[string]int
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	marked := map[string]int{"marked": 1}
	for k, v := range want {
		marked[k] = v + 1000
	}
	noLoad := LoaderFunc[string, int](func(context.Context) (map[string]int, error) {
		return nil, errors.New("the record is in Redis: nothing to load")
	})
	codecs := []struct {
		name  string
		codec Codec[string, int]
		want  map[string]int
	}{
		{"JSONCodec", JSONCodec[string, int]{}, want},
		{"*JSONCodec", &JSONCodec[string, int]{}, want},
		{"embedding", embeddingCodec{}, want},
		{"marking", markingCodec{}, marked},
		{"*marking", &markingCodec{}, marked},
	}
	for _, cores := range []int{1, 2, 4, 8} {
		for _, cc := range codecs {
			withCores(t, cores)
			c := mustNew(t, name, rdb, noLoad, WithCodec(cc.codec))
			s, err := c.Snapshot(t.Context())
			if err != nil {
				t.Fatalf("%s, %d cores: %v", cc.name, cores, err)
			}
			if got := maps.Collect(s.All()); s.Len() != len(cc.want) || !maps.Equal(got, cc.want) {
				t.Fatalf("%s, %d cores: %d items served (All %d), want %d", cc.name, cores, s.Len(), len(got), len(cc.want))
			}
			for _, k := range []string{"0", "6999", "marked"} {
				v, err := c.Get(t.Context(), k)
				if w, ok := cc.want[k]; ok != (err == nil) || v != w {
					t.Errorf("%s, %d cores: Get(%s) = %d, %v, want %d", cc.name, cores, k, v, err, w)
				}
			}
			checkTrimmed(t, cc.name, &s.items)
			c.Close()
		}
	}
}

// A record Python writes with member names repeated across its pieces, some
// of them integers a Go int key reads as one ("7", "07", "+7"), is served
// by a Cache, at 1 to 8 cores, as Python's json.loads reads it (string
// keys) and as encoding/json reads the bytes in Redis (int keys).
func TestTableHostileRepeatedNamesFromPython(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	// 9,000 members, 4,500 different names in Python, 1,500 as Go ints.
	script := `
import json, sys, redis
parts = []
for i in range(9000):
    n = i % 1500
    k = ["%d", "0%d", "+%d"][(i // 1500) % 3] % n
    parts.append('"%s": {"id": %d, "name": "n%d", "tags": ["t%d"], "active": %s}' % (k, i, i, i % 4, "true" if i % 2 else "false"))
`
	out := pythonWritesRecord(t, script, name)
	var wantStrings map[string]item
	if err := json.Unmarshal(out, &wantStrings); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.Get(t.Context(), "resource:"+name).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 4*minPiece {
		t.Fatalf("a %d-byte record: too small to be cut", len(raw))
	}
	var wantInts struct {
		Data map[int]item `json:"data"`
	}
	if err := json.Unmarshal(raw, &wantInts); err != nil {
		t.Fatal(err)
	}
	if len(wantInts.Data) >= len(wantStrings) {
		t.Fatalf("int keys: %d items, string keys %d: no names merged", len(wantInts.Data), len(wantStrings))
	}
	for _, cores := range []int{1, 2, 4, 8} {
		withCores(t, cores)
		fail := func(context.Context) error { return errors.New("the record is in Redis: nothing to load") }
		cs := mustNew(t, name, rdb, LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) { return nil, fail(ctx) }))
		ci := mustNew(t, name, rdb, LoaderFunc[int, item](func(ctx context.Context) (map[int]item, error) { return nil, fail(ctx) }))
		ss := must(cs.Snapshot(t.Context()))
		si := must(ci.Snapshot(t.Context()))
		if got := maps.Collect(ss.All()); !reflect.DeepEqual(got, wantStrings) {
			t.Errorf("%d cores, string keys: %d items served, Python reads %d", cores, len(got), len(wantStrings))
		}
		if got := maps.Collect(si.All()); !reflect.DeepEqual(got, wantInts.Data) {
			t.Errorf("%d cores, int keys: %d items served, encoding/json reads %d", cores, len(got), len(wantInts.Data))
		}
		checkTrimmed(t, "string keys", &ss.items)
		checkTrimmed(t, "int keys", &si.items)
		cs.Close()
		ci.Close()
	}
}

// A table whose keys repeat past its first compaction holds no dead value
// from then on: a repeated key's value takes the place of its old one, so
// a record of every name four times is compacted once, not every eighth
// of its values (each compaction rewrites every key's index), and holds
// exactly one value per key before it is trimmed (one key stored a
// thousand times, one value).
func TestTableHostileRepeatsCompactOnce(t *testing.T) {
	for keys, times := range map[int]int{1: 1000, 100: 4, 10_000: 4} {
		tb := newTable[string, [4]int](keys)
		names := make([]string, keys)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		for r := range times {
			for i, k := range names {
				*tb.next() = [4]int{r, i}
				tb.put(k)
			}
		}
		if len(tb.values) != keys || tb.dead != 0 || tb.len() != keys {
			t.Errorf("%d keys stored %d times: %d values, %d dead, len %d", keys, times, len(tb.values), tb.dead, tb.len())
		}
		for i, k := range names {
			if v, _ := tb.get(k); v != [4]int{times - 1, i} {
				t.Fatalf("%d keys: get(%s) = %v, want the last", keys, k, v)
			}
		}
	}
}

// Snapshots are read (Get, All, Keys, Len, on old snapshots and the
// Cache's) on several goroutines while records of repeated names, cut into
// pieces, are decoded into new ones: under go test -race, the tables share
// nothing a reader sees with the decoding of the next, and each snapshot
// serves what encoding/json reads from its record.
func TestTableHostileReadsWhileDecoding(t *testing.T) {
	rdb := realRedis(t)
	withCores(t, 4)
	name := uniqueName(t)
	recs := make([][]byte, 4)
	wants := make([]map[string]int, len(recs))
	for r := range recs {
		data := hostileData(15_000, func(i int) string { return strconv.Itoa((i * (r + 3)) % 5_000) },
			func(i int) string { return strconv.Itoa(i*10 + r) })
		recs[r] = append(append([]byte(`{"data": `), data...), fmt.Sprintf(`, "timestamp": 1764087331.%d}`, r)...)
		if err := json.Unmarshal(data, &wants[r]); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(t.Context(), "resource:"+name, recs[0], 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := mustNew(t, name, rdb, LoaderFunc[string, int](func(context.Context) (map[string]int, error) {
		return nil, errors.New("the record is in Redis: nothing to load")
	}))
	first := must(c.Snapshot(t.Context()))
	done := make(chan struct{})
	var readers sync.WaitGroup
	for g := range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				s := first
				if g > 0 {
					s = must(c.Snapshot(context.Background()))
				}
				digits, n := map[int]bool{}, 0 // record r's values all end in r
				for k, v := range s.All() {
					if w, ok := s.Get(k); !ok || w != v {
						t.Errorf("Get(%s) = %d, %v; All gives %d", k, w, ok, v)
						return
					}
					digits[v%10], n = true, n+1
				}
				keys := 0
				for range s.Keys() {
					keys++
				}
				if n != s.Len() || keys != n || len(digits) != 1 {
					t.Errorf("a snapshot of %d items gives %d in All, %d keys, values of records mixed", s.Len(), n, keys)
					return
				}
			}
		})
	}
	for round := range 12 {
		r := round % len(recs)
		if err := rdb.Set(t.Context(), "resource:"+name, recs[r], 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := maps.Collect(must(c.Snapshot(t.Context())).All()); !maps.Equal(got, wants[r]) {
			t.Fatalf("round %d: %d items served, encoding/json reads %d", round, len(got), len(wants[r]))
		}
	}
	close(done)
	readers.Wait()
	if got := maps.Collect(first.All()); !maps.Equal(got, wants[0]) {
		t.Fatalf("the first snapshot changed: %d items, want %d", len(got), len(wants[0]))
	}
}

// A fuzzed data object's members, written again and again under a few
// names (how few the fuzzer says) into a record cut into pieces, decode at
// 1 and 4 cores as encoding/json decodes them: the last value of each
// name, whatever the values and wherever the pieces are cut.
func FuzzTableHostileRepeatedPieces(f *testing.F) {
	for _, seed := range diffSeeds[:8] { // each seed is a record of 128 KiB, decoded 8 times
		f.Add([]byte(seed), uint16(3))
	}
	f.Add([]byte(`{"a": 1, "a": [2], "b": {"c": ", \"k1\": "}}`), uint16(1))
	f.Add([]byte(`{"id": 1, "tags": ["a", "b"], "tags": ["c"]}`), uint16(700))
	f.Fuzz(func(t *testing.T, data []byte, names uint16) {
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) < 2 || trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' || names == 0 {
			return
		}
		members := trimmed[1 : len(trimmed)-1]
		var rec bytes.Buffer
		rec.WriteString(`{`)
		for i := 0; rec.Len() < 4*minPiece+len(members); i++ {
			if i > 0 {
				rec.WriteString(", ")
			}
			fmt.Fprintf(&rec, `"%0*d": {"i": %d, `, i%3, (i*7919)%int(names), i)
			rec.Write(members)
			rec.WriteString("}")
		}
		rec.WriteString(`}`)
		for _, cores := range []int{1, 4} {
			withCores(t, cores)
			diffDecode[string, any](t, rec.Bytes())
			diffDecode[int, map[string]any](t, rec.Bytes())
		}
	})
}

// retainedBy returns the bytes of heap that the result of f keeps alive.
func retainedBy[T any](f func() T) int64 {
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	kept := f()
	with := heap()
	runtime.KeepAlive(kept)
	kept = *new(T)
	return with - heap()
}

// A record whose members mostly repeat a few names is served from a table
// that keeps no room for the members the decoder expected: a snapshot of
// one or two items, from a record of 60,000 members or of 12,000 large
// ones, keeps the chunks of its strings alive, not an index sized for them
// all (900 and 480 KB).
func TestTableHostileIndexFitsItsKeys(t *testing.T) {
	withCores(t, 1)
	for _, layout := range []string{"one name", "alternating"} {
		data := hostileLayouts()[layout]
		rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1.5}`...)
		for _, cores := range []int{1, 4} {
			withCores(t, cores)
			kept := retainedBy(func() decodedRecord[string, any] { return must(JSONCodec[string, any]{}.decode(rec, false)) })
			// Its strings keep their chunks of the decoder's (decode_strings.go:
			// 32 KiB at most each) alive, its key's and its value's.
			if kept > 3*32<<10 {
				t.Errorf("%s, %d cores: a snapshot of at most 2 items from a %d-byte record keeps %d bytes alive", layout, cores, len(rec), kept)
			}
		}
	}
}
