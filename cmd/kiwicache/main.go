// Command kiwicache shows, compares, follows and manages the kiwi-cache
// records in Redis, those of the Go library and of the Python one alike.
//
//	kiwicache [--redis URL] [--json] COMMAND [ARGS]
//
//	list                         every record: key, bytes, items, age, TTL, lock
//	inspect NAME[:SUFFIX]        one record, its lock, and whether it is well-formed
//	get NAME[:SUFFIX] KEY        one value, as pretty JSON (exit 1 when absent)
//	keys NAME[:SUFFIX]           the keys of the dataset, integers by value
//	dump NAME[:SUFFIX]           the dataset as JSON
//	diff A B                     what differs between two records (A, B: NAME[:SUFFIX] or @FILE)
//	watch NAME[:SUFFIX]          each new record as it is written, until interrupted
//	invalidate NAME[:SUFFIX] --yes
//	restamp NAME[:SUFFIX] --yes
//	                             delete the record: the next read refills it
//	help [COMMAND]               this summary, or one command's
//
// Flags go anywhere; "--" ends them, and an argument such as -1 is a
// negative number, never a flag. Redis is --redis URL, else REDIS_URL, else
// redis://localhost:6379/0; a URL's password is never printed.
//
// Exit status: 0 done (diff: no difference); 1 the key is absent (get), the
// records differ (diff); 2 bad arguments; 3 Redis unreachable or failing; 4 no
// such record; 5 the record is malformed; 6 the key holds another Redis type
// than a string; 7 Redis refused the credentials; 8 the ACL user may not run a
// command or read a key.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Exit statuses, documented in the package comment, usage and README.
const (
	exitOK         = 0
	exitAbsent     = 1 // get: no such key; diff: the records differ
	exitUsage      = 2
	exitRedis      = 3
	exitNoRecord   = 4
	exitMalformed  = 5
	exitWrongType  = 6
	exitAuth       = 7
	exitPermission = 8
)

const exitStatusHelp = "exit status: 0 done (diff: same), 1 key absent (get) or records differ (diff), 2 bad arguments,\n" +
	"3 Redis unreachable or failing, 4 no such record, 5 malformed record, 6 key of another Redis type,\n" +
	"7 authentication failed, 8 permission denied (ACL)"

func main() {
	// SIGINT and SIGTERM end a watch cleanly; other commands just stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	status := run(ctx, os.Args[1:], os.Getenv("REDIS_URL"), os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}

// A failure carries its exit status.
type failure struct {
	status int
	err    error
}

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

func fail(status int, format string, args ...any) error {
	return failure{status, fmt.Errorf(format, args...)}
}

// statusOf is the exit status for err: exitOK for nil, its failure's, else
// exitRedis.
func statusOf(err error) int {
	if err == nil {
		return exitOK
	}
	if f, ok := errors.AsType[failure](err); ok {
		return f.status
	}
	return exitRedis
}

type command struct {
	args  string // the positional arguments, for usage
	help  string
	nargs int
	flags []string // the flags of this command, beyond the common ones
	run   func(c *cli, ctx context.Context, args []string) error
	// long is true for commands that run until stopped: they get no overall
	// deadline.
	long bool
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"list": {args: "", nargs: 0, run: (*cli).list,
			help: "every record: key, bytes, items, age, TTL, whether its lock is held;\na key of another Redis type is listed and marked, not an error"},
		"inspect": {args: "NAME[:SUFFIX]", nargs: 1, run: (*cli).inspect,
			help: "one record, its lock, and whether it is well-formed (and why not)"},
		"get": {args: "NAME[:SUFFIX] KEY", nargs: 2, run: (*cli).get,
			help: "one value as pretty JSON; exit status 1 when absent (a negative key such as -1 needs no \"--\")"},
		"keys": {args: "NAME[:SUFFIX]", nargs: 1, run: (*cli).keys,
			help: "the keys of the dataset: integer keys by value first, then the others in byte order"},
		"dump": {args: "NAME[:SUFFIX]", nargs: 1, run: (*cli).dump,
			help: "the dataset as JSON, for debugging and migration"},
		"diff": {args: "A B", nargs: 2, run: (*cli).diff,
			help: "what differs between two datasets, to check a migration between writers: keys only in A,\n" +
				"only in B, and changed values (by path); A and B are NAME[:SUFFIX] or @FILE, a JSON file\n" +
				"holding a record or a dataset as dump prints it (@- reads stdin). Timestamps are shown,\n" +
				"not compared. Exit status 0 when the data is the same, 1 when it differs"},
		"watch": {args: "NAME[:SUFFIX]", nargs: 1, run: (*cli).watch, long: true,
			flags: []string{"count", "timeout", "interval", "via"},
			help: "follow the record: each new record's timestamp, items, bytes, and the keys added, removed\n" +
				"and changed, until interrupted (SIGINT), --count N changes or --timeout D. It learns of\n" +
				"writes by Redis client tracking (Redis 6+), else keyspace notifications when the server\n" +
				"has them on, else by polling the record's length and tail every --interval (default 1s;\n" +
				"with push, a safety check every 30s); --via tracking|keyspace|poll forces one"},
		"invalidate": {args: "NAME[:SUFFIX] --yes", nargs: 1, run: (*cli).invalidate, flags: []string{"yes"},
			help: "delete the record, so that the next read refills it from the source"},
		"restamp": {args: "NAME[:SUFFIX] --yes", nargs: 1, run: (*cli).restamp, flags: []string{"yes"},
			help: "write the record again with the same data and the current time as its timestamp (its TTL\n" +
				"kept), so that every process reads it whole at its next reload: for a record changed in\n" +
				"place, which periodic reloads do not see (they compare the record's length and tail)"},
		"help": {args: "[COMMAND]", help: "this summary, or one command's"},
	}
}

type cli struct {
	rdb    *redis.Client
	url    string // the Redis URL, which may hold a password: never printed
	db     int
	out    io.Writer
	errOut io.Writer
	opts   options
}

// quietRedis keeps go-redis's own log lines (a failed dial, retried) off
// stderr: the command reports the failure itself.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// run runs the command line args with envURL as REDIS_URL and returns the
// exit status.
func run(ctx context.Context, args []string, envURL string, stdout, stderr io.Writer) int {
	stderr = terminalSafe{stderr} // no error message can carry a terminal escape
	c := &cli{out: stdout, errOut: stderr}
	positional, err := c.parseArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "kiwicache:", err)
		fmt.Fprintln(stderr, "run 'kiwicache help' for usage")
		return exitUsage
	}
	switch {
	case c.opts.version:
		fmt.Fprintln(stdout, version())
		return exitOK
	case c.opts.help:
		return help(stdout, stderr, positional)
	case len(positional) == 0:
		usage(stderr)
		return exitUsage
	case positional[0] == "help":
		return help(stdout, stderr, positional[1:])
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
	if misplaced := c.opts.misplaced(cmd.flags); misplaced != "" {
		fmt.Fprintf(stderr, "kiwicache: --%s is not a flag of %s\n", misplaced, name)
		return exitUsage
	}
	if err := c.connect(ctx, firstNonEmpty(c.opts.redis, envURL, "redis://localhost:6379/0")); err != nil {
		fmt.Fprintln(stderr, "kiwicache:", err)
		return statusOf(err)
	}
	defer c.rdb.Close()
	if !cmd.long {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	if err := cmd.run(c, ctx, rest); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(stderr, "kiwicache:", err)
		}
		return statusOf(err)
	}
	return exitOK
}

// help prints the summary, or the help of the command named in args.
func help(stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kiwicache: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	fmt.Fprintf(stdout, "usage: kiwicache [--redis URL] [--json] %s %s\n\n%s\n", args[0], cmd.args, cmd.help)
	for _, f := range cmd.flags {
		fmt.Fprintf(stdout, "  --%-9s %s\n", f, flagHelp[f])
	}
	return exitOK
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
		summary, _, _ := strings.Cut(commands[n].help, "\n")
		summary, _, _ = strings.Cut(summary, ";")
		fmt.Fprintf(w, "  %-10s %-20s %s\n", n, commands[n].args, summary)
	}
	fmt.Fprintln(w, "\nflags (anywhere; \"--\" ends them): --redis URL (default $REDIS_URL), --json, --help, --version;")
	fmt.Fprintln(w, "invalidate, restamp: --yes; watch: --count N, --timeout D, --interval D, --via tracking|keyspace|poll")
	fmt.Fprintln(w, "'kiwicache help COMMAND' says more about one command.")
	fmt.Fprintln(w, exitStatusHelp)
}

// version is the command's module version and VCS revision, as the Go
// toolchain recorded them in the binary.
func version() string {
	v, rev := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					rev += "+modified"
				}
			}
		}
	}
	if rev != "" {
		v += " " + rev
	}
	return fmt.Sprintf("kiwicache %s %s (records of kiwi-cache 0.4.5)", v, runtime.Version())
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
