package main

import (
	"bytes"
	"strings"
	"testing"
)

// The example runs on the embedded miniredis (or REDIS_URL, as in CI), says
// what it does and prints its lookups.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Redis: ",
		"cache Airlines: Redis record resource:Airlines",
		"OK: Czech Airlines (CZ, founded 1923)",
		"XX: no such airline",
		"-> Redis resource:Airlines (",
		"-> snapshot of 5 items -> Get",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Without a reachable Redis the example fails with the error, not exit 0.
func TestRunReportsNoRedis(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")
	var out bytes.Buffer
	err := run(&out)
	if err == nil || !strings.Contains(err.Error(), "get OK: ") {
		t.Fatalf("run = %v, want the error of the first Get\n%s", err, out.String())
	}
}
