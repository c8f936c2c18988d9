package kiwicache

// The library on a real Redis Cluster: three masters with a replica each,
// started once for all the subtests of TestCluster (six redis-servers cost
// more to start than the tests take), with go-redis' ClusterClient.

import (
	"context"
	"errors"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// startCluster starts the cluster, or skips saying why.
func startCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	cl, err := redistest.StartCluster(3, 1)
	if errors.Is(err, redistest.ErrNotInstalled) {
		skipreport.Skip(t, "Redis Cluster", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	return cl
}

func newClusterClient(t testing.TB, cl *redistest.Cluster, opts ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	o := &redis.ClusterOptions{Addrs: cl.Addrs(), DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second}
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClusterClient(o)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// namesOnEveryShard returns one cache name per master, each record key on a
// different master, and those masters' addresses.
func namesOnEveryShard(t testing.TB, rdb *redis.ClusterClient, prefix string) (names, masters []string) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; len(names) < 3; i++ {
		if i > 1000 {
			t.Fatalf("found record keys on only %d masters", len(names))
		}
		name := fmt.Sprintf("%s%d", prefix, i)
		m, err := rdb.MasterForKey(t.Context(), "resource:"+name)
		if err != nil {
			t.Fatal(err)
		}
		if addr := m.Options().Addr; !seen[addr] {
			seen[addr] = true
			names, masters = append(names, name), append(masters, addr)
		}
	}
	return names, masters
}

// commandCalls returns how many times the node at addr ran command.
func commandCalls(t testing.TB, addr, command string) int {
	t.Helper()
	stats, err := redistest.Do(t.Context(), addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(stats, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+command+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

func TestCluster(t *testing.T) {
	cl := startCluster(t)

	// Two processes start on an empty cluster: one loads the source under
	// the lock (on another slot than the record: no command takes both),
	// writes with the write script and releases the lock with the release
	// script; the other waits and takes its record.
	t.Run("ReadRefillLock", func(t *testing.T) {
		name := uniqueName(t)
		l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
			time.Sleep(200 * time.Millisecond)
			return versionData(10, 1), nil
		})
		var wg sync.WaitGroup
		for range 2 {
			c := mustNew(t, name, newClusterClient(t, cl), l)
			wg.Go(func() {
				if v, err := c.Get(t.Context(), "k7"); err != nil || v.Name != "v1" {
					t.Errorf("Get: %v, %v", v, err)
				}
			})
		}
		wg.Wait()
		if n := l.calls.Load(); n != 1 {
			t.Errorf("source loaded %d times by two processes, want 1", n)
		}
		rdb := newClusterClient(t, cl)
		if n, err := rdb.Exists(t.Context(), "lock:"+name).Result(); err != nil || n != 0 {
			t.Errorf("lock left behind: %d, %v", n, err)
		}
		if ttl, err := rdb.TTL(t.Context(), "resource:"+name).Result(); err != nil || ttl <= 0 {
			t.Errorf("record TTL %v, %v", ttl, err)
		}
	})

	// A periodic reload checks an unchanged record by its length and tail on
	// the node that holds it, without a GET; a changed one is read.
	t.Run("TailCheck", func(t *testing.T) {
		rdb := newClusterClient(t, cl)
		name := uniqueName(t)
		key := "resource:" + name
		writeRecordAs(t, rdb, key, versionData(10, 1))
		c := mustNew(t, name, rdb, LoaderFunc[string, item](staticData(versionData(10, 0))), WithoutPush())
		versionOf(t, c)
		m, err := rdb.MasterForKey(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		node := m.Options().Addr
		gets, ranges := commandCalls(t, node, "get"), commandCalls(t, node, "getrange")
		if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
			t.Fatal(err)
		}
		if n := commandCalls(t, node, "get") - gets; n != 0 {
			t.Errorf("reload of an unchanged record ran GET %d times", n)
		}
		if n := commandCalls(t, node, "getrange") - ranges; n != 1 {
			t.Errorf("reload of an unchanged record ran GETRANGE %d times, want 1", n)
		}
		writeRecordAs(t, rdb, key, versionData(10, 2))
		gets = commandCalls(t, node, "get")
		if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
			t.Fatal(err)
		}
		if v := versionOf(t, c); v != "v2" {
			t.Errorf("after a change, serves %s, want v2", v)
		}
		if n := commandCalls(t, node, "get") - gets; n != 1 {
			t.Errorf("reload of a changed record ran GET %d times, want 1", n)
		}
	})

	// RefillAll over caches whose records live on three different masters.
	t.Run("RefillAllAcrossShards", func(t *testing.T) {
		rdb := newClusterClient(t, cl)
		names, _ := namesOnEveryShard(t, rdb, uniqueName(t))
		r := new(Registry)
		var loaders []*countingLoader[string, item]
		for _, name := range names {
			l := newCountingLoader[string, item](staticData(versionData(10, 1)))
			if _, err := New(name, rdb, l, WithRegistry(r), WithoutPush()); err != nil {
				t.Fatal(err)
			}
			loaders = append(loaders, l)
		}
		if err := r.RefillAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			if n := loaders[i].calls.Load(); n != 1 {
				t.Errorf("%s loaded %d times, want 1", name, n)
			}
			if n, err := rdb.Exists(t.Context(), "resource:"+name).Result(); err != nil || n != 1 {
				t.Errorf("resource:%s not written: %d, %v", name, n, err)
			}
		}
	})

	// Client tracking is armed on every master: plain writes (as Python's)
	// on each shard reach caches with ReloadTTL an hour, through one
	// subscription connection per master for the whole client.
	t.Run("PushTracking", func(t *testing.T) {
		clientName := "kiwi-push-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		rdb := newClusterClient(t, cl, func(o *redis.ClusterOptions) { o.ClientName = clientName })
		names, masters := namesOnEveryShard(t, rdb, uniqueName(t))
		var caches []*Cache[string, item]
		for _, name := range names {
			writeRecordAs(t, rdb, "resource:"+name, versionData(10, 1))
			c := mustNewListening(t, name, rdb, LoaderFunc[string, item](staticData(versionData(10, 0))), WithReloadTTL(time.Hour))
			versionOf(t, c)
			caches = append(caches, c)
		}
		for _, c := range caches {
			eventually(t, "every master is listened to", func() bool { return c.Health().PushConnected })
		}
		for _, addr := range masters {
			list, err := redistest.Do(t.Context(), addr, "CLIENT", "LIST", "TYPE", "pubsub")
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(list, "name="+clientName+" "); n != 1 {
				t.Errorf("master %s has %d subscription connections of the client, want 1", addr, n)
			}
		}
		writer := newClusterClient(t, cl)
		for _, name := range names {
			writeRecordAs(t, writer, "resource:"+name, versionData(10, 2))
		}
		for _, c := range caches {
			eventually(t, c.Key()+" serves the new record", func() bool { return versionOf(t, c) == "v2" })
		}
	})

	// Where tracking and CONFIG are refused, caches listen to sharded
	// publish channels, on the master of each channel's slot, and a Go
	// writer's SPUBLISH reaches them.
	t.Run("PushShardedPublish", func(t *testing.T) {
		for _, addr := range cl.Addrs() {
			if _, err := redistest.Do(t.Context(), addr, "ACL", "SETUSER", "sharded", "on", ">pw",
				"~*", "&*", "+@all", "-client", "-config"); err != nil {
				t.Fatal(err)
			}
		}
		user := func(o *redis.ClusterOptions) { o.Username, o.Password = "sharded", "pw" }
		rdb := newClusterClient(t, cl, user)
		names, _ := namesOnEveryShard(t, rdb, uniqueName(t))
		logs := &logBuffer{}
		var caches []*Cache[string, item]
		for _, name := range names {
			c := mustNewListening(t, name, rdb, LoaderFunc[string, item](staticData(versionData(10, 1))),
				WithReloadTTL(time.Hour), WithLogger(logs.logger()))
			versionOf(t, c)
			caches = append(caches, c)
		}
		for _, c := range caches {
			eventually(t, "every master is listened to", func() bool { return c.Health().PushConnected })
		}
		if n := strings.Count(logs.String(), `"mode":"sharded publish channels"`); n < 3 {
			t.Fatalf("%d masters listen by sharded publish channels, want 3; log: %s", n, logs)
		}
		writerClient := newClusterClient(t, cl, user)
		for _, name := range names {
			w := mustNew(t, name, writerClient, LoaderFunc[string, item](staticData(versionData(10, 2))), WithoutPush())
			if err := w.Refill(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range caches {
			eventually(t, c.Key()+" serves the refilled record", func() bool { return versionOf(t, c) == "v2" })
		}
	})

	// Last: it kills a master.
	t.Run("Failover", func(t *testing.T) {
		probe := newClusterClient(t, cl)
		testFailover(t, func() redis.UniversalClient { return newClusterClient(t, cl) },
			func(key string) (kill func(), recovered func()) {
				m, err := probe.MasterForKey(t.Context(), key)
				if err != nil {
					t.Fatal(err)
				}
				node := cl.Node(m.Options().Addr)
				return node.Kill, func() {
					if err := cl.WaitHealthy(30 * time.Second); err != nil {
						t.Fatal(err)
					}
				}
			})
	})
}

// testFailover kills the master that holds a record while a process reads
// and reloads it (ReloadTTL 100 ms) and another refills it (its load spans
// the failover). kill and recovered come from the deployment: recovered
// returns once a replica has been promoted.
//
// Reads never fail and never serve anything but the good data; the refill
// either writes the new data to the promoted master or fails saying so, and
// a refill after the failover succeeds; the reader recovers and serves the
// new data (told by its subscription to the new master); no good record is
// lost: the promoted master holds the new record.
func testFailover(t *testing.T, newClient func() redis.UniversalClient,
	deployment func(key string) (kill func(), recovered func())) {
	name := uniqueName(t)
	key := "resource:" + name
	logs := &logBuffer{}
	defer func() {
		if t.Failed() {
			t.Log(logs)
		}
	}()
	reader := mustNewListening(t, name, newClient(), LoaderFunc[string, item](staticData(versionData(10, 1))),
		WithReloadTTL(100*time.Millisecond), WithCacheTTL(time.Minute), WithLogger(logs.logger()))
	versionOf(t, reader)
	eventually(t, "the reader listens", func() bool { return reader.Health().PushConnected })
	r := startReaders(t, []*Cache[string, item]{reader}, 2, "k7", 7)

	loading, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	refiller := mustNew(t, name, newClient(), LoaderFunc[string, item](func(ctx context.Context) (map[string]item, error) {
		once.Do(func() { close(loading) })
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return versionData(10, 2), nil
	}), WithRefillLockTTL(time.Minute), WithCacheTTL(time.Minute), WithoutPush(), WithLogger(logs.logger()))
	refillErr := make(chan error, 1)
	go func() { refillErr <- refiller.Refill(context.Background()) }()
	<-loading

	kill, recovered := deployment(key)
	kill()
	killed := time.Now()
	recovered()
	failedOver := time.Since(killed)
	close(release)
	if err := <-refillErr; err != nil {
		t.Logf("the refill that spanned the failover failed: %v", err)
		if err := refiller.Refill(t.Context()); err != nil {
			t.Fatalf("a refill after the failover: %v", err)
		}
	}
	eventually(t, "the reader serves the new data", func() bool {
		v, err := reader.Get(t.Context(), "k7")
		return err == nil && v.Name == "v2"
	})
	eventually(t, "the reader's reloads succeed again", func() bool {
		h := reader.Health()
		return h.ConsecutiveFailures == 0 && h.PushConnected
	})
	r.close()
	if n := r.errs.Load() + r.wrong.Load(); n != 0 {
		t.Errorf("%d of %d reads failed or were wrong during the failover", n, r.reads.Load())
	}
	b, err := newClient().Get(t.Context(), key).Bytes()
	if err != nil {
		t.Fatalf("record after the failover: %v", err)
	}
	rec, err := JSONCodec[string, item]{}.Decode(b)
	if err != nil || rec.Data["k7"].Name != "v2" {
		t.Errorf("record after the failover: %v, %v", rec.Data["k7"], err)
	}
	t.Logf("figures: failed over in %v; %d reads during it, none failed", failedOver.Round(10*time.Millisecond), r.reads.Load())
}
