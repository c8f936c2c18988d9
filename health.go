package kiwicache

import "time"

// Health describes a Cache for probes, status pages and metrics. Key repeats
// Cache.Key so that a Health can be reported on its own.
type Health struct {
	Key        string    // resource:NAME[:SUFFIX]
	HasData    bool      // a snapshot is being served
	Items      int       // items in the snapshot
	RecordSize int       // bytes of the record the snapshot came from
	RecordTime time.Time // the snapshot's record timestamp: when its data left the source
	LoadedAt   time.Time // when this process made the snapshot
	// CheckedAt is when a reload last found the record in Redis to be the one
	// served (or installed it): a freshness probe compares it with ReloadTTL.
	CheckedAt     time.Time
	LastError     error // the latest failed reload or refill, nil if none yet
	LastErrorTime time.Time
	// ConsecutiveFailures counts reload and refill attempts that failed since
	// the last success.
	ConsecutiveFailures int
	// PushConnected reports whether the Cache is listening for notifications
	// of new records (see WithoutPush); LastNotification is when the latest
	// one arrived.
	PushConnected    bool
	LastNotification time.Time
}

// Health returns the Cache's state. It does no I/O.
func (c *Cache[K, V]) Health() Health {
	s := c.snap.Load()
	pushConnected, lastNotification := c.pushHealth() // see notify.go
	c.mu.Lock()
	defer c.mu.Unlock()
	return Health{
		Key:                 c.record.key,
		HasData:             s != nil,
		Items:               s.Len(),
		RecordSize:          s.size(),
		RecordTime:          s.Timestamp(),
		LoadedAt:            s.LoadedAt(),
		CheckedAt:           unixNano(c.checkedAt.Load()),
		LastError:           c.lastErr,
		LastErrorTime:       c.lastErrTime,
		ConsecutiveFailures: c.failures,
		PushConnected:       pushConnected,
		LastNotification:    lastNotification,
	}
}

// unixNano is the time of ns nanoseconds since the epoch; zero for 0.
func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
