package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"time"
)

// options are the flags of a command line.
type options struct {
	redis    string
	json     bool
	yes      bool
	help     bool
	version  bool
	count    int
	timeout  time.Duration
	interval time.Duration
	via      string

	set map[string]bool // the flags given, by name
}

var flagHelp = map[string]string{
	"redis":    "Redis URL (default $REDIS_URL, else redis://localhost:6379/0)",
	"json":     "print JSON, for scripts (watch: one object per line)",
	"yes":      "confirm invalidate",
	"count":    "stop after N changes (new records, deletions)",
	"timeout":  "stop after this long (e.g. 30s)",
	"interval": "how often to poll the record's length and tail (default 1s; 30s with push)",
	"via":      "how to learn of writes: auto (default), tracking, keyspace or poll",
}

func (o *options) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("kiwicache", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is returned and printed by run
	fs.StringVar(&o.redis, "redis", "", flagHelp["redis"])
	fs.BoolVar(&o.json, "json", false, flagHelp["json"])
	fs.BoolVar(&o.yes, "yes", false, flagHelp["yes"])
	fs.BoolVar(&o.help, "help", false, "")
	fs.BoolVar(&o.help, "h", false, "")
	fs.BoolVar(&o.version, "version", false, "")
	fs.IntVar(&o.count, "count", 0, flagHelp["count"])
	fs.DurationVar(&o.timeout, "timeout", 0, flagHelp["timeout"])
	fs.DurationVar(&o.interval, "interval", 0, flagHelp["interval"])
	fs.StringVar(&o.via, "via", "auto", flagHelp["via"])
	return fs
}

// commonFlags apply to every command.
var commonFlags = map[string]bool{"redis": true, "json": true, "help": true, "h": true, "version": true}

// misplaced returns a flag that was given but belongs to no command of
// cmdFlags, or "".
func (o *options) misplaced(cmdFlags []string) string {
	for name := range o.set {
		if !commonFlags[name] && !slices.Contains(cmdFlags, name) {
			return name
		}
	}
	return ""
}

// parseArgs sets c.opts from the flags among args and returns the other
// arguments. Flags may come anywhere, before or after the command and its
// arguments; "--" ends them, wherever it is, so that every argument after it
// is positional whatever it looks like. An argument that starts with '-'
// followed by a digit or '.' is a number (a key such as -1), never a flag:
// no flag starts so.
func (c *cli) parseArgs(args []string) ([]string, error) {
	fs := c.opts.flagSet()
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !looksLikeFlag(a) {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if takesValue(fs, a) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	c.opts.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.opts.set[f.Name] = true })
	return positional, nil
}

func looksLikeFlag(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	next := a[1]
	return !(next >= '0' && next <= '9' || next == '.')
}

// takesValue reports whether the flag a ("-name", "--name"; not
// "--name=value") is a known flag that takes the next argument as its value.
func takesValue(fs *flag.FlagSet, a string) bool {
	name := strings.TrimPrefix(a[1:], "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
