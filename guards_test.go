package kiwicache

// The guards on source data (WithMinItems, WithMaxShrink, WithValidate) at
// their edges: the boundary itself, fractions other than one half, what
// they compare with, and what happens when the comparison cannot be made.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// refillWith makes a cache on a fresh miniredis whose first load returns
// first items, then refills it from a source of then items, and returns
// Refill's error and how many items the record holds afterwards.
func refillWith(t *testing.T, first, then int, opts ...Option) (error, int) {
	t.Helper()
	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(versionData(first, 1)))
	c := mustNew(t, "Items", rdb, l, opts...)
	if s, err := c.Snapshot(t.Context()); err != nil || s.Len() != first {
		t.Fatalf("first load: %d items, %v", s.Len(), err)
	}
	l.set(staticData(versionData(then, 2)))
	err := c.Refill(t.Context())
	rec := must(JSONCodec[string, item]{}.Decode([]byte(must(rdb.Get(t.Context(), "resource:Items").Result()))))
	return err, len(rec.Data)
}

// WithMinItems(n) accepts exactly n items and refuses n-1; WithMinItems(1)
// refuses an empty result even when WithAllowEmpty lets empty data through.
func TestMinItemsBoundary(t *testing.T) {
	for _, tc := range []struct {
		min, items int
		refused    bool
	}{
		{min: 5, items: 5, refused: false},
		{min: 5, items: 4, refused: true},
		{min: 1, items: 1, refused: false},
		{min: 1, items: 0, refused: true},
	} {
		t.Run(fmt.Sprintf("min %d, %d items", tc.min, tc.items), func(t *testing.T) {
			err, written := refillWith(t, 10, tc.items, WithMinItems(tc.min), WithAllowEmpty())
			if got := errors.Is(err, ErrRefused); got != tc.refused {
				t.Errorf("Refill = %v; refused %v, want %v", err, got, tc.refused)
			}
			if want := map[bool]int{true: 10, false: tc.items}[tc.refused]; written != want {
				t.Errorf("the record holds %d items, want %d", written, want)
			}
		})
	}
}

// WithMaxShrink(f) accepts a loss of exactly f of the items and refuses one
// item more. A quarter, not a half: at 0.5 a fraction inverted (f for 1-f)
// gives the same figures.
func TestMaxShrinkBoundary(t *testing.T) {
	for _, tc := range []struct {
		fraction     float64
		from, to     int
		refused      bool
		compareWhere string
	}{
		{0.25, 8, 6, false, "snapshot"}, // exactly a quarter lost
		{0.25, 8, 5, true, "snapshot"},
		{0.75, 8, 2, false, "snapshot"},
		{0.75, 8, 1, true, "snapshot"},
		{0.25, 8, 6, false, "record"}, // a cron job with no data compares with Redis
		{0.25, 8, 5, true, "record"},
	} {
		t.Run(fmt.Sprintf("%v of %d to %d, %s", tc.fraction, tc.from, tc.to, tc.compareWhere), func(t *testing.T) {
			var err error
			var written int
			if tc.compareWhere == "snapshot" {
				err, written = refillWith(t, tc.from, tc.to, WithMaxShrink(tc.fraction))
			} else {
				_, rdb := newMiniredis(t)
				service := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(versionData(tc.from, 1))))
				must(service.Snapshot(t.Context()))
				cron := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(versionData(tc.to, 2))), WithMaxShrink(tc.fraction))
				err = cron.Refill(t.Context())
				written = len(must(JSONCodec[string, item]{}.Decode([]byte(must(rdb.Get(t.Context(), "resource:Items").Result())))).Data)
			}
			if got := errors.Is(err, ErrRefused); got != tc.refused {
				t.Errorf("Refill = %v; refused %v, want %v", err, got, tc.refused)
			}
			if want := map[bool]int{true: tc.from, false: tc.to}[tc.refused]; written != want {
				t.Errorf("the record holds %d items, want %d", written, want)
			}
		})
	}
}

// A process that serves a snapshot compares the source's data with that
// snapshot, the data it would replace, even when the record in Redis holds
// something else (another writer's record it has not reloaded yet).
func TestMaxShrinkComparesOwnSnapshot(t *testing.T) {
	mr, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(versionData(10, 1)))
	c := mustNew(t, "Items", rdb, l, WithMaxShrink(0.5))
	must(c.Snapshot(t.Context()))
	b := must(JSONCodec[string, item]{}.Encode(Record[string, item]{Data: versionData(4, 9), Timestamp: must(c.Snapshot(t.Context())).Timestamp()}))
	mr.Set("resource:Items", string(b))
	l.set(staticData(versionData(4, 2)))
	if err := c.Refill(t.Context()); !errors.Is(err, ErrRefused) {
		t.Errorf("Refill of 4 items after a snapshot of 10, with MaxShrink 0.5 = %v, want ErrRefused", err)
	}
}

// WithValidate alone puts no limit on shrinking: only the function decides.
func TestValidateAloneAllowsShrinking(t *testing.T) {
	var sawPrev int
	err, written := refillWith(t, 10, 3, WithValidate(func(prev *Snapshot[string, item], fresh map[string]item) error {
		sawPrev = prev.Len()
		return nil
	}))
	if err != nil || written != 3 {
		t.Errorf("Refill = %v, record of %d items; want the 3 items written", err, written)
	}
	if sawPrev != 10 {
		t.Errorf("the validation function saw a previous snapshot of %d items, want 10", sawPrev)
	}
}

// isGuardRead matches the guards' read of the current record: the one read
// of a record whose identity is unknown that asks for its bytes (identify
// asks for none: an inline limit of 0).
func isGuardRead(cmd redis.Cmder) bool {
	a := cmd.Args() // evalsha_ro, sha, 1, key, known size, known tail, tail length, inline limit
	return isScript(fetchScript)(cmd) && len(a) == 8 && fmt.Sprint(a[4]) == fmt.Sprint(unknownID) && fmt.Sprint(a[7]) != "0"
}

// A cron job (no data of its own) that cannot read the current record to
// compare with refuses the result: the check is never skipped silently.
func TestGuardCannotReadRecordRefuses(t *testing.T) {
	for name, opt := range map[string]Option{
		"max shrink": WithMaxShrink(0.5),
		"validate":   WithValidate(func(*Snapshot[string, item], map[string]item) error { return nil }),
	} {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			must(mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(versionData(10, 1)))).Snapshot(t.Context()))
			before := must(mr.Get("resource:Items"))
			cronRdb := redis.NewClient(rdb.Options())
			cronRdb.AddHook(&failFirst{match: isGuardRead})
			cron := mustNew(t, "Items", cronRdb, LoaderFunc[string, item](staticData(versionData(2, 2))), opt)
			err := cron.Refill(t.Context())
			if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrRedis) {
				t.Errorf("Refill = %v, want ErrRefused wrapping the Redis error", err)
			}
			if after := must(mr.Get("resource:Items")); after != before {
				t.Errorf("the record was replaced though the guard could not compare: %.60s", after)
			}
		})
	}
}

// WithMinItems compares with nothing: a cron job with it alone does not read
// the record, and so a failure to read it cannot refuse the result.
func TestMinItemsReadsNoRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	must(mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(versionData(10, 1)))).Snapshot(t.Context()))
	cronRdb := redis.NewClient(rdb.Options())
	cronRdb.AddHook(&failFirst{match: isGuardRead})
	cron := mustNew(t, "Items", cronRdb, LoaderFunc[string, item](staticData(versionData(3, 2))), WithMinItems(2))
	if err := cron.Refill(t.Context()); err != nil {
		t.Errorf("Refill with WithMinItems alone = %v, want nil: there is nothing to compare", err)
	}
	if got := must(mr.Get("resource:Items")); !strings.Contains(got, `"v2"`) {
		t.Errorf("record = %.60s, want the cron job's", got)
	}
}

// A cron job that finds a record it cannot decode has nothing to compare
// with: the validation function gets no previous snapshot, and the record is
// replaced.
func TestGuardWithMalformedRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Items", "not a record")
	sawPrev := "not called"
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)),
		WithValidate(func(prev *Snapshot[string, item], fresh map[string]item) error {
			sawPrev = fmt.Sprint(prev)
			return nil
		}))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatalf("Refill = %v", err)
	}
	if sawPrev != "<nil>" {
		t.Errorf("the validation function saw %s, want no previous snapshot", sawPrev)
	}
	if got := must(mr.Get("resource:Items")); !strings.Contains(got, `"one"`) {
		t.Errorf("record = %.60s, want the source's", got)
	}
}

// A validation function that panics is logged with its stack, and refuses
// the result.
func TestValidatePanicIsLogged(t *testing.T) {
	logs := &logBuffer{}
	err, _ := refillWith(t, 2, 2, WithLogger(logs.logger()),
		WithValidate(func(prev *Snapshot[string, item], fresh map[string]item) error {
			if prev != nil {
				panic("validator bug")
			}
			return nil
		}))
	var p *PanicError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &p) {
		t.Errorf("Refill = %v, want ErrRefused wrapping a *PanicError", err)
	}
	if !logs.has("ERROR", "kiwicache.validate_panicked") || !strings.Contains(logs.String(), "validator bug") ||
		!strings.Contains(logs.String(), `"stack":"goroutine`) {
		t.Errorf("want kiwicache.validate_panicked with the panic and its stack:\n%s", logs)
	}
}

// The source's data reaches the validation function and the codec as an
// empty map, never nil, when it returns nil with WithAllowEmpty.
func TestNilSourceDataIsEmptyMap(t *testing.T) {
	_, rdb := newMiniredis(t)
	var freshNil, recordNil = "not called", "not called"
	codec := observingCodec{sawNil: &recordNil}
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) { return nil, nil }),
		WithAllowEmpty(), WithCodec[string, item](codec),
		WithValidate(func(_ *Snapshot[string, item], fresh map[string]item) error {
			freshNil = fmt.Sprint(fresh == nil)
			return nil
		}))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if freshNil != "false" || recordNil != "false" {
		t.Errorf("nil source data: the validation function got nil %s, the codec got nil %s; want an empty map", freshNil, recordNil)
	}
}

// observingCodec is the JSON codec, noting whether Encode got a nil map.
type observingCodec struct {
	JSONCodec[string, item]
	sawNil *string
}

func (c observingCodec) Encode(rec Record[string, item]) ([]byte, error) {
	*c.sawNil = fmt.Sprint(rec.Data == nil)
	return c.JSONCodec.Encode(rec)
}
