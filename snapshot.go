package kiwicache

import (
	"iter"
	"maps"
	"time"
)

// A Snapshot is one immutable version of the dataset. Methods on a nil
// *Snapshot behave as on an empty one.
//
// Its items are never handed out but by value, so no caller can add, remove
// or replace one. Values are shared, not copied: when V holds maps, slices
// or pointers, treat what they point to as read-only.
type Snapshot[K comparable, V any] struct {
	items     table[K, V]
	timestamp time.Time
	loadedAt  time.Time
	record    recordID // of the record it came from
}

// Get returns the item stored under key and whether there is one. It inlines
// to a map lookup: in a loop over many keys, take one Snapshot and use it.
func (s *Snapshot[K, V]) Get(key K) (V, bool) {
	if s == nil {
		var zero V
		return zero, false
	}
	return s.items.get(key)
}

// Len returns the number of items.
func (s *Snapshot[K, V]) Len() int {
	if s == nil {
		return 0
	}
	return s.items.len()
}

// Keys iterates over the keys, in no particular order.
func (s *Snapshot[K, V]) Keys() iter.Seq[K] {
	if s == nil {
		return func(func(K) bool) {}
	}
	return maps.Keys(s.items.index)
}

// All iterates over the items, in no particular order.
func (s *Snapshot[K, V]) All() iter.Seq2[K, V] {
	if s == nil {
		return func(func(K, V) bool) {}
	}
	return s.items.all()
}

// Timestamp returns when the data was read from the source (the record's
// timestamp).
func (s *Snapshot[K, V]) Timestamp() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.timestamp
}

// LoadedAt returns when this process made the snapshot.
func (s *Snapshot[K, V]) LoadedAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.loadedAt
}

// size is the record's size in bytes, 0 for a nil snapshot.
func (s *Snapshot[K, V]) size() int {
	if s == nil {
		return 0
	}
	return int(max(s.record.size, 0))
}
