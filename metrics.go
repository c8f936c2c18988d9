package kiwicache

import (
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// A Status is the outcome a Cache counts, as PROTOCOL.md names it.
type Status string

// The statuses a Cache counts.
const (
	// StatusSuccess: a record was written to Redis after a source load.
	StatusSuccess Status = "success"
	// StatusRedisError: a Redis command failed.
	StatusRedisError Status = "redis_error"
	// StatusLoadError: the source failed, panicked, returned disallowed empty
	// data or data a guard refused, or its data could not be encoded.
	StatusLoadError Status = "load_error"
	// StatusNotWritten: a load outlived its refill lock and found a newer
	// record written meanwhile, so it did not write its own (the Python
	// library has no such outcome).
	StatusNotWritten Status = "not_written"
)

// Metrics counts a cache's outcomes. Count is called on the load path, never
// on Get, and must be safe for concurrent use.
//
// Metrics that also implement Observer are told how long operations took.
type Metrics interface {
	Count(cacheName string, status Status)
}

// An Op names an operation whose duration an Observer is told.
type Op string

// The timed operations.
const (
	// OpReload: a reload of the snapshot from Redis, whatever it found (an
	// unchanged record, a new one, or none, then a refill).
	OpReload Op = "reload"
	// OpRefill: a refill, from taking the lock to writing the record.
	OpRefill Op = "refill"
	// OpLockWait: a wait for another process's refill lock.
	OpLockWait Op = "lock_wait"
)

// An Observer is told the duration and outcome (err nil on success) of each
// timed operation. It is an optional extension of Metrics, called on the load
// path only, and must be safe for concurrent use.
type Observer interface {
	Observe(cacheName string, op Op, d time.Duration, err error)
}

type noMetrics struct{}

func (noMetrics) Count(string, Status) {}

// DefaultMetricName is the counter the Python kiwi-cache increments.
const DefaultMetricName = "kiwicache"

// Tag names for DogStatsD.NameTag: kiwi-cache 0.4.5 tags the counter with
// name:NAME; 0.5.0 renamed the tag cache_name:NAME.
const (
	NameTag045 = "name"
	NameTag050 = "cache_name"
)

// DogStatsD counts outcomes as the Python library does: the counter
// DefaultMetricName (or Name), tagged name:NAME (or NameTag:NAME) and
// status:STATUS.
//
// The zero value of every field but Client is the Python 0.4.5 default.
type DogStatsD struct {
	Client statsd.ClientInterface
	Name   string // the counter's name; empty means DefaultMetricName
	// NameTag is the tag that carries the cache's name; empty means NameTag045
	// ("name"), what 0.4.5 dashboards count. Set NameTag050 for 0.5.0's.
	NameTag string
}

// Count increments the counter. A failed send is dropped: statsd is
// fire-and-forget, and a cache must not fail for want of a metric. Without a
// Client, nothing is sent.
func (d *DogStatsD) Count(cacheName string, status Status) {
	if d == nil || d.Client == nil {
		return
	}
	name, tag := d.Name, d.NameTag
	if name == "" {
		name = DefaultMetricName
	}
	if tag == "" {
		tag = NameTag045
	}
	_ = d.Client.Incr(name, []string{tag + ":" + cacheName, "status:" + string(status)}, 1)
}

// observe tells m, if it is an Observer, how long op took since start.
func observe(m Metrics, cacheName string, op Op, start time.Time, err error) {
	if o, ok := m.(Observer); ok {
		o.Observe(cacheName, op, time.Since(start), err)
	}
}
