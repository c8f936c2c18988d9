package kiwicache

// The subscription that delivers push notifications (PUSH.md): one per Redis
// client, shared by its caches, in the first way the server allows (client
// tracking, keyspace notifications, or this library's publish channels),
// kept connected and re-armed. What a Cache does when notified is in push.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
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
