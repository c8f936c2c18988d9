package kiwicache

import "github.com/DataDog/datadog-go/v5/statsd"

// A Status is the outcome a Cache counts, as PROTOCOL.md names it.
type Status string

// The statuses a Cache counts.
const (
	// StatusSuccess: a record was written to Redis after a source load.
	StatusSuccess Status = "success"
	// StatusRedisError: a Redis command failed.
	StatusRedisError Status = "redis_error"
	// StatusLoadError: the source failed, panicked or returned disallowed empty
	// data.
	StatusLoadError Status = "load_error"
)

// Metrics counts a cache's outcomes. Count is called on the load path, never
// on Get, and must be safe for concurrent use.
type Metrics interface {
	Count(cacheName string, status Status)
}

type noMetrics struct{}

func (noMetrics) Count(string, Status) {}

// DefaultMetricName is the counter the Python kiwi-cache increments.
const DefaultMetricName = "kiwicache"

// DogStatsD counts outcomes as the Python library does: the counter
// DefaultMetricName (or Name), tagged cache_name:NAME and status:STATUS.
type DogStatsD struct {
	Client statsd.ClientInterface
	Name   string // the counter's name; empty means DefaultMetricName
}

// NewDogStatsD returns Metrics that increment the counter "kiwicache" on c.
func NewDogStatsD(c statsd.ClientInterface) *DogStatsD {
	return &DogStatsD{Client: c, Name: DefaultMetricName}
}

// Count increments the counter. A failed send is dropped: statsd is
// fire-and-forget, and a cache must not fail for want of a metric.
func (d *DogStatsD) Count(cacheName string, status Status) {
	name := d.Name
	if name == "" {
		name = DefaultMetricName
	}
	_ = d.Client.Incr(name, []string{"cache_name:" + cacheName, "status:" + string(status)}, 1)
}
