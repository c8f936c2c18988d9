package kiwicache

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// commandLog records the names of the commands a client sends.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) add(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cmds {
		if name := c.Name(); name != "hello" && name != "client" { // a new connection's
			l.names = append(l.names, name)
		}
	}
}

// take returns the commands logged since the last take.
func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := l.names
	l.names = nil
	return names
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { l.add(cmd); return next(ctx, cmd) }
}
func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { l.add(cmds...); return next(ctx, cmds) }
}

// The tiny golden record, and the same with another value of equal length
// and another timestamp of equal length, as a later Python write would be.
var (
	tinyRecord    = `{"data": {"k0": {"id": 0, "name": "item-0", "price": 0.0, "tags": ["a", "b"], "active": true}}, "timestamp": 1795623598.2485168}`
	tinyRewritten = `{"data": {"k0": {"id": 0, "name": "item-X", "price": 0.0, "tags": ["a", "b"], "active": true}}, "timestamp": 1795623658.2485169}`
	// tinyInPlace is tinyRecord changed in place: same length, same tail.
	tinyInPlace = `{"data": {"k0": {"id": 0, "name": "item-Y", "price": 0.0, "tags": ["a", "b"], "active": true}}, "timestamp": 1795623598.2485168}`
)

// A periodic reload of an unchanged record reads its length and tail, not
// the record; a change of equal length (a new timestamp) is read at once, in
// the same round trip.
func TestUnchangedRecordIsNotRead(t *testing.T) {
	if len(tinyRecord) != len(tinyRewritten) || len(tinyRecord) != len(tinyInPlace) {
		t.Fatal("test records differ in length")
	}
	for name, rdb := range testClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			key := "resource:Tiny" + name
			rdb.Set(ctx, key, tinyRecord, 0)
			t.Cleanup(func() { rdb.Del(context.Background(), key) })
			c := mustNew(t, "Tiny"+name, rdb, newCountingLoader[string, item](staticData(twoItems)))
			r := &c.record

			first, err := r.fetch(ctx, recordID{size: unknownID})
			if err != nil || string(first.b) != tinyRecord {
				t.Fatalf("first fetch = %q, %v", first.b, err)
			}
			again, err := r.fetch(ctx, first.id)
			if err != nil || again.b != nil || !again.unchanged(first.id) {
				t.Errorf("fetch of the known record = %q (unchanged %v), %v; want no bytes", again.b, again.unchanged(first.id), err)
			}
			rdb.Set(ctx, key, tinyRewritten, 0)
			changed, err := r.fetch(ctx, first.id)
			if err != nil || string(changed.b) != tinyRewritten || changed.id == first.id {
				t.Errorf("fetch after a rewrite = %q, %v; want the new record", changed.b, err)
			}

			// Through the Cache: the periodic reload keeps the snapshot while the
			// record is unchanged, and takes the rewrite.
			rdb.Set(ctx, key, tinyRecord, 0)
			if err := c.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			loaded := c.Health().LoadedAt
			if err := c.reloadWithAttempts(ctx, checkTail); err != nil {
				t.Fatal(err)
			}
			if h := c.Health(); h.LoadedAt != loaded || !h.CheckedAt.After(loaded) {
				t.Errorf("unchanged record: LoadedAt %v -> %v, CheckedAt %v; want the same snapshot, checked later", loaded, h.LoadedAt, h.CheckedAt)
			}
			rdb.Set(ctx, key, tinyRewritten, 0)
			if err := c.reloadWithAttempts(ctx, checkTail); err != nil {
				t.Fatal(err)
			}
			if v := must(c.Get(ctx, "k0")); v.Name != "item-X" {
				t.Errorf("after an equal-length rewrite Get = %+v, want item-X", v)
			}
		})
	}
}

// A record changed in place (same length, same tail) looks unchanged to the
// periodic reload, by design; Reload reads it whole and serves it.
func TestReloadReadsRecordChangedInPlace(t *testing.T) {
	mr, rdb := newMiniredis(t)
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	mr.Set("resource:Tiny", tinyRecord)
	c := mustNew(t, "Tiny", rdb, newCountingLoader[string, item](staticData(twoItems)))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	mr.Set("resource:Tiny", tinyInPlace)
	if err := c.reloadWithAttempts(t.Context(), checkTail); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-0" {
		t.Errorf("periodic reload of an in-place change: Get = %+v; the tail check should not have seen it", v)
	}
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-Y" {
		t.Errorf("after Reload, Get = %+v, want item-Y", v)
	}
	// Each Reload is one GETRANGE; the periodic reload, one read-only script
	// call (the first one loads the script: EVALSHA_RO, then EVAL_RO).
	if got := strings.Join(cmds.take(), " "); got != "getrange evalsha_ro eval_ro getrange" {
		t.Errorf("commands %q: want a GETRANGE per Reload, a script call for the periodic reload", got)
	}
}

// testClients returns a miniredis client and, when there is one, a client of
// the real redis-server: the record's scripts must run the same on both.
func testClients(t *testing.T) map[string]redis.UniversalClient {
	_, mini := newMiniredis(t)
	clients := map[string]redis.UniversalClient{"Mini": mini}
	if realRedisURL != "" {
		clients["Real"] = realRedis(t)
	}
	return clients
}
