package kiwicache

import (
	"iter"
	"math/bits"
	"reflect"
	"slices"
)

// A table holds the items of a snapshot: their values in one slice, found
// through a map from each key to its value's index.
//
// It takes fewer bytes than a map[K]V. A Go map keeps its entries in tables
// of up to 1,024 slots, each filled to at most 7/8 and sized in powers of
// two, so a map has 1.1 to 2.3 slots per entry; with the values in the map,
// each spare slot costs a whole value, here only an int. A reload allocates
// that much less, which leaves the collector less to do (BENCHMARKS.md).
type table[K comparable, V any] struct {
	index  map[K]int
	room   int // the keys index was made for: a map never shrinks
	values []V
	dead   int // values no key points to: a later one of the same key replaced them

	// repeats is set once the dead were many enough to compact: in a
	// table whose keys repeat that much, put looks a key up before it
	// stores it, and a repeated key's value takes its old one's place. A
	// new key then costs a lookup more, but a repeated one no compaction,
	// which rewrites every index: 8 map assignments per dead value.
	repeats bool

	// unequal holds the values of keys unequal to themselves (a NaN in a
	// key, which a TextUnmarshaler may make): their index, ^i, is never
	// rewritten, as a map assignment of such a key adds an entry, each
	// an item of its own, as in a map[K]V. get never finds them.
	unequal      []V
	mayBeUnequal bool // K can hold such a key (a float or an interface in it)

	scratch []uint64 // compact's, while the table is filled
}

// newTable returns an empty table for about n items. The values have room
// for a few more, so that an estimate a little short costs no copy of them.
func newTable[K comparable, V any](n int) table[K, V] {
	return table[K, V]{index: make(map[K]int, n), room: n, values: make([]V, 0, n+n/16),
		mayBeUnequal: mayBeUnequal(reflect.TypeFor[K]())}
}

// mayBeUnequal reports whether a value of the comparable type t can be
// unequal to itself: whether it can hold a float, a complex or an interface.
func mayBeUnequal(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.Interface:
		return true
	case reflect.Array:
		return mayBeUnequal(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if mayBeUnequal(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// tableOf returns a table of the items of m.
func tableOf[K comparable, V any](m map[K]V) table[K, V] {
	t := newTable[K, V](len(m))
	for k, v := range m {
		t.set(k, v)
	}
	return t
}

// get returns the value of k and whether there is one.
func (t *table[K, V]) get(k K) (V, bool) {
	if i, ok := t.index[k]; ok {
		return t.values[i], true // a key that is found is equal to itself: i >= 0
	}
	var zero V
	return zero, false
}

func (t *table[K, V]) len() int { return len(t.index) }

// at returns the value at index i.
func (t *table[K, V]) at(i int) V {
	if i < 0 {
		return t.unequal[^i]
	}
	return t.values[i]
}

// set makes v the value of k, in place of any it had.
func (t *table[K, V]) set(k K, v V) {
	t.values = append(t.values, v)
	t.put(k)
}

// next returns a zero value at the end of the table to decode a member's
// value into; put then makes it the value of the member's key.
func (t *table[K, V]) next() *V {
	t.values = append(t.values, *new(V))
	return &t.values[len(t.values)-1]
}

// put makes the last value the value of k, in place of any it had. It looks
// k up once: a key seen before shows only as a map no larger, and its old
// value stays behind, dead, until the dead are many (a record may repeat a
// member a million times); from then on, it looks k up first (repeats).
func (t *table[K, V]) put(k K) {
	if t.mayBeUnequal && k != k {
		// Never found again, so never rewritten by compact: its value
		// goes where compact does not move it.
		last := len(t.values) - 1
		t.unequal = append(t.unequal, t.values[last])
		t.values[last] = *new(V)
		t.values = t.values[:last]
		t.index[k] = ^(len(t.unequal) - 1)
		return
	}
	last := len(t.values) - 1
	if t.repeats {
		if i, ok := t.index[k]; ok {
			t.values[i] = t.values[last]
			t.values[last] = *new(V)
			t.values = t.values[:last]
			return
		}
		t.index[k] = last
		return
	}
	n := len(t.index)
	t.index[k] = last
	if len(t.index) > n {
		return
	}
	if t.dead++; t.dead > max(len(t.values)/8, 64) {
		t.compact()
		t.repeats = true
	}
}

// compact moves the live values to the front, in their order: a pass over
// the values and one over the keys, with a bitmap of the live ones (kept for
// a compaction after a reset). It rewrites every key's index, some 8 map
// assignments per dead value: put compacts once, then turns to repeats.
func (t *table[K, V]) compact() {
	words := (len(t.values) + 63) / 64
	t.scratch = slices.Grow(t.scratch[:0], 2*words)[:2*words]
	clear(t.scratch)
	live, before := t.scratch[:words], t.scratch[words:] // before[w]: live values before word w
	for _, i := range t.index {
		if i >= 0 {
			live[i/64] |= 1 << (i % 64)
		}
	}
	n := 0
	for w, word := range live {
		before[w] = uint64(n)
		for ; word != 0; word &= word - 1 {
			t.values[n] = t.values[w*64+bits.TrailingZeros64(word)]
			n++
		}
	}
	clear(t.values[n:])
	t.values = t.values[:n]
	for k, i := range t.index {
		if i >= 0 {
			t.index[k] = int(before[i/64]) + bits.OnesCount64(live[i/64]&(1<<(i%64)-1))
		}
	}
	t.dead = 0
}

// reset empties the table, keeping its room.
func (t *table[K, V]) reset() {
	clear(t.index)
	clear(t.values)
	clear(t.unequal)
	t.values, t.unequal, t.dead, t.repeats = t.values[:0], t.unequal[:0], 0, false
}

// trim leaves the values exactly those of the keys, in a slice of their
// size if the room to spare is large (an estimate of the items wide of the
// mark), and the index in a map of their size if it was made for more than
// twice as many (members repeated by the thousand): the table is kept as
// long as the snapshot is served.
func (t *table[K, V]) trim() {
	if t.dead > 0 {
		t.compact()
	}
	if n := len(t.index); t.room > 2*n {
		index := make(map[K]int, n)
		for k, i := range t.index {
			index[k] = i // a key unequal to itself is added, as each is
		}
		t.index, t.room = index, n
	}
	if n := len(t.values); cap(t.values)-n > n/8 {
		t.values = slices.Clone(t.values)
	}
	if n := len(t.unequal); cap(t.unequal)-n > n/8 {
		t.unequal = slices.Clone(t.unequal)
	}
	t.scratch = nil
}

// all iterates over the items, in no particular order.
func (t *table[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for k, i := range t.index {
			if !yield(k, t.at(i)) {
				return
			}
		}
	}
}

// toMap returns the items as a map.
func (t *table[K, V]) toMap() map[K]V {
	m := make(map[K]V, len(t.index))
	for k, i := range t.index {
		m[k] = t.at(i)
	}
	return m
}
