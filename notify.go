package kiwicache

// Push notifications: a write of a record reaches every process that serves
// it at once, instead of when its snapshot ages past ReloadTTL. PUSH.md
// describes the channels and payloads; this file has the listening side (one
// subscription per Redis client, shared by its caches), the publishing side,
// and the spreading of a fleet's reloads over time.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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

// pushHeartbeat is how long a subscription may stay silent before it is
// pinged; one more such wait without an answer and it is reconnected.
const pushHeartbeat = 15 * time.Second

// pushMaxBackoff bounds the pause between attempts to subscribe again;
// pushRetryRefused is the pause once the server refused every way to listen.
const (
	pushMaxBackoff   = 5 * time.Second
	pushRetryRefused = time.Minute
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
	// plainPublish is set once a cluster refused SPUBLISH (Redis < 7).
	plainPublish atomic.Bool
}

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
// the record soon after, at a random moment within the push spread; an
// unchanged record costs a tail check. A Cache that has not served anything
// yet does not: its first read loads.
func (c *Cache[K, V]) notified(at time.Time) {
	c.push.last.Store(at.UnixNano())
	c.reloadSoon()
}

// resubscribed is called when the subscription is (again) in place:
// notifications may have been missed while it was not. The Cache reads the
// record as after a notification.
func (c *Cache[K, V]) resubscribed() { c.reloadSoon() }

func (c *Cache[K, V]) reloadSoon() {
	s := c.snap.Load()
	if s == nil || !c.push.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(randomDuration(c.cfg.push.spreadWindow(s.size())), c.reloadAfterNotification)
}

// reloadAfterNotification starts a reload. A reload that is already running
// may have read the record before the write it was notified of: it waits for
// that one, then starts another.
func (c *Cache[K, V]) reloadAfterNotification() {
	c.mu.Lock()
	running := c.reloading
	c.mu.Unlock()
	if running != nil {
		<-running.done
	}
	c.push.pending.Store(false)
	c.startReload(checkTail)
}

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

// publishWrite tells the listening processes that this process wrote the
// record: PUBLISH on its channel, or SPUBLISH on Redis Cluster, where the
// message then goes to the one shard that holds the channel. A failure is
// logged, not returned: the write itself succeeded, and the others see it at
// their next reload.
func (c *Cache[K, V]) publishWrite(ctx context.Context, ts time.Time, size int) {
	channel, payload := PushChannel(c.record.key), PushPayload(ts, size)
	var err error
	if _, cluster := c.record.rdb.(*redis.ClusterClient); cluster && !c.push.plainPublish.Load() {
		err = c.record.rdb.SPublish(ctx, channel, payload).Err()
		if isUnknownCommand(err) {
			c.push.plainPublish.Store(true)
			err = c.record.rdb.Publish(ctx, channel, payload).Err()
		}
	} else {
		err = c.record.rdb.Publish(ctx, channel, payload).Err()
	}
	if err != nil {
		c.log.WarnContext(ctx, "kiwicache.publish_failed", "key", c.record.key, "channel", channel, "error", err)
	}
}

// refreshClusterState makes a ClusterClient read the cluster's slots again
// after a failed command. go-redis does so by itself only on MOVED, or every
// ClusterStateReloadInterval (a minute): after a failover, its commands would
// go to the dead master until then. (go-redis runs one reload at a time.)
func refreshClusterState(rdb redis.UniversalClient) {
	if cc, ok := rdb.(*redis.ClusterClient); ok && cc != nil {
		cc.ReloadState(context.Background())
	}
}

// A pushListener is what a notifier tells of writes: a Cache.
type pushListener interface {
	Key() string
	// notified: a message announced a write of Key, or a flush, at at.
	notified(at time.Time)
	// resubscribed: notifications may have been missed.
	resubscribed()
}

// A pushSubscription is one listener's part in a notifier.
type pushSubscription struct {
	n *notifier
	l pushListener
}

// notifiers holds the one notifier of each Redis client that Caches listen
// through. A notifier leaves it when its last listener stops, so it is empty
// whenever no Cache listens.
var notifiers = struct {
	sync.Mutex
	m map[redis.UniversalClient]*notifier
}{m: make(map[redis.UniversalClient]*notifier)}

// listen adds l to the notifier of rdb, starting one if there is none. It
// returns nil when rdb is of a type that cannot subscribe.
func listen(rdb redis.UniversalClient, l pushListener, log *slog.Logger) *pushSubscription {
	notifiers.Lock()
	defer notifiers.Unlock()
	n := notifiers.m[rdb]
	if n == nil {
		if n = newNotifier(rdb, log); n == nil {
			return nil
		}
		notifiers.m[rdb] = n
		n.start()
	}
	n.add(l)
	return &pushSubscription{n: n, l: l}
}

// stop removes the listener; the last one closes the subscription and waits
// until its goroutines have ended.
func (s *pushSubscription) stop() {
	notifiers.Lock()
	last := s.n.remove(s.l)
	if last {
		delete(notifiers.m, s.n.rdb)
	}
	notifiers.Unlock()
	if last {
		s.n.close()
	}
}

// A notifier is the subscription of one Redis client, shared by the Caches
// that use that client: one connection for a single server (or a Sentinel
// deployment's master), one per master for Redis Cluster. It tells each
// listener of the writes of its record key.
//
// Each connection listens in the first way the server allows (PUSH.md):
// client tracking of the prefix resource:, which sees every writer; else
// keyspace notifications, when the server has them on; else the channels
// that this library's writers publish to.
type notifier struct {
	rdb     redis.UniversalClient
	cluster *redis.ClusterClient // nil for a single server
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // asks run to reconcile the nodes with the listeners and topology

	mu        sync.Mutex
	listeners map[string]map[pushListener]struct{} // by record key
	nodes     map[string]*pushNode                 // by address
	routes    map[string]string                    // cluster: channel -> address of its shard's master
}

func newNotifier(rdb redis.UniversalClient, log *slog.Logger) *notifier {
	n := &notifier{rdb: rdb, log: log, kick: make(chan struct{}, 1),
		listeners: make(map[string]map[pushListener]struct{}), nodes: make(map[string]*pushNode)}
	switch r := rdb.(type) {
	case *redis.ClusterClient:
		if r == nil {
			return nil
		}
		n.cluster = r
	case *redis.Client:
		if r == nil {
			return nil
		}
	default:
		return nil // a Ring or a wrapper: nothing here knows its servers
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

func (n *notifier) start() {
	n.wg.Go(n.run)
}

func (n *notifier) close() {
	n.cancel()
	n.wg.Wait()
}

// add registers l and, when its key is new, has the nodes subscribe to its
// channel (needed only where they listen to the publish channels).
func (n *notifier) add(l pushListener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := n.listeners[l.Key()]
	if set == nil {
		set = make(map[pushListener]struct{})
		n.listeners[l.Key()] = set
		n.kickLocked()
	}
	set[l] = struct{}{}
}

// remove unregisters l and reports whether it was the last listener.
func (n *notifier) remove(l pushListener) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if set := n.listeners[l.Key()]; set != nil {
		delete(set, l)
		if len(set) == 0 {
			delete(n.listeners, l.Key())
		}
	}
	return len(n.listeners) == 0
}

func (n *notifier) kickLocked() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) kickTopology() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kickLocked()
}

// isConnected reports whether every node listens.
func (n *notifier) isConnected() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.nodes) == 0 {
		return false
	}
	for _, node := range n.nodes {
		if !node.isConnected() {
			return false
		}
	}
	return true
}

// notifyKey tells the listeners of key that it was written.
func (n *notifier) notifyKey(key string, at time.Time) {
	n.mu.Lock()
	ls := make([]pushListener, 0, len(n.listeners[key]))
	for l := range n.listeners[key] {
		ls = append(ls, l)
	}
	n.mu.Unlock()
	for _, l := range ls {
		l.notified(at)
	}
}

// notifyAll tells every listener that its record may have changed: a flush.
func (n *notifier) notifyAll(at time.Time) {
	for _, l := range n.allListeners() {
		l.notified(at)
	}
}

// resubscribed tells every listener that notifications may have been missed.
func (n *notifier) resubscribed() {
	for _, l := range n.allListeners() {
		l.resubscribed()
	}
}

func (n *notifier) allListeners() []pushListener {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ls []pushListener
	for _, set := range n.listeners {
		for l := range set {
			ls = append(ls, l)
		}
	}
	return ls
}

// channelsFor returns the publish channels that the node at addr must
// subscribe to: every listened key's on a single server; on a cluster, those
// whose slot the node serves.
func (n *notifier) channelsFor(addr string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var channels []string
	for key := range n.listeners {
		ch := PushChannel(key)
		if n.cluster == nil || n.routes[ch] == addr {
			channels = append(channels, ch)
		}
	}
	return channels
}

// run keeps one node per server (per master on a cluster) listening, and
// their publish channels up to date, until close.
func (n *notifier) run() {
	defer func() {
		n.mu.Lock()
		nodes := n.nodes
		n.nodes = nil
		n.mu.Unlock()
		for _, node := range nodes {
			node.stop()
		}
	}()
	for {
		if n.cluster != nil {
			n.reconcileCluster()
		} else {
			n.ensureSingleNode()
		}
		n.mu.Lock()
		nodes := make([]*pushNode, 0, len(n.nodes))
		for _, node := range n.nodes {
			nodes = append(nodes, node)
		}
		n.mu.Unlock()
		for _, node := range nodes {
			node.syncChannels()
		}
		// While a master is unreachable, look for its promoted replica
		// often; the rest of the time, now and then for resharding.
		wait := 30 * time.Second
		if n.cluster != nil && !n.isConnected() {
			wait = 500 * time.Millisecond
		}
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case <-time.After(wait):
		}
	}
}

func (n *notifier) ensureSingleNode() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.nodes) == 0 {
		opt := n.rdb.(*redis.Client).Options()
		node := newPushNode(n, opt)
		n.nodes[opt.Addr] = node
		node.start()
	}
}

// reconcileCluster listens on every master of the cluster and on no other
// node, and routes each publish channel to the master of its slot.
func (n *notifier) reconcileCluster() {
	var mu sync.Mutex
	masters := make(map[string]*redis.Client)
	err := n.cluster.ForEachMaster(n.ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters[m.Options().Addr] = m
		return nil
	})
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Debug("kiwicache.push_topology_failed", "error", err)
		}
		return
	}
	routes := make(map[string]string)
	n.mu.Lock()
	keys := make([]string, 0, len(n.listeners))
	for key := range n.listeners {
		keys = append(keys, key)
	}
	n.mu.Unlock()
	for _, key := range keys {
		ch := PushChannel(key)
		if m, err := n.cluster.MasterForKey(n.ctx, ch); err == nil {
			routes[ch] = m.Options().Addr
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes == nil { // closed meanwhile
		return
	}
	n.routes = routes
	for addr, node := range n.nodes {
		if masters[addr] == nil {
			delete(n.nodes, addr)
			go node.stop() // a failed master: its reconnects may take a while to give up
		}
	}
	for addr, m := range masters {
		if n.nodes[addr] == nil {
			node := newPushNode(n, m.Options())
			n.nodes[addr] = node
			node.start()
		}
	}
}

// A pushMode is how a node listens.
type pushMode int

const (
	modeTracking pushMode = iota // client tracking, broadcast mode, prefix resource:
	modeKeyspace                 // keyspace notifications of resource:*
	modePublish                  // the channels this library's writers publish to
	modeSharded                  // the same, sharded (SSUBSCRIBE), on a cluster
)

func (m pushMode) String() string {
	return [...]string{"client tracking", "keyspace notifications", "publish channels", "sharded publish channels"}[m]
}

// A pushNode is the subscription to one server: a connection of its own,
// kept subscribed, and subscribed again after it drops.
type pushNode struct {
	hub    *notifier
	addr   string
	opts   redis.Options // the node's, with RESP2 and onConnect
	db     int
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	probe      pushProbe
	refused    map[pushMode]error // ways the server refused: not tried again before pushRetryRefused
	ps         *redis.PubSub      // the live session's
	mode       pushMode
	subscribed map[string]bool // publish channels subscribed in this session
	connected  bool
}

// A pushProbe is what a new connection found out before subscribing.
type pushProbe struct {
	done     bool
	tracking error // nil: tracking is armed on the connection
	keyspace error // nil: keyspace notifications of string commands are on
}

// errKeyspaceOff: the server does not send keyspace notifications for SET.
var errKeyspaceOff = errors.New("notify-keyspace-events lacks K and A or $")

func newPushNode(hub *notifier, opt *redis.Options) *pushNode {
	ctx, cancel := context.WithCancel(hub.ctx)
	node := &pushNode{hub: hub, addr: opt.Addr, opts: *opt, db: opt.DB, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), refused: make(map[pushMode]error)}
	// RESP2: tracking redirected to a subscribed RESP2 connection arrives as
	// pub/sub messages on trackingChannel (RESP3 would send push frames that
	// a go-redis PubSub does not read).
	node.opts.Protocol = 2
	userOnConnect := opt.OnConnect
	node.opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if userOnConnect != nil {
			if err := userOnConnect(ctx, cn); err != nil {
				return err
			}
		}
		return node.onConnect(ctx, cn)
	}
	// Only the pub/sub connection is used, in RESP2: none of the client's
	// own caching, pipelining or RESP3 push handling applies to it.
	node.opts.PoolSize, node.opts.MinIdleConns, node.opts.Limiter = 1, 0, nil
	node.opts.PushNotificationProcessor, node.opts.MaintNotificationsConfig = nil, nil
	node.opts.ClientSideCache, node.opts.ClientSideCacheConfig = nil, nil
	node.opts.ClientSideCacheRefreshOnInvalidate, node.opts.ClientSideCacheCoalesceMisses = false, false
	node.opts.ClientSideCacheInvalidationBatchWindow, node.opts.AutoPipelineOptions = 0, nil
	return node
}

func (node *pushNode) start() {
	go node.run()
}

func (node *pushNode) stop() {
	node.cancel()
	<-node.done
}

func (node *pushNode) isConnected() bool {
	node.mu.Lock()
	defer node.mu.Unlock()
	return node.connected
}

// onConnect runs on each new connection before it subscribes: it arms client
// tracking, redirected to the connection itself, and failing that reads
// whether keyspace notifications are on. A refusal by the server is recorded
// for the session to choose another way; a broken connection fails the dial.
func (node *pushNode) onConnect(ctx context.Context, cn *redis.Conn) error {
	node.mu.Lock()
	tryTracking, tryKeyspace := node.refused[modeTracking] == nil, node.refused[modeKeyspace] == nil
	node.mu.Unlock()
	p := pushProbe{done: true, tracking: errors.New("refused earlier"), keyspace: errors.New("refused earlier")}
	if tryTracking {
		var id int64
		id, p.tracking = cn.ClientID(ctx).Result()
		if p.tracking == nil {
			p.tracking = cn.Do(ctx, "CLIENT", "TRACKING", "on", "REDIRECT", id,
				"BCAST", "PREFIX", recordKeyPrefix).Err()
		}
		if p.tracking != nil && !isPermanentRefusal(p.tracking) {
			return p.tracking
		}
	}
	if p.tracking != nil && tryKeyspace {
		var v map[string]string
		v, p.keyspace = cn.ConfigGet(ctx, "notify-keyspace-events").Result()
		if p.keyspace != nil && !isPermanentRefusal(p.keyspace) {
			return p.keyspace
		}
		if flags := v["notify-keyspace-events"]; p.keyspace == nil &&
			!(strings.Contains(flags, "K") && strings.ContainsAny(flags, "A$")) {
			p.keyspace = errKeyspaceOff
		}
	}
	node.mu.Lock()
	node.probe = p
	node.mu.Unlock()
	return nil
}

// run keeps the node subscribed until stop, with a growing pause (with
// jitter, so that a fleet does not reconnect in step) between attempts.
func (node *pushNode) run() {
	defer close(node.done)
	var backoff time.Duration
	failures := 0
	for node.ctx.Err() == nil {
		wasConnected, err := node.session()
		node.mu.Lock()
		node.connected, node.ps = false, nil
		node.mu.Unlock()
		if node.ctx.Err() != nil {
			return
		}
		if wasConnected {
			backoff, failures = 0, 0
		}
		failures++
		level := slog.LevelDebug
		if failures == 1 {
			level = slog.LevelWarn
		}
		node.hub.log.Log(node.ctx, level, "kiwicache.push_disconnected", "node", node.addr, "error", err)
		if node.hub.cluster != nil {
			node.hub.kickTopology() // a failover may have moved the slots
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), pushMaxBackoff)
		pause := backoff/2 + randomDuration(backoff)
		if errors.Is(err, errNoWayToListen) {
			node.hub.log.Error("kiwicache.push_unavailable", "node", node.addr,
				"reason", "the server refused every way to listen; reloads every ReloadTTL", "error", err)
			pause = pushRetryRefused
			node.mu.Lock()
			clear(node.refused)
			node.mu.Unlock()
		}
		if sleep(node.ctx, pause) != nil {
			return
		}
	}
}

// errNoWayToListen: the server refused the last resort, the publish channels.
var errNoWayToListen = errors.New("no way to listen")

// session connects, subscribes in the first way the server allows, tells
// every listener to reload (writes may have been missed while it was not
// subscribed), and dispatches messages until the connection fails.
func (node *pushNode) session() (connected bool, err error) {
	client := redis.NewClient(&node.opts)
	defer client.Close()
	ps := client.Subscribe(node.ctx)
	defer ps.Close()
	defer context.AfterFunc(node.ctx, func() { ps.Close() })()

	node.mu.Lock()
	node.probe = pushProbe{}
	node.mu.Unlock()
	// The first PING dials: onConnect probes the connection.
	if err := node.ping(ps); err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	mode, err := node.subscribe(ps)
	if err != nil {
		return false, err
	}
	// Redis answers in order: once the PING after the subscriptions is
	// answered, they are in place (or their refusal has arrived).
	if err := node.ping(ps); err != nil {
		if isPermanentRefusal(err) {
			node.refuse(mode, err)
			if mode == modePublish {
				err = fmt.Errorf("%w: %w", errNoWayToListen, err)
			}
		}
		return false, fmt.Errorf("subscribe (%s): %w", mode, err)
	}
	node.mu.Lock()
	node.connected = true
	node.mu.Unlock()
	node.hub.log.Info("kiwicache.push_listening", "node", node.addr, "mode", mode.String())
	node.hub.resubscribed()
	return true, node.receive(ps)
}

// ping sends PING and reads until its answer, dispatching what comes before.
func (node *pushNode) ping(ps *redis.PubSub) error {
	if err := ps.Ping(node.ctx); err != nil {
		return err
	}
	for {
		msg, err := ps.ReceiveTimeout(node.ctx, pushHeartbeat)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *redis.Pong:
			return nil
		case *redis.Message:
			node.dispatch(m)
		}
	}
}

// subscribe subscribes ps in the first way that the server did not refuse.
func (node *pushNode) subscribe(ps *redis.PubSub) (pushMode, error) {
	node.mu.Lock()
	defer node.mu.Unlock()
	p := node.probe
	if !p.done {
		return 0, errors.New("connection was not probed")
	}
	if p.tracking != nil && isPermanentRefusal(p.tracking) {
		node.refused[modeTracking] = p.tracking
	}
	if p.keyspace != nil && isPermanentRefusal(p.keyspace) {
		node.refused[modeKeyspace] = p.keyspace
	}
	node.ps, node.subscribed = ps, make(map[string]bool)
	switch {
	case p.tracking == nil:
		node.mode = modeTracking
		return node.mode, ps.Subscribe(node.ctx, trackingChannel)
	case p.keyspace == nil:
		node.mode = modeKeyspace
		return node.mode, ps.PSubscribe(node.ctx, fmt.Sprintf("__keyspace@%d__:%s*", node.db, recordKeyPrefix))
	case node.hub.cluster != nil && node.refused[modeSharded] == nil:
		node.mode = modeSharded
	default:
		node.mode = modePublish
	}
	node.hub.log.Debug("kiwicache.push_fallback", "node", node.addr, "mode", node.mode.String(),
		"tracking", errString(p.tracking), "keyspace", errString(p.keyspace))
	return node.mode, node.subscribeChannelsLocked()
}

// syncChannels subscribes the live session to the publish channels of keys
// that were added since it began.
func (node *pushNode) syncChannels() {
	node.mu.Lock()
	defer node.mu.Unlock()
	if node.ps == nil || (node.mode != modePublish && node.mode != modeSharded) {
		return
	}
	if err := node.subscribeChannelsLocked(); err != nil {
		node.ps.Close() // the session ends and starts again
	}
}

func (node *pushNode) subscribeChannelsLocked() error {
	for _, ch := range node.hub.channelsFor(node.addr) {
		if node.subscribed[ch] {
			continue
		}
		var err error
		if node.mode == modeSharded {
			err = node.ps.SSubscribe(node.ctx, ch) // one at a time: channels of different slots
		} else {
			err = node.ps.Subscribe(node.ctx, ch)
		}
		if err != nil {
			return err
		}
		node.subscribed[ch] = true
	}
	return nil
}

func (node *pushNode) refuse(mode pushMode, err error) {
	node.mu.Lock()
	defer node.mu.Unlock()
	node.refused[mode] = err
}

// receive dispatches messages until the connection fails, pinging it after
// pushHeartbeat of silence.
func (node *pushNode) receive(ps *redis.PubSub) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(node.ctx, pushHeartbeat)
		var netErr net.Error
		switch {
		case err == nil:
		case errors.As(err, &netErr) && netErr.Timeout():
			if pinged {
				return fmt.Errorf("no answer to PING in %v: %w", pushHeartbeat, err)
			}
			pinged = true
			if err := ps.Ping(node.ctx); err != nil {
				return err
			}
			continue
		case isFlushMessage(err):
			node.hub.notifyAll(time.Now())
			continue
		default:
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			node.dispatch(m)
		case *redis.Subscription:
			// The server ends a subscription itself when a slot moves away
			// (sunsubscribe) or the connection's permissions change.
			if strings.Contains(m.Kind, "unsubscribe") {
				return fmt.Errorf("server ended the subscription to %s (%s)", m.Channel, m.Kind)
			}
		}
	}
}

// dispatch tells the listeners of the keys a message names.
func (node *pushNode) dispatch(m *redis.Message) {
	now := time.Now()
	switch {
	case m.Channel == trackingChannel:
		if len(m.PayloadSlice) == 0 && m.Payload == "" {
			node.hub.notifyAll(now) // FLUSHALL or FLUSHDB: every key changed
			return
		}
		for _, key := range m.PayloadSlice {
			node.hub.notifyKey(key, now)
		}
		if m.Payload != "" {
			node.hub.notifyKey(m.Payload, now)
		}
	case strings.HasPrefix(m.Channel, "__keyspace@"):
		_, key, ok := strings.Cut(m.Channel, "__:")
		// expire and persist change only the TTL (a writer's SET EX sends
		// both set and expire; the set is enough).
		if ok && m.Payload != "expire" && m.Payload != "persist" {
			node.hub.notifyKey(key, now)
		}
	case strings.HasPrefix(m.Channel, pushChannelPrefix):
		node.hub.notifyKey(strings.TrimPrefix(m.Channel, pushChannelPrefix), now)
	}
}

// isFlushMessage recognizes how go-redis reports client tracking's message
// for FLUSHALL/FLUSHDB, whose payload is a nil array it does not decode. The
// connection stays usable. (Any other unreadable message ends the session,
// which also makes every listener reload: the safe side.)
func isFlushMessage(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unsupported pubsub message payload: <nil>")
}

// isPermanentRefusal reports whether err is the server's refusal of a command
// that it would refuse again: NOPERM (ACL), an unknown or disabled command,
// an argument it does not know (older servers). Not a failed connection, and
// not a passing state (LOADING, MOVED, TRYAGAIN, CLUSTERDOWN).
func isPermanentRefusal(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR")
}

func isUnknownCommand(err error) bool {
	return isPermanentRefusal(err) && strings.Contains(strings.ToLower(err.Error()), "unknown command")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
