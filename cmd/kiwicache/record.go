package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// recordKey checks NAME[:SUFFIX] (or resource:NAME[:SUFFIX]) as the library
// checks a cache's name and suffix, and returns the record key. A name the
// library refuses is a usage error that says why.
func recordKey(id string) (string, error) {
	name, suffix, err := kiwicache.ParseName(id)
	if err != nil {
		return "", failure{exitUsage, fmt.Errorf("bad record name: %w", err)}
	}
	if suffix != "" {
		name += ":" + suffix
	}
	return "resource:" + name, nil
}

// lockKey is the refill lock of the record key.
func lockKey(key string) string { return "lock:" + strings.TrimPrefix(key, "resource:") }

// info is what list and inspect show of a record. A field that a record does
// not have (the items of a malformed one, the bytes of a hash) is null in
// JSON, never a zero value.
type info struct {
	Key string `json:"key"`
	// WrongType is the key's Redis type when it is not a string, and so no
	// record at all.
	WrongType  string     `json:"wrong_type,omitempty"`
	Bytes      *int       `json:"bytes"`
	Items      *int       `json:"items"`
	Timestamp  *time.Time `json:"timestamp"`
	Age        *string    `json:"age"`
	TTL        string     `json:"ttl"` // "none" without expiry
	LockHeld   bool       `json:"lock_held"`
	LockTTL    string     `json:"lock_ttl,omitempty"`
	WellFormed bool       `json:"well_formed"`
	Malformed  string     `json:"malformed,omitempty"` // why it is not well-formed
	// Unreadable says why list could not read the key (an ACL refusal).
	Unreadable string `json:"unreadable,omitempty"`

	data map[string]json.RawMessage
}

// load reads one record, its TTL and its lock's in one round trip. A
// missing record is a failure with exitNoRecord; a malformed one, or a key
// of another type, is reported in the info.
func (c *cli) load(ctx context.Context, key string) (*info, error) {
	var get *redis.StringCmd
	var ttl, lockTTL *redis.DurationCmd
	c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		ttl = p.PTTL(ctx, key)
		lockTTL = p.PTTL(ctx, lockKey(key))
		return nil
	})
	in := &info{Key: key}
	b, err := get.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fail(exitNoRecord, "no record %s", display(key))
	case isWrongType(err):
		t, err := c.rdb.Type(ctx, key).Result()
		if err != nil {
			return nil, redisFailure("TYPE", key, err)
		}
		in.WrongType = t
		in.Malformed = fmt.Sprintf("the key holds a %s; a record is a string", t)
	case err != nil:
		return nil, redisFailure("GET", key, err)
	default:
		if err := in.decode(b); err != nil {
			return nil, err
		}
	}
	if err := ttl.Err(); err != nil {
		return nil, redisFailure("PTTL", key, err)
	}
	in.TTL = durationOrNone(ttl.Val())
	if err := lockTTL.Err(); err != nil {
		return nil, redisFailure("PTTL", lockKey(key), err)
	}
	if d := lockTTL.Val(); d != -2 { // -2: no such key
		in.LockHeld, in.LockTTL = true, durationOrNone(d)
	}
	return in, nil
}

// decode fills in from the record's bytes.
func (in *info) decode(b []byte) error {
	size := len(b)
	in.Bytes = &size
	rec, err := kiwicache.JSONCodec[string, json.RawMessage]{}.Decode(b)
	if errors.Is(err, kiwicache.ErrMalformedRecord) {
		in.Malformed = malformedReason(err)
		return nil
	}
	if err != nil {
		return fail(exitMalformed, "decode %s: %w", display(in.Key), err)
	}
	items, age := len(rec.Data), time.Since(rec.Timestamp).Round(time.Second).String()
	in.WellFormed, in.data = true, rec.Data
	in.Items, in.Timestamp, in.Age = &items, &rec.Timestamp, &age
	return nil
}

// malformedReason is what is wrong with a record: the cause that the codec's
// error wraps beside ErrMalformedRecord, without the sentinel's words.
func malformedReason(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if multi, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range multi.Unwrap() {
				if inner != kiwicache.ErrMalformedRecord {
					return inner.Error()
				}
			}
		}
	}
	return err.Error()
}

func durationOrNone(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Second).String()
}

// wellFormed reads the record NAME[:SUFFIX] and fails unless it is
// well-formed.
func (c *cli) wellFormed(ctx context.Context, id string) (*info, error) {
	key, err := recordKey(id)
	if err != nil {
		return nil, err
	}
	in, err := c.load(ctx, key)
	if err != nil {
		return nil, err
	}
	return in, in.failure()
}

// failure is the failure of a record that is not well-formed, or nil.
func (in *info) failure() error {
	switch {
	case in.WrongType != "":
		return fail(exitWrongType, "%s is no record: %s", display(in.Key), in.Malformed)
	case !in.WellFormed:
		return fail(exitMalformed, "%s is malformed: %s", display(in.Key), in.Malformed)
	}
	return nil
}
