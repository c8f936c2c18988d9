package kiwicache

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/redis/go-redis/v9"
)

// refillLock is the cross-process lock of PROTOCOL.md: whoever sets
// lock:NAME[:SUFFIX] with NX loads the source; the key expires after ttl so
// that a holder that dies cannot block the others for longer.
//
// The Python library stores "locked" and releases with a plain DEL. This one
// stores a token of its own and deletes the key only while it still holds
// that token, so a holder that outlived its ttl cannot release the next
// holder's lock. Python processes only test the key's existence, which is the
// same either way.
type refillLock struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// acquire tries once to take the lock; held is false when another process has it.
func (l refillLock) acquire(ctx context.Context) (token string, held bool, err error) {
	token = rand.Text()
	held, err = l.rdb.SetNX(ctx, l.key, token, wholeSeconds(l.ttl)).Result()
	return token, held, err
}

// release deletes the lock if it still holds token.
func (l refillLock) release(ctx context.Context, token string) error {
	return releaseScript.Run(ctx, l.rdb, []string{l.key}, token).Err()
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
