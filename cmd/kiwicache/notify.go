package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A notifier tells watch when the record may have changed. Redis offers
// two ways that need no cooperation from the writers (a Python kiwi-cache
// process publishes nothing): client tracking in broadcast mode (Redis 6+,
// no server configuration) and keyspace notifications (only when the
// server's notify-keyspace-events has them on).
type notifier struct {
	via      string // tracking, keyspace or poll
	fallback string // why auto chose a lesser way
	changed  chan struct{}
	// maintain runs after a notification: it re-arms what a reconnection
	// undid, before the record is read.
	maintain func(context.Context)
	// verify runs before each safety check: the same, unconditionally.
	verify func(context.Context)
	close  func()
}

func newNotifier(via string) *notifier {
	return &notifier{via: via, changed: make(chan struct{}, 1),
		maintain: func(context.Context) {}, verify: func(context.Context) {}, close: func() {}}
}

// signal asks for a check; signals while one is pending merge.
func (n *notifier) signal() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// notifications sets up the way via ("auto": tracking, else keyspace, else
// polling) to learn of writes to the record.
func (w *watcher) notifications(ctx context.Context, via string) (*notifier, error) {
	switch via {
	case "poll":
		return newNotifier("poll"), nil
	case "tracking":
		n, err := w.track(ctx)
		if err != nil {
			return nil, redisFailure("CLIENT TRACKING", w.key, err)
		}
		return n, nil
	case "keyspace":
		n, err := w.keyspace(ctx)
		if err != nil {
			return nil, failure{statusOf(err), fmt.Errorf("keyspace notifications: %w", err)}
		}
		return n, nil
	case "auto":
		n, err := w.track(ctx)
		if err == nil {
			return n, nil
		}
		why := "client tracking: " + err.Error()
		if n, err = w.keyspace(ctx); err == nil {
			n.fallback = why
			return n, nil
		}
		n = newNotifier("poll")
		n.fallback = why + "; keyspace notifications: " + err.Error()
		return n, nil
	}
	return nil, fail(exitUsage, "--via %q: want auto, tracking, keyspace or poll", via)
}

// subscriber is a client of its own for a subscription, speaking RESP2:
// Redis sends a RESP2 subscriber the invalidations of client tracking as
// messages on __redis__:invalidate (a RESP3 one gets push replies instead).
// onConnect is told the client ID of each of its connections, the first and
// those after a reconnection.
func (w *watcher) subscriber(onConnect func(id int64)) (*redis.Client, error) {
	opts, err := redis.ParseURL(w.c.url)
	if err != nil {
		return nil, err
	}
	opts.Protocol = 2
	opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if id, err := cn.ClientID(ctx).Result(); err == nil {
			onConnect(id)
		}
		return nil
	}
	return redis.NewClient(opts), nil
}

// listen turns the subscription's messages that accept says are about the
// record into signals, until done is closed. An error (a dropped
// connection, which go-redis re-opens under a new client ID; a FLUSHDB,
// whose invalidation has a nil payload that go-redis cannot read) is a
// signal too: something may have been missed.
func listen(ps *redis.PubSub, n *notifier, done <-chan struct{}, accept func(*redis.Message) bool) {
	for {
		msg, err := ps.Receive(context.Background())
		select {
		case <-done:
			return
		default:
		}
		if err != nil {
			n.signal()
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if m, ok := msg.(*redis.Message); ok && accept(m) {
			n.signal()
		}
	}
}

// track sets up client tracking in broadcast mode for the record key: one
// connection subscribes to __redis__:invalidate, another asks Redis to
// send it every write of a key that starts with the record key.
func (w *watcher) track(ctx context.Context) (*notifier, error) {
	n := newNotifier("tracking")
	var subscriberID atomic.Int64
	sub, err := w.subscriber(func(id int64) {
		subscriberID.Store(id)
		n.signal() // a new connection: re-arm and check
	})
	if err != nil {
		return nil, err
	}
	ps := sub.Subscribe(ctx, "__redis__:invalidate")
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		ps.Close()
		sub.Close()
		return nil, err
	}
	tracker := w.c.rdb.Conn()
	var armed int64
	// arm (re)starts tracking on the tracker connection, redirected to the
	// subscriber's current connection. A broken tracker connection is
	// replaced.
	arm := func(ctx context.Context) error {
		id := subscriberID.Load()
		var err error
		for range 2 {
			tracker.Do(ctx, "CLIENT", "TRACKING", "off")
			err = tracker.Do(ctx, "CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST", "PREFIX", w.key).Err()
			if err == nil {
				armed = id
				return nil
			}
			if redis.IsPermissionError(err) || ctx.Err() != nil {
				break
			}
			tracker.Close()
			tracker = w.c.rdb.Conn()
		}
		return err
	}
	if err := arm(ctx); err != nil {
		ps.Close()
		sub.Close()
		tracker.Close()
		return nil, err
	}
	n.maintain = func(ctx context.Context) {
		if subscriberID.Load() != armed {
			arm(ctx)
		}
	}
	// The tracker connection may have been replaced by go-redis after an
	// error, with tracking off: re-arm at every safety check.
	n.verify = func(ctx context.Context) { arm(ctx) }
	done := make(chan struct{})
	go listen(ps, n, done, func(m *redis.Message) bool {
		// BCAST PREFIX resource:A also reports resource:A:backup.
		return m.Channel == "__redis__:invalidate" && slices.Contains(m.PayloadSlice, w.key)
	})
	n.close = func() {
		close(done)
		ps.Close()
		sub.Close()
		tracker.Close()
	}
	return n, nil
}

// keyspace subscribes to the keyspace notifications of the record key, if
// the server sends them for string commands.
func (w *watcher) keyspace(ctx context.Context) (*notifier, error) {
	config, err := w.c.rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return nil, redisFailure("CONFIG GET", "notify-keyspace-events", err)
	}
	flags := config["notify-keyspace-events"]
	if !strings.Contains(flags, "K") || !strings.ContainsAny(flags, "A$") {
		return nil, fail(exitRedis, "off on this server (notify-keyspace-events is %q; they need K and $ or A)", flags)
	}
	n := newNotifier("keyspace")
	sub, err := w.subscriber(func(int64) { n.signal() })
	if err != nil {
		return nil, err
	}
	channel := fmt.Sprintf("__keyspace@%d__:%s", w.c.db, w.key)
	ps := sub.Subscribe(ctx, channel)
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		ps.Close()
		sub.Close()
		return nil, err
	}
	done := make(chan struct{})
	go listen(ps, n, done, func(m *redis.Message) bool { return m.Channel == channel })
	n.close = func() {
		close(done)
		ps.Close()
		sub.Close()
	}
	return n, nil
}
