// Command kiwicache shows and manages the kiwi-cache records in Redis, those
// of the Go library and of the Python one alike.
//
//	kiwicache [--redis URL] [--json] COMMAND [ARGS]
//
//	list                        every record: key, bytes, items, age, TTL, lock
//	inspect NAME[:SUFFIX]       one record, its lock, and whether it is well-formed
//	get NAME[:SUFFIX] KEY       one value, as pretty JSON (exit 1 when absent)
//	keys NAME[:SUFFIX]          the keys of the dataset
//	dump NAME[:SUFFIX]          the dataset as JSON
//	invalidate NAME[:SUFFIX] --yes
//	                            delete the record: the next read refills it
//
// Redis is --redis URL, else REDIS_URL, else redis://localhost:6379/0.
//
// Exit status: 0 done; 1 the key is absent (get); 2 bad arguments; 3 Redis
// unreachable; 4 no such record; 5 the record is malformed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// Exit statuses.
const (
	exitOK        = 0
	exitAbsent    = 1
	exitUsage     = 2
	exitRedis     = 3
	exitNoRecord  = 4
	exitMalformed = 5
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// A failure carries its exit status.
type failure struct {
	status int
	err    error
}

func (f failure) Error() string { return f.err.Error() }

func fail(status int, format string, args ...any) error {
	return failure{status, fmt.Errorf(format, args...)}
}

type command struct {
	args  string // the positional arguments, for usage
	help  string
	nargs int
	run   func(c *cli, ctx context.Context, args []string) error
}

var commands = map[string]command{
	"list":       {"", "every record: key, bytes, items, age, TTL, whether its lock is held", 0, (*cli).list},
	"inspect":    {"NAME[:SUFFIX]", "one record, its lock, and whether it is well-formed (and why not)", 1, (*cli).inspect},
	"get":        {"NAME[:SUFFIX] KEY", "one value as pretty JSON; exit status 1 when absent", 2, (*cli).get},
	"keys":       {"NAME[:SUFFIX]", "the keys of the dataset, sorted", 1, (*cli).keys},
	"dump":       {"NAME[:SUFFIX]", "the dataset as JSON, for debugging and migration", 1, (*cli).dump},
	"invalidate": {"NAME[:SUFFIX] --yes", "delete the record, so that the next read refills it from the source", 1, (*cli).invalidate},
}

type cli struct {
	rdb    *redis.Client
	json   bool
	yes    bool
	out    io.Writer
	redis  string
	errOut io.Writer
}

// quietRedis keeps go-redis's own log lines (a failed dial, retried) off
// stderr: the command reports the failure itself.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		for _, a := range args {
			if cmd, ok := commands[a]; ok {
				fmt.Fprintf(stdout, "usage: kiwicache [--redis URL] [--json] %s %s\n\n%s\n", a, cmd.args, cmd.help)
				return exitOK
			}
		}
		usage(stdout)
		return exitOK
	}
	c := &cli{out: stdout, errOut: stderr}
	fs := c.flags("kiwicache")
	fs.Usage = func() {}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		usage(stderr) // flag has said what is wrong
		return exitUsage
	}
	if len(positional) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := positional[0], positional[1:]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "kiwicache: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	if len(rest) != cmd.nargs {
		fmt.Fprintf(stderr, "usage: kiwicache [--redis URL] [--json] %s %s\n", name, cmd.args)
		return exitUsage
	}
	url := firstNonEmpty(c.redis, os.Getenv("REDIS_URL"), "redis://localhost:6379/0")
	opts, err := redis.ParseURL(url)
	if err != nil {
		fmt.Fprintf(stderr, "kiwicache: bad Redis URL: %v\n", err)
		return exitUsage
	}
	opts.MaxRetries = -1
	c.rdb = redis.NewClient(opts)
	defer c.rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintf(stderr, "kiwicache: Redis at %s is unreachable: %v\n", opts.Addr, err)
		return exitRedis
	}
	if err := cmd.run(c, ctx, rest); err != nil {
		fmt.Fprintln(stderr, "kiwicache:", err)
		var f failure
		if errors.As(err, &f) {
			return f.status
		}
		return exitRedis
	}
	return exitOK
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	fs.StringVar(&c.redis, "redis", "", "Redis URL (default $REDIS_URL, else redis://localhost:6379/0)")
	fs.BoolVar(&c.json, "json", false, "print JSON, for scripts")
	fs.BoolVar(&c.yes, "yes", false, "confirm invalidate")
	return fs
}

// parseInterspersed parses flags wherever they are among the arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kiwicache [--redis URL] [--json] COMMAND [ARGS]\n\ncommands:")
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range commands {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %-20s %s\n", n, commands[n].args, commands[n].help)
	}
	fmt.Fprintln(w, "\nflags: --redis URL (default $REDIS_URL), --json, --yes (invalidate), --help")
	fmt.Fprintln(w, "exit status: 0 done, 1 key absent, 2 bad arguments, 3 Redis unreachable, 4 no such record, 5 malformed record")
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// recordKey turns NAME[:SUFFIX] (or a full resource: key) into the record key.
func recordKey(id string) (string, error) {
	id = strings.TrimPrefix(id, "resource:")
	name, _, _ := strings.Cut(id, ":")
	if name == "" || strings.ContainsAny(id, " \t\r\n*?[]\\") {
		return "", fail(exitUsage, "bad record name %q: want NAME or NAME:SUFFIX", id)
	}
	return "resource:" + id, nil
}

// info is what list and inspect show of a record.
type info struct {
	Key        string    `json:"key"`
	Bytes      int64     `json:"bytes"`
	Items      int       `json:"items"`
	Timestamp  time.Time `json:"timestamp"`
	Age        string    `json:"age"`
	TTL        string    `json:"ttl"` // "none" without expiry
	LockHeld   bool      `json:"lock_held"`
	LockTTL    string    `json:"lock_ttl,omitempty"`
	WellFormed bool      `json:"well_formed"`
	Malformed  string    `json:"malformed,omitempty"`
	data       map[string]json.RawMessage
}

// load reads and decodes one record; a missing one is a failure with
// exitNoRecord, a malformed one is reported in the info.
func (c *cli) load(ctx context.Context, key string) (*info, error) {
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fail(exitNoRecord, "no record %s", key)
	}
	if err != nil {
		return nil, fail(exitRedis, "GET %s: %v", key, err)
	}
	in := &info{Key: key, Bytes: int64(len(b))}
	rec, err := kiwicache.JSONCodec[string, json.RawMessage]{}.Decode(b)
	if err != nil {
		in.Malformed = err.Error()
	} else {
		in.WellFormed, in.Items, in.data = true, len(rec.Data), rec.Data
		in.Timestamp = rec.Timestamp
		in.Age = time.Since(rec.Timestamp).Round(time.Second).String()
	}
	ttl, err := c.rdb.PTTL(ctx, key).Result()
	if err != nil {
		return nil, fail(exitRedis, "PTTL %s: %v", key, err)
	}
	in.TTL = durationOrNone(ttl)
	lockKey := "lock:" + strings.TrimPrefix(key, "resource:")
	lockTTL, err := c.rdb.PTTL(ctx, lockKey).Result()
	if err != nil {
		return nil, fail(exitRedis, "PTTL %s: %v", lockKey, err)
	}
	if lockTTL != -2 { // -2: no such key

		in.LockHeld, in.LockTTL = true, durationOrNone(lockTTL)
	}
	return in, nil
}

func durationOrNone(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Second).String()
}

func (c *cli) wellFormed(ctx context.Context, id string) (*info, error) {
	key, err := recordKey(id)
	if err != nil {
		return nil, err
	}
	in, err := c.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if !in.WellFormed {
		return nil, fail(exitMalformed, "%s is malformed: %s", key, in.Malformed)
	}
	return in, nil
}

func (c *cli) list(ctx context.Context, _ []string) error {
	var infos []*info
	iter := c.rdb.Scan(ctx, 0, "resource:*", 1000).Iterator()
	for iter.Next(ctx) {
		in, err := c.load(ctx, iter.Val())
		var f failure
		if errors.As(err, &f) && f.status == exitNoRecord {
			continue // expired since SCAN saw it
		}
		if err != nil {
			return err
		}
		infos = append(infos, in)
	}
	if err := iter.Err(); err != nil {
		return fail(exitRedis, "SCAN: %v", err)
	}
	slices.SortFunc(infos, func(a, b *info) int { return strings.Compare(a.Key, b.Key) })
	if c.json {
		return c.printJSON(nonNil(infos))
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tBYTES\tITEMS\tAGE\tTTL\tLOCK")
	for _, in := range infos {
		items, age := fmt.Sprint(in.Items), in.Age
		if !in.WellFormed {
			items, age = "malformed", "-"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", in.Key, in.Bytes, items, age, in.TTL, lockState(in.LockHeld))
	}
	return w.Flush()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func lockState(held bool) string {
	if held {
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
	if c.json {
		if err := c.printJSON(in); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "key\t%s\nbytes\t%d\n", in.Key, in.Bytes)
		if in.WellFormed {
			fmt.Fprintf(w, "well-formed\tyes\nitems\t%d\ntimestamp\t%s\nage\t%s\n",
				in.Items, in.Timestamp.UTC().Format(time.RFC3339Nano), in.Age)
		} else {
			fmt.Fprintf(w, "well-formed\tno: %s\n", in.Malformed)
		}
		fmt.Fprintf(w, "ttl\t%s\nlock\t%s\n", in.TTL, firstNonEmpty(in.LockTTL, "not held"))
		w.Flush()
	}
	if !in.WellFormed {
		return fail(exitMalformed, "%s is malformed", key)
	}
	return nil
}

func (c *cli) get(ctx context.Context, args []string) error {
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	v, ok := in.data[args[1]]
	if !ok {
		return fail(exitAbsent, "%s has no key %q", in.Key, args[1])
	}
	return c.printRaw(v)
}

func (c *cli) keys(ctx context.Context, args []string) error {
	in, err := c.wellFormed(ctx, args[0])
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(in.data))
	for k := range in.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if c.json {
		return c.printJSON(keys)
	}
	for _, k := range keys {
		fmt.Fprintln(c.out, k)
	}
	return nil
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
	if !c.yes {
		return fail(exitUsage, "invalidate deletes %s for every service: add --yes", key)
	}
	n, err := c.rdb.Del(ctx, key).Result()
	if err != nil {
		return fail(exitRedis, "DEL %s: %v", key, err)
	}
	if n == 0 {
		return fail(exitNoRecord, "no record %s", key)
	}
	if c.json {
		return c.printJSON(map[string]any{"deleted": key})
	}
	fmt.Fprintf(c.out, "deleted %s: the next read refills it from the source\n", key)
	return nil
}

func (c *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.printRaw(b)
}

// printRaw prints JSON indented, with its numbers as written.
func (c *cli) printRaw(b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := c.out.Write(out.Bytes())
	return err
}
