package main

import "testing"

// The cron job refills its caches without error (miniredis, or REDIS_URL).
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
