package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// tailBytes is how much of the record's end a poll reads: as the library's
// reload does, it takes the length and the tail (which holds the timestamp
// that every writer stamps anew) for the whole record.
const tailBytes = 64

// The default periods of the check that watch makes by itself: the only one
// when polling, a safety net when notifications come.
const (
	pollInterval   = time.Second
	safetyInterval = 30 * time.Second
)

var errWatchTimeout = errors.New("timeout")

// A watchEvent is one line of watch's output.
type watchEvent struct {
	// Event is watching (the first line), current (the record when watch
	// began), record (a new record), deleted, malformed, wrong_type, or
	// stopped (the last line).
	Event string    `json:"event"`
	Seen  time.Time `json:"seen"`

	Key      string `json:"key,omitempty"`
	Via      string `json:"via,omitempty"`      // watching: tracking, keyspace or poll
	Fallback string `json:"fallback,omitempty"` // watching: why auto did not choose push
	Interval string `json:"interval,omitempty"` // watching: the period of the own checks

	Timestamp *time.Time `json:"timestamp,omitempty"`
	Items     *int       `json:"items,omitempty"`
	Bytes     *int       `json:"bytes,omitempty"`
	Counts    *keyCounts `json:"counts,omitempty"` // record: keys added, removed, changed
	Added     []string   `json:"added,omitempty"`
	Removed   []string   `json:"removed,omitempty"`
	Changed   []string   `json:"changed,omitempty"`
	Malformed string     `json:"malformed,omitempty"`
	Type      string     `json:"type,omitempty"` // wrong_type: the key's Redis type

	Changes *int   `json:"changes,omitempty"` // stopped: how many changes were seen
	Reason  string `json:"reason,omitempty"`  // stopped: interrupted, count or timeout
}

type keyCounts struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
}

// A recordState is what watch last saw of the record.
type recordState struct {
	exists    bool
	wrongType string
	raw       []byte
}

func (s recordState) length() int64 { return int64(len(s.raw)) }

func (s recordState) tail() string { return string(s.raw[max(0, len(s.raw)-tailBytes):]) }

type watcher struct {
	c       *cli
	key     string
	last    recordState
	started bool                       // the first check is done
	data    map[string]json.RawMessage // the last well-formed data, kept across a deletion
	changes int
	problem string // the error that began an outage, printed once
}

// watch follows one record and prints each change of it.
func (c *cli) watch(ctx context.Context, args []string) error {
	key, err := recordKey(args[0])
	if err != nil {
		return err
	}
	if c.opts.count < 0 || c.opts.timeout < 0 || c.opts.interval < 0 {
		return fail(exitUsage, "--count, --timeout and --interval cannot be negative")
	}
	if c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.opts.timeout, errWatchTimeout)
		defer cancel()
	}
	w := &watcher{c: c, key: key}
	// Listen first, then read: no write falls between.
	n, err := w.notifications(ctx, c.opts.via)
	if err != nil {
		return err
	}
	defer n.close()
	interval := c.opts.interval
	if interval == 0 {
		interval = safetyInterval
		if n.via == "poll" {
			interval = pollInterval
		}
	}
	w.emit(watchEvent{Event: "watching", Key: key, Via: n.via, Fallback: n.fallback, Interval: interval.String()})
	if err := w.check(ctx, true); err != nil {
		return err
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for c.opts.count == 0 || w.changes < c.opts.count {
		select {
		case <-ctx.Done():
			reason := "interrupted"
			if errors.Is(context.Cause(ctx), errWatchTimeout) {
				reason = "timeout"
			}
			return w.stop(reason)
		case <-n.changed:
			n.maintain(ctx)
			err = w.check(ctx, true)
		case <-ticker.C:
			n.verify(ctx)
			err = w.check(ctx, false)
		}
		if err = w.trouble(ctx, err); err != nil {
			return err
		}
	}
	return w.stop("count")
}

// trouble reports the first failed check of an outage on stderr, and
// "recovered" when checks succeed again. It returns the errors that end the
// watch: refused credentials or permissions do not heal by waiting.
func (w *watcher) trouble(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		if w.problem != "" && err == nil {
			fmt.Fprintln(w.c.errOut, "kiwicache: watch: recovered")
			w.problem = ""
		}
		return nil
	}
	if s := statusOf(err); s == exitAuth || s == exitPermission {
		return err
	}
	if w.problem == "" {
		w.problem = err.Error()
		fmt.Fprintf(w.c.errOut, "kiwicache: watch: %s (retrying)\n", w.problem)
	}
	return nil
}

func (w *watcher) stop(reason string) error {
	n := w.changes
	w.emit(watchEvent{Event: "stopped", Reason: reason, Changes: &n})
	return nil
}

// check reads the record and reports it if it changed. A quick check reads
// only the length and tail first, as polling does.
func (w *watcher) check(ctx context.Context, full bool) error {
	if !full && w.last.wrongType == "" {
		var strlen *redis.IntCmd
		var tail *redis.StringCmd
		_, err := w.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			strlen = p.StrLen(ctx, w.key)
			tail = p.GetRange(ctx, w.key, -tailBytes, -1)
			return nil
		})
		if err == nil && strlen.Val() == w.last.length() && tail.Val() == w.last.tail() {
			return nil
		}
		// Changed, or an error that the full read reports.
	}
	var now recordState
	b, err := w.c.rdb.Get(ctx, w.key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case isWrongType(err):
		t, err := w.c.rdb.Type(ctx, w.key).Result()
		if err != nil {
			return redisFailure("TYPE", w.key, err)
		}
		now = recordState{exists: true, wrongType: t}
	case err != nil:
		return redisFailure("GET", w.key, err)
	default:
		now = recordState{exists: true, raw: b}
	}
	first := !w.started
	if !first && now.exists == w.last.exists && now.wrongType == w.last.wrongType && bytes.Equal(now.raw, w.last.raw) {
		return nil
	}
	w.last, w.started = now, true
	w.report(now, first)
	return nil
}

// report prints the record as the current one or as a change.
func (w *watcher) report(s recordState, first bool) {
	e := watchEvent{Event: "record"}
	if first {
		e.Event = "current"
	} else {
		w.changes++
	}
	switch {
	case !s.exists:
		if !first {
			e.Event = "deleted"
		}
	case s.wrongType != "":
		e.Event, e.Type = "wrong_type", s.wrongType
	default:
		in := &info{Key: w.key}
		if err := in.decode(s.raw); err != nil {
			in.Malformed = err.Error()
		}
		e.Bytes = in.Bytes
		if !in.WellFormed {
			e.Event, e.Malformed = "malformed", in.Malformed
			break
		}
		e.Timestamp, e.Items = in.Timestamp, in.Items
		if !first {
			e.Added, e.Removed, e.Changed = keyChanges(w.data, in.data)
			e.Counts = &keyCounts{len(e.Added), len(e.Removed), len(e.Changed)}
		}
		w.data = in.data
	}
	w.emit(e)
}

// keyChanges are the keys only in b, only in a, and in both with other
// values (as diff compares them).
func keyChanges(a, b map[string]json.RawMessage) (added, removed, changed []string) {
	for _, k := range sortedKeys(b) {
		if va, ok := a[k]; !ok {
			added = append(added, k)
		} else if !valuesEqual(va, b[k]) {
			changed = append(changed, k)
		}
	}
	for _, k := range sortedKeys(a) {
		if _, ok := b[k]; !ok {
			removed = append(removed, k)
		}
	}
	return added, removed, changed
}

// emit prints one event: a JSON object per line with --json, else a line
// for people.
func (w *watcher) emit(e watchEvent) {
	e.Seen = time.Now()
	if w.c.opts.json {
		b, err := json.Marshal(e)
		if err == nil {
			w.c.out.Write(append(escapeJSON(b), '\n'))
		}
		return
	}
	var s strings.Builder
	if e.Event != "watching" && e.Event != "stopped" {
		fmt.Fprintf(&s, "%s  %-11s", e.Seen.Format("15:04:05.000"), eventLabels[e.Event])
	}
	switch e.Event {
	case "watching":
		fmt.Fprintf(&s, "watching %s via %s", display(e.Key), viaNames[e.Via])
		if e.Fallback != "" {
			fmt.Fprintf(&s, " (%s)", e.Fallback)
		}
		if e.Via == "poll" {
			fmt.Fprintf(&s, ", every %s", e.Interval)
		} else {
			fmt.Fprintf(&s, ", with a check every %s", e.Interval)
		}
		s.WriteString("; Ctrl-C stops")
	case "current", "record":
		if e.Timestamp == nil {
			s.WriteString("no record")
			break
		}
		fmt.Fprintf(&s, "timestamp %s  %d items  %d bytes", e.Timestamp.UTC().Format(time.RFC3339Nano), *e.Items, *e.Bytes)
		if e.Counts != nil {
			fmt.Fprintf(&s, "  +%d -%d ~%d", e.Counts.Added, e.Counts.Removed, e.Counts.Changed)
			keyList(&s, "added", e.Added)
			keyList(&s, "removed", e.Removed)
			keyList(&s, "changed", e.Changed)
		}
	case "deleted":
		s.WriteString("the record is gone (deleted or expired)")
	case "malformed":
		fmt.Fprintf(&s, "%d bytes: %s", *e.Bytes, e.Malformed)
	case "wrong_type":
		fmt.Fprintf(&s, "the key holds a %s, no record", e.Type)
	case "stopped":
		fmt.Fprintf(&s, "stopped (%s) after %d changes", e.Reason, *e.Changes)
	}
	s.WriteByte('\n')
	w.c.out.Write([]byte(s.String()))
}

var eventLabels = map[string]string{
	"current":    "current",
	"record":     "new",
	"deleted":    "deleted",
	"malformed":  "malformed",
	"wrong_type": "wrong type",
}

var viaNames = map[string]string{
	"tracking": "Redis client tracking",
	"keyspace": "keyspace notifications",
	"poll":     "polling",
}

// keyList writes up to 10 keys of a kind, and how many more there are.
func keyList(s *strings.Builder, kind string, keys []string) {
	if len(keys) == 0 {
		return
	}
	const shown = 10
	fmt.Fprintf(s, "  %s:", kind)
	for _, k := range keys[:min(len(keys), shown)] {
		s.WriteString(" " + display(k))
	}
	if len(keys) > shown {
		fmt.Fprintf(s, " (and %d more)", len(keys)-shown)
	}
}
