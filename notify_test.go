package kiwicache

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeRecordAs writes a record as another writer would (the Python library
// writes the same bytes), without publishing anything.
func writeRecordAs(t testing.TB, rdb redis.UniversalClient, key string, data map[string]item) {
	t.Helper()
	b, err := JSONCodec[string, item]{}.Encode(Record[string, item]{Data: data, Timestamp: time.Now().Truncate(time.Microsecond)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(context.Background(), key, b, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// versionOf returns the version that versionData wrote into the item k0.
func versionOf(t testing.TB, c *Cache[string, item]) string {
	t.Helper()
	v, err := c.Get(t.Context(), "k0")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v.Name
}

// withPush undoes testOpts' WithoutPush: the Cache listens, as by default.
func withPush() Option {
	return func(c *config) { c.push.off = false }
}

// mustNewListening is mustNew for a Cache that listens for push notifications.
func mustNewListening[K comparable, V any](t testing.TB, name string, rdb redis.UniversalClient, l Loader[K, V], opts ...Option) *Cache[K, V] {
	t.Helper()
	return mustNew(t, name, rdb, l, append([]Option{withPush()}, opts...)...)
}

func pubsubClients(t testing.TB, rdb *redis.Client) int {
	t.Helper()
	list, err := rdb.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(list, "\n")
}

// A write by a writer that publishes nothing (as Python kiwi-cache 0.4.5)
// reaches a Cache whose ReloadTTL is an hour: client tracking sees every
// write of resource:*. A write of another record does not notify it.
func TestPushTrackingSeesEveryWriter(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+"Other") })
	writeRecordAs(t, rdb, key, versionData(3, 1))
	logs := &logBuffer{}
	c := mustNewListening(t, name, rdb, LoaderFunc[string, item](staticData(versionData(3, 0))),
		WithReloadTTL(time.Hour), WithLogger(logs.logger()))
	if v := versionOf(t, c); v != "v1" {
		t.Fatalf("first read served %s, want v1", v)
	}
	eventually(t, "the subscription is connected", func() bool { return c.Health().PushConnected })
	if !strings.Contains(logs.String(), `"mode":"client tracking"`) {
		t.Errorf("not listening by client tracking; log: %s", logs)
	}

	before := c.Health().LastNotification
	writer := realRedis(t) // another connection, as another process
	writeRecordAs(t, writer, key+"Other", versionData(3, 9))
	writeRecordAs(t, writer, key, versionData(3, 2))
	eventually(t, "the new record is served", func() bool { return versionOf(t, c) == "v2" })
	h := c.Health()
	if !h.LastNotification.After(before) {
		t.Errorf("LastNotification %v did not move past %v", h.LastNotification, before)
	}
	if h.LoadedAt.Before(h.LastNotification) {
		t.Errorf("snapshot loaded at %v, before the notification at %v", h.LoadedAt, h.LastNotification)
	}
}

// New starts listening unless WithoutPush.
func TestPushIsOnByDefault(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	t.Cleanup(func() { rdb.Del(context.Background(), "resource:"+name) })
	c, err := New(name, rdb, LoaderFunc[string, item](staticData(versionData(3, 1))),
		WithRegistry(nil), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	versionOf(t, c)
	eventually(t, "the default Cache listens", func() bool { return c.Health().PushConnected })
}

// Every Cache on one client shares one subscription connection; it closes
// when the last of them does. Another client has its own.
func TestPushOneConnectionPerClient(t *testing.T) {
	srv := startTestRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	one := redis.NewClient(&redis.Options{Addr: srv.addr()})
	two := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { one.Close(); two.Close() })
	l := LoaderFunc[string, item](staticData(versionData(3, 1)))
	var caches []*Cache[string, item]
	for _, name := range []string{"A", "B", "C"} {
		caches = append(caches, mustNewListening(t, name, one, l))
	}
	other := mustNewListening(t, "A", two, l, WithSuffix("other"))
	for _, c := range append(caches, other) {
		eventually(t, c.Key()+" listens", func() bool { return c.Health().PushConnected })
	}
	if n := pubsubClients(t, admin); n != 2 {
		t.Errorf("%d subscription connections for 4 caches on 2 clients, want 2", n)
	}
	caches[0].Close()
	caches[1].Close()
	if !caches[2].Health().PushConnected {
		t.Error("closing two of three caches stopped the third's subscription")
	}
	if n := pubsubClients(t, admin); n != 2 {
		t.Errorf("%d subscription connections with one cache left on each client, want 2", n)
	}
	caches[2].Close()
	other.Close()
	eventually(t, "every subscription connection is closed", func() bool { return pubsubClients(t, admin) == 0 })
	notifiers.Lock()
	left := len(notifiers.m)
	notifiers.Unlock()
	if left != 0 {
		t.Errorf("%d notifiers left after every cache closed", left)
	}
}

// After the subscription drops and comes back, every listening Cache reads
// its record: writes may have been missed meanwhile. Here Redis restarts
// empty, so the reads find no record and refill it, with ReloadTTL an hour.
func TestPushReconnectReloadsEveryCache(t *testing.T) {
	srv := startTestRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	var loaders []*countingLoader[string, item]
	var caches []*Cache[string, item]
	for _, name := range []string{"One", "Two"} {
		l := newCountingLoader[string, item](staticData(versionData(3, 1)))
		c := mustNewListening(t, name, rdb, l, WithReloadTTL(time.Hour))
		versionOf(t, c)
		eventually(t, "listening", func() bool { return c.Health().PushConnected })
		loaders, caches = append(loaders, l), append(caches, c)
	}
	srv.kill()
	eventually(t, "the cache sees the subscription drop", func() bool { return !caches[0].Health().PushConnected })
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	for i, c := range caches {
		eventually(t, c.Key()+" is refilled", func() bool { return loaders[i].calls.Load() == 2 })
		eventually(t, c.Key()+" listens again", func() bool { return c.Health().PushConnected })
		if n, err := rdb.Exists(t.Context(), c.Key()).Result(); err != nil || n != 1 {
			t.Errorf("%s not in Redis after the reconnect: %d, %v", c.Key(), n, err)
		}
	}
}

// FLUSHALL reaches client tracking as a message with no keys: every Cache
// reads its record again (and, finding none, refills it).
func TestPushFlushReloadsEveryCache(t *testing.T) {
	srv := startTestRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { rdb.Close() })
	l := newCountingLoader[string, item](staticData(versionData(3, 1)))
	c := mustNewListening(t, "Flushed", rdb, l, WithReloadTTL(time.Hour))
	versionOf(t, c)
	eventually(t, "listening", func() bool { return c.Health().PushConnected })
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the record is refilled", func() bool { return l.calls.Load() == 2 })
}

// A server that refuses client tracking (an ACL without the client command,
// as on some managed Redis) but has keyspace notifications on: the Cache
// listens to them and still sees every writer.
func TestPushFallsBackToKeyspaceNotifications(t *testing.T) {
	srv := startTestRedis(t, "--notify-keyspace-events", "K$g",
		"--user", "default", "off",
		"--user", "app", "on", ">pw", "~*", "&*", "+@all", "-client")
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: "app", Password: "pw"})
	t.Cleanup(func() { rdb.Close() })
	logs := &logBuffer{}
	c := mustNewListening(t, "Keyspace", rdb, LoaderFunc[string, item](staticData(versionData(3, 1))),
		WithReloadTTL(time.Hour), WithLogger(logs.logger()))
	versionOf(t, c)
	eventually(t, "listening", func() bool { return c.Health().PushConnected })
	if !strings.Contains(logs.String(), `"mode":"keyspace notifications"`) {
		t.Fatalf("not listening to keyspace notifications; log: %s", logs)
	}
	writeRecordAs(t, rdb, c.Key(), versionData(3, 2))
	eventually(t, "the new record is served", func() bool { return versionOf(t, c) == "v2" })
}

// A server that refuses client tracking and CONFIG (so keyspace notifications
// cannot be detected, and are not assumed): the Cache listens to the channel
// that this library's writers publish to, and a refill elsewhere reaches it.
func TestPushFallsBackToPublishChannels(t *testing.T) {
	srv := startTestRedis(t, "--notify-keyspace-events", "K$g",
		"--user", "default", "off",
		"--user", "app", "on", ">pw", "~*", "&*", "+@all", "-client", "-config")
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: "app", Password: "pw"})
	writerClient := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: "app", Password: "pw"})
	t.Cleanup(func() { rdb.Close(); writerClient.Close() })
	logs := &logBuffer{}
	c := mustNewListening(t, "Published", rdb, LoaderFunc[string, item](staticData(versionData(3, 1))),
		WithReloadTTL(time.Hour), WithLogger(logs.logger()))
	versionOf(t, c)
	eventually(t, "listening", func() bool { return c.Health().PushConnected })
	if !strings.Contains(logs.String(), `"mode":"publish channels"`) {
		t.Fatalf("not listening to the publish channels; log: %s", logs)
	}
	writer := mustNew(t, "Published", writerClient, LoaderFunc[string, item](staticData(versionData(3, 2))), WithoutPush())
	if err := writer.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refilled record is served", func() bool { return versionOf(t, c) == "v2" })
}

// A Cache with WithoutPush opens no subscription and reports none, but its
// writes are published: PUSH.md's channel and payload.
func TestWithoutPushStillPublishes(t *testing.T) {
	srv := startTestRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { rdb.Close() })
	ps := rdb.Subscribe(t.Context(), "kiwicache:resource:Quiet")
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(t.Context()); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	c := mustNew(t, "Quiet", rdb, LoaderFunc[string, item](staticData(versionData(3, 1))), WithoutPush())
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveMessage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Timestamp json.Number `json:"timestamp"`
		Bytes     int         `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(msg.Payload), &payload); err != nil {
		t.Fatalf("payload %q: %v", msg.Payload, err)
	}
	h := c.Health()
	ts, err := parseUnixSeconds(string(payload.Timestamp))
	if err != nil || !ts.Equal(h.RecordTime) || payload.Bytes != h.RecordSize {
		t.Errorf("payload %q, want the record's timestamp %v and size %d", msg.Payload, h.RecordTime, h.RecordSize)
	}
	if h.PushConnected {
		t.Error("Health reports push connected with WithoutPush")
	}
	if n := pubsubClients(t, rdb); n != 1 { // the test's own
		t.Errorf("%d subscription connections, want only the test's", n)
	}
}

// gatedCodec blocks Decode while its gate is closed.
type gatedCodec struct {
	JSONCodec[string, item]
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{}
}

func (g *gatedCodec) Decode(b []byte) (Record[string, item], error) {
	g.mu.Lock()
	gate, entered := g.gate, g.entered
	g.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	return g.JSONCodec.Decode(b)
}

func (g *gatedCodec) close() (gate, entered chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.entered = make(chan struct{}), make(chan struct{})
	return g.gate, g.entered
}

func (g *gatedCodec) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = nil
}

// A write notified while a reload is reading an older record is not lost: a
// second read follows the reload in progress (which may have read the record
// before the write).
func TestPushNotificationDuringReload(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	key := "resource:" + name
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	writeRecordAs(t, rdb, key, versionData(3, 1))
	codec := &gatedCodec{}
	c := mustNewListening(t, name, rdb, LoaderFunc[string, item](staticData(versionData(3, 0))),
		WithReloadTTL(time.Hour), WithCodec(codec), WithPushSpread(0))
	versionOf(t, c)
	eventually(t, "listening", func() bool { return c.Health().PushConnected })

	gate, entered := codec.close()
	writeRecordAs(t, rdb, key, versionData(3, 2))
	<-entered // the notified reload is decoding v2
	codec.open()
	writeRecordAs(t, rdb, key, versionData(3, 3))
	time.Sleep(50 * time.Millisecond) // the notification of v3 arrives while v2 decodes
	close(gate)
	eventually(t, "the last record is served", func() bool { return versionOf(t, c) == "v3" })
}

// Each reload period varies within ±jitter of ReloadTTL, and not by the same
// amount each time; no jitter gives the exact period; huge TTLs do not
// overflow.
func TestReloadJitter(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := LoaderFunc[string, item](staticData(versionData(3, 1)))
	c := mustNew(t, "Jitter", rdb, l, WithReloadTTL(time.Minute), WithoutPush())
	seen := map[time.Duration]bool{}
	for range 100 {
		d := c.reloadPeriod()
		if d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("reload period %v outside 1m ±10%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d different periods in 100", len(seen))
	}
	exact := mustNew(t, "Exact", rdb, l, WithReloadTTL(time.Minute), WithReloadJitter(0), WithoutPush())
	if d := exact.reloadPeriod(); d != time.Minute {
		t.Errorf("without jitter the period is %v, want 1m", d)
	}
	wide := mustNew(t, "Wide", rdb, l, WithReloadTTL(time.Minute), WithReloadJitter(0.5), WithoutPush())
	for range 100 {
		if d := wide.reloadPeriod(); d < 30*time.Second || d > 90*time.Second {
			t.Fatalf("reload period %v outside 1m ±50%%", d)
		}
	}
	if d := jitter(math.MaxInt64, 0.1); d <= 0 {
		t.Errorf("jitter of the largest duration overflowed to %v", d)
	}
	for range 100 {
		if d := randomDuration(time.Millisecond); d < 0 || d >= time.Millisecond {
			t.Fatalf("spread delay %v outside [0, 1ms)", d)
		}
	}
	if d := randomDuration(0); d != 0 {
		t.Errorf("spread 0 gave a delay of %v", d)
	}
}

func TestPushOptionsRefuseBadValues(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := LoaderFunc[string, item](staticData(versionData(3, 1)))
	for name, opt := range map[string]Option{
		"negative spread": WithPushSpread(-time.Second),
		"jitter 1":        WithReloadJitter(1),
		"negative jitter": WithReloadJitter(-0.1),
		"NaN jitter":      WithReloadJitter(math.NaN()),
	} {
		if _, err := New("Bad", rdb, l, testOpts(opt)...); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// The payload is PUSH.md's: the record's timestamp as the record has it, and
// its size.
func TestPushPayload(t *testing.T) {
	ts := time.Unix(1764087331, 412345000)
	if got, want := PushPayload(ts, 10485760), `{"timestamp": 1764087331.412345, "bytes": 10485760}`; got != want {
		t.Errorf("PushPayload = %s, want %s", got, want)
	}
	if got := PushChannel("resource:Airlines:EU"); got != "kiwicache:resource:Airlines:EU" {
		t.Errorf("PushChannel = %s", got)
	}
}
