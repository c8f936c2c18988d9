package kiwicache

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// waitNotifiedReload waits until the reload that a notification scheduled
// has run: the notification is no longer pending and no reload is running.
func waitNotifiedReload(t *testing.T, c *Cache[string, item], cmds *commandLog) []string {
	t.Helper()
	eventually(t, "the notified reload has run", func() bool {
		cmds.mu.Lock()
		started := len(cmds.names) > 0
		cmds.mu.Unlock()
		c.mu.Lock()
		idle := c.reloading == nil
		c.mu.Unlock()
		return started && idle && !c.push.pending.Load()
	})
	return cmds.take()
}

// A record replaced between a notification and the reload it starts (by
// another Redis type, an empty string, nothing, a record over the maximum
// size, the same bytes, or bytes changed in place) is read as it is: the
// Cache keeps serving its snapshot where it should, refills where there is
// nothing, counts no Redis error and logs no failed load, and the README's
// ACL user (Redis 7) and a server without read-only scripts (Redis 6) can do
// all of it.
func TestHostileNotifiedReadOfReplacedRecord(t *testing.T) {
	const maxSize = 4096
	const oldTS, newTS = 1764087331, 1764087391
	old := stampedRecord(1000, strconv.Itoa(oldTS)+".5")
	inPlace := []byte(old)
	inPlace[len(`{"data": {"a": {"name": "`)] = 'y' // same length, same tail
	for _, server := range []struct {
		name   string
		args   []string
		aclRul bool // the Cache connects as the README's ACL user
	}{
		{name: "README ACL user", aclRul: true},
		{name: "no read-only scripts", args: []string{"--rename-command", "evalsha_ro", "", "--rename-command", "eval_ro", ""}},
	} {
		srv := startTestRedis(t, server.args...)
		admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
		t.Cleanup(func() { admin.Close() })
		ctx := t.Context()
		opts := &redis.Options{Addr: srv.addr(), MaxRetries: -1}
		if server.aclRul {
			if err := admin.Do(ctx, readmeACLRule(t)...).Err(); err != nil {
				t.Fatal(err)
			}
			admin.ACLLogReset(ctx)
			opts.Username, opts.Password = aclUser, testACLPassword
		}
		for _, tc := range []struct {
			name     string
			replace  func(key string) error
			wantTS   int64 // the record timestamp served after the reload; 0: a refill's
			same     bool  // the snapshot is not decoded again
			tooLarge bool
		}{
			{name: "hash", wantTS: oldTS, same: true, replace: func(k string) error {
				return admin.Del(ctx, k).Err() // then HSET below
			}},
			{name: "list", wantTS: oldTS, same: true, replace: func(k string) error {
				admin.Del(ctx, k)
				return admin.RPush(ctx, k, "x").Err()
			}},
			{name: "empty string", wantTS: oldTS, same: true, replace: func(k string) error { return admin.Set(ctx, k, "", 0).Err() }},
			{name: "deleted", wantTS: 0, replace: func(k string) error { return admin.Del(ctx, k).Err() }},
			{name: "at the maximum", wantTS: newTS, replace: func(k string) error {
				return admin.Set(ctx, k, stampedRecord(maxSize, strconv.Itoa(newTS)+".5"), 0).Err()
			}},
			{name: "grown past the maximum", wantTS: oldTS, same: true, tooLarge: true, replace: func(k string) error {
				return admin.Set(ctx, k, stampedRecord(maxSize+1, strconv.Itoa(newTS)+".5"), 0).Err()
			}},
			{name: "the same bytes again", wantTS: oldTS, same: true, replace: func(k string) error { return admin.Set(ctx, k, old, 0).Err() }},
			// Documented (PROTOCOL.md): same length and tail look unchanged
			// until Reload or the next write.
			{name: "changed in place", wantTS: oldTS, same: true, replace: func(k string) error { return admin.SetRange(ctx, k, 0, string(inPlace)).Err() }},
		} {
			t.Run(server.name+"/"+tc.name, func(t *testing.T) {
				user := redis.NewClient(opts)
				t.Cleanup(func() { user.Close() })
				name := uniqueName(t)
				key := "resource:" + name
				if err := admin.Set(ctx, key, old, 0).Err(); err != nil {
					t.Fatal(err)
				}
				metrics, logs := &recordedMetrics{}, &logBuffer{}
				loader := newCountingLoader[string, item](staticData(twoItems))
				c := mustNew(t, name, user, loader, WithPushSpread(0), WithMaxRecordSize(maxSize),
					WithReloadTTL(time.Hour), WithMetrics(metrics), WithLogger(logs.logger()))
				if err := c.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				c.mu.Lock()
				c.unusableReplacedAt = time.Now() // a Cache that serves data keeps it
				c.mu.Unlock()
				loaded := c.Health().LoadedAt
				if err := tc.replace(key); err != nil {
					t.Fatal(err)
				}
				if tc.name == "hash" {
					admin.HSet(ctx, key, "data", "{}")
				}
				cmds := &commandLog{}
				user.AddHook(cmds)
				c.notified(time.Now())
				t.Logf("commands: %q", waitNotifiedReload(t, c, cmds))

				h := c.Health()
				switch {
				case tc.wantTS == 0 && (loader.calls.Load() != 1 || h.RecordTime.Unix() == oldTS):
					t.Errorf("nothing left: loads %d, serving the record of %v, want a refill", loader.calls.Load(), h.RecordTime)
				case tc.wantTS != 0 && h.RecordTime.Unix() != tc.wantTS:
					t.Errorf("serving the record of %v, want %d", h.RecordTime, tc.wantTS)
				}
				if tc.same && !h.LoadedAt.Equal(loaded) {
					t.Errorf("the snapshot was made again (LoadedAt %v, was %v)", h.LoadedAt, loaded)
				}
				if n := metrics.get(name, StatusRedisError); n != 0 {
					t.Errorf("%d redis_error counted; log: %s", n, logs)
				}
				if logs.has("ERROR", "kiwicache.load_failed") {
					t.Errorf("kiwicache.load_failed logged: %s", logs)
				}
				if got := logs.has("ERROR", "kiwicache.record_too_large"); got != tc.tooLarge {
					t.Errorf("kiwicache.record_too_large logged: %v, want %v; log: %s", got, tc.tooLarge, logs)
				}
				if server.aclRul {
					checkACLLog(t, admin, tc.name)
				}
				if tc.name == "changed in place" {
					if err := c.Reload(ctx); err != nil {
						t.Fatal(err)
					}
					if v, _ := c.Get(ctx, "a"); !strings.HasPrefix(v.Name, "y") {
						t.Errorf("after Reload, a record changed in place still serves %q", v.Name[:min(len(v.Name), 5)])
					}
				}
			})
		}
	}
}

// A reload after a notification whose GETRANGE outlives its deadline (the
// server paused) fails with the deadline, which is neither a Redis error
// counted nor a failed load logged.
func TestHostileNotifiedReadDeadline(t *testing.T) {
	srv := startTestRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	name := uniqueName(t)
	admin.Set(t.Context(), "resource:"+name, stampedRecord(1000, "1764087331.5"), 0)
	metrics, logs := &recordedMetrics{}, &logBuffer{}
	c := mustNew(t, name, rdb, newCountingLoader[string, item](staticData(twoItems)),
		WithMetrics(metrics), WithLogger(logs.logger()))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", 1000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.record.read(ctx, c.snap.Load().record)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("read past its deadline = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if n := metrics.get(name, StatusRedisError); n != 0 {
		t.Errorf("a deadline counted as %d redis_error", n)
	}
	if logs.has("ERROR", "kiwicache.load_failed") {
		t.Errorf("a deadline logged as kiwicache.load_failed: %s", logs)
	}
}

// A Python 0.4.5-style writer (a plain SET of a JSON record, no publish)
// writes a storm of records: the Cache, notified by client tracking or by
// keyspace notifications, ends up serving the last one.
func TestHostilePythonWriterStorm(t *testing.T) {
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil || exec.Command(python, "-c", "import redis").Run() != nil {
		t.Skip("no /usr/bin/python3 with the redis module")
	}
	const writes = 40
	const script = `
import sys, time, redis
try:
    import simplejson as json
except ImportError:
    import json
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), username=sys.argv[3] or None, password=sys.argv[4] or None)
for i in range(int(sys.argv[5])):
    r.set(sys.argv[2], json.dumps({"data": {"a": {"name": "v%d" % i}}, "timestamp": time.time()}), ex=3600)
`
	for _, mode := range []struct {
		name, log string
		args      []string
		user      string
	}{
		{name: "client tracking", log: "client tracking"},
		{name: "keyspace notifications", log: "keyspace notifications", user: "app", args: []string{"--notify-keyspace-events", "K$g",
			"--user", "default", "off", "--user", "app", "on", ">pw", "~*", "&*", "+@all", "-client"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			srv := startTestRedis(t, mode.args...)
			opts := &redis.Options{Addr: srv.addr()}
			password := ""
			if mode.user != "" {
				opts.Username, opts.Password, password = mode.user, "pw", "pw"
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })
			logs := &logBuffer{}
			name := uniqueName(t)
			rdb.Set(t.Context(), "resource:"+name, stampedRecord(500, "1764087331.5"), time.Hour)
			c := mustNewListening(t, name, rdb, newCountingLoader[string, item](staticData(twoItems)),
				WithReloadTTL(time.Hour), WithLogger(logs.logger()))
			if err := c.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "listening", func() bool { return c.Health().PushConnected })
			if !strings.Contains(logs.String(), `"mode":"`+mode.log+`"`) {
				t.Fatalf("not listening by %s; log: %s", mode.log, logs)
			}
			out, err := exec.Command(python, "-c", script, strconv.Itoa(srv.port), "resource:"+name,
				mode.user, password, strconv.Itoa(writes)).CombinedOutput()
			if err != nil {
				t.Fatalf("python writer: %v: %s", err, out)
			}
			want := "v" + strconv.Itoa(writes-1)
			eventually(t, "the last record is served", func() bool {
				v, _ := c.Get(t.Context(), "a")
				return v.Name == want
			})
		})
	}
}

// A Cache closed while a notification's reload is pending starts no reload
// when its moment comes, and one closed during a notified reload lets it end.
func TestHostileCloseDuringNotifiedReload(t *testing.T) {
	srv := startTestRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	name := uniqueName(t)
	key := "resource:" + name
	admin.Set(t.Context(), key, stampedRecord(1000, "1764087331.5"), 0)
	c := mustNew(t, name, rdb, newCountingLoader[string, item](staticData(twoItems)), WithPushSpread(0))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Closed during the read: the server is paused for a second, the
	// reload's GETRANGE waits for it.
	admin.Set(t.Context(), key, stampedRecord(1000, "1764087391.5"), 0)
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", 1000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	c.notified(time.Now())
	eventually(t, "the notified reload has started", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reloading != nil
	})
	c.Close()
	waitNotifiedReload(t, c, cmds)
	c.notified(time.Now())
	c.reloadAfterNotification(readNew)
	c.mu.Lock()
	running := c.reloading
	c.mu.Unlock()
	if running != nil {
		t.Error("a notification after Close started a reload")
	}
}

// A Cache that serves nothing yet and is asked to Reload a record it cannot
// use (another type, an empty string) replaces it from its source; one over
// the maximum size is an error wrapping ErrRecordTooLarge, and the record is
// left alone.
func TestHostileFirstReloadOfUnusableRecord(t *testing.T) {
	srv := startTestRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		write    func(key string) error
		tooLarge bool
	}{
		{name: "list", write: func(k string) error { return rdb.RPush(ctx, k, "x").Err() }},
		{name: "hash", write: func(k string) error { return rdb.HSet(ctx, k, "data", "{}").Err() }},
		{name: "empty string", write: func(k string) error { return rdb.Set(ctx, k, "", 0).Err() }},
		{name: "over the maximum", tooLarge: true, write: func(k string) error {
			return rdb.Set(ctx, k, stampedRecord(2001, "1764087331.5"), 0).Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName(t)
			key := "resource:" + name
			if err := tc.write(key); err != nil {
				t.Fatal(err)
			}
			metrics := &recordedMetrics{}
			loader := newCountingLoader[string, item](staticData(twoItems))
			c := mustNew(t, name, rdb, loader, WithMaxRecordSize(2000), WithMetrics(metrics))
			err := c.Reload(ctx)
			if tc.tooLarge {
				if !errors.Is(err, ErrRecordTooLarge) || loader.calls.Load() != 0 {
					t.Errorf("Reload = %v after %d loads, want ErrRecordTooLarge and no load", err, loader.calls.Load())
				}
				return
			}
			if err != nil || loader.calls.Load() != 1 {
				t.Fatalf("Reload = %v after %d loads, want a refill", err, loader.calls.Load())
			}
			if typ := rdb.Type(ctx, key).Val(); typ != "string" || c.Health().RecordSize == 0 {
				t.Errorf("after the refill the key is a %s, serving a record of %d bytes", typ, c.Health().RecordSize)
			}
			if n := metrics.get(name, StatusRedisError); n != 0 {
				t.Errorf("%d redis_error counted", n)
			}
		})
	}
}

// While the source fails, every failed load EXPIREs the record to keep it
// alive (each process's periodic Refill, Python's too), and client tracking
// announces each EXPIRE as a write. A Cache that keeps finding the record it
// serves after such notifications must stop reading the whole record for
// each: a fleet of N refilling processes would otherwise send N x N records
// per refill period for nothing (measured: 10 EXPIREs of a 1 MiB record, 10.5
// MB sent to one listening process; a tail check costs a few bytes).
func TestHostileExpireStormIsNotReadWhole(t *testing.T) {
	srv := startTestRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close(); rdb.Close() })
	name := uniqueName(t)
	key := "resource:" + name
	admin.Set(t.Context(), key, stampedRecord(100<<10, "1764087331.5"), time.Hour)
	c := mustNewListening(t, name, rdb, newCountingLoader[string, item](staticData(twoItems)), WithReloadTTL(time.Hour))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "listening", func() bool { return c.Health().PushConnected })
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	const expires = 6
	reads := 0
	for range expires {
		admin.Expire(t.Context(), key, time.Hour)
		for _, cmd := range waitNotifiedReload(t, c, cmds) {
			if cmd == "getrange" {
				reads++
			}
		}
	}
	if reads > 2 {
		t.Errorf("%d EXPIREs of the served record, each notified: read whole %d times, want at most 2", expires, reads)
	}
	// The source is back: the next write is still read (after a look at its
	// tail), and the one after it in one round trip again.
	for i, ts := range []string{"1764087391.5", "1764087451.5"} {
		admin.Set(t.Context(), key, stampedRecord(100<<10, ts), time.Hour)
		got := strings.Join(waitNotifiedReload(t, c, cmds), " ")
		if want := ts[:10]; strconv.FormatInt(c.Health().RecordTime.Unix(), 10) != want {
			t.Errorf("write %d after the EXPIREs: serving the record of %v, want %s", i+1, c.Health().RecordTime, want)
		}
		if i == 1 && got != "getrange" {
			t.Errorf("the second write after the EXPIREs: commands %q, want one getrange", got)
		}
	}
	// A new record starts the count again: the next two EXPIREs are read in
	// one round trip each, as after the first record.
	for i := range 2 {
		admin.Expire(t.Context(), key, time.Hour)
		if got := strings.Join(waitNotifiedReload(t, c, cmds), " "); got != "getrange" {
			t.Errorf("EXPIRE %d after a new record: commands %q, want one getrange", i+1, got)
		}
	}
}
