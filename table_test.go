package kiwicache

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// checkTable fails unless t holds exactly the items of want, with no dead
// value and each key's value where its index says.
func checkTable[V comparable](t *testing.T, what string, tb *table[string, V], want map[string]V) {
	t.Helper()
	if got := maps.Collect(tb.all()); !maps.Equal(got, want) || tb.len() != len(want) {
		t.Fatalf("%s: %d items %v, want %d %v", what, tb.len(), got, len(want), want)
	}
	for k, v := range want {
		if got, ok := tb.get(k); !ok || got != v {
			t.Fatalf("%s: get(%q) = %v, %v, want %v", what, k, got, ok, v)
		}
	}
	if _, ok := tb.get("absent"); ok {
		t.Fatalf("%s: get of an absent key found a value", what)
	}
}

// A table serves what a map[K]V would after the same stores, in any mix of
// new and repeated keys, through the compactions of its dead values; trimmed,
// it keeps no dead value and no room beyond an eighth.
func TestTableMatchesAMap(t *testing.T) {
	for _, keys := range []int{1, 3, 64, 1000} {
		for _, hint := range []int{0, keys / 2, keys, 4 * keys} {
			rng := rand.New(rand.NewPCG(uint64(keys), uint64(hint)))
			tb, want := newTable[string, int](hint), map[string]int{}
			for op := range 20 * keys {
				k := "k" + strconv.Itoa(rng.IntN(keys))
				if op%2 == 0 {
					tb.set(k, op)
				} else {
					*tb.next() = op // as the decoder stores a member
					tb.put(k)
				}
				want[k] = op
				if tb.dead > max(len(tb.values)/8, 64) {
					t.Fatalf("%d keys: %d dead values of %d", keys, tb.dead, len(tb.values))
				}
			}
			what := "keys " + strconv.Itoa(keys) + ", hint " + strconv.Itoa(hint)
			checkTable(t, what, &tb, want)
			tb.trim()
			checkTable(t, what+", trimmed", &tb, want)
			checkTrimmed(t, what+", trimmed", &tb)
			tb.reset()
			checkTable(t, what+", reset", &tb, map[string]int{})
		}
	}
}

// One key stored a million times leaves a table of one value: the dead ones
// are compacted as they come, not kept to the end.
func TestTableOfOneRepeatedKeyStaysSmall(t *testing.T) {
	tb := newTable[string, [64]byte](0)
	for i := range 1_000_000 {
		*tb.next() = [64]byte{byte(i)}
		tb.put("k")
	}
	if len(tb.values) > 65 || cap(tb.values) > 1024 {
		t.Errorf("one key stored a million times: %d values, capacity %d", len(tb.values), cap(tb.values))
	}
	if v, _ := tb.get("k"); v[0] != byte(999_999%256) {
		t.Errorf("get = %d, want the last value stored", v[0])
	}
}

// A dead value is cleared when compacted away, so that nothing it points to
// is kept alive by the table's spare room.
func TestTableClearsDeadValues(t *testing.T) {
	tb := newTable[string, *int](0)
	for i := range 200 {
		*tb.next() = &i
		tb.put("k")
	}
	for i, v := range tb.values[len(tb.values):cap(tb.values)] {
		if v != nil {
			t.Fatalf("spare value %d still points to %d", i, *v)
		}
	}
	tb.trim()
	if v, _ := tb.get("k"); len(tb.values) != 1 || *v != 199 {
		t.Errorf("trimmed: %d values, k = %d, want 1 value, 199", len(tb.values), *v)
	}
}

// untrimmed says how tb is not as trim leaves it, or "" if it is: one value
// per key, none dead, no scratch, and no room beyond an eighth but what the
// allocator rounds a slice of exactly the values up to (slices.Clone: 520
// ints, room for 608).
func untrimmed[K comparable, V any](tb *table[K, V]) string {
	n := len(tb.values)
	if n+len(tb.unequal) == tb.len() && tb.dead == 0 && tb.scratch == nil &&
		cap(tb.values) <= max(n+n/8, cap(slices.Clone(tb.values))) {
		return ""
	}
	return fmt.Sprintf("%d items in %d values (capacity %d), %d dead, scratch %d",
		tb.len(), n, cap(tb.values), tb.dead, len(tb.scratch))
}

// checkTrimmed fails unless tb is as trim leaves it.
func checkTrimmed[K comparable, V any](t *testing.T, what string, tb *table[K, V]) {
	t.Helper()
	if problem := untrimmed(tb); problem != "" {
		t.Errorf("%s: %s", what, problem)
	}
}
