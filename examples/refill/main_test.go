package main

import (
	"bytes"
	"strings"
	"testing"
)

// The cron job refills its caches without error (miniredis, or REDIS_URL).
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	if want := "refilled [resource:Airlines resource:Airlines:backup] in "; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
