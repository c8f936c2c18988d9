package kiwicache

// The record's Redis side at its edges: the maximum size on both sides of
// it, and what a codec that does not stamp its records' tails falls back to.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// padCodec is the JSON codec with every record padded with spaces to size
// bytes (JSON allows trailing whitespace), so a record's size is known.
type padCodec struct {
	JSONCodec[string, item]
	size int
}

func (c padCodec) Encode(rec Record[string, item]) ([]byte, error) {
	b, err := c.JSONCodec.Encode(rec)
	if err != nil || len(b) > c.size {
		return b, err
	}
	return append(b, bytes.Repeat([]byte(" "), c.size-len(b))...), nil
}

// A record of exactly WithMaxRecordSize bytes is read and served; one byte
// more is refused (ErrRecordTooLarge, the old snapshot kept, no refill).
func TestMaxRecordSizeBoundaryOnRead(t *testing.T) {
	record := pyRecord("exact", "1764087331.5")
	for _, tc := range []struct {
		max     int
		refused bool
	}{{len(record), false}, {len(record) + 1, false}, {len(record) - 1, true}} {
		t.Run(fmt.Sprintf("max %d for %d bytes", tc.max, len(record)), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", record)
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithMaxRecordSize(tc.max))
			err := c.Reload(t.Context())
			if got := errors.Is(err, ErrRecordTooLarge); got != tc.refused {
				t.Errorf("Reload = %v; refused %v, want %v", err, got, tc.refused)
			}
			if l.calls.Load() != 0 || must(mr.Get("resource:Items")) != record {
				t.Errorf("the record was refilled (%d source loads)", l.calls.Load())
			}
			if !tc.refused {
				if v := must(c.Get(t.Context(), "a")); v.Name != "exact" {
					t.Errorf("Get = %+v, want the record's", v)
				}
			}
		})
	}
}

// Source data that encodes to exactly WithMaxRecordSize bytes is written; one
// byte over is a load error.
func TestMaxRecordSizeBoundaryOnWrite(t *testing.T) {
	const size = 300
	for _, tc := range []struct {
		max     int
		refused bool
	}{{size, false}, {size - 1, true}} {
		t.Run(fmt.Sprint("max ", tc.max), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)),
				WithCodec[string, item](padCodec{size: size}), WithMaxRecordSize(tc.max))
			err := c.Refill(t.Context())
			if got := errors.Is(err, ErrRecordTooLarge) && errors.Is(err, ErrLoadFailed); got != tc.refused {
				t.Errorf("Refill of a %d-byte record with max %d = %v; refused %v, want %v", size, tc.max, err, got, tc.refused)
			}
			if got, _ := mr.Get("resource:Items"); tc.refused == (len(got) == size) {
				t.Errorf("record of %d bytes in Redis", len(got))
			}
		})
	}
}

// unstampedCodec is the JSON codec without the promise that every write
// changes the record's tail.
type unstampedCodec struct{ json JSONCodec[string, item] }

func (c unstampedCodec) Encode(rec Record[string, item]) ([]byte, error) { return c.json.Encode(rec) }
func (c unstampedCodec) Decode(b []byte) (Record[string, item], error)   { return c.json.Decode(b) }

// With a codec whose records cannot be told apart by their tails, a load
// that lost its lock writes only where there is no record (it cannot tell
// whether the record is still the one it saw), says it did not write, and
// the cache logs at New what it falls back to.
func TestUnstampedCodecLostLockWritesOnlyWhereNoRecord(t *testing.T) {
	for _, recordThere := range []bool{true, false} {
		t.Run(fmt.Sprint("record there: ", recordThere), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			old := pyRecord("old", "1764087331.5")
			mr.Set("resource:Items", old)
			logs := &logBuffer{}
			release := make(chan struct{})
			l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
				<-release
				return twoItems, nil
			})
			c := mustNew(t, "Items", rdb, l, WithCodec[string, item](unstampedCodec{}), WithLogger(logs.logger()))
			if !logs.has("INFO", "kiwicache.codec_without_stamp") {
				t.Errorf("no codec_without_stamp logged at New:\n%s", logs)
			}
			done := make(chan error, 1)
			go func() { done <- c.Refill(t.Context()) }()
			eventually(t, "the load runs", func() bool { return l.calls.Load() == 1 })
			mr.Del("lock:Items") // the lock expired during the load
			if !recordThere {
				mr.Del("resource:Items")
			}
			close(release)
			err := <-done
			got, _ := mr.Get("resource:Items")
			if recordThere && (!errors.Is(err, ErrNotWritten) || got != old) {
				t.Errorf("Refill = %v, record %.40s; want ErrNotWritten and the record kept", err, got)
			}
			if !recordThere && (err != nil || !strings.Contains(got, `"one"`)) {
				t.Errorf("Refill = %v, record %.40s; want the load's record written", err, got)
			}
		})
	}
}

// With a codec whose records cannot be told apart by their tails, every
// reload reads the whole record: a change of the same length and tail is
// seen at the next periodic reload.
func TestUnstampedCodecReloadsReadWholeRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Tiny", tinyRecord)
	c := mustNew(t, "Tiny", rdb, newCountingLoader[string, item](staticData(twoItems)), WithCodec[string, item](unstampedCodec{}))
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-0" {
		t.Fatalf("Get = %+v", v)
	}
	mr.Set("resource:Tiny", tinyInPlace)
	if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-Y" {
		t.Errorf("after a periodic reload, Get = %+v, want the changed record's item-Y", v)
	}
}
