package kiwicache

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
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
			dr, err := JSONCodec[floatKey, int]{}.decode(rec)
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
		if live := tb.len() - nans; len(tb.values) != live+tb.dead || tb.dead > max(len(tb.values)/8, 64) {
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
