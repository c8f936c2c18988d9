package kiwicache

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// stampedRecord is a valid record of exactly n bytes with timestamp ts (as
// written by a refill at ts).
func stampedRecord(n int, ts string) string {
	shell := `{"data": {"a": {"name": ""}}, "timestamp": ` + ts + `}`
	return `{"data": {"a": {"name": "` + strings.Repeat("x", n-len(shell)) + `"}}, "timestamp": ` + ts + `}`
}

// Reload reads the record whole in one round trip, a GETRANGE of at most the
// maximum size plus one byte, whatever its size; what that cannot tell apart
// (no record, another type) the fetch script tells.
func TestReloadIsOneRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		max    int
		hash   bool // the key holds a hash
		want   string
		errIs  error
		served int // the record size served after the Reload
	}{
		{name: "small", size: 200, want: "getrange", served: 200},
		{name: "larger than a script returns", size: 100 << 10, want: "getrange", served: 100 << 10},
		{name: "at the maximum", size: 1000, max: 1000, want: "getrange", served: 1000},
		{name: "over the maximum", size: 1001, max: 1000, want: "getrange", errIs: ErrRecordTooLarge, served: 200},
		{name: "another type", hash: true, want: "getrange evalsha_ro", errIs: ErrMalformedRecord, served: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", stampedRecord(200, "1764087331.5"))
			var opts []Option
			if tc.max > 0 {
				opts = append(opts, WithMaxRecordSize(tc.max))
			}
			// The Cache serves data: an unusable record is not replaced within
			// a CacheTTL of starting.
			c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)), opts...)
			if err := c.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			c.reloadWithAttempts(t.Context(), checkTail) // loads the script into Redis
			c.mu.Lock()
			c.unusableReplacedAt = time.Now()
			c.mu.Unlock()
			cmds := &commandLog{}
			rdb.AddHook(cmds)
			if tc.hash {
				mr.Del("resource:Items")
				mr.HSet("resource:Items", "data", "{}")
			} else {
				mr.Set("resource:Items", stampedRecord(tc.size, "1764087391.5"))
			}
			err := c.Reload(t.Context())
			if got := strings.Join(cmds.take(), " "); got != tc.want {
				t.Errorf("commands %q, want %q", got, tc.want)
			}
			var e *Error
			if tc.errIs != nil && (!errors.Is(err, tc.errIs) || !errors.As(err, &e) || e.Key != "resource:Items") {
				t.Errorf("Reload = %v, want an *Error on resource:Items wrapping %v", err, tc.errIs)
			}
			if tc.errIs == nil && err != nil {
				t.Errorf("Reload = %v", err)
			}
			if got := c.Health().RecordSize; got != tc.served {
				t.Errorf("record size served %d, want %d", got, tc.served)
			}
		})
	}
}

// After a notification of a write, a record of up to notifiedReadLimit is
// read in one round trip; one that is still the served record (the write was
// an EXPIRE) is not decoded again. A larger record, and every record after a
// resubscription (a fleet's worth of reads after a failover), is looked at
// first: its length and tail.
func TestNotifiedReloadReadsOnce(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Items", stampedRecord(notifiedReadLimit, "1764087331.5"))
	c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)), WithPushSpread(0))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	cmds := &commandLog{}
	rdb.AddHook(cmds)

	mr.Set("resource:Items", stampedRecord(notifiedReadLimit, "1764087391.5"))
	c.notified(time.Now())
	if got := strings.Join(waitNotifiedReload(t, c, cmds), " "); got != "getrange" {
		t.Errorf("a new record of %d bytes, notified: commands %q, want getrange", notifiedReadLimit, got)
	}
	if ts := c.Health().RecordTime; ts.Unix() != 1764087391 {
		t.Errorf("served the record of %v after the notification, want the new one", ts)
	}

	loaded := c.Health().LoadedAt
	mr.SetTTL("resource:Items", time.Hour)
	c.notified(time.Now())
	if got := strings.Join(waitNotifiedReload(t, c, cmds), " "); got != "getrange" {
		t.Errorf("an EXPIRE, notified: commands %q, want getrange", got)
	}
	if h := c.Health(); !h.LoadedAt.Equal(loaded) {
		t.Errorf("the served record was decoded again after an EXPIRE: LoadedAt %v, was %v", h.LoadedAt, loaded)
	}

	mr.Set("resource:Items", stampedRecord(200, "1764087451.5"))
	c.resubscribed()
	if got := waitNotifiedReload(t, c, cmds); len(got) == 0 || got[0] != "evalsha_ro" {
		t.Errorf("after a resubscription: commands %q, want the fetch script first", got)
	}

	mr.Set("resource:Items", stampedRecord(notifiedReadLimit+1, "1764087511.5"))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	cmds.take()
	mr.Set("resource:Items", stampedRecord(notifiedReadLimit+1, "1764087571.5"))
	c.notified(time.Now())
	if got := strings.Join(waitNotifiedReload(t, c, cmds), " "); got != "evalsha_ro getrange" {
		t.Errorf("a new record over %d bytes, notified: commands %q, want the fetch script, then getrange", notifiedReadLimit, got)
	}
	if ts := c.Health().RecordTime; ts.Unix() != 1764087571 {
		t.Errorf("served the record of %v after the notification, want the new one", ts)
	}
}

// A key of another type at the record's name is an unusable record: a Cache
// that serves data replaces it at most once per CacheTTL (two deploys of
// different schemas must not take turns loading the source), and says why
// otherwise.
// With WithNoExpiry, the period is what the CacheTTL would be by default.
func TestWrongTypeReplacedOncePerCacheTTL(t *testing.T) {
	for name, opts := range map[string][]Option{"CacheTTL": nil, "WithNoExpiry": {WithNoExpiry()}} {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", stampedRecord(200, "1764087331.5"))
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, opts...)
			if err := c.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				mr.Del("resource:Items")
				mr.HSet("resource:Items", "data", "{}")
				err := c.reloadWithAttempts(t.Context(), checkTail)
				if got := l.calls.Load(); got != 1 {
					t.Errorf("hash %d at the record's name: %d loads, want 1", i+1, got)
				}
				if i == 1 && !errors.Is(err, ErrMalformedRecord) {
					t.Errorf("hash %d at the record's name, within a CacheTTL of replacing one: %v, want ErrMalformedRecord", i+1, err)
				}
			}
		})
	}
}
