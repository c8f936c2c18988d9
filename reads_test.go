package kiwicache

// Reads: the fast path of a fresh snapshot, and one reload for any number of
// readers of a stale one.

import (
	"sync"
	"testing"
	"time"
)

// Get and Snapshot serve a fresh snapshot from the fresh pointer alone (one
// atomic load, then the map lookup), not through the slow path: the slow
// path's snapshot is made to differ here, so a read that went through it
// would show.
func TestFreshReadsTakeTheFastPath(t *testing.T) {
	_, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithReloadTTL(time.Hour))
	must(c.Get(t.Context(), "a"))
	fresh := c.fresh.Load()
	c.snap.Store(&Snapshot[string, item]{items: tableOf(map[string]item{"a": {Name: "slow path"}})})
	if v := must(c.Get(t.Context(), "a")); v.Name != "one" {
		t.Errorf("Get of a fresh snapshot = %q, want it from the fast path", v.Name)
	}
	if s := must(c.Snapshot(t.Context())); s != fresh {
		t.Error("Snapshot of a fresh snapshot did not return the fresh one")
	}
	c.snap.Store(fresh)
}

// However many readers find the snapshot stale at once, one reload runs: one
// round trip to Redis (the record's identity, unchanged), not one per reader.
func TestStaleReadsStartOneReload(t *testing.T) {
	_, rdb := newMiniredis(t)
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	const ttl = 200 * time.Millisecond
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](staticData(twoItems)), WithReloadTTL(ttl))
	must(c.Get(t.Context(), "a"))
	eventually(t, "the snapshot goes stale", func() bool { return c.fresh.Load() == nil })
	cmds.take()

	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
				t.Errorf("Get of a stale snapshot = %+v, %v", v, err)
			}
		})
	}
	close(start)
	wg.Wait()
	eventually(t, "the reload is over", func() bool { return c.fresh.Load() != nil })
	if got := cmds.take(); len(got) != 1 || got[0] != "evalsha_ro" {
		t.Errorf("50 readers of a stale snapshot sent %v, want one read-only script call", got)
	}
}

// A snapshot installed by Refill is fresh: a snapshot that had gone stale
// before it does not make the next read start a reload.
func TestRefillEndsStaleness(t *testing.T) {
	_, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, newCountingLoader[string, item](staticData(twoItems)))
	must(c.Snapshot(t.Context()))
	c.stale.Store(true) // what the reload timer does once ReloadTTL has passed
	c.fresh.Store(nil)
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	fetches := &countCommands{match: isScript(fetchScript)}
	rdb.AddHook(fetches)
	c.Get(t.Context(), "absent") // the slow path: it would start a reload of a stale snapshot
	c.Reload(t.Context())        // waits for such a reload, then reads the record whole (no fetch script)
	if n := fetches.n.Load(); n != 0 {
		t.Errorf("a read after Refill started a reload (%d fetch scripts)", n)
	}
}
