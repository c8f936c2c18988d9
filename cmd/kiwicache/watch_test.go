package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// event reads the next line of watch --json.
func (r *running) event() watchEvent {
	r.t.Helper()
	line := r.next()
	var e watchEvent
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		r.t.Fatalf("not an event: %q: %v", line, err)
	}
	return e
}

// record is a record in the Go writer's form.
func record(t *testing.T, data map[string]any) string {
	return string(must(kiwicache.JSONCodec[string, any]{}.Encode(kiwicache.Record[string, any]{Data: data, Timestamp: time.Now()})))
}

func counts(e watchEvent) string {
	if e.Counts == nil {
		return "no counts"
	}
	return fmt.Sprintf("+%d -%d ~%d %v %v %v", e.Counts.Added, e.Counts.Removed, e.Counts.Changed, e.Added, e.Removed, e.Changed)
}

// On a real redis-server, watch learns of every write through client
// tracking (its own check is an hour away, so only a notification can bring
// an event): each new record with the keys added, removed and changed,
// counted; a rewrite of the same data by another writer (Python's spacing)
// with no key changed; a deletion, a malformed record, a key of another
// type. It re-arms tracking after its subscription connection is killed,
// ignores other records under the same prefix, and stops on SIGINT with
// exit status 0.
func TestWatchTracking(t *testing.T) {
	// A server of its own: the test kills every pub/sub connection on it.
	url := "redis://" + startRedis(t) + "/0"
	rdb := client(t, url)
	ctx := context.Background()
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": "Czech", "FR": "Ryanair", "LH": "Lufthansa"}), 0)

	w := startCmd(t, url, "--json", "watch", "Airlines", "--interval", "1h")
	if e := w.event(); e.Event != "watching" || e.Via != "tracking" || e.Key != "resource:Airlines" || e.Interval != "1h0m0s" {
		t.Fatalf("first event: %+v", e)
	}
	if e := w.event(); e.Event != "current" || *e.Items != 3 || e.Counts != nil {
		t.Fatalf("current: %+v", e)
	}

	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": "ČSA", "FR": "Ryanair", "W6": "Wizz"}), 0)
	if e := w.event(); e.Event != "record" || *e.Items != 3 || counts(e) != "+1 -1 ~1 [W6] [LH] [OK]" || e.Timestamp == nil {
		t.Errorf("new record: %+v, %s", e, counts(e))
	}
	// The same data as Python writes it: spaces, another member order.
	rdb.Set(ctx, "resource:Airlines", `{"data": {"W6": "Wizz", "FR": "Ryanair", "OK": "\u010cSA"}, "timestamp": 1795623598.2517178}`, 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+0 -0 ~0 [] [] []" {
		t.Errorf("same data rewritten: %+v, %s", e, counts(e))
	}
	rdb.Set(ctx, "resource:Airlines:backup", record(t, map[string]any{"x": 1}), 0) // same prefix, another record

	// go-redis reconnects the subscription under a new client ID: watch
	// re-arms tracking for it.
	must(0, rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err())
	time.Sleep(200 * time.Millisecond) // let the kill land before the write
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": "ČSA"}), 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+0 -2 ~0 [] [FR W6] []" {
		t.Errorf("after the subscription was killed: %+v, %s", e, counts(e))
	}
	// That record may have been found by the check after re-arming; this
	// one, written after, comes by a notification to the new connection.
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": "ČSA", "FR": "Ryanair"}), 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+1 -0 ~0 [FR] [] []" {
		t.Errorf("tracking re-armed: %+v, %s", e, counts(e))
	}

	rdb.Del(ctx, "resource:Airlines")
	if e := w.event(); e.Event != "deleted" {
		t.Errorf("deletion: %+v", e)
	}
	rdb.Set(ctx, "resource:Airlines", "nope", 0)
	if e := w.event(); e.Event != "malformed" || e.Malformed == "" || *e.Bytes != 4 {
		t.Errorf("malformed: %+v", e)
	}
	rdb.Del(ctx, "resource:Airlines")
	w.event()
	rdb.HSet(ctx, "resource:Airlines", "a", "b")
	if e := w.event(); e.Event != "wrong_type" || e.Type != "hash" {
		t.Errorf("wrong type: %+v", e)
	}
	rdb.Del(ctx, "resource:Airlines")
	w.event()
	// After a deletion, keys compare with the last data seen.
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": "ČSA", "BA": "British"}), 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+1 -1 ~0 [BA] [FR] []" {
		t.Errorf("after deletion: %+v, %s", e, counts(e))
	}

	w.cmd.Process.Signal(syscall.SIGINT)
	status, rest := w.wait()
	if status != 0 || len(rest) != 1 || !strings.Contains(rest[0], `"event":"stopped"`) || !strings.Contains(rest[0], `"reason":"interrupted"`) ||
		!strings.Contains(rest[0], `"changes":10`) {
		t.Errorf("after SIGINT: exit status %d, %q; stderr: %s", status, rest, w.stderr)
	}
}

// Without client tracking (an ACL user without CLIENT) but with keyspace
// notifications on, watch uses those and says why; --count ends it.
func TestWatchKeyspace(t *testing.T) {
	addr := startRedis(t, "--notify-keyspace-events", "K$g")
	admin := client(t, "redis://"+addr+"/2")
	ctx := context.Background()
	must(0, admin.Do(ctx, "ACL", "SETUSER", "watcher", "on", ">pw", "~*", "&*", "+@all", "-client").Err())
	url := fmt.Sprintf("redis://watcher:pw@%s/2", addr)

	w := startCmd(t, url, "--json", "watch", "Airlines", "--interval", "1h", "--count", "2")
	if e := w.event(); e.Via != "keyspace" || !strings.Contains(e.Fallback, "client tracking: ") || !strings.Contains(e.Fallback, "NOPERM") {
		t.Fatalf("first event: %+v", e)
	}
	if e := w.event(); e.Event != "current" || e.Timestamp != nil {
		t.Fatalf("current, with no record: %+v", e)
	}
	admin.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": 1}), 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+1 -0 ~0 [OK] [] []" {
		t.Errorf("record: %+v %s", e, counts(e))
	}
	admin.Del(ctx, "resource:Airlines")
	if e := w.event(); e.Event != "deleted" {
		t.Errorf("deleted: %+v", e)
	}
	status, rest := w.wait()
	if status != 0 || len(rest) != 1 || !strings.Contains(rest[0], `"reason":"count"`) {
		t.Errorf("exit status %d, %q; stderr: %s", status, rest, w.stderr)
	}

	// Forced, where the server has them off: an error, exit status 3.
	plain := startRedis(t)
	expectErr(t, kiwicacheCmd(t, "redis://"+plain+"/0", "watch", "Airlines", "--via", "keyspace"), exitRedis,
		`keyspace notifications: off on this server (notify-keyspace-events is ""`)
}

// With neither (miniredis has no client tracking), watch polls the length
// and tail; its text output says what changed, escaped, and --timeout ends
// it with exit status 0.
func TestWatchPolling(t *testing.T) {
	url := miniRedis(t)
	rdb := client(t, url)
	ctx := context.Background()
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": 1, "FR": 2}), 0)
	w := startCmd(t, url, "watch", "Airlines", "--interval", "20ms", "--timeout", "3s")
	if line := w.next(); !strings.Contains(line, "watching resource:Airlines via polling (client tracking: ") || !strings.Contains(line, "every 20ms") {
		t.Fatalf("first line: %q", line)
	}
	if line := w.next(); !strings.Contains(line, "current") || !strings.Contains(line, "2 items") {
		t.Fatalf("current: %q", line)
	}
	rdb.Set(ctx, "resource:Airlines", record(t, map[string]any{"OK": 1, "FR": 3, "X\x1b[2J": 4}), 0)
	line := w.next()
	if !strings.Contains(line, `  new        timestamp 20`) || !strings.Contains(line, "3 items") ||
		!strings.HasSuffix(line, `+1 -0 ~1  added: "X\x1b[2J"  changed: FR`) {
		t.Errorf("new record: %q", line)
	}
	checkNoHostileBytes(t, "watch", line)
	status, rest := w.wait()
	if status != 0 || len(rest) != 1 || rest[0] != "stopped (timeout) after 1 changes" {
		t.Errorf("exit status %d, %q; stderr: %s", status, rest, w.stderr)
	}
	expectErr(t, kiwicacheCmd(t, url, "watch", "Airlines", "--via", "tracking"), exitRedis, "CLIENT TRACKING resource:Airlines")
}

// A watch outlives Redis going away and coming back: it says so on stderr
// once, then that it recovered, and goes on.
func TestWatchSurvivesRedisRestart(t *testing.T) {
	s, err := newRedisServer(t.TempDir())
	if err != nil {
		skipreport.Skip(t, "real redis-server", err.Error())
	}
	defer func() { s.stop() }()
	w := startCmd(t, "redis://"+s.addr+"/0", "--json", "watch", "Airlines", "--interval", "50ms")
	if e := w.event(); e.Via != "tracking" {
		t.Fatalf("first event: %+v", e)
	}
	w.event() // current: none
	s.stop()
	w.waitStderr("(retrying)")
	if s, err = newRedisServerAt(s.addr, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	defer rdb.Close()
	rdb.Set(context.Background(), "resource:Airlines", record(t, map[string]any{"OK": 1}), 0)
	if e := w.event(); e.Event != "record" || counts(e) != "+1 -0 ~0 [OK] [] []" {
		t.Errorf("after the restart: %+v %s", e, counts(e))
	}
	w.waitStderr("recovered")
	w.cmd.Process.Signal(syscall.SIGINT)
	if status, _ := w.wait(); status != 0 || strings.Count(w.stderr.String(), "(retrying)") != 1 {
		t.Errorf("exit status %d; stderr: %s", status, w.stderr)
	}
}
