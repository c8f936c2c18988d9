package kiwicache

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
)

// issue 4.3: an unchanged record costs a STRLEN and a GETRANGE of its tail,
// not a GET; a change of equal length is still seen.
func TestUnchangedRecordIsNotRead(t *testing.T) {
	if len(tinyRecord) != len(tinyRewritten) {
		t.Fatal("test records differ in length")
	}
	mr, rdb := newMiniredis(t)
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	mr.Set("resource:Tiny", tinyRecord)
	c := mustNew(t, "Tiny", rdb, newCountingLoader[string, item](staticData(twoItems)))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := cmds.take(); !slices.Equal(got, []string{"get"}) {
		t.Errorf("first reload sent %v, want [get]", got)
	}
	loaded := c.Health().LoadedAt

	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := cmds.take(); !slices.Equal(got, []string{"strlen", "getrange"}) {
		t.Errorf("reload of an unchanged record sent %v, want [strlen getrange]", got)
	}
	if c.Health().LoadedAt != loaded {
		t.Error("an unchanged record replaced the snapshot")
	}

	mr.Set("resource:Tiny", tinyRewritten)
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := cmds.take(); !slices.Equal(got, []string{"strlen", "getrange", "get"}) {
		t.Errorf("reload of a changed record sent %v, want [strlen getrange get]", got)
	}
	if v := must(c.Get(t.Context(), "k0")); v.Name != "item-X" {
		t.Errorf("after an equal-length change Get = %+v, want the new value", v)
	}
}

// A record whose timestamp is not last is read whole every time, and a
// deleted record is refilled: the check never keeps an old snapshot.
func TestUnchangedCheckFallsBack(t *testing.T) {
	mr, rdb := newMiniredis(t)
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	mr.Set("resource:Tiny", `{"timestamp": 1795623598.2485168, "data": {"k0": {"name": "one"}}}`)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "Tiny", rdb, l)
	for _, want := range []string{"one", "two"} {
		if err := c.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		if v := must(c.Get(t.Context(), "k0")); v.Name != want {
			t.Errorf("Get = %+v, want %s", v, want)
		}
		mr.Set("resource:Tiny", `{"timestamp": 1795623598.2485168, "data": {"k0": {"name": "two"}}}`)
	}
	if got := cmds.take(); len(slices.DeleteFunc(got, func(s string) bool { return s != "get" })) != 2 {
		t.Errorf("commands %v: want a GET on each of the 2 reloads", got)
	}

	mr.Del("resource:Tiny")
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" || l.calls.Load() != 1 {
		t.Errorf("after the record was deleted: Get(a) = %+v, loader calls %d; want a refill", v, l.calls.Load())
	}
}

func TestTailTimestamp(t *testing.T) {
	want := time.Unix(1795623598, 248517000)
	for _, tail := range []string{
		`"active": true}}, "timestamp": 1795623598.2485168}`,
		`}},"timestamp":1795623598.248517}`,
		"}}\n  ,\n \"timestamp\" :\t1795623598.2485168 \n}\n",
		`{"timestamp": 1.7956235982485168e9}`,
	} {
		if got, ok := tailTimestamp([]byte(tail)); !ok || !got.Equal(want) {
			t.Errorf("tailTimestamp(%q) = %v, %v; want %v", tail, got, ok, want)
		}
	}
	for _, tail := range []string{
		``,
		`}`,
		`"timestamp": 1795623598.2485168}}`, // the last member is an object
		`"x\"timestamp": 1795623598.2485168}`,
		`, "timestamp": "1795623598.2485168"}`,
		`, "timestamp": 17956x3598}`,
		`, "timestamp" 1795623598}`,
		`, "timestamp": }`,
		`, "stamp": 1795623598}`,
	} {
		if got, ok := tailTimestamp([]byte(tail)); ok {
			t.Errorf("tailTimestamp(%q) = %v, want no timestamp", tail, got)
		}
	}
}

// On a real redis-server, with the 10,000-item record as Python writes it:
// an unchanged reload reads the tail only, and an equal-length change is seen.
func TestRealRedisUnchangedReload(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	rec := pythonRecord(10_000, "1795623598.2485168")
	if err := rdb.Set(t.Context(), key, rec, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	c := mustNew(t, name, rdb, LoaderFunc[string, item](staticData(twoItems)))
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	loaded := c.Health().LoadedAt
	if err := c.Reload(t.Context()); err != nil || c.Health().LoadedAt != loaded {
		t.Fatalf("unchanged reload: %v, snapshot replaced: %v", err, c.Health().LoadedAt != loaded)
	}

	changed := bytes.Replace(pythonRecord(10_000, "1795623658.2485169"), []byte(`"item-9999"`), []byte(`"ITEM-9999"`), 1)
	if len(changed) != len(rec) || !strings.Contains(string(changed), "ITEM") {
		t.Fatal("bad test record")
	}
	if err := rdb.Set(t.Context(), key, changed, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := must(c.Get(t.Context(), "k9999")); v.Name != "ITEM-9999" {
		t.Errorf("after an equal-length change Get = %+v", v)
	}
}
