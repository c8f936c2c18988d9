package kiwicache

// The write guard: a load that holds its lock writes whatever the record
// became meanwhile; one that lost it writes only over the very record it saw
// (same length, same last 64 bytes). On Redis Cluster, where the lock and
// the record are in different slots, the same holds through a GET of the
// lock before the write (cluster_test.go runs the scripts on a real cluster).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// guardClients are a plain client and a Cluster client of one miniredis
// (which answers CLUSTER SLOTS as a one-node cluster).
func guardClients(t *testing.T) (*miniredis.Miniredis, map[string]redis.UniversalClient) {
	mr, plain := newMiniredis(t)
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{mr.Addr()}, MaxRetries: -1})
	t.Cleanup(func() { cluster.Close() })
	return mr, map[string]redis.UniversalClient{"plain": plain, "cluster": cluster}
}

// loadDuring starts a Refill whose load blocks until meanwhile has run,
// and returns Refill's error.
func loadDuring(t *testing.T, c *Cache[string, item], l *countingLoader[string, item], meanwhile func()) error {
	t.Helper()
	release := make(chan struct{})
	l.set(func(context.Context) (map[string]item, error) {
		<-release
		return map[string]item{"a": {Name: "the load's"}}, nil
	})
	calls := l.calls.Load()
	done := make(chan error, 1)
	go func() { done <- c.Refill(t.Context()) }()
	eventually(t, "the load runs", func() bool { return l.calls.Load() == calls+1 })
	meanwhile()
	close(release)
	return <-done
}

// A load that still holds its lock writes its record, whatever another
// writer (one that ignores the lock) put there meanwhile.
func TestHolderWritesOverAnyRecord(t *testing.T) {
	mr, clients := guardClients(t)
	for name, rdb := range clients {
		t.Run(name, func(t *testing.T) {
			mr.FlushAll()
			mr.Set("resource:Items", tinyRecord)
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l)
			err := loadDuring(t, c, l, func() { mr.Set("resource:Items", pyRecord("a rogue writer's", fmtUnix(time.Now()))) })
			if err != nil {
				t.Errorf("Refill = %v, want nil", err)
			}
			if got := must(mr.Get("resource:Items")); !strings.Contains(got, "the load's") {
				t.Errorf("record = %.60s, want the lock holder's", got)
			}
		})
	}
}

// A load that lost its lock writes only over the record it saw when it
// began, told by its length and last 64 bytes: a record of the same length
// with another tail, or with the same tail and another length, is another
// record, and is kept.
func TestLostLockWritesOnlyOverTheRecordItSaw(t *testing.T) {
	sameTailLonger := strings.Replace(tinyRecord, "item-0", "item-0000", 1)
	for _, tc := range []struct {
		name, meanwhile string
		written         bool
	}{
		{"unchanged", tinyRecord, true},
		{"same length, another tail", tinyRewritten, false},
		{"same tail, another length", sameTailLonger, false},
	} {
		mr, clients := guardClients(t)
		for name, rdb := range clients {
			t.Run(tc.name+", "+name, func(t *testing.T) {
				mr.Set("resource:Items", tinyRecord)
				l := newCountingLoader[string, item](staticData(twoItems))
				c := mustNew(t, "Items", rdb, l)
				err := loadDuring(t, c, l, func() {
					mr.Del("lock:Items") // the lock expired
					mr.Set("resource:Items", tc.meanwhile)
				})
				got := must(mr.Get("resource:Items"))
				if tc.written && (err != nil || !strings.Contains(got, "the load's")) {
					t.Errorf("Refill = %v, record %.50s; want the load's record written", err, got)
				}
				if !tc.written && (!errors.Is(err, ErrNotWritten) || got != tc.meanwhile) {
					t.Errorf("Refill = %v, record %.50s; want ErrNotWritten and the other record kept", err, got)
				}
			})
		}
	}
}

// On Cluster, a load whose lock expired (the GET of the lock finds none)
// writes where there is no record.
func TestClusterLostLockWritesWhereNoRecord(t *testing.T) {
	mr, clients := guardClients(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Items", clients["cluster"], l)
	err := loadDuring(t, c, l, func() { mr.Del("lock:Items") })
	if err != nil || !strings.Contains(must(mr.Get("resource:Items")), "the load's") {
		t.Errorf("Refill = %v, want the record written", err)
	}
}

// On Cluster, a failed GET of the lock before the write fails the refill:
// an error naming the lock's key, counted and logged.
func TestClusterLockReadFails(t *testing.T) {
	mr, clients := guardClients(t)
	rdb := clients["cluster"].(*redis.ClusterClient)
	m, logs := &recordedMetrics{}, &logBuffer{}
	rdb.AddHook(&failFirst{match: isCommand("get", "lock:Items")})
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithMetrics(m), WithLogger(logs.logger()))
	err := c.Refill(t.Context())
	var e *Error
	if !errors.Is(err, ErrRedis) || !errors.As(err, &e) || e.Op != "GET" || e.Key != "lock:Items" {
		t.Errorf("Refill = %v, want the GET of lock:Items failed", err)
	}
	if mr.Exists("resource:Items") {
		t.Error("the record was written though the lock could not be read")
	}
	if m.get("Items", StatusRedisError) != 1 || !logs.has("ERROR", "kiwicache.save_failed") {
		t.Errorf("want redis_error counted and kiwicache.save_failed logged:\n%s", logs)
	}
}

// A load that lost its lock, and finds a record written meanwhile, serves
// that record at once, as the other processes do. If reading it fails,
// Refill says so (ErrNotWritten and the Redis error) and the snapshot served
// stays the one from before.
func TestLostLockServesTheRecordKept(t *testing.T) {
	for _, readFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("read fails %v", readFails), func(t *testing.T) {
			mr, rdb := newMiniredis(t)
			mr.Set("resource:Items", tinyRecord)
			l := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, "Items", rdb, l)
			if v := must(c.Get(t.Context(), "k0")); v.Name != "item-0" {
				t.Fatalf("Get = %+v", v)
			}
			if readFails {
				// The third fetch: after the refill's look at the record and
				// its look again under the lock, the read of the record kept.
				rdb.AddHook(&failNth{match: isScript(fetchScript), n: 3})
			}
			err := loadDuring(t, c, l, func() {
				mr.Del("lock:Items") // the lock expired, another process wrote
				mr.Set("resource:Items", tinyRewritten)
			})
			want := map[bool]string{false: "item-X", true: "item-0"}[readFails]
			if v := must(c.Get(t.Context(), "k0")); v.Name != want {
				t.Errorf("Get = %+v, want %s", v, want)
			}
			if !errors.Is(err, ErrNotWritten) || errors.Is(err, ErrRedis) != readFails {
				t.Errorf("Refill = %v, want ErrNotWritten (and ErrRedis: %v)", err, readFails)
			}
		})
	}
}
