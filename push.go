package kiwicache

// The Cache's side of push notifications (PUSH.md): its options, what it does
// when notified, and the spreading of a fleet's reloads over time. The
// subscription that delivers the notifications is in notify.go; the publish
// after each write is the record store's (record.go).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults of the push and spreading options.
const (
	// DefaultPushSpreadPerMB is, per megabyte (10^6 bytes) of the record a
	// process serves, the window over which the processes notified of a write
	// spread their reads of the record, unless WithPushSpread sets a window:
	// a 100 KB record is read within 1 ms, a 10 MB one within 100 ms.
	DefaultPushSpreadPerMB = 10 * time.Millisecond
	// DefaultReloadJitter is the fraction by which each reload period varies
	// at random around ReloadTTL (see WithReloadJitter).
	DefaultReloadJitter = 0.1
)

// Channels and key prefixes of PUSH.md.
const (
	// pushChannelPrefix + record key is the channel a write is published on.
	pushChannelPrefix = "kiwicache:"
	// recordKeyPrefix is what client tracking watches: every record key.
	recordKeyPrefix = "resource:"
	// trackingChannel is where Redis sends client tracking's invalidations to
	// a RESP2 connection that redirects them to itself.
	trackingChannel = "__redis__:invalidate"
)

// WithoutPush makes the Cache rely on its ReloadTTL alone: it does not listen
// for notifications of new records. Its own writes are still published, for
// the processes that listen.
func WithoutPush() Option {
	return func(c *config) { c.push.off = true }
}

// WithPushSpread sets the window over which processes spread their reads
// after a notification: each waits a random time in [0, d) before it reads
// the record, so that a fleet does not fetch a big record from one Redis
// shard in the same millisecond. 0 reads at once. Default: in proportion to
// the size of the record served, DefaultPushSpreadPerMB per megabyte.
// SCALING.md explains how to size it for a fleet and a record.
func WithPushSpread(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("push spread %v is negative", d))
		}
		c.push.spread, c.push.spreadSet = d, true
	}
}

// WithReloadJitter makes each reload period ReloadTTL times a random factor
// in [1-fraction, 1+fraction], so that the processes of a fleet started
// together do not reload in lockstep. 0 reloads exactly every ReloadTTL; the
// fraction must be below 1. Default: DefaultReloadJitter (±10%).
func WithReloadJitter(fraction float64) Option {
	return func(c *config) {
		if !(fraction >= 0 && fraction < 1) {
			c.errs = append(c.errs, fmt.Errorf("reload jitter %v is not in [0, 1)", fraction))
		}
		c.push.jitter, c.push.jitterSet = fraction, true
	}
}

// pushConfig is what the options above set; the zero value means defaults.
type pushConfig struct {
	off       bool
	spread    time.Duration
	spreadSet bool
	jitter    float64
	jitterSet bool
}

// spreadWindow is the push spread for a record of size bytes.
func (p pushConfig) spreadWindow(size int) time.Duration {
	if !p.spreadSet {
		return time.Duration(float64(size) / 1e6 * float64(DefaultPushSpreadPerMB))
	}
	return p.spread
}

func (p pushConfig) jitterFraction() float64 {
	if !p.jitterSet {
		return DefaultReloadJitter
	}
	return p.jitter
}

// pushState is a Cache's part in push notifications.
type pushState struct {
	sub *pushSubscription // nil with WithoutPush or when the client cannot listen
	// pending is set while a reload for a notification is scheduled and has
	// not started: a burst of notifications schedules one reload.
	pending atomic.Bool
	last    atomic.Int64 // when the latest notification arrived, Unix ns; 0: none
	// sameReads counts the reads after a notification of a write, in a row,
	// that found the record served: from maxSameReads on, the notifications
	// are taken for EXPIREs (every failed load keeps the record alive so,
	// and client tracking announces it as a write), and the record's length
	// and tail are looked at first. A reload that finds a new record resets it.
	sameReads atomic.Int32
}

// maxSameReads is how many reads after a notification may find the served
// record in a row before the next notification looks at its length and tail
// first. Two, not one: the process that wrote a record reads it after its own
// notification, which says nothing about the next notification.
const maxSameReads = 2

// startPush subscribes the Cache to notifications of writes of its record,
// unless WithoutPush. It does no I/O: the subscription connects in the
// background, shared by every Cache on the same client.
func (c *Cache[K, V]) startPush() {
	if c.cfg.push.off {
		return
	}
	c.push.sub = listen(c.record.rdb, c, c.log)
	if c.push.sub == nil {
		c.log.Info("kiwicache.push_unavailable", "key", c.record.key,
			"reason", fmt.Sprintf("client type %T cannot subscribe; reloads every ReloadTTL", c.record.rdb))
	}
}

// stopPush ends the Cache's part in the subscription; the last Cache to stop
// closes it.
func (c *Cache[K, V]) stopPush() {
	if c.push.sub != nil {
		c.push.sub.stop()
	}
}

// notified is called when a notification says that the record may have
// changed: it named the record, or the database was flushed. The Cache reads
// the record soon after, at a random moment within the push spread: one of
// up to notifiedReadLimit in one round trip, a larger one after a look at its
// length and tail. A Cache that has not served anything yet does not: its
// first read loads.
func (c *Cache[K, V]) notified(at time.Time) {
	c.push.last.Store(at.UnixNano())
	c.reloadSoon(true)
}

// resubscribed is called when the subscription is (again) in place:
// notifications may have been missed while it was not. The Cache reads the
// record as after a notification, but looks at its length and tail first
// (a whole fleet resubscribes after a failover, and most records have not
// changed).
func (c *Cache[K, V]) resubscribed() { c.reloadSoon(false) }

// reloadSoon schedules a reload within the push spread; written: a write was
// announced.
func (c *Cache[K, V]) reloadSoon(written bool) {
	s := c.snap.Load()
	if s == nil || !c.push.pending.CompareAndSwap(false, true) {
		return
	}
	mode := checkTail
	if written && s.size() <= notifiedReadLimit && c.push.sameReads.Load() < maxSameReads {
		mode = readNew
	}
	time.AfterFunc(randomDuration(c.cfg.push.spreadWindow(s.size())), func() { c.reloadAfterNotification(mode) })
}

// reloadAfterNotification starts a reload. A reload that is already running
// may have read the record before the write it was notified of: it waits for
// that one, then starts another.
func (c *Cache[K, V]) reloadAfterNotification(mode readMode) {
	c.mu.Lock()
	running := c.reloading
	c.mu.Unlock()
	if running != nil {
		<-running.done
	}
	c.push.pending.Store(false)
	c.startReload(mode)
}

// notifiedReadLimit is the largest served record after whose notification a
// reload reads the record in one round trip, without a look at its length
// and tail first: a notification mostly announces a new record, and the
// round trip saved is a sixth of a 100 KB record's reload. Client tracking
// cannot tell a write from an EXPIRE (a record prolonged while the source
// fails), after which the record is read for nothing: a larger one, whose
// reload a round trip hardly changes, is looked at first, and so is any after
// maxSameReads reads in a row that found the served record.
const notifiedReadLimit = 1 << 20

// pushHealth reports, for Health, whether the Cache is listening and when
// the latest notification arrived.
func (c *Cache[K, V]) pushHealth() (connected bool, last time.Time) {
	if ns := c.push.last.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return c.push.sub != nil && c.push.sub.n.isConnected(), last
}

// reloadPeriod is ReloadTTL varied by the reload jitter.
func (c *Cache[K, V]) reloadPeriod() time.Duration {
	return jitter(c.cfg.reloadTTL, c.cfg.push.jitterFraction())
}

// jitter returns d times a random factor in [1-fraction, 1+fraction],
// at least 1 ns, and without overflow for huge d.
func jitter(d time.Duration, fraction float64) time.Duration {
	if fraction <= 0 || d <= 0 {
		return d
	}
	f := float64(d) * (1 + fraction*(2*rand.Float64()-1))
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return max(time.Duration(f), 1)
}

// randomDuration returns a random duration in [0, window), 0 for window <= 0.
func randomDuration(window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	return rand.N(window)
}

// PushChannel returns the channel on which a write of the record key
// (resource:NAME[:SUFFIX]) is published: kiwicache:resource:NAME[:SUFFIX].
// PUSH.md describes the channel and its payload, for writers other than a
// Cache (a script, the CLI) that want listening processes to reload at once.
func PushChannel(recordKey string) string { return pushChannelPrefix + recordKey }

// PushPayload returns the message published on PushChannel after a write of
// a record with timestamp ts and size bytes: {"timestamp": ts, "bytes": size}
// with ts in seconds, as in the record. Listeners read the record whatever
// the payload says; it is for people and tools watching the channel.
func PushPayload(ts time.Time, size int) string {
	b := append([]byte(`{"timestamp": `), appendUnixSeconds(nil, ts)...)
	b = append(b, `, "bytes": `...)
	b = strconv.AppendInt(b, int64(size), 10)
	return string(append(b, '}'))
}
