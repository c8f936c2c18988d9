package kiwicache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A recordStore owns the Redis side of one cache: the record
// resource:NAME[:SUFFIX] and its refill lock lock:NAME[:SUFFIX] (PROTOCOL.md).
// Every command on either key is sent from here, and every Redis failure is
// counted, logged and turned into an *Error here.
type recordStore struct {
	rdb     redis.UniversalClient
	name    string // NAME, for metrics (as the Python library counts)
	cache   string // NAME[:SUFFIX], for errors
	key     string // resource:NAME[:SUFFIX]
	lockKey string // lock:NAME[:SUFFIX]
	ttl     time.Duration
	lockTTL time.Duration
	maxSize int // 0: no limit
	// stamped: every write of the codec changes the record's tail (the JSON
	// codec ends each record with its timestamp), so a recordID tells records
	// apart. Without it, nothing can be told from the tail: every reload reads
	// the whole record, and a load that lost its lock writes only where there
	// was no record.
	stamped bool
	// cluster: the record and the lock live in different hash slots, so no
	// script may take both (see write).
	cluster bool
	metrics Metrics
	log     *slog.Logger
	// noReadOnlyScripts: the server has no EVALSHA_RO (Redis before 7).
	noReadOnlyScripts atomic.Bool
	// plainPublish: a cluster refused SPUBLISH (Redis before 7).
	plainPublish atomic.Bool
}

// tailLen is how much of a record's end a recordID keeps: more than
// `, "timestamp": 1764087331.412345}` with room for whitespace.
const tailLen = 64

// A recordID tells one record from another without reading it: its length
// and its last tailLen bytes. Every writer stamps a new timestamp at the end
// of the JSON record (the Python library and this one), so two writes differ
// in their tails. A record changed in place with the same length and tail
// (SETRANGE, a hand-made writer that keeps the timestamp) looks unchanged
// until a full read (Cache.Reload) or a new write.
type recordID struct {
	size int64 // of the string; noRecord or wrongType when there is none
	tail string
}

const (
	noRecord  = -1 // the key does not exist
	wrongType = -2 // the key holds another Redis type (a hash, a list)
	unknownID = -3 // matches nothing: forces a full read
)

func idOf(b []byte) recordID {
	return recordID{size: int64(len(b)), tail: string(b[max(0, len(b)-tailLen):])}
}

// A fetchResult is what fetch found.
type fetchResult struct {
	id recordID
	// b is the record, read only when it is a string that is not the known
	// record and not over the maximum size.
	b []byte
}

func (f fetchResult) unchanged(known recordID) bool {
	return f.b == nil && f.id == known && known.size >= 0
}

// fetchScript identifies the record, and returns it too when it is not the
// known one and at most ARGV[5] bytes, all in one round trip.
// ARGV: known size, known tail, tail length, inline limit (0: identify only).
// Returns {size} for none, a wrong type or the known record, {size, tail} for a
// record over the inline limit, {size, tail, record} otherwise.
var fetchScript = redis.NewScript(`
local t = redis.call("TYPE", KEYS[1])["ok"]
if t == "none" then return {-1} end
if t ~= "string" then return {-2} end
local n = redis.call("STRLEN", KEYS[1])
local tail = redis.call("GETRANGE", KEYS[1], -tonumber(ARGV[3]), -1)
if n == tonumber(ARGV[1]) and tail == ARGV[2] then return {n} end
if n > tonumber(ARGV[4]) then return {n, tail} end
return {n, tail, redis.call("GET", KEYS[1])}`)

// inlineLimit is the largest record that fetchScript returns itself. A
// script's reply costs Redis several times the CPU of a GET's (36 ms against
// 4.7 ms for 10 MB on redis-server 7.0: 3.6 against 0.5 µs a kilobyte),
// which a fleet pays once per process; the second round trip that a GETRANGE
// costs (60-80 µs on loopback) is worth it above about 25 KB.
const inlineLimit = 16 << 10

// fetch reads the record unless it is still known: a small record in the
// script's round trip, a larger one with a GETRANGE of at most the maximum
// size plus one byte, so that the size checked is the size of what was read.
// A record over the maximum size is an error wrapping ErrRecordTooLarge.
func (r *recordStore) fetch(ctx context.Context, known recordID) (fetchResult, error) {
	limit := inlineLimit
	if r.maxSize > 0 {
		limit = min(limit, r.maxSize)
	}
	f, err := r.run(ctx, known, limit)
	if err != nil || f.b != nil || f.id.size < 0 || f.unchanged(known) {
		return f, err
	}
	if r.maxSize > 0 && f.id.size > int64(r.maxSize) {
		return f, r.tooLarge(ctx, "fetch script", f.id.size)
	}
	return r.read(ctx, known)
}

// read reads the whole record in one round trip, without a look at its
// length and tail first: for a reload that expects another record (after a
// notification of a write) or wants it whole (Cache.Reload), or for fetch
// once its script found another record. A record whose id is known is not
// returned: a notification of a write may have been one of an EXPIRE.
// Nothing, another type or an empty string (also a record replaced by them
// since fetch's script ran) cost fetch's script too, which tells them apart.
func (r *recordStore) read(ctx context.Context, known recordID) (fetchResult, error) {
	b, err := r.getRange(ctx)
	switch {
	case err != nil:
		return fetchResult{}, err
	case len(b) == 0:
		return r.fetch(ctx, known)
	}
	id := idOf(b)
	if r.stamped && id == known {
		return fetchResult{id: id}, nil
	}
	return fetchResult{id: id, b: b}, nil
}

// getRange reads the record, at most the maximum size plus one byte, so
// that the size checked is the size of what was read, and a record over it
// is an error without being read whole. No record and a key of another type
// read as nothing.
func (r *recordStore) getRange(ctx context.Context) ([]byte, error) {
	end := int64(-1)
	if r.maxSize > 0 {
		end = int64(r.maxSize) // bytes 0..maxSize: one more than allowed
	}
	b, err := r.rdb.GetRange(ctx, r.key, 0, end).Bytes()
	switch {
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return nil, nil
	case err != nil:
		return nil, r.redisError(ctx, "kiwicache.load_failed", "GETRANGE", r.key, err)
	case r.maxSize > 0 && len(b) > r.maxSize: // over it, or grown past it since the script looked
		return nil, r.tooLarge(ctx, "GETRANGE", int64(len(b)))
	}
	return b, nil
}

// tooLarge is the error of a record of size bytes or more, over the maximum.
func (r *recordStore) tooLarge(ctx context.Context, op string, size int64) error {
	err := &Error{Cache: r.cache, Op: op, Key: r.key,
		Err: fmt.Errorf("%w: %d bytes or more, over the maximum %d", ErrRecordTooLarge, size, r.maxSize)}
	r.log.ErrorContext(ctx, "kiwicache.record_too_large", "key", r.key, "error", err)
	return err
}

// identify returns the record's id without reading it.
func (r *recordStore) identify(ctx context.Context) (recordID, error) {
	f, err := r.run(ctx, recordID{size: unknownID}, 0)
	return f.id, err
}

func (r *recordStore) run(ctx context.Context, known recordID, inline int) (fetchResult, error) {
	if !r.stamped {
		known = recordID{size: unknownID}
	}
	res, err := r.runReadOnly(ctx, fetchScript, []string{r.key}, known.size, known.tail, tailLen, inline).Slice()
	if err != nil {
		return fetchResult{}, r.redisError(ctx, "kiwicache.load_failed", "fetch script", r.key, err)
	}
	var f fetchResult
	f.id.size, _ = res[0].(int64)
	switch len(res) {
	case 1:
		if f.id.size >= 0 {
			f.id = known
		}
		return f, nil
	case 2:
		f.id.tail, _ = res[1].(string)
		return f, nil
	}
	s, _ := res[2].(string)
	f.b = []byte(s)
	f.id = idOf(f.b)
	return f, nil
}

// runReadOnly runs a script that only reads, as EVALSHA_RO where the server
// has it (Redis 7), so that a user whose ACL allows only reads of resource:*
// can reload, as Python's plain GET can; else as EVALSHA.
func (r *recordStore) runReadOnly(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if !r.noReadOnlyScripts.Load() {
		cmd := s.RunRO(ctx, r.rdb, keys, args...)
		if err := cmd.Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
			return cmd
		}
		r.noReadOnlyScripts.Store(true)
	}
	return s.Run(ctx, r.rdb, keys, args...)
}

// A lockToken is what this process stored in the lock key; empty when it
// holds no lock.
type lockToken string

// lock tries once to take the refill lock. The Python library stores
// "locked" and releases with DEL; this one stores a token of its own and
// releases only while it still holds that token, so a holder that outlived the
// lock cannot release the next holder's. Python processes only test that the
// key exists, which is the same either way.
func (r *recordStore) lock(ctx context.Context) (lockToken, bool, error) {
	token := rand.Text()
	taken, err := r.rdb.SetNX(ctx, r.lockKey, token, wholeSeconds(r.lockTTL)).Result()
	if err != nil {
		// The SET may have been applied with its reply lost: release what may
		// be ours, or it would block every refill for the lock's TTL.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.lockTTL)
		defer cancel()
		unlockScript.Run(cleanup, r.rdb, []string{r.lockKey}, token)
		return "", false, r.redisError(ctx, "kiwicache.refill_lock_failed", "SET NX", r.lockKey, err)
	}
	if !taken {
		return "", false, nil
	}
	return lockToken(token), true, nil
}

var extendLockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("EXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// extendLock gives the lock another lockTTL while this process still holds
// it, and reports whether it does.
func (r *recordStore) extendLock(ctx context.Context, token lockToken) (bool, error) {
	held, err := extendLockScript.Run(ctx, r.rdb, []string{r.lockKey}, string(token), int64(wholeSeconds(r.lockTTL)/time.Second)).Bool()
	if err != nil {
		return false, r.redisError(ctx, "kiwicache.refill_lock_failed", "extend script", r.lockKey, err)
	}
	return held, nil
}

var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// unlock deletes the lock if it still holds token.
func (r *recordStore) unlock(ctx context.Context, token lockToken) {
	if err := unlockScript.Run(ctx, r.rdb, []string{r.lockKey}, string(token)).Err(); err != nil {
		r.redisError(ctx, "kiwicache.release_lock_failed", "unlock script", r.lockKey, err)
	}
}

// writeScript sets the record (KEYS[1]) to ARGV[1] with expiry ARGV[2]
// (seconds, 0: none) if this load still holds the lock (KEYS[2] holds ARGV[3];
// on Cluster, where the lock is in another slot, ARGV[7] says whether it held
// it a moment ago), or else if there is no record, or it is still the one the
// load saw when it began: size ARGV[4] and tail ARGV[5] (tail length ARGV[6],
// 0 when tails tell nothing). No clock decides: a writer that took the lock
// after this one lost it began its load later, so its record is newer.
var writeScript = redis.NewScript(`
local held = ARGV[7] == "1"
if KEYS[2] then held = redis.call("GET", KEYS[2]) == ARGV[3] end
if not held then
	local t = redis.call("TYPE", KEYS[1])["ok"]
	local n = -1
	if t == "string" then n = redis.call("STRLEN", KEYS[1]) elseif t ~= "none" then n = -2 end
	if n ~= -1 then
		if n ~= tonumber(ARGV[4]) then return 0 end
		if ARGV[6] == "0" or redis.call("GETRANGE", KEYS[1], -tonumber(ARGV[6]), -1) ~= ARGV[5] then
			return 0
		end
	end
end
if tonumber(ARGV[2]) > 0 then
	redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[2])
else
	redis.call("SET", KEYS[1], ARGV[1])
end
return 1`)

// write sets the record to b (the record of ts), unless this load lost its
// lock and the record is no longer seen, the one it found when it began (see
// writeScript). It reports whether it wrote, and publishes what it wrote.
func (r *recordStore) write(ctx context.Context, b []byte, ts time.Time, token lockToken, seen recordID) (bool, error) {
	keys := []string{r.key, r.lockKey}
	held := "0"
	if r.cluster {
		// Two commands, not one script: a holder whose lock expires between
		// them (it stalled for the whole lock TTL, watchdog included) can
		// still overwrite a newer record.
		v, err := r.rdb.Get(ctx, r.lockKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, r.redisError(ctx, "kiwicache.save_failed", "GET", r.lockKey, err)
		}
		keys = keys[:1]
		if v == string(token) {
			held = "1"
		}
	}
	tail := tailLen
	if !r.stamped {
		tail = 0
	}
	written, err := writeScript.Run(ctx, r.rdb, keys, b, int64(r.ttl/time.Second), string(token),
		seen.size, seen.tail, tail, held).Bool()
	if err != nil {
		return false, r.redisError(ctx, "kiwicache.save_failed", "write script", r.key, err)
	}
	if written {
		r.publish(ctx, ts, len(b))
	}
	return written, nil
}

// prolong gives the record another TTL after a failed load, and reports
// whether it still exists.
func (r *recordStore) prolong(ctx context.Context) (bool, error) {
	if r.ttl <= 0 { // WithNoExpiry: nothing to prolong (and EXPIRE 0 would delete it)
		n, err := r.rdb.Exists(ctx, r.key).Result()
		if err != nil {
			return false, r.redisError(ctx, "kiwicache.prolong_expiration_failed", "EXISTS", r.key, err)
		}
		return n > 0, nil
	}
	exists, err := r.rdb.Expire(ctx, r.key, r.ttl).Result()
	if err != nil {
		return false, r.redisError(ctx, "kiwicache.prolong_expiration_failed", "EXPIRE", r.key, err)
	}
	return exists, nil
}

// restore writes b (the record of ts) back where there is no record, after a
// failed load: NX, so a record that another process wrote meanwhile is kept.
// It publishes what it wrote.
func (r *recordStore) restore(ctx context.Context, b []byte, ts time.Time) error {
	written, err := r.rdb.SetNX(ctx, r.key, b, r.ttl).Result()
	if err != nil {
		return r.redisError(ctx, "kiwicache.save_failed", "SET NX", r.key, err)
	}
	if written {
		r.publish(ctx, ts, len(b))
	}
	return nil
}

// publish tells the listening processes that this process wrote the record
// (PUSH.md): PUBLISH on its channel, or SPUBLISH on Redis Cluster, where the
// message then goes to the one shard that holds the channel. A failure is
// logged, not returned: the write itself succeeded, and the others see it at
// their next reload.
func (r *recordStore) publish(ctx context.Context, ts time.Time, size int) {
	channel, payload := PushChannel(r.key), PushPayload(ts, size)
	var err error
	if r.cluster && !r.plainPublish.Load() {
		err = r.rdb.SPublish(ctx, channel, payload).Err()
		if isUnknownCommand(err) {
			r.plainPublish.Store(true)
			err = r.rdb.Publish(ctx, channel, payload).Err()
		}
	} else {
		err = r.rdb.Publish(ctx, channel, payload).Err()
	}
	if err != nil {
		r.log.WarnContext(ctx, "kiwicache.publish_failed", "key", r.key, "channel", channel, "error", err)
	}
}

// redisError turns a failed command on key into an *Error. A command that
// failed once ctx had ended (cut by it, or timed out by the client meanwhile)
// is the caller's deadline, not a Redis failure: it is neither counted nor
// logged as one, and the error wraps ctx's.
func (r *recordStore) redisError(ctx context.Context, event, op, key string, err error) error {
	refreshClusterState(r.rdb) // after a failover, find the promoted master: see notify.go
	if ctxEnded(ctx) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			cause := context.Cause(ctx)
			if cause == nil { // the deadline passed; ctx's timer has not fired yet
				cause = context.DeadlineExceeded
			}
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		return &Error{Cache: r.cache, Op: op, Key: key, Err: err}
	}
	r.metrics.Count(r.name, StatusRedisError)
	r.log.ErrorContext(ctx, event, "key", key, "error", err)
	return &Error{Cache: r.cache, Op: op, Key: key, Err: withKind(ErrRedis, err)}
}

// A tailStamper is a Codec whose every record ends with something new (the
// JSON codec writes the timestamp last), so that a recordID tells two writes
// apart. Other codecs get the fallbacks described at recordStore.stamped.
type tailStamper interface{ stampsTail() }

func (JSONCodec[K, V]) stampsTail() {}

// ctxEnded reports whether ctx has ended, or reached its deadline a moment
// before its timer marks it done (a client that times its reads out by the
// deadline sees the timeout first).
func ctxEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}
