package kiwicache

import (
	"bytes"
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// tailBytes is how much of the record's end recordUnchanged reads: enough for
// `, "timestamp": 1764087331.4123456}` with room for whitespace.
const tailBytes = 64

// recordUnchanged reports whether the record in Redis is still the one s was
// made from, reading its length and its last tailBytes instead of the whole
// record: both the Python and the Go writer put the timestamp last, and every
// write stamps a new time. A record with the same length and timestamp is the
// same record (a rewrite of the same data with its own timestamp, as after a
// failed load, is the same data).
//
// When the tail holds no timestamp (a record written in another member order)
// the answer is false, and the caller reads the whole record.
func (c *Cache[K, V]) recordUnchanged(ctx context.Context, s *Snapshot[K, V]) (bool, error) {
	if s.recordSize == 0 {
		return false, nil
	}
	var strlen *redis.IntCmd
	var tail *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		strlen = p.StrLen(ctx, c.key)
		tail = p.GetRange(ctx, c.key, -tailBytes, -1)
		return nil
	})
	if err != nil {
		return false, c.redisError(ctx, "kiwicache.load_failed", "STRLEN+GETRANGE", err)
	}
	if strlen.Val() != int64(s.recordSize) {
		return false, nil
	}
	ts, ok := tailTimestamp([]byte(tail.Val()))
	return ok && ts.Equal(s.timestamp), nil
}

// tailTimestamp finds the timestamp in the end of a record:
// [,{] "timestamp" : NUMBER } with any whitespace between.
func tailTimestamp(tail []byte) (time.Time, bool) {
	const ws = " \t\r\n"
	rest, ok := bytes.CutSuffix(bytes.TrimRight(tail, ws), []byte("}"))
	if !ok {
		return time.Time{}, false
	}
	rest = bytes.TrimRight(rest, ws)
	i := bytes.LastIndexAny(rest, ": \t\r\n")
	num := rest[i+1:]
	rest, ok = bytes.CutSuffix(bytes.TrimRight(rest[:i+1], ws), []byte(":"))
	if !ok {
		return time.Time{}, false
	}
	rest, ok = bytes.CutSuffix(bytes.TrimRight(rest, ws), []byte(`"timestamp"`))
	if !ok {
		return time.Time{}, false
	}
	// The member must start here: after ',' or '{', not inside a string such
	// as "x\"timestamp".
	if rest = bytes.TrimRight(rest, ws); len(rest) == 0 || rest[len(rest)-1] != ',' && rest[len(rest)-1] != '{' {
		return time.Time{}, false
	}
	if !isJSONNumber(num) {
		return time.Time{}, false
	}
	t, err := parseUnixSeconds(string(num))
	return t, err == nil
}
