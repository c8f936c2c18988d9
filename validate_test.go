package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A refused source result is a load_error and the record stays as
// it was, for a process with data and for a cron job without.
func TestValidationRefusesSourceData(t *testing.T) {
	errTooFew := errors.New("too few airlines")
	for _, tc := range []struct {
		name  string
		opt   Option
		fresh int // items the source returns after the first 10
	}{
		{"min items", WithMinItems(5), 4},
		{"max shrink", WithMaxShrink(0.5), 4},
		{"validate func", WithValidate(func(prev *Snapshot[string, item], fresh map[string]item) error {
			if prev != nil && len(fresh) < prev.Len() {
				return errTooFew
			}
			return nil
		}), 9},
		{"validate panics", WithValidate(func(*Snapshot[string, item], map[string]item) error {
			panic("validator bug")
		}), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			m := &recordedMetrics{}
			l := newCountingLoader[string, item](staticData(versionData(10, 1)))
			if tc.name == "validate panics" { // the first result must pass
				mr.Set("resource:Items", `{"data": {"k0": {}, "k1": {}, "k2": {}, "k3": {}, "k4": {}, "k5": {}, "k6": {}, "k7": {}, "k8": {}, "k9": {}}, "timestamp": 1.0}`)
			}
			service := mustNew(t, "Items", rdb, l, tc.opt, WithMetrics(m))
			if s := must(service.Snapshot(t.Context())); s.Len() != 10 {
				t.Fatalf("first load: %d items", s.Len())
			}
			before := must(mr.Get("resource:Items"))

			l.set(staticData(versionData(tc.fresh, 1)))
			cron := mustNew(t, "Items", rdb, l, tc.opt, WithMetrics(m))
			for who, c := range map[string]*Cache[string, item]{"service": service, "cron job": cron} {
				err := c.Refill(t.Context())
				if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrLoadFailed) {
					t.Errorf("%s: Refill error = %v, want ErrRefused and ErrLoadFailed", who, err)
				}
			}
			if after := must(mr.Get("resource:Items")); after != before {
				t.Errorf("the refused data was written: %.80s", after)
			}
			if s := must(service.Snapshot(t.Context())); s.Len() != 10 {
				t.Errorf("service serves %d items after a refused load, want the 10 it had", s.Len())
			}
			if n := m.get("Items", StatusLoadError); n != 2 {
				t.Errorf("load_error counted %d times, want 2", n)
			}
			if n := m.get("Items", StatusSuccess); tc.name != "validate panics" && n != 1 {
				t.Errorf("success counted %d times, want 1 (the first load)", n)
			}
		})
	}
}

func TestValidationOptionsAreChecked(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := LoaderFunc[string, item](staticData(twoItems))
	for name, opt := range map[string]Option{
		"max record size 0":   WithMaxRecordSize(0),
		"min items -1":        WithMinItems(-1),
		"max shrink 1.5":      WithMaxShrink(1.5),
		"max shrink 0":        WithMaxShrink(0),
		"validate wrong type": WithValidate(func(*Snapshot[int, item], map[int]item) error { return nil }),
	} {
		if _, err := New("Items", rdb, l, testOpts(opt)...); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New error = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// A record over WithMaxRecordSize is not read (nor overwritten),
// and source data that would encode larger is not written.
func TestMaxRecordSize(t *testing.T) {
	mr, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l, WithMaxRecordSize(200))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	big := `{"data": {"a": {"name": "` + strings.Repeat("x", 300) + `"}}, "timestamp": 1.0}`
	mr.Set("resource:Items", big)
	err := c.Reload(t.Context())
	if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), "over the maximum 200") {
		t.Errorf("Reload of a %d-byte record: %v, want ErrRecordTooLarge", len(big), err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" || l.calls.Load() != 1 {
		t.Errorf("Get = %+v, loader calls %d: want the old snapshot, no refill", v, l.calls.Load())
	}
	if got := must(mr.Get("resource:Items")); got != big {
		t.Error("the large record was overwritten")
	}

	mr.Del("resource:Items")
	l.set(staticData(map[string]item{"a": {Name: strings.Repeat("y", 300)}}))
	if err := c.Refill(t.Context()); !errors.Is(err, ErrRecordTooLarge) || !errors.Is(err, ErrLoadFailed) {
		t.Errorf("Refill of large source data: %v, want ErrRecordTooLarge and ErrLoadFailed", err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" {
		t.Errorf("Get = %+v after refused data, want the old snapshot", v)
	}
}

// A load that outlives its lock must not replace the record that the next
// lock holder wrote meanwhile: it takes that record instead, and says so.
func TestLateLoadKeepsNewerRecord(t *testing.T) {
	mr, rdb := newMiniredis(t)
	logs := &logBuffer{}
	release := make(chan struct{})
	started := make(chan struct{})
	l := newCountingLoader[string, item](func(ctx context.Context) (map[string]item, error) {
		close(started)
		<-release
		return map[string]item{"a": {Name: "late"}}, nil
	})
	m := &recordedMetrics{}
	c := mustNew(t, "Items", rdb, l, WithLogger(logs.logger()), WithMetrics(m))
	done := make(chan error)
	go func() { done <- c.Refill(t.Context()) }()
	<-started
	// Meanwhile the lock expires, another process takes it and writes newer data.
	mr.Set("lock:Items", "another process's token")
	mr.Set("resource:Items", fmt.Sprintf(`{"data": {"a": {"name": "newer"}}, "timestamp": %.6f}`,
		float64(time.Now().UnixMicro())/1e6))
	close(release)
	if err := <-done; !errors.Is(err, ErrNotWritten) {
		t.Errorf("Refill = %v, want ErrNotWritten", err)
	}
	if got := must(mr.Get("resource:Items")); !strings.Contains(got, "newer") {
		t.Errorf("record = %s, want the newer one kept", got)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "newer" {
		t.Errorf("Get = %+v, want the newer record's data", v)
	}
	if !logs.has("WARN", "kiwicache.newer_record_kept") || m.get("Items", StatusSuccess) != 0 || m.get("Items", StatusNotWritten) != 1 {
		t.Errorf("want newer_record_kept logged, not_written counted, no success: %s", logs)
	}
}

// A load that runs out of time still keeps the record alive for the others:
// the EXPIRE runs after the caller's context has ended.
func TestTimedOutLoadKeepsRecordAlive(t *testing.T) {
	mr, rdb := newMiniredis(t)
	hang := make(chan struct{})
	defer close(hang)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", rdb, l)
	must(c.Snapshot(t.Context()))
	mr.SetTTL("resource:Items", 5*time.Second)
	l.set(func(context.Context) (map[string]item, error) { <-hang; return twoItems, nil })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Refill(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refill = %v, want the deadline", err)
	}
	if ttl := mr.TTL("resource:Items"); ttl != 10*DefaultReloadTTL {
		t.Errorf("record TTL after a timed-out load = %v, want it prolonged to %v", ttl, 10*DefaultReloadTTL)
	}
}
