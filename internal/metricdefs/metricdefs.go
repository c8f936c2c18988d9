// Package metricdefs defines, once, the metrics that packages kiwiprom and
// kiwiotel export: names in both conventions, units, descriptions, and how
// each gauge is read from a cache's Health.
package metricdefs

import (
	"strings"
	"time"

	"github.com/kiwicache/kiwicache"
)

// The outcome counter, as the DogStatsD adapter counts it.
const (
	CounterName        = "kiwicache" // OpenTelemetry; the DogStatsD counter's name
	CounterPromName    = "kiwicache_total"
	CounterUnit        = "{outcome}"
	CounterDescription = "Outcomes of kiwicache loads by status (success, redis_error, load_error, not_written), as the DogStatsD counter kiwicache."
)

// Statuses are the values of the counter's status label.
var Statuses = []kiwicache.Status{kiwicache.StatusSuccess, kiwicache.StatusRedisError, kiwicache.StatusLoadError, kiwicache.StatusNotWritten}

// Outcome label values of the duration histograms.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Outcome is the outcome label of an operation that ended with err.
func Outcome(err error) string {
	if err != nil {
		return OutcomeFailure
	}
	return OutcomeSuccess
}

// A Histogram is the duration histogram of one Op, in seconds.
type Histogram struct {
	Op          kiwicache.Op
	Name        string // OpenTelemetry
	PromName    string
	Description string
}

// Histograms are the duration histograms, one per Op the core times.
var Histograms = []Histogram{
	histogram(kiwicache.OpReload, "Time a reload of the snapshot from Redis took, whatever it found."),
	histogram(kiwicache.OpRefill, "Time a refill took, from taking the lock to writing the record."),
	histogram(kiwicache.OpLockWait, "Time spent waiting for another process's refill lock."),
}

func histogram(op kiwicache.Op, description string) Histogram {
	return Histogram{
		Op:          op,
		Name:        "kiwicache." + string(op) + ".duration",
		PromName:    "kiwicache_" + string(op) + "_duration_seconds",
		Description: description,
	}
}

// Buckets are the default upper bounds, in seconds, of the duration
// histograms: from an unchanged record's reload (~60 µs) to a refill that
// takes as long as the lock lives. Callers copy it.
var Buckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30,
}

// A Gauge is one value read from a cache's Health at collection.
type Gauge struct {
	Name        string // OpenTelemetry
	PromName    string // what OpenTelemetry's Prometheus exporter makes of Name and Unit
	Unit        string // UCUM, as OpenTelemetry wants it; empty for a 0/1 state
	Description string
	Integer     bool // an integer (an Int64 instrument in OpenTelemetry)
	// Value reads the gauge; false when it is unknown and must be left out.
	Value func(h kiwicache.Health, now time.Time) (float64, bool)
}

// Gauges are the gauges of every cache, in the order they are reported.
var Gauges = []Gauge{
	{"kiwicache.has_data", "kiwicache_has_data", "", "1 while the cache serves a snapshot, else 0.", true,
		func(h kiwicache.Health, _ time.Time) (float64, bool) { return boolValue(h.HasData), true }},
	{"kiwicache.items", "kiwicache_items", "{item}", "Items in the snapshot served.", true,
		func(h kiwicache.Health, _ time.Time) (float64, bool) { return float64(h.Items), true }},
	{"kiwicache.record.size", "kiwicache_record_size_bytes", "By", "Bytes of the Redis record the snapshot came from.", true,
		func(h kiwicache.Health, _ time.Time) (float64, bool) { return float64(h.RecordSize), true }},
	{"kiwicache.snapshot.age", "kiwicache_snapshot_age_seconds", "s", "Seconds since the snapshot's data left the source (its record timestamp).", false,
		func(h kiwicache.Health, now time.Time) (float64, bool) {
			if !h.HasData {
				return 0, false
			}
			return age(now, h.RecordTime)
		}},
	{"kiwicache.check.age", "kiwicache_check_age_seconds", "s", "Seconds since a reload last found the record in Redis to be the one served.", false,
		func(h kiwicache.Health, now time.Time) (float64, bool) { return age(now, h.CheckedAt) }},
	{"kiwicache.consecutive_failures", "kiwicache_consecutive_failures", "{failure}", "Reload and refill attempts that failed since the last success.", true,
		func(h kiwicache.Health, _ time.Time) (float64, bool) { return float64(h.ConsecutiveFailures), true }},
	{"kiwicache.push.connected", "kiwicache_push_connected", "", "1 while the cache listens for notifications of new records, else 0.", true,
		func(h kiwicache.Health, _ time.Time) (float64, bool) { return boolValue(h.PushConnected), true }},
	{"kiwicache.push.notification.age", "kiwicache_push_notification_age_seconds", "s", "Seconds since the last notification of a new record.", false,
		func(h kiwicache.Health, now time.Time) (float64, bool) { return age(now, h.LastNotification) }},
}

func age(now, since time.Time) (float64, bool) {
	if since.IsZero() {
		return 0, false
	}
	return now.Sub(since).Seconds(), true
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NameAndSuffix splits a record key resource:NAME[:SUFFIX] into the labels
// name and suffix. A key that kiwicache.ParseName refuses (a Refiller of the
// caller's own) is its own name.
func NameAndSuffix(key string) (name, suffix string) {
	name, suffix, err := kiwicache.ParseName(key)
	if err != nil {
		return strings.TrimPrefix(key, "resource:"), ""
	}
	return name, suffix
}
