package main

import (
	"bytes"
	"strings"
	"testing"
)

// The example runs on the embedded miniredis (or REDIS_URL, as in CI) and
// prints its lookups.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OK: Czech Airlines (CZ, founded 1923)", "XX: no such airline", "-> snapshot of 5 items -> Get"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
