package kiwicache

// Filling the record from the source, under the refill lock of PROTOCOL.md.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// refill fills the record from the source under the refill lock. Unless
// force, a record that another process wrote meanwhile is taken instead of
// loading; with force, only one written after refill began is.
//
// The returned record is the one to serve; it can come with an error (the
// source gave data but writing it to Redis failed).
func (c *Cache[K, V]) refill(ctx context.Context, force bool) (*Record[K, V], error) {
	var since time.Time // a record newer than this makes our load needless
	if force {
		since = time.Now()
	}
	token, held, err := c.lock.acquire(ctx)
	if err != nil {
		return nil, c.redisError(ctx, "kiwicache.refill_lock_failed", "SET NX", err)
	}
	if !held {
		c.log.WarnContext(ctx, "kiwicache.refill_locked", "key", c.key)
		var rec *Record[K, V]
		start := time.Now()
		rec, token, err = c.waitForRefill(ctx, since)
		observe(c.cfg.metrics, c.name, OpLockWait, start, err)
		if rec != nil || err != nil {
			return rec, err
		}
	}
	defer c.unlock(ctx, token)
	if !force {
		// The record was missing when we looked; a holder that has just
		// released the lock may have written it since.
		if rec, err := c.fetch(ctx); err != nil || rec != nil {
			return rec, err
		}
	}
	return c.loadAndSave(ctx)
}

// waitForRefill waits while another process holds the lock: it returns the
// record that process writes, or the lock once it is free.
func (c *Cache[K, V]) waitForRefill(ctx context.Context, since time.Time) (*Record[K, V], string, error) {
	for pause := nextLockPause(0, c.cfg.refillLockTTL); ; pause = nextLockPause(pause, c.cfg.refillLockTTL) {
		if err := sleep(ctx, pause); err != nil {
			return nil, "", err
		}
		rec, err := c.fetch(ctx)
		if err != nil {
			return nil, "", err
		}
		if rec != nil && rec.Timestamp.After(since) {
			return rec, "", nil
		}
		token, held, err := c.lock.acquire(ctx)
		if err != nil {
			return nil, "", c.redisError(ctx, "kiwicache.refill_lock_failed", "SET NX", err)
		}
		if held {
			return nil, token, nil
		}
	}
}

// cleanupContext is for the Redis commands that must run even when ctx has
// ended (a load that timed out): releasing the lock, keeping the record alive.
func (c *Cache[K, V]) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.refillLockTTL)
}

func (c *Cache[K, V]) unlock(ctx context.Context, token string) {
	// Release even when ctx has ended: the lock would block others for its ttl.
	ctx, cancel := c.cleanupContext(ctx)
	defer cancel()
	if err := c.lock.release(ctx, token); err != nil {
		c.redisError(ctx, "kiwicache.release_lock_failed", "EVALSHA", err)
	}
}

func (c *Cache[K, V]) loadAndSave(ctx context.Context) (*Record[K, V], error) {
	started := time.Now()
	data, err := callLoader(ctx, c.loader, c.cfg.allowEmpty)
	if err == nil {
		err = c.validate(ctx, data)
	}
	var rec *Record[K, V]
	var b []byte
	if err == nil {
		// The record holds microseconds; the snapshot must carry the same time.
		rec = &Record[K, V]{Data: data, Timestamp: time.Now().Truncate(time.Microsecond)}
		if b, err = c.encodeRecord(rec); err != nil && !errors.Is(err, ErrRecordTooLarge) {
			// Good data that the codec cannot write: served here, all the same.
			c.cfg.metrics.Count(c.name, StatusLoadError)
			c.log.ErrorContext(ctx, "kiwicache.save_failed", "key", c.key, "error", err)
			return rec, err
		}
	}
	if err != nil {
		c.cfg.metrics.Count(c.name, StatusLoadError)
		c.log.ErrorContext(ctx, "kiwicache.source_exception", "key", c.key, "error", err)
		cleanup, cancel := c.cleanupContext(ctx)
		defer cancel()
		c.keepRecordAlive(cleanup)
		return nil, err
	}
	written, err := c.writeIfNewer(ctx, b, started)
	if err != nil {
		return rec, err // served here, though no other process sees it
	}
	if !written {
		// Another process wrote a record after this load began (this one took
		// longer than the lock lives): its data is at least as new, keep it.
		c.log.WarnContext(ctx, "kiwicache.newer_record_kept", "key", c.key, "load_started", started)
		if newer, err := c.fetch(ctx); err != nil || newer != nil {
			return newer, err
		}
		return rec, nil
	}
	rec.size = len(b)
	c.cfg.metrics.Count(c.name, StatusSuccess)
	c.publishWrite(ctx, rec.Timestamp, len(b))
	return rec, nil
}

// encodeRecord encodes rec for Redis; an error wraps ErrLoadFailed.
func (c *Cache[K, V]) encodeRecord(rec *Record[K, V]) ([]byte, error) {
	b, err := c.encode(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoadFailed, err)
	}
	if c.cfg.maxRecordSize > 0 && len(b) > c.cfg.maxRecordSize {
		return nil, fmt.Errorf("%w: %w: %d bytes, over the maximum %d", ErrLoadFailed, ErrRecordTooLarge, len(b), c.cfg.maxRecordSize)
	}
	return b, nil
}

// recordTTL is the expiry a record is written with: none with WithNoExpiry.
func (c *Cache[K, V]) recordTTL() time.Duration {
	if c.cfg.noExpiry {
		return 0
	}
	return wholeSeconds(c.cfg.cacheTTL)
}

// writeIfNewerScript sets the record unless the one in Redis was written at
// or after ARGV[3] (float seconds): a load that outlived its lock must not
// replace what the next lock holder wrote.
var writeIfNewerScript = redis.NewScript(`
local tail = redis.call("GETRANGE", KEYS[1], -64, -1)
local ts = string.match(tail, '"timestamp"%s*:%s*([%d%.eE%+%-]+)%s*}%s*$')
if ts and tonumber(ts) and tonumber(ts) >= tonumber(ARGV[3]) then
	return 0
end
if tonumber(ARGV[2]) > 0 then
	redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[2])
else
	redis.call("SET", KEYS[1], ARGV[1])
end
return 1`)

func (c *Cache[K, V]) writeIfNewer(ctx context.Context, b []byte, since time.Time) (bool, error) {
	written, err := writeIfNewerScript.Run(ctx, c.rdb, []string{c.key},
		b, int64(c.recordTTL()/time.Second), string(appendUnixSeconds(nil, since))).Bool()
	if err != nil {
		return false, c.redisError(ctx, "kiwicache.save_failed", "SET", err)
	}
	return written, nil
}

// keepRecordAlive runs after a failed load: other processes keep the stale
// record for another CacheTTL, and a record that has expired is written back
// from this process's snapshot.
func (c *Cache[K, V]) keepRecordAlive(ctx context.Context) {
	exists, command, err := false, "EXPIRE", error(nil)
	if c.cfg.noExpiry {
		var n int64
		n, err = c.rdb.Exists(ctx, c.key).Result()
		exists, command = n > 0, "EXISTS"
	} else {
		exists, err = c.rdb.Expire(ctx, c.key, wholeSeconds(c.cfg.cacheTTL)).Result()
	}
	if err != nil {
		c.redisError(ctx, "kiwicache.prolong_expiration_failed", command, err)
		return
	}
	s := c.snap.Load()
	if exists || s == nil || (len(s.data) == 0 && !c.cfg.allowEmpty) {
		return
	}
	// Written with its own timestamp: the data is no newer for being
	// rewritten. NX: a record that another process wrote meanwhile is newer.
	b, err := c.encodeRecord(&Record[K, V]{Data: s.data, Timestamp: s.timestamp})
	if err != nil {
		c.log.ErrorContext(ctx, "kiwicache.save_failed", "key", c.key, "error", err)
		return
	}
	written, err := c.rdb.SetNX(ctx, c.key, b, c.recordTTL()).Result()
	if err != nil {
		c.redisError(ctx, "kiwicache.save_failed", "SET NX", err)
	} else if written {
		c.publishWrite(ctx, s.timestamp, len(b))
	}
}
