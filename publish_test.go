package kiwicache

// What a writer publishes after it writes the record (PUSH.md): after a
// refill and after a write-back, never when nothing was written; SPUBLISH on
// Cluster with a fall back to PUBLISH that is remembered; a failed publish
// logged, the write itself still a success.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// After a write-back of the snapshot (a failed load, the record gone), the
// writer publishes on the record's channel; a write-back that found a record
// there (SET NX did not write) publishes nothing.
func TestWriteBackPublishes(t *testing.T) {
	for _, recordThere := range []bool{false, true} {
		mr, rdb := newMiniredis(t)
		l := newCountingLoader[string, item](staticData(twoItems))
		c := mustNew(t, "Items", rdb, l, WithoutPush())
		must(c.Snapshot(t.Context()))
		mr.Del("resource:Items")
		if recordThere { // another process writes between EXPIRE and SET NX
			rdb.AddHook(&atCommand{match: isCommand("expire", "resource:Items"), then: func() {
				mr.Set("resource:Items", tinyRecord)
			}})
		}
		publishes := &countCommands{match: isCommand("publish", PushChannel("resource:Items"))}
		rdb.AddHook(publishes)
		l.set(func(context.Context) (map[string]item, error) { return nil, errors.New("source down") })
		c.Refill(t.Context())
		if want := map[bool]int64{false: 1, true: 0}[recordThere]; publishes.n.Load() != want {
			t.Errorf("record there: %v: %d publishes after the write-back, want %d", recordThere, publishes.n.Load(), want)
		}
	}
}

// On Cluster a writer publishes with SPUBLISH; a server that does not know
// SPUBLISH (Redis 6; miniredis) is asked once, then PUBLISH is used.
func TestClusterPublishFallsBackOnce(t *testing.T) {
	_, clients := guardClients(t)
	rdb := clients["cluster"]
	spublish := &countCommands{match: func(cmd redis.Cmder) bool { return cmd.Name() == "spublish" }}
	publish := &countCommands{match: isCommand("publish", PushChannel("resource:Items"))}
	rdb.AddHook(spublish)
	rdb.AddHook(publish)
	logs := &logBuffer{}
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithoutPush(), WithLogger(logs.logger()))
	for range 3 {
		if err := c.Refill(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if spublish.n.Load() != 1 || publish.n.Load() != 3 {
		t.Errorf("3 refills on a cluster without SPUBLISH: %d SPUBLISH, %d PUBLISH; want 1 and 3", spublish.n.Load(), publish.n.Load())
	}
	if strings.Contains(logs.String(), "publish_failed") {
		t.Errorf("a publish failed:\n%s", logs)
	}
}

// A publish that fails is logged as a warning (kiwicache.publish_failed); the
// refill wrote the record, and returns nil. One that succeeds logs nothing.
func TestFailedPublishIsLogged(t *testing.T) {
	for _, fails := range []bool{false, true} {
		_, rdb := newMiniredis(t)
		logs := &logBuffer{}
		if fails {
			rdb.AddHook(&failFirst{match: isCommand("publish", PushChannel("resource:Items"))})
		}
		c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithoutPush(), WithLogger(logs.logger()))
		if err := c.Refill(t.Context()); err != nil {
			t.Errorf("Refill = %v, want nil: the record was written", err)
		}
		if got := logs.has("WARN", "kiwicache.publish_failed"); got != fails {
			t.Errorf("publish fails: %v; kiwicache.publish_failed logged: %v:\n%s", fails, got, logs)
		}
	}
}
