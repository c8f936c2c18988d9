package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

func (c *cli) list(ctx context.Context, _ []string) error {
	var infos []*info
	iter := c.rdb.Scan(ctx, 0, "resource:*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		in, err := c.load(ctx, key)
		switch statusOf(err) {
		case exitOK:
		case exitNoRecord:
			continue // expired since SCAN saw it
		case exitPermission:
			// SCAN shows keys that the ACL user may not read: list them so.
			in = &info{Key: key, Unreadable: err.Error()}
		default:
			return err
		}
		infos = append(infos, in)
	}
	if err := iter.Err(); err != nil {
		return redisFailure("SCAN", "resource:*", err)
	}
	slices.SortFunc(infos, func(a, b *info) int { return strings.Compare(a.Key, b.Key) })
	if c.opts.json {
		return c.printJSON(nonNil(infos))
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tBYTES\tITEMS\tAGE\tTTL\tLOCK")
	for _, in := range infos {
		bytes, items, age, ttl := "-", "-", "-", in.TTL
		if in.Bytes != nil {
			bytes = fmt.Sprint(*in.Bytes)
		}
		switch {
		case in.Unreadable != "":
			items, ttl = "unreadable (ACL)", "-"
		case in.WrongType != "":
			items = "wrong type: " + in.WrongType
		case !in.WellFormed:
			items = "malformed"
		default:
			items, age = fmt.Sprint(*in.Items), *in.Age
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", display(in.Key), bytes, items, age, ttl, lockState(in))
	}
	return w.Flush()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func lockState(in *info) string {
	switch {
	case in.Unreadable != "":
		return "-"
	case in.LockHeld:
		return "held"
	}
	return "-"
}

func (c *cli) inspect(ctx context.Context, args []string) error {
	key, err := recordKey(args[0])
	if err != nil {
		return err
	}
	in, err := c.load(ctx, key)
	if err != nil {
		return err
	}
	if c.opts.json {
		if err := c.printJSON(in); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "key\t%s\n", display(in.Key))
		switch {
		case in.WrongType != "":
			fmt.Fprintf(w, "type\t%s: no record (a record is a string)\n", in.WrongType)
		case in.WellFormed:
			fmt.Fprintf(w, "bytes\t%d\nwell-formed\tyes\nitems\t%d\ntimestamp\t%s\nage\t%s\n",
				*in.Bytes, *in.Items, in.Timestamp.UTC().Format(time.RFC3339Nano), *in.Age)
		default:
			fmt.Fprintf(w, "bytes\t%d\nwell-formed\tno: %s\n", *in.Bytes, in.Malformed)
		}
		fmt.Fprintf(w, "ttl\t%s\nlock\t%s\n", in.TTL, firstNonEmpty(in.LockTTL, "not held"))
		w.Flush()
	}
	return in.failure()
}

func (c *cli) get(ctx context.Context, args []string) error {
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	v, ok := in.data[args[1]]
	if !ok {
		return fail(exitAbsent, "%s has no key %q", display(in.Key), args[1])
	}
	return c.printRaw(v)
}

func (c *cli) keys(ctx context.Context, args []string) error {
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	keys := sortedKeys(in.data)
	if c.opts.json {
		return c.printJSON(keys)
	}
	var out bytes.Buffer
	for _, k := range keys {
		out.WriteString(display(k))
		out.WriteByte('\n')
	}
	_, err = c.out.Write(out.Bytes())
	return err
}

// sortedKeys are the keys of data in the order of compareKeys.
func sortedKeys[V any](data map[string]V) []string {
	return slices.SortedFunc(maps.Keys(data), compareKeys)
}

func (c *cli) dump(ctx context.Context, args []string) error {
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	// Marshalled from the raw values: numbers keep their digits.
	b, err := json.Marshal(in.data)
	if err != nil {
		return err
	}
	return c.printRaw(b)
}

func (c *cli) invalidate(ctx context.Context, args []string) error {
	key, err := recordKey(args[0])
	if err != nil {
		return err
	}
	if !c.opts.yes {
		return fail(exitUsage, "invalidate deletes %s for every service: add --yes", display(key))
	}
	n, err := c.rdb.Del(ctx, key).Result()
	if err != nil {
		return redisFailure("DEL", key, err)
	}
	if n == 0 {
		return fail(exitNoRecord, "no record %s", display(key))
	}
	// Listening processes learn of it at once (PUSH.md); a failed publish
	// only leaves them to their next reload.
	c.rdb.Publish(ctx, kiwicache.PushChannel(key), `{"deleted": true}`)
	if c.opts.json {
		return c.printJSON(map[string]any{"deleted": key})
	}
	fmt.Fprintf(c.out, "deleted %s: the next read refills it from the source\n", display(key))
	return nil
}

func (c *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.printRaw(b)
}

// printRaw prints JSON indented, with its numbers as written and every
// unprintable character in its strings escaped.
func (c *cli) printRaw(b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := c.out.Write(escapeJSON(out.Bytes()))
	return err
}

// restampScript replaces the record (KEYS[1]) with ARGV[2], keeping its TTL,
// only if it still holds ARGV[1]: a write in between is not undone.
var restampScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "KEEPTTL")
return 1`)

func (c *cli) restamp(ctx context.Context, args []string) error {
	key, err := recordKey(args[0])
	if err != nil {
		return err
	}
	if !c.opts.yes {
		return fail(exitUsage, "restamp rewrites %s for every service: add --yes", display(key))
	}
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	old, err := c.rdb.Get(ctx, key).Bytes()
	if err != nil {
		return redisFailure("GET", key, err)
	}
	rec := kiwicache.Record[string, json.RawMessage]{Data: in.data, Timestamp: time.Now()}
	b, err := kiwicache.JSONCodec[string, json.RawMessage]{}.Encode(rec)
	if err != nil {
		return err
	}
	done, err := restampScript.Run(ctx, c.rdb, []string{key}, old, b).Bool()
	if err != nil {
		return redisFailure("EVALSHA", key, err)
	}
	if !done {
		return fail(exitRedis, "%s changed while it was read: nothing written, try again", display(key))
	}
	c.rdb.Publish(ctx, kiwicache.PushChannel(key), kiwicache.PushPayload(rec.Timestamp, len(b)))
	if c.opts.json {
		return c.printJSON(map[string]any{"restamped": key, "timestamp": rec.Timestamp.UTC()})
	}
	fmt.Fprintf(c.out, "restamped %s: every process reads it whole at its next reload\n", display(key))
	return nil
}
