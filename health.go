package kiwicache

import "time"

// Health describes a Cache for probes and dashboards.
type Health struct {
	Key           string    // resource:NAME[:SUFFIX]
	HasData       bool      // a snapshot is being served
	Items         int       // items in the snapshot
	RecordTime    time.Time // the snapshot's record timestamp: when its data left the source
	LoadedAt      time.Time // when this process made the snapshot
	LastError     error     // the latest failed reload or refill, nil if none yet
	LastErrorTime time.Time
	// ConsecutiveFailures counts reload and refill attempts that failed since
	// the last success.
	ConsecutiveFailures int
}

// Health returns the Cache's state. It does no I/O.
func (c *Cache[K, V]) Health() Health {
	s := c.snap.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Health{
		Key:                 c.key,
		HasData:             s != nil,
		Items:               s.Len(),
		RecordTime:          s.Timestamp(),
		LoadedAt:            s.LoadedAt(),
		LastError:           c.lastErr,
		LastErrorTime:       c.lastErrTime,
		ConsecutiveFailures: c.failures,
	}
}
