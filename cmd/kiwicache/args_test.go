package main

import (
	"context"
	"strings"
	"testing"
)

// A negative key is an argument, not a flag; flags go anywhere; "--" ends
// the flags wherever it stands, and what follows it is positional even if it
// looks like a flag.
func TestArguments(t *testing.T) {
	url := miniRedis(t)
	client(t, url).Set(context.Background(), "resource:Neg",
		`{"data": {"-1": "minus one", "-1.5": "minus one and a half", "--json": "a key like a flag", "x": 1}, "timestamp": 1.5}`, 0)
	for _, args := range [][]string{
		{"get", "Neg", "-1"},
		{"--json", "get", "Neg", "-1"},
		{"get", "--json", "Neg", "-1"},
		{"get", "Neg", "-1", "--json"},
		{"--", "get", "Neg", "-1"},
		{"get", "--", "Neg", "-1"},
		{"get", "Neg", "--", "-1"},
		{"--json", "get", "Neg", "--", "-1"},
		{"get", "Neg", "-1", "--redis", url},
		{"get", "Neg", "-1", "--redis=" + url},
	} {
		expect(t, kiwicacheCmd(t, url, args...), 0, `"minus one"`)
	}
	expect(t, kiwicacheCmd(t, url, "get", "Neg", "-1.5"), 0, `"minus one and a half"`)
	expect(t, kiwicacheCmd(t, url, "get", "Neg", "--", "--json"), 0, `"a key like a flag"`)
	// After "--", --json is the second argument of keys, which takes one.
	expectErr(t, kiwicacheCmd(t, url, "keys", "--", "Neg", "--json"), 2, "usage: kiwicache [--redis URL] [--json] keys NAME[:SUFFIX]")
	expectErr(t, kiwicacheCmd(t, url, "get", "Neg", "-x"), 2, "flag provided but not defined: -x")
	expectErr(t, kiwicacheCmd(t, url, "list", "--redis"), 2, "flag needs an argument: -redis")
}

// NAME[:SUFFIX] is checked by the library's own validator, kiwicache.ParseName,
// for every command that takes one: a refused name is a usage error (exit
// status 2) that says what is wrong with it, printed without the raw control
// characters it may hold.
func TestRecordNames(t *testing.T) {
	url := miniRedis(t)
	for name, why := range map[string]string{
		"Weird name":     `name "Weird name" has ' ' at byte 5: no spaces`,
		"Products:":      "suffix is empty",
		":EU":            "name is empty",
		"":               "name is empty",
		"A\u202eB":       `name "A\u202eB" has '\u202e' at byte 1`,
		"A\u0085":        `'\u0085' at byte 1`,
		"A\u00a0B":       "no spaces",
		"A\u2028":        "'\\u2028'",
		"A\x1b[2J":       `name "A\x1b[2J" has '\x1b' at byte 1`,
		"A\xff":          "not valid UTF-8",
		"A*":             "no glob characters",
		"Rates:E\tU":     `suffix "E\tU"`,
		"resource::x":    "name is empty",
		"Airlines:b a d": "no spaces",
	} {
		for _, args := range [][]string{{"inspect", name}, {"get", name, "k"}, {"keys", name}, {"dump", name},
			{"invalidate", name, "--yes"}, {"diff", name, "Airlines"}, {"diff", "Airlines", name}, {"watch", name}} {
			r := kiwicacheCmd(t, url, args...)
			expectErr(t, r, exitUsage, "bad record name: ", why)
			if strings.ContainsAny(r.stderr, "\x1b\u202e\u0085\u2028\t") {
				t.Errorf("%q: raw control characters in %q", args, r.stderr)
			}
		}
	}
	// What the library accepts, the command accepts: an absent record is
	// exit status 4, not 2.
	for _, id := range []string{"Airlines", "Airlines:backup", "resource:Airlines:EU", "Ünïcode:日本", "Rates:EUR:2024"} {
		expect(t, kiwicacheCmd(t, url, "inspect", id), exitNoRecord)
	}
}
