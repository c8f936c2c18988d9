package kiwicache

// The library on a real Sentinel deployment (a master, a replica, three
// Sentinels), started once for all the subtests of TestSentinel, with
// go-redis' FailoverClient.

import (
	"context"
	"errors"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func startSentinel(t *testing.T) *redistest.Sentinel {
	t.Helper()
	d, err := redistest.StartSentinel()
	if errors.Is(err, redistest.ErrNotInstalled) {
		skipreport.Skip(t, "Sentinel", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

func newFailoverClient(t testing.TB, d *redistest.Sentinel) *redis.Client {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.SentinelMaster,
		SentinelAddrs: d.SentinelAddrs(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestSentinel(t *testing.T) {
	d := startSentinel(t)

	// Reads, a refill and push notifications through the master that the
	// Sentinels name.
	t.Run("ReadRefillPush", func(t *testing.T) {
		rdb := newFailoverClient(t, d)
		name := uniqueName(t)
		l := newCountingLoader[string, item](staticData(versionData(10, 1)))
		c := mustNewListening(t, name, rdb, l, WithReloadTTL(time.Hour))
		if v := versionOf(t, c); v != "v1" {
			t.Fatalf("serves %s, want v1", v)
		}
		eventually(t, "listening", func() bool { return c.Health().PushConnected })
		writeRecordAs(t, newFailoverClient(t, d), c.Key(), versionData(10, 2))
		eventually(t, "the new record is served", func() bool { return versionOf(t, c) == "v2" })
		if n := l.calls.Load(); n != 1 {
			t.Errorf("source loaded %d times, want 1", n)
		}
	})

	// The master is killed while a process reloads (ReloadTTL 100 ms) and
	// another refills: see testFailover.
	t.Run("Failover", func(t *testing.T) {
		var old *redistest.Server
		testFailover(t, func() redis.UniversalClient { return newFailoverClient(t, d) },
			func(string) (kill func(), recovered func()) {
				var err error
				if old, err = d.Master(t.Context()); err != nil {
					t.Fatal(err)
				}
				return old.Kill, func() {
					if _, err := d.WaitFailover(old, 30*time.Second); err != nil {
						t.Fatal(err)
					}
				}
			})
		// The old master comes back, empty, as a replica of the new one.
		master, err := d.Master(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := old.RestartWith("--replicaof", "127.0.0.1", strconv.Itoa(master.Port)); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitReplica(old, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	// Replication is asynchronous: a lock taken on the master just before it
	// dies may never reach the replica that replaces it. Another process then
	// takes the lock again and loads too: one extra load, no more, and the
	// record stays good. Here the replica is frozen and its link cut while the
	// lock is taken, so the loss is certain.
	t.Run("LockLostInFailover", func(t *testing.T) {
		ctx := t.Context()
		master, err := d.Master(ctx)
		if err != nil {
			t.Fatal(err)
		}
		replica := d.Data[0]
		if replica == master {
			replica = d.Data[1]
		}
		name := uniqueName(t)
		writeRecordAs(t, newFailoverClient(t, d), "resource:"+name, versionData(10, 1))
		var loads atomic.Int64
		loading, release := make(chan struct{}), make(chan struct{})
		holder := mustNew(t, name, newFailoverClient(t, d), LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
			loads.Add(1)
			close(loading)
			<-release
			return versionData(10, 2), nil
		}), WithRefillLockTTL(time.Minute), WithoutPush())
		other := mustNew(t, name, newFailoverClient(t, d), LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
			loads.Add(1)
			return versionData(10, 3), nil
		}), WithRefillLockTTL(time.Minute), WithoutPush())

		if err := replica.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if _, err := master.Do(ctx, "CLIENT", "KILL", "TYPE", "replica"); err != nil {
			replica.Signal(syscall.SIGCONT)
			t.Fatal(err)
		}
		holderErr := make(chan error, 1)
		go func() { holderErr <- holder.Refill(context.Background()) }()
		<-loading // the lock is on the master only
		master.Kill()
		replica.Signal(syscall.SIGCONT)
		if _, err := d.WaitFailover(master, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		rdb := newFailoverClient(t, d)
		if n, err := rdb.Exists(ctx, "lock:"+name).Result(); err != nil || n != 0 {
			t.Fatalf("the promoted replica has the lock (%d, %v): the loss this test is about did not happen", n, err)
		}

		if err := other.Refill(ctx); err != nil {
			t.Fatalf("refill after the failover: %v", err)
		}
		close(release)
		if err := <-holderErr; err != nil && !errors.Is(err, ErrNotWritten) {
			t.Errorf("the refill that lost its lock: %v", err)
		}
		if n := loads.Load(); n != 2 {
			t.Errorf("%d loads, want 2: the holder's and one extra", n)
		}
		b, err := rdb.Get(ctx, "resource:"+name).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := JSONCodec[string, item]{}.Decode(b)
		if v := rec.Data["k7"].Name; err != nil || (v != "v2" && v != "v3") {
			t.Errorf("record after the failover: %q, %v; want the data of one of the two loads", v, err)
		}
		for _, c := range []*Cache[string, item]{holder, other} {
			if v := versionOf(t, c); v != "v2" && v != "v3" {
				t.Errorf("%s serves %s", c.Key(), v)
			}
		}
	})
}
