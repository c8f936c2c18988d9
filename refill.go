package kiwicache

// Filling the record from the source, under the refill lock (PROTOCOL.md):
// wait for the lock, load, validate, save. The Redis commands are recordStore's.

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// A refillStart is what a refill knew when it began: the record it saw (the
// one found missing or unusable, or there when Refill began) and, for
// Refill, when it began.
type refillStart struct {
	seen recordID
	// began, when set, is the moment after which a record must have been
	// read from its source for Refill to take it instead of loading: the
	// write-back of an older snapshot after another process's failed load
	// is not the fresh data that Refill asks for. It is compared with a
	// record's timestamp, another host's clock: a difference only costs a
	// load, it never decides whose record Redis keeps.
	began time.Time
}

// refill fills the record from the source under the lock, unless a record
// other than the one seen is written meanwhile (see refillStart): that is
// taken instead of loading.
func (c *Cache[K, V]) refill(ctx context.Context, start refillStart) (s *Snapshot[K, V], err error) {
	begun := time.Now()
	defer func() { observe(c.cfg.metrics, c.name, OpRefill, begun, err) }()
	if len(c.loading) > 0 { // an abandoned Load still runs: don't take the lock for nothing
		return nil, &Error{Cache: c.id, Op: "load", Key: c.record.key, Err: ErrLoaderBusy}
	}
	token, taken, err := c.record.lock(ctx)
	if err != nil {
		return nil, err
	}
	if !taken {
		return c.waitThenRefill(ctx, start)
	}
	defer c.unlock(ctx, token)
	// A holder may have written the record and released the lock since it
	// was seen.
	if s, err := c.takeChanged(ctx, start); s != nil || err != nil {
		return s, err
	}
	return c.loadAndSave(ctx, token, start.seen)
}

// refillForced loads the source whatever the record holds (Refill).
func (c *Cache[K, V]) refillForced(ctx context.Context) (*Snapshot[K, V], error) {
	begun := time.Now()
	seen, err := c.record.identify(ctx)
	if err != nil {
		observe(c.cfg.metrics, c.name, OpRefill, begun, err) // refill times the rest
		return nil, err
	}
	return c.refill(ctx, refillStart{seen: seen, began: begun})
}

// waitThenRefill waits while another process holds the lock: it returns the
// record that process writes (any but seen), or takes the lock once it is
// free and loads the source.
func (c *Cache[K, V]) waitThenRefill(ctx context.Context, start refillStart) (*Snapshot[K, V], error) {
	c.log.WarnContext(ctx, "kiwicache.refill_locked", "key", c.record.key)
	begun := time.Now()
	s, token, err := c.waitForLock(ctx, start)
	observe(c.cfg.metrics, c.name, OpLockWait, begun, err)
	if s != nil || err != nil {
		return s, err
	}
	defer c.unlock(ctx, token)
	return c.loadAndSave(ctx, token, start.seen)
}

func (c *Cache[K, V]) waitForLock(ctx context.Context, start refillStart) (*Snapshot[K, V], lockToken, error) {
	for pause := nextLockPause(0, c.cfg.refillLockTTL); ; pause = nextLockPause(pause, c.cfg.refillLockTTL) {
		if err := sleep(ctx, pause); err != nil {
			return nil, "", &Error{Cache: c.id, Op: "wait for lock", Key: c.record.lockKey, Err: err}
		}
		if s, err := c.takeChanged(ctx, start); s != nil || err != nil {
			return s, "", err
		}
		token, taken, err := c.record.lock(ctx)
		if err != nil || taken {
			return nil, token, err
		}
	}
}

// takeChanged returns the record in Redis if it is not the one seen at the
// start, can be served, and is recent enough (see refillStart); nil if not.
func (c *Cache[K, V]) takeChanged(ctx context.Context, start refillStart) (*Snapshot[K, V], error) {
	f, err := c.record.fetch(ctx, start.seen)
	if err != nil || f.b == nil || f.id == start.seen {
		return nil, err
	}
	s, err := c.decode(f.b, f.id)
	if err != nil || s.Len() == 0 && !c.cfg.allowEmpty || !start.began.IsZero() && !s.timestamp.After(start.began) {
		return nil, nil
	}
	return s, nil
}

// firstLockPause is the first wait of a process that finds the lock taken;
// each next wait doubles, up to the lock's ttl (PROTOCOL.md, Refill 2).
const firstLockPause = time.Second

func nextLockPause(pause, ttl time.Duration) time.Duration {
	if pause == 0 {
		return min(firstLockPause, ttl)
	}
	return min(2*pause, ttl)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// cleanupContext is for the Redis commands that must run even when ctx has
// ended (a load that timed out): releasing the lock, keeping the record alive.
func (c *Cache[K, V]) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.refillLockTTL)
}

func (c *Cache[K, V]) unlock(ctx context.Context, token lockToken) {
	// Release even when ctx has ended: the lock would block others for its ttl.
	ctx, cancel := c.cleanupContext(ctx)
	defer cancel()
	c.record.unlock(ctx, token)
}

// loadAndSave loads the source under the lock token and writes the record,
// unless the lock was lost and the record is no longer seen (see
// recordStore.write). It returns the snapshot to serve: the record written,
// decoded as every other process decodes it.
func (c *Cache[K, V]) loadAndSave(ctx context.Context, token lockToken, seen recordID) (*Snapshot[K, V], error) {
	defer c.watchLock(ctx, token)()
	data, err := c.load(ctx)
	if err != nil {
		c.loadFailed(ctx, err)
		return nil, err
	}
	b, s, err := c.encode(data)
	if err != nil {
		c.loadFailed(ctx, err)
		return nil, err
	}
	if s.Len() != len(data) {
		err = &Error{Cache: c.id, Op: "encode", Key: c.record.key, Err: withKind(ErrLoadFailed, fmt.Errorf(
			"%d of the source's %d keys merge with others when written (invalid UTF-8, or text forms that collide)",
			len(data)-s.Len(), len(data)))}
		c.loadFailed(ctx, err)
		return nil, err
	}
	return c.save(ctx, b, s, token, seen)
}

// load calls the Loader and applies the guards to what it returns.
func (c *Cache[K, V]) load(ctx context.Context) (map[K]V, error) {
	data, err := c.callLoader(ctx)
	if err == nil {
		err = c.validate(ctx, data)
	}
	if err != nil {
		return nil, &Error{Cache: c.id, Op: "load", Key: c.record.key, Err: err}
	}
	return data, nil
}

// encode makes the record of data, and the snapshot that other processes
// will decode from it: served here too, so that every process serves the same
// values for the same record (an int from the Loader is a Number in an any
// after a round trip, a field tagged json:"-" is gone).
func (c *Cache[K, V]) encode(data map[K]V) ([]byte, *Snapshot[K, V], error) {
	// The record holds microseconds; the snapshot must carry the same time.
	rec := Record[K, V]{Data: data, Timestamp: time.Now().Truncate(time.Microsecond)}
	b, err := c.encodeRecord(rec)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.decode(b, idOf(b))
	if err != nil {
		return nil, nil, &Error{Cache: c.id, Op: "encode", Key: c.record.key,
			Err: withKind(ErrLoadFailed, fmt.Errorf("the codec cannot read back what it wrote: %w", err))}
	}
	return b, s, nil
}

// encodeRecord encodes rec; an error is an *Error wrapping ErrLoadFailed. A
// Codec that panics is an error, not a crash.
func (c *Cache[K, V]) encodeRecord(rec Record[K, V]) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			stack := debug.Stack()
			c.log.Error("kiwicache.codec_panicked", "key", c.record.key, "panic", p, "stack", string(stack))
			err = &Error{Cache: c.id, Op: "encode", Key: c.record.key, Err: withKind(ErrLoadFailed, &PanicError{Value: p, Stack: stack})}
		}
	}()
	b, err = c.codec.Encode(rec)
	if err == nil && c.cfg.maxRecordSize > 0 && len(b) > c.cfg.maxRecordSize {
		err = fmt.Errorf("%w: %d bytes, over the maximum %d", ErrRecordTooLarge, len(b), c.cfg.maxRecordSize)
	}
	if err != nil {
		return nil, &Error{Cache: c.id, Op: "encode", Key: c.record.key, Err: withKind(ErrLoadFailed, err)}
	}
	return b, nil
}

// save writes the record b (served as s) and counts the outcome.
func (c *Cache[K, V]) save(ctx context.Context, b []byte, s *Snapshot[K, V], token lockToken, seen recordID) (*Snapshot[K, V], error) {
	written, err := c.record.write(ctx, b, s.timestamp, token, seen)
	if err != nil {
		return s, err // good data: served here, though no other process sees it yet
	}
	if written {
		c.cfg.metrics.Count(c.name, StatusSuccess)
		return s, nil
	}
	// This load outlived its lock, and the record has been written since it
	// began: by a process that took the lock later and loaded later (newer
	// data), or by the write-back of a snapshot after a failed load. Keep it:
	// without comparing clocks the two cannot be told apart.
	c.cfg.metrics.Count(c.name, StatusNotWritten)
	err = &Error{Cache: c.id, Op: "write script", Key: c.record.key, Err: fmt.Errorf(
		"%w: this load lost the lock %s, and the record was written by another process since the load began",
		ErrNotWritten, c.record.lockKey)}
	c.log.WarnContext(ctx, "kiwicache.newer_record_kept", "key", c.record.key, "error", err)
	newer, ferr := c.takeChanged(ctx, refillStart{seen: seen})
	if ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	return newer, err
}

// loadFailed counts and logs a failed load, and keeps the record alive: other
// processes keep the stale record for another CacheTTL, and a record that has
// expired is written back from this process's snapshot.
func (c *Cache[K, V]) loadFailed(ctx context.Context, err error) {
	c.cfg.metrics.Count(c.name, StatusLoadError)
	attrs := []any{"key", c.record.key, "error", err}
	if p := (*PanicError)(nil); errors.As(err, &p) {
		attrs = append(attrs, "stack", string(p.Stack))
	}
	c.log.ErrorContext(ctx, "kiwicache.source_exception", attrs...)

	ctx, cancel := c.cleanupContext(ctx)
	defer cancel()
	exists, perr := c.record.prolong(ctx)
	s := c.snap.Load()
	if perr != nil || exists || s == nil || (s.Len() == 0 && !c.cfg.allowEmpty) {
		return
	}
	// Written with its own timestamp: the data is no newer for being rewritten.
	b, eerr := c.encodeRecord(Record[K, V]{Data: s.items.toMap(), Timestamp: s.timestamp})
	if eerr != nil {
		c.log.ErrorContext(ctx, "kiwicache.save_failed", "key", c.record.key, "error", eerr)
		return
	}
	c.record.restore(ctx, b, s.timestamp)
}

// watchLock extends the lock every third of its TTL while a load runs, so
// that a slow but live holder keeps it, for at most maxLockHold; a holder
// that dies, or whose load hangs past that, loses it after RefillLockTTL. A
// failed extension is tried again at the next tick: only a lock known to be
// another's ends the watch. The returned func stops it.
func (c *Cache[K, V]) watchLock(ctx context.Context, token lockToken) (stop func()) {
	ctx, cancel := context.WithTimeout(ctx, c.maxLockHold())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(c.cfg.refillLockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if held, err := c.record.extendLock(ctx, token); err == nil && !held {
				c.log.WarnContext(ctx, "kiwicache.refill_lock_lost", "key", c.record.lockKey)
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// maxLockHold bounds how long the watchdog keeps the lock for one load:
// WithLoadTimeout when set, else DefaultCacheTTLFactor x RefillLockTTL, so
// that a load that hangs with a ctx that never ends (a cron job's
// context.Background()) cannot hold the lock for ever.
func (c *Cache[K, V]) maxLockHold() time.Duration {
	if c.cfg.loadTimeout > 0 {
		return c.cfg.loadTimeout
	}
	return DefaultCacheTTLFactor * c.cfg.refillLockTTL
}
