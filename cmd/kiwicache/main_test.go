package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

type airline struct {
	Name  string  `json:"name"`
	Fleet int     `json:"fleet"`
	Price float64 `json:"price"`
}

// fill writes a record with the core library, every golden record under its
// own key, a malformed record, and a held lock.
func fill(t *testing.T, url string) *redis.Client {
	rdb := client(t, url)
	ctx := context.Background()
	c, err := kiwicache.New("Airlines", rdb, kiwicache.LoaderFunc[string, airline](func(context.Context) (map[string]airline, error) {
		return map[string]airline{"OK": {"Czech Airlines", 5, 10}, "FR": {"Ryanair", 455, 2.5}}, nil
	}), kiwicache.WithRegistry(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	golden, _ := filepath.Glob("../../testdata/golden/*.key")
	for _, keyFile := range golden {
		key := strings.TrimSpace(string(must(os.ReadFile(keyFile))))
		rdb.Set(ctx, key, must(os.ReadFile(strings.TrimSuffix(keyFile, ".key")+".record")), time.Hour)
	}
	rdb.Set(ctx, "resource:Broken", must(os.ReadFile("../../testdata/golden/malformed/extra_member.record")), 0)
	rdb.Set(ctx, "lock:Airlines", "locked", time.Minute)
	return rdb
}

// Every command, on miniredis and on a real redis-server, with the exit
// statuses of the README.
func TestCommands(t *testing.T) {
	for backend, newURL := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			url := newURL(t)
			rdb := fill(t, url)

			expect(t, kiwicacheCmd(t, url, "list"), 0, "KEY", "resource:Airlines", "resource:CurrencyRates:EUR",
				"resource:Broken ", "malformed", "held", "resource:Carriers")
			var listed []map[string]any
			r := kiwicacheCmd(t, url, "list", "--json")
			if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 10 {
				t.Errorf("list --json: %d records, %v\n%s", len(listed), err, r.stdout)
			}

			expect(t, kiwicacheCmd(t, url, "inspect", "Airlines"), 0, "well-formed  yes", "items        2", "lock         ")
			expect(t, kiwicacheCmd(t, url, "inspect", "resource:Airlines"), 0, "well-formed  yes")
			expect(t, kiwicacheCmd(t, url, "inspect", "Broken"), 5, "well-formed  no: unexpected member")
			expect(t, kiwicacheCmd(t, url, "inspect", "Missing"), 4)

			expect(t, kiwicacheCmd(t, url, "get", "Airlines", "FR"), 0, `"name": "Ryanair"`, `"price": 2.5`)
			expect(t, kiwicacheCmd(t, url, "get", "Airlines", "OK"), 0, `"price": 10.0`)
			expectErr(t, kiwicacheCmd(t, url, "get", "Airlines", "XX"), 1, `resource:Airlines has no key "XX"`)
			expect(t, kiwicacheCmd(t, url, "get", "Broken", "a"), 5)
			expect(t, kiwicacheCmd(t, url, "get", "Missing", "a"), 4)
			expect(t, kiwicacheCmd(t, url, "--json", "get", "Carriers", "22"), 0, "-9007199254740993")

			expect(t, kiwicacheCmd(t, url, "keys", "CurrencyRates:EUR"), 0)
			r = kiwicacheCmd(t, url, "dump", "KiwiAirlinesTable")
			var dumped map[string]map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r.stdout), &dumped); err != nil || len(dumped) != 5 ||
				string(dumped["FR"]["revenue"]) != "9007199254740993" || string(dumped["FR"]["course"]) != "1.1000" {
				t.Errorf("dump: %v\n%s", err, r.stdout)
			}

			expect(t, kiwicacheCmd(t, url, "invalidate", "Tiny"), 2)
			if rdb.Exists(context.Background(), "resource:Tiny").Val() != 1 {
				t.Error("invalidate without --yes deleted the record")
			}
			expect(t, kiwicacheCmd(t, url, "invalidate", "Tiny", "--yes"), 0, "deleted resource:Tiny")
			if rdb.Exists(context.Background(), "resource:Tiny").Val() != 0 {
				t.Error("invalidate --yes left the record")
			}
			expect(t, kiwicacheCmd(t, url, "invalidate", "Tiny", "--yes"), 4)
		})
	}
}

// Every golden record is well-formed to inspect, with the items Python read.
func TestGoldenRecords(t *testing.T) {
	url := miniRedis(t)
	fill(t, url)
	for _, keyFile := range must(filepath.Glob("../../testdata/golden/*.key")) {
		key := strings.TrimSpace(string(must(os.ReadFile(keyFile))))
		var want map[string]any
		json.Unmarshal(must(os.ReadFile(strings.TrimSuffix(keyFile, ".key")+".expected.json")), &want)
		r := kiwicacheCmd(t, url, "--json", "inspect", strings.TrimPrefix(key, "resource:"))
		var in struct {
			Items      int  `json:"items"`
			WellFormed bool `json:"well_formed"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || r.status != 0 || !in.WellFormed || in.Items != len(want) {
			t.Errorf("%s: %+v (want %d items), status %d, %v", key, in, len(want), r.status, err)
		}
	}
}

// inspect --json of a record that is not well-formed gives null for what
// the record does not have, never a zero value (0 items, the year 1).
func TestInspectJSONMalformed(t *testing.T) {
	url := miniRedis(t)
	rdb := fill(t, url)
	rdb.HSet(context.Background(), "resource:Hash", "a", "b")
	for name, status := range map[string]int{"Broken": exitMalformed, "Hash": exitWrongType} {
		r := kiwicacheCmd(t, url, "--json", "inspect", name)
		var in map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || r.status != status {
			t.Fatalf("%s: %v\n%s", name, err, r)
		}
		for _, field := range []string{"items", "timestamp", "age"} {
			if v, ok := in[field]; !ok || v != nil {
				t.Errorf("%s: %s is %v, want null", name, field, v)
			}
		}
		if in["well_formed"] != false || in["malformed"] == "" {
			t.Errorf("%s: %v", name, in)
		}
	}
	if in := must(decodeJSON[map[string]any](kiwicacheCmd(t, url, "--json", "inspect", "Broken").stdout)); in["bytes"] == nil {
		t.Errorf("a malformed record has a size: %v", in)
	}
}

func decodeJSON[T any](s string) (T, error) {
	var v T
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// Errors of usage are exit status 2 and say what is wrong.
func TestUsageErrors(t *testing.T) {
	url := miniRedis(t)
	for name, tc := range map[string]struct {
		args   []string
		status int
		stderr string
	}{
		"unreachable":     {[]string{"--redis", "redis://127.0.0.1:1/0", "list"}, 3, "unreachable"},
		"no command":      {nil, 2, "usage:"},
		"unknown command": {[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		"missing arg":     {[]string{"get", "Airlines"}, 2, "usage: kiwicache"},
		"bad flag":        {[]string{"--frob", "list"}, 2, "flag provided but not defined: -frob"},
		"flag of another": {[]string{"list", "--count", "3"}, 2, "--count is not a flag of list"},
		"yes on get":      {[]string{"get", "A", "b", "--yes"}, 2, "--yes is not a flag of get"},
		"bad via":         {[]string{"watch", "A", "--via", "carrier-pigeon"}, 2, "want auto, tracking, keyspace or poll"},
		"negative count":  {[]string{"watch", "A", "--count", "-1"}, 2, "cannot be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			expectErr(t, kiwicacheCmd(t, url, tc.args...), tc.status, tc.stderr)
		})
	}
}

// help, --help and --version answer without Redis, on stdout, exit 0.
func TestHelpAndVersion(t *testing.T) {
	const noRedis = "redis://127.0.0.1:1/0"
	expect(t, kiwicacheCmd(t, noRedis, "help"), 0, "usage: kiwicache", "commands:", "watch", "diff", "exit status:")
	expect(t, kiwicacheCmd(t, noRedis, "--help"), 0, "usage: kiwicache", "8 permission denied")
	for _, args := range [][]string{{"list", "--help"}, {"inspect", "-h"}, {"get", "--help"}, {"help", "get"},
		{"keys", "--help"}, {"dump", "--help"}, {"invalidate", "--help"}, {"diff", "--help"}, {"help", "watch"}} {
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		expect(t, kiwicacheCmd(t, noRedis, args...), 0, "usage: kiwicache [--redis URL] [--json] "+name)
	}
	expect(t, kiwicacheCmd(t, noRedis, "help", "watch"), 0, "--count", "--via", "SIGINT")
	expectErr(t, kiwicacheCmd(t, noRedis, "help", "nope"), 2, `unknown command "nope"`)
	r := kiwicacheCmd(t, noRedis, "--version")
	expect(t, r, 0, "kiwicache ", "go1.")
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("--version prints one line: %q", r.stdout)
	}
}

// restamp makes a record changed in place (same length, same tail) new to
// every process: a running cache that polls by the record's length and tail
// serves the change only after it, and invalidate and restamp publish.
func TestRestamp(t *testing.T) {
	url := realRedis(t)
	rdb := client(t, url)
	ctx := t.Context()
	record := `{"data": {"k": "aaaa"}, "timestamp": 1764087331.5}`
	rdb.Set(ctx, "resource:Stamp", record, time.Hour)
	c, err := kiwicache.New("Stamp", rdb, kiwicache.LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
		return map[string]string{"k": "source"}, nil
	}), kiwicache.WithReloadTTL(50*time.Millisecond), kiwicache.WithoutPush(), kiwicache.WithRegistry(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Get(ctx, "k"); err != nil || v != "aaaa" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	rdb.SetRange(ctx, "resource:Stamp", int64(strings.Index(record, "aaaa")), "bbbb")
	time.Sleep(300 * time.Millisecond) // several reload periods
	if v, _ := c.Get(ctx, "k"); v != "aaaa" {
		t.Fatalf("an in-place change was seen without restamp (%q): the test does not test restamp", v)
	}
	sub := rdb.Subscribe(ctx, kiwicache.PushChannel("resource:Stamp"))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	expectErr(t, kiwicacheCmd(t, url, "restamp", "Stamp"), 2, "--yes")
	expect(t, kiwicacheCmd(t, url, "restamp", "Stamp", "--yes"), 0, "restamped resource:Stamp")
	deadline := time.Now().Add(5 * time.Second)
	for v, _ := c.Get(ctx, "k"); v != "bbbb"; v, _ = c.Get(ctx, "k") {
		if time.Now().After(deadline) {
			t.Fatalf("Get = %q after restamp, want bbbb", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ttl := rdb.TTL(ctx, "resource:Stamp").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL after restamp = %v, want the record's kept", ttl)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || !strings.Contains(msg.Payload, `"bytes"`) {
		t.Errorf("restamp published %v, %v", msg, err)
	}
	expect(t, kiwicacheCmd(t, url, "invalidate", "Stamp", "--yes"), 0)
	if msg, err := sub.ReceiveMessage(ctx); err != nil || msg.Payload != `{"deleted": true}` {
		t.Errorf("invalidate published %v, %v", msg, err)
	}
}
