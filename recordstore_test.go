package kiwicache

// The record's Redis side at its edges: the maximum size on both sides of
// it, and what a codec that does not stamp its records' tails falls back to.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
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
	}{{len(record), false}, {len(record) + 1, false}, {len(record) - 1, true}, {1, true}} {
		t.Run(fmt.Sprintf("max %d for %d bytes", tc.max, len(record)), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", record)
			logs := &logBuffer{}
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithMaxRecordSize(tc.max), WithLogger(logs.logger()))
			err := c.Reload(t.Context())
			if got := errors.Is(err, ErrRecordTooLarge); got != tc.refused {
				t.Errorf("Reload = %v; refused %v, want %v", err, got, tc.refused)
			}
			if logs.has("ERROR", "kiwicache.record_too_large") != tc.refused {
				t.Errorf("kiwicache.record_too_large logged: %v, want %v:\n%s", !tc.refused, tc.refused, logs)
			}
			// What was read is never a part of the record, taken for a
			// malformed one.
			if strings.Contains(logs.String(), "kiwicache.malformed_cache_data") {
				t.Errorf("a record over the maximum was read and found malformed:\n%s", logs)
			}
			// A periodic reload finds the served record unchanged, whatever its size.
			if err := c.reloadWithAttempts(t.Context(), checkTail); !tc.refused && err != nil {
				t.Errorf("periodic reload of the unchanged record = %v", err)
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
// byte over is a load error, and so is any record under the smallest
// maximum, 1 byte.
func TestMaxRecordSizeBoundaryOnWrite(t *testing.T) {
	const size = 300
	for _, tc := range []struct {
		max     int
		refused bool
	}{{size, false}, {size - 1, true}, {1, true}} {
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

// A record's identity is its length and its last 64 bytes, as PROTOCOL.md
// says: a change in place within the last 64 bytes is seen by the periodic
// reload, one just before them is not (until Reload, or a new write).
func TestIdentityIsLengthAndLast64Bytes(t *testing.T) {
	record := `{"data": {"a": {"name": "` + strings.Repeat("x", 100) + `"}}, "timestamp": 1764087331.5}`
	for _, tc := range []struct {
		fromEnd int
		seen    bool
	}{{64, true}, {65, false}} {
		t.Run(fmt.Sprint(tc.fromEnd, " bytes from the end"), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", record)
			c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)))
			must(c.Snapshot(t.Context()))
			changed := []byte(record)
			changed[len(changed)-tc.fromEnd] = 'y'
			mr.Set("resource:Items", string(changed))
			if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
				t.Fatal(err)
			}
			if v := must(c.Get(t.Context(), "a")); strings.Contains(v.Name, "y") != tc.seen {
				t.Errorf("after a periodic reload, the change is served: %v, want %v", !tc.seen, tc.seen)
			}
		})
	}
}

// noReadOnlyScripts answers EVALSHA_RO as Redis 6 does, and counts the tries.
type noReadOnlyScripts struct{ tries int }

func (h *noReadOnlyScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *noReadOnlyScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha_ro" {
			h.tries++
			cmd.SetErr(errors.New("ERR unknown command 'evalsha_ro', with args beginning with: "))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *noReadOnlyScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// On a server without EVALSHA_RO (Redis 6), the read-only script is tried
// once; every later read sends EVALSHA straight away.
func TestServerWithoutReadOnlyScripts(t *testing.T) {
	mr, rdb := newMiniredis(t)
	mr.Set("resource:Tiny", tinyRecord)
	h := &noReadOnlyScripts{}
	rdb.AddHook(h)
	c := mustNew(t, "Tiny", rdb, newCountingLoader[string, item](staticData(twoItems)))
	for range 3 {
		if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
			t.Fatal(err)
		}
	}
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-0" || h.tries != 1 {
		t.Errorf("Get = %+v after %d EVALSHA_RO tries, want item-0 after 1", v, h.tries)
	}
}

// A lock that cannot be released is logged (kiwicache.release_lock_failed)
// and counted; the refill itself succeeded, and says so.
func TestUnlockFailureIsReported(t *testing.T) {
	mr, rdb := newMiniredis(t)
	m, logs := &recordedMetrics{}, &logBuffer{}
	rdb.AddHook(&failFirst{match: isScript(unlockScript)})
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m), WithLogger(logs.logger()))
	if err := c.Refill(t.Context()); err != nil {
		t.Errorf("Refill = %v, want nil: the record was written", err)
	}
	if !logs.has("ERROR", "kiwicache.release_lock_failed") || m.get("Items", StatusRedisError) != 1 {
		t.Errorf("want release_lock_failed logged and redis_error counted:\n%s", logs)
	}
	if !mr.Exists("lock:Items") {
		t.Error("the lock is gone, though its release failed")
	}
}

// After a failed load, the record's TTL is renewed with EXPIRE (or, with no
// expiry, its presence checked with EXISTS); a record that is there is not
// written again.
func TestFailedLoadRenewsAndWritesNothingMore(t *testing.T) {
	for name, opts := range map[string][]Option{"cache TTL": nil, "no expiry": {WithNoExpiry()}} {
		t.Run(name, func(t *testing.T) {
			_, rdb := newMiniredis(t)
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, opts...)
			must(c.Snapshot(t.Context()))
			l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
			renew := map[string]string{"cache TTL": "expire", "no expiry": "exists"}[name]
			renewals, writes := &countCommands{match: isCommand(renew, "resource:Items")}, &countCommands{match: isCommand("set", "resource:Items")}
			rdb.AddHook(renewals)
			rdb.AddHook(writes)
			c.Refill(t.Context())
			if renewals.n.Load() != 1 || writes.n.Load() != 0 {
				t.Errorf("a failed load with the record there sent %d %s and %d SET of the record; want 1 and 0",
					renewals.n.Load(), renew, writes.n.Load())
			}
		})
	}
}

// countCommands counts the commands that match.
type countCommands struct {
	match func(redis.Cmder) bool
	n     atomic.Int64
}

func (h *countCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// When renewing the record after a failed load fails, that is logged
// (kiwicache.prolong_expiration_failed) and counted, and nothing more is
// sent: no write-back over a record whose state is unknown.
func TestFailedRenewalIsReported(t *testing.T) {
	for name, tc := range map[string]struct {
		opts []Option
		cmd  string
	}{"cache TTL": {nil, "expire"}, "no expiry": {[]Option{WithNoExpiry()}, "exists"}} {
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			m, logs := &recordedMetrics{}, &logBuffer{}
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, append(tc.opts, WithMetrics(m), WithLogger(logs.logger()))...)
			must(c.Snapshot(t.Context()))
			mr.Del("resource:Items")
			rdb.AddHook(&failFirst{match: isCommand(tc.cmd, "resource:Items")})
			l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
			c.Refill(t.Context())
			if !logs.has("ERROR", "kiwicache.prolong_expiration_failed") || m.get("Items", StatusRedisError) != 1 {
				t.Errorf("want prolong_expiration_failed logged and redis_error counted once:\n%s", logs)
			}
			if mr.Exists("resource:Items") {
				t.Error("the record was written back though its state was unknown")
			}
		})
	}
}

// A write-back after a failed load that succeeds is no error; one that
// fails is logged (kiwicache.save_failed) and counted.
func TestWriteBackOutcomeIsReported(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(fmt.Sprint("fails: ", fails), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			m, logs := &recordedMetrics{}, &logBuffer{}
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l, WithMetrics(m), WithLogger(logs.logger()))
			must(c.Snapshot(t.Context()))
			mr.Del("resource:Items")
			if fails {
				rdb.AddHook(&failFirst{match: isCommand("set", "resource:Items")})
			}
			l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
			c.Refill(t.Context())
			if got := logs.has("ERROR", "kiwicache.save_failed"); got != fails {
				t.Errorf("save_failed logged: %v, want %v:\n%s", got, fails, logs)
			}
			if n := m.get("Items", StatusRedisError); n != map[bool]int{false: 0, true: 1}[fails] {
				t.Errorf("redis_error counted %d times", n)
			}
			if mr.Exists("resource:Items") == fails {
				t.Errorf("record there: %v, want %v", !fails, fails)
			}
		})
	}
}

// A Redis command cut by the end of the caller's ctx fails the refill right
// there: the error names the command and wraps the ctx's cause and the
// command's error; it is not a Redis failure.
func TestCommandCutByContextFailsThere(t *testing.T) {
	_, rdb := newMiniredis(t)
	m := &recordedMetrics{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rdb.AddHook(&cancelThenFail{match: isScript(fetchScript), cancel: cancel})
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m))
	err := c.Refill(ctx)
	var e *Error
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrRedis) || !errors.As(err, &e) || e.Op != "fetch script" ||
		!strings.Contains(err.Error(), "i/o timeout") {
		t.Errorf("Refill = %v, want the fetch script's error wrapping context.Canceled, not ErrRedis", err)
	}
	if n := m.get("Items", StatusRedisError); n != 0 {
		t.Errorf("redis_error counted %d times for the caller's ctx", n)
	}
}

// A command that fails with the ctx's own error reads as that error, once;
// one that fails as the ctx's deadline passes, before the ctx marks itself
// done, is the deadline too.
func TestCommandAtContextEndIsTheContextsError(t *testing.T) {
	_, rdb := newMiniredis(t)
	m := &recordedMetrics{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hook := &cancelThenFail{match: isScript(fetchScript), cancel: cancel, err: context.Canceled}
	rdb.AddHook(hook)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m))
	if err := c.Refill(ctx); err == nil || err.Error() != "kiwicache: Items: fetch script resource:Items: context canceled" {
		t.Errorf("Refill = %v, want the ctx's error once", err)
	}

	hook.err, hook.cancel, hook.done = errors.New("read tcp: i/o timeout"), func() {}, false
	err := c.Refill(pastDeadline{t.Context()})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRedis) || strings.Contains(err.Error(), "%!") {
		t.Errorf("Refill at its deadline = %v, want the deadline wrapping the command's error", err)
	}
	if n := m.get("Items", StatusRedisError); n != 0 {
		t.Errorf("redis_error counted %d times for the caller's ctx", n)
	}
}

// pastDeadline is a ctx whose deadline has passed while its timer has yet to
// mark it done (as happens for a moment under load).
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// cancelThenFail ends the caller's ctx as the first matching command runs,
// and fails the command as a timed-out read would.
type cancelThenFail struct {
	match  func(redis.Cmder) bool
	cancel context.CancelFunc
	err    error // "read tcp: i/o timeout" when nil
	done   bool
}

func (h *cancelThenFail) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cancelThenFail) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !h.done && h.match(cmd) {
			h.done = true
			h.cancel()
			err := h.err
			if err == nil {
				err = errors.New("read tcp: i/o timeout")
			}
			cmd.SetErr(err)
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *cancelThenFail) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// recordOfSize is a valid record of exactly n bytes.
func recordOfSize(n int) string {
	const shell = `{"data": {"a": {"name": ""}}, "timestamp": 1764087331.5}`
	return `{"data": {"a": {"name": "` + strings.Repeat("x", n-len(shell)) + `"}}, "timestamp": 1764087331.5}`
}

// At a periodic reload, a changed record of up to 16 KiB comes back in the
// fetch script's own reply; a larger one is read with a GETRANGE after it (a
// script's reply costs Redis several times a GET's CPU). With
// WithMaxRecordSize below that, the limit is the maximum, and a record over
// it is not read at all.
func TestFetchReadsLargeRecordsWithGetrange(t *testing.T) {
	for _, tc := range []struct {
		size, max int
		want      string
	}{
		{16 << 10, 0, "evalsha_ro"},
		{16<<10 + 1, 0, "evalsha_ro getrange"},
		{1000, 1000, "evalsha_ro"},
		{1000, 999, "evalsha_ro"}, // over the maximum
		{1000, 1, "evalsha_ro"},
	} {
		t.Run(fmt.Sprint(tc.size, " bytes, max ", tc.max), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", tinyRecord)
			var opts []Option
			if tc.max > 0 {
				opts = append(opts, WithMaxRecordSize(tc.max))
			}
			c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)), opts...)
			c.reloadWithAttempts(t.Context(), checkTail) // loads the script into Redis
			cmds := &commandLog{}
			rdb.AddHook(cmds)
			mr.Set("resource:Items", recordOfSize(tc.size))
			err := c.reloadWithAttempts(t.Context(), checkTail)
			if got := strings.Join(cmds.take(), " "); got != tc.want {
				t.Errorf("commands %q, want %q", got, tc.want)
			}
			if tc.size > tc.max && tc.max > 0 {
				if !errors.Is(err, ErrRecordTooLarge) {
					t.Errorf("Reload = %v, want ErrRecordTooLarge", err)
				}
			} else if err != nil || c.Health().RecordSize != tc.size {
				t.Errorf("Reload = %v, record size served %d, want %d", err, c.Health().RecordSize, tc.size)
			}
		})
	}
}

// On the GETRANGE path (records over 16 KiB) the size checked is the size of
// what was read: a record of exactly the maximum is served, one byte more is
// refused, and so is one that grew past the maximum between the script and
// the GETRANGE; one deleted in between is found missing (not malformed), and
// refilled.
func TestGetrangeReadsWhatItChecks(t *testing.T) {
	const size = 20000
	for _, tc := range []struct {
		name      string
		max       int
		meanwhile func(mr *miniredis.Miniredis)
		want      string // "served", "too large" or "refilled"
	}{
		{"exactly the maximum", size, nil, "served"},
		{"one byte over", size - 1, nil, "too large"},
		{"grew meanwhile", size, func(mr *miniredis.Miniredis) { mr.Set("resource:Items", recordOfSize(size+100)) }, "too large"},
		{"deleted meanwhile", size, func(mr *miniredis.Miniredis) { mr.Del("resource:Items") }, "refilled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", recordOfSize(size))
			if tc.meanwhile != nil {
				rdb.AddHook(&atCommand{before: true, match: isCommand("getrange", "resource:Items"), then: func() { tc.meanwhile(mr) }})
			}
			l := newCountingLoader[string, item](staticData(twoItems))
			logs := &logBuffer{}
			c := mustNew(t, "Items", rdb, l, WithMaxRecordSize(tc.max), WithLogger(logs.logger()))
			err := c.Reload(t.Context())
			if logs.has("WARN", "kiwicache.malformed_cache_data") {
				t.Errorf("a record was found malformed:\n%s", logs)
			}
			switch tc.want {
			case "served":
				if err != nil || c.Health().RecordSize != size {
					t.Errorf("Reload = %v, served %d bytes; want the %d-byte record", err, c.Health().RecordSize, size)
				}
			case "too large":
				if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", tc.max+1)) || c.Health().HasData {
					t.Errorf("Reload = %v, want ErrRecordTooLarge for %d bytes and nothing served", err, tc.max+1)
				}
			case "refilled":
				if err != nil || l.calls.Load() != 1 {
					t.Errorf("Reload = %v after %d source loads, want the missing record refilled", err, l.calls.Load())
				}
			}
		})
	}
}
