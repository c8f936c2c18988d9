package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostile are the bytes a terminal acts on or hides: ESC (escape
// sequences), BEL, CR (overwrites the line), DEL, the C1 control CSI
// (U+009B, an escape sequence on its own in some terminals) and U+202E
// (reverses the text after it).
var hostile = []string{"\x1b", "\a", "\r", "\x7f", "\u009b", "\u202e"}

// checkNoHostileBytes fails if the output holds any of hostile's bytes.
func checkNoHostileBytes(t *testing.T, what string, out string) {
	t.Helper()
	for _, h := range hostile {
		if i := strings.Index(out, h); i >= 0 {
			t.Errorf("%s prints %q raw at byte %d:\n%q", what, h, i, out)
		}
	}
}

// Dataset keys and values, and Redis key names, reach the terminal escaped:
// the bytes printed hold no control or format character, in every command
// and in JSON, and the escaped text is there instead.
func TestTerminalEscapes(t *testing.T) {
	for backend, newURL := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			url := newURL(t)
			rdb := client(t, url)
			ctx := context.Background()
			// JSON escapes for the ASCII controls, raw UTF-8 for DEL, U+009B and
			// U+202E, which JSON strings may hold as they are.
			record := "{\"data\": {\"a\\u001b]0;owned\\u0007\": 1, \"b\\r\": 2, \"c\u202e\": 3, \"d\u009b31m\": 4, \"e\x7f\": 5," +
				" \"plain\": \"v\\u001b[2J\u202e\u009b\x7f\"}, \"timestamp\": 1.5}"
			rdb.Set(ctx, "resource:Esc", record, 0)
			rdb.Set(ctx, "resource:Evil\x1b[2J\a\r", `{"data": {"k": 1}, "timestamp": 1.5}`, 0)
			rdb.Set(ctx, "resource:Evil\u202eName", `{"data": {"k": 1}, "timestamp": 1.5}`, 0)
			file := filepath.Join(t.TempDir(), "other.json")
			os.WriteFile(file, []byte(`{"plain": "v", "f\u001b": 6}`), 0o644)

			runs := map[string]result{}
			for _, args := range [][]string{
				{"list"}, {"--json", "list"}, {"keys", "Esc"}, {"--json", "keys", "Esc"}, {"dump", "Esc"},
				{"get", "Esc", "plain"}, {"get", "Esc", "a\x1b]0;owned\a"}, {"get", "Esc", "nope\x1b[2J"},
				{"inspect", "Evil\x1b[2J"}, {"diff", "Esc", "@" + file}, {"--json", "diff", "Esc", "@" + file},
			} {
				r := kiwicacheCmd(t, url, args...)
				runs[strings.Join(args, " ")] = r
				checkNoHostileBytes(t, strings.Join(args, " ")+": stdout", r.stdout)
				checkNoHostileBytes(t, strings.Join(args, " ")+": stderr", r.stderr)
			}
			expect(t, runs["list"], 0, `"resource:Evil\x1b[2J\a\r"`, `"resource:Evil\u202eName"`)
			expect(t, runs["keys Esc"], 0, `"a\x1b]0;owned\a"`, `"b\r"`, `"c\u202e"`, `"d\u009b31m"`, `"e\x7f"`, "\nplain\n")
			expect(t, runs["--json keys Esc"], 0, `"a\u001b]0;owned\u0007"`, `"c\u202e"`, `"d\u009b31m"`, `"e\u007f"`)
			expect(t, runs["get Esc plain"], 0, `"v\u001b[2J\u202e\u009b\u007f"`)
			expect(t, runs["get Esc a\x1b]0;owned\a"], 0, "1")
			expectErr(t, runs["get Esc nope\x1b[2J"], 1, `has no key "nope\x1b[2J"`)
			expectErr(t, runs["inspect Evil\x1b[2J"], 2, `has '\x1b' at byte 4`)
			expect(t, runs["diff Esc @"+file], 1, `- "a\x1b]0;owned\a"`, `+ "f\x1b"`, `~ plain: "v\u001b[2J\u202e\u009b\u007f" -> "v"`)
			for _, cmd := range []string{"--json list", "--json keys Esc", "dump Esc", "--json diff Esc @" + file} {
				if !json.Valid([]byte(runs[cmd].stdout)) {
					t.Errorf("%s: escaped output is no longer JSON:\n%s", cmd, runs[cmd].stdout)
				}
			}
			// Escaped JSON still holds the same strings.
			var keys []string
			json.Unmarshal([]byte(runs["--json keys Esc"].stdout), &keys)
			if !slices.Contains(keys, "d\u009b31m") || !slices.Contains(keys, "a\x1b]0;owned\a") {
				t.Errorf("keys --json decodes to %q", keys)
			}
		})
	}
}

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       "plain",
		"ünï 日本":      "ünï 日本",
		"":            `""`,
		" lead":       `" lead"`,
		"trail ":      `"trail "`,
		`"quoted"`:    `"\"quoted\""`,
		"a\x1bb":      `"a\x1bb"`,
		"tab\there":   `"tab\there"`,
		"nbsp\u00a0":  `"nbsp\u00a0"`,
		"zwsp\u200b":  `"zwsp\u200b"`,
		"bad\xffutf8": `"bad\xffutf8"`,
	} {
		if got := display(in); got != want {
			t.Errorf("display(%q) = %s, want %s", in, got, want)
		}
	}
	var out bytes.Buffer
	terminalSafe{&out}.Write([]byte("ok\n\ttab \x1b[2J \u202e \xff é\n"))
	if want := "ok\n\ttab \\x1b[2J \\u202e \\xff é\n"; out.String() != want {
		t.Errorf("terminalSafe wrote %q, want %q", out.String(), want)
	}
	for in, want := range map[string]string{
		`{"k":"a\u001b"}`:                  `{"k":"a\u001b"}`,
		"{\"k\x7f\":\"\u202e\U0001F600\"}": `{"k\u007f":"\u202e` + "\U0001F600" + `"}`,
		"[\"\U000E0001\"]":                 `["\udb40\udc01"]`, // a tag character (Cf) beyond the BMP: a surrogate pair
		"[\"\xff\"]":                       `["\ufffd"]`,
		`["\"\u009b", "x"]`:                `["\"\u009b", "x"]`,
		"[\"\\\"\u009b\"]":                 `["\"\u009b"]`,
	} {
		if got := string(escapeJSON([]byte(in))); got != want {
			t.Errorf("escapeJSON(%q) = %s, want %s", in, got, want)
		}
	}
}

// keys lists integer keys by value (Python's int keys arrive as strings),
// before the other keys, which are in byte order.
func TestKeyOrder(t *testing.T) {
	url := miniRedis(t)
	client(t, url).Set(context.Background(), "resource:Mixed", `{"data": {"10": 0, "100": 0, "9": 0, "-2": 0, "-10": 0,
		"007": 0, "7": 0, "a": 0, "B": 0, "12345678901234567890123": 0, "-": 0, "1e3": 0, "-0": 0, "0": 0}, "timestamp": 1.5}`, 0)
	want := "-10 -2 -0 0 007 7 9 10 100 12345678901234567890123 - 1e3 B a"
	r := kiwicacheCmd(t, url, "keys", "Mixed")
	if got := strings.Join(strings.Fields(r.stdout), " "); got != want || r.status != 0 {
		t.Errorf("keys: %s\nwant %s\n%s", got, want, r)
	}
	r = kiwicacheCmd(t, url, "--json", "keys", "Mixed")
	if got := strings.Join(must(decodeJSON[[]string](r.stdout)), " "); got != want {
		t.Errorf("keys --json: %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"-9", "-10", 1}, {"-1", "1", -1}, {"-0", "0", -1}, {"00", "0", 1},
		{"99999999999999999999", "100000000000000000000", -1}, {"5", "a", -1}, {"a", "5", 1}, {"", "0", 1},
	} {
		if got := compareKeys(tc.a, tc.b); got != tc.want {
			t.Errorf("compareKeys(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
