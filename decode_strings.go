package kiwicache

import (
	"encoding/binary"
	"unsafe"
)

// Every string a decoded record holds is a copy, so that nothing a snapshot
// serves keeps the record's bytes alive. Copying one string per allocation
// is what made decoding slow, so the decoder makes them in two cheaper ways
// (and small slices of strings or of any, the same way as the second):
//
//   - short strings that repeat (member names in values decoded into any,
//     enum-like values such as "active" or "EUR") are interned: decoded once
//     per decode and shared by every value that holds them;
//   - the others are copied side by side into chunks of a few kilobytes,
//     one allocation for many strings. A chunk stays in memory as long as one
//     of its strings does: while the snapshot is served, all of them are.

// maxInterned is the length up to which member names and strings in any
// are interned; maxInternedValue, strings in typed values.
const (
	maxInterned      = 16
	maxInternedValue = 8
)

// An internTable maps short strings to one copy each. It is a fixed-size,
// direct-mapped table: a new string takes the slot of the one it collides
// with, so its memory is bounded whatever the record holds.
type internTable struct {
	slots []internSlot
}

type internSlot struct {
	s   string
	any any // s as an any, made on first use (see internAny)
}

// internSlots is the table's largest size, a power of two.
const internSlots = 1024

// intern returns a string equal to b, shared with earlier calls.
func (d *decoder) intern(b []byte) string {
	slot := d.internSlot(b)
	if slot.s != string(b) {
		slot.s = d.strings.copy(b)
		slot.any = nil
	}
	return slot.s
}

// internAny returns b as an any holding a string, shared with earlier calls:
// a string in an interface takes an allocation of its own otherwise.
func (d *decoder) internAny(b []byte) any {
	slot := d.internSlot(b)
	if s, ok := slot.any.(string); ok && s == string(b) {
		return slot.any
	}
	if slot.s != string(b) {
		slot.s = d.strings.copy(b)
	}
	slot.any = slot.s
	return slot.any
}

// internNumber returns b as an any holding a Number, shared with earlier
// calls. The same text as a string is another value: each takes the slot
// from the other.
func (d *decoder) internNumber(b []byte) any {
	slot := d.internSlot(b)
	if n, ok := slot.any.(Number); ok && string(n) == string(b) {
		return slot.any
	}
	if slot.s != string(b) {
		slot.s = d.strings.copy(b)
	}
	slot.any = Number(slot.s)
	return slot.any
}

func (d *decoder) internSlot(b []byte) *internSlot {
	if d.names.slots == nil {
		// A slot per 256 bytes of the record, up to internSlots: a small
		// record has few strings to share.
		n := 64
		for n < internSlots && n*256 < len(d.b) {
			n *= 2
		}
		d.names.slots = make([]internSlot, n)
	}
	// A quick hash of the length and the first and last 8 bytes: strings
	// that differ elsewhere only take each other's slot.
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	switch {
	case len(b) >= 8:
		h ^= binary.LittleEndian.Uint64(b)
		h = (h ^ h>>29) * 0xbf58476d1ce4e5b9
		h ^= binary.LittleEndian.Uint64(b[len(b)-8:])
	default:
		for _, c := range b {
			h = h<<8 | uint64(c)
		}
	}
	h = (h ^ h>>32) * 0x94d049bb133111eb
	return &d.names.slots[(h>>40)&uint64(len(d.names.slots)-1)]
}

// shareStrings returns a []string of exactly the elements of elems, shared
// with earlier calls if they were all interned (and then shared is true):
// short arrays of short strings (tags, codes, enum-like values) repeat from
// item to item, and values are read-only (see Snapshot), so the items can
// share one.
func (d *decoder) shareStrings(elems []string) (_ []string, shared bool) {
	h := uint64(len(elems))
	for _, e := range elems {
		if len(e) > maxInternedValue {
			return d.copyStrings(elems), false
		}
		// Interned strings equal in bytes are one string: equal data
		// pointers stand for equal bytes.
		h = (h ^ uint64(uintptr(unsafe.Pointer(unsafe.StringData(e)))) ^ uint64(len(e))<<56) * 0x9e3779b97f4a7c15
	}
	if d.shared == nil {
		d.shared = make([][]string, sharedSlots)
	}
	slot := &d.shared[(h>>40)&(sharedSlots-1)]
	if !same(*slot, elems) {
		*slot = d.copyStrings(elems)
	}
	return *slot, true
}

// A sharedArray is the text of an array in the record and the shared
// []string it decoded to.
type sharedArray struct {
	text  []byte
	elems []string
}

// sharedSlots is the size of the table of shared []string, a power of two.
const sharedSlots = 256

// same reports whether a and b hold the same strings, data pointer for
// data pointer.
func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) || unsafe.StringData(a[i]) != unsafe.StringData(b[i]) {
			return false
		}
	}
	return true
}

// copyStrings returns a copy of elems from the slab.
func (d *decoder) copyStrings(elems []string) []string {
	out := d.strSlab.make(len(elems))
	copy(out, elems)
	return out
}

// A stringArena copies strings into shared chunks.
type stringArena struct {
	chunk []byte
	size  int // of the next chunk
}

// maxArenaString is the length from which a string gets an allocation of its
// own: a long string would waste the rest of a chunk.
const maxArenaString = 512

// copy returns a string with the bytes of b.
func (a *stringArena) copy(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxArenaString {
		return string(b)
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, max(a.size, 1024))
		a.size = min(2*max(a.size, 1024), 32<<10)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	// The chunk is never written again at these bytes, so the string is
	// immutable as strings must be.
	return unsafe.String(&a.chunk[start], len(b))
}

// A stack holds the elements of the arrays being decoded until each array's
// end, when its elements are copied into a slice of exactly its length. It
// grows by chunks that are never copied: an array of a million elements
// costs its final slice and the chunks, not the copies of a growing slice.
type stack[T any] struct {
	chunks [][]T
	n      int
}

const stackChunk = 256

func (s *stack[T]) len() int { return s.n }

func (s *stack[T]) push(v T) {
	c := s.n / stackChunk
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, stackChunk))
	}
	s.chunks[c][s.n%stackChunk] = v
	s.n++
}

// pop removes the elements from base up and returns them in a slice from
// from.
func (s *stack[T]) pop(base int, from *slab[T]) []T {
	out := from.make(s.n - base)
	for i := range out {
		j := base + i
		out[i] = s.chunks[j/stackChunk][j%stackChunk]
	}
	s.drop(base)
	return out
}

// drop removes the elements from base up.
func (s *stack[T]) drop(base int) {
	var zero T
	for j := base; j < s.n; j++ {
		s.chunks[j/stackChunk][j%stackChunk] = zero // let them be collected
	}
	s.n = base
}

// A slab hands out small slices of T carved from shared chunks: one
// allocation for hundreds of arrays of a few elements (the tags of each
// item). Each slice has its length as capacity, so an append to it copies
// it rather than write into its neighbour's elements. Its chunks grow from
// maxSlabbed elements to slabChunk: a chunk is kept whole while a slice of
// it is, and a decoder that takes a few slices (the items share their tags)
// keeps a small one.
type slab[T any] struct {
	free  []T
	chunk int // elements of the last chunk
}

// maxSlabbed is the longest slice taken from a slab; slabChunk its largest
// chunk.
const (
	maxSlabbed = 32
	slabChunk  = 512
)

// make returns a new slice of n zero elements.
func (s *slab[T]) make(n int) []T {
	if n > maxSlabbed {
		return make([]T, n)
	}
	if len(s.free) < n {
		s.chunk = min(max(2*s.chunk, maxSlabbed), slabChunk)
		s.free = make([]T, s.chunk)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}
