package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/redis/go-redis/v9"
)

// binary is the command, built by TestMain: the tests run it as users do.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiwicache-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kiwicache")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the command printed and its exit status.
type result struct {
	stdout, stderr string
	status         int
}

func kiwicacheCmd(t *testing.T, url string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// backends: miniredis, and a real redis-server: database 15 of REDIS_URL's,
// or one started from PATH.
func backends(t *testing.T) map[string]string {
	mr := miniredis.RunT(t)
	b := map[string]string{"miniredis": "redis://" + mr.Addr() + "/0"}
	if url := os.Getenv("REDIS_URL"); url != "" {
		// A database of its own: fill flushes it, while other packages' tests
		// use the same server.
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		b["redis-server"] = fmt.Sprintf("redis://%s/15", opts.Addr)
	} else if bin, err := exec.LookPath("redis-server"); err == nil {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		defer rdb.Close()
		for i := 0; rdb.Ping(context.Background()).Err() != nil; i++ {
			if i == 100 {
				t.Fatal("redis-server did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b["redis-server"] = url
	} else {
		t.Log("no redis-server on PATH: the real-server half of these tests is skipped")
	}
	return b
}

type airline struct {
	Name  string  `json:"name"`
	Fleet int     `json:"fleet"`
	Price float64 `json:"price"`
}

// fill writes a record with the core library, every golden record under its
// own key, a malformed record, and a held lock.
func fill(t *testing.T, url string) *redis.Client {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	rdb.FlushDB(ctx)
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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCommands(t *testing.T) {
	for backend, url := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			rdb := fill(t, url)
			expect := func(r result, status int, stdout ...string) {
				t.Helper()
				if r.status != status {
					t.Errorf("exit status %d, want %d; stderr: %s", r.status, status, r.stderr)
				}
				for _, s := range stdout {
					if !strings.Contains(r.stdout, s) {
						t.Errorf("output lacks %q:\n%s", s, r.stdout)
					}
				}
			}

			expect(kiwicacheCmd(t, url, "list"), 0, "KEY", "resource:Airlines", "resource:CurrencyRates:EUR",
				"resource:Broken ", "malformed", "held", "resource:Carriers")
			var listed []map[string]any
			r := kiwicacheCmd(t, url, "list", "--json")
			if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 10 {
				t.Errorf("list --json: %d records, %v\n%s", len(listed), err, r.stdout)
			}

			expect(kiwicacheCmd(t, url, "inspect", "Airlines"), 0, "well-formed  yes", "items        2", "lock         ")
			r = kiwicacheCmd(t, url, "inspect", "Broken")
			expect(r, 5, "well-formed  no: malformed record: unexpected member")
			expect(kiwicacheCmd(t, url, "inspect", "Missing"), 4)

			expect(kiwicacheCmd(t, url, "get", "Airlines", "FR"), 0, `"name": "Ryanair"`, `"price": 2.5`)
			expect(kiwicacheCmd(t, url, "get", "Airlines", "OK"), 0, `"price": 10.0`)
			expect(kiwicacheCmd(t, url, "get", "Airlines", "XX"), 1)
			expect(kiwicacheCmd(t, url, "get", "Broken", "a"), 5)
			expect(kiwicacheCmd(t, url, "get", "Missing", "a"), 4)
			expect(kiwicacheCmd(t, url, "--json", "get", "Carriers", "22"), 0, "-9007199254740993")

			expect(kiwicacheCmd(t, url, "keys", "CurrencyRates:EUR"), 0)
			r = kiwicacheCmd(t, url, "dump", "KiwiAirlinesTable")
			var dumped map[string]map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r.stdout), &dumped); err != nil || len(dumped) != 5 ||
				string(dumped["FR"]["revenue"]) != "9007199254740993" || string(dumped["FR"]["course"]) != "1.1000" {
				t.Errorf("dump: %v\n%s", err, r.stdout)
			}

			expect(kiwicacheCmd(t, url, "invalidate", "Tiny"), 2)
			if rdb.Exists(context.Background(), "resource:Tiny").Val() != 1 {
				t.Error("invalidate without --yes deleted the record")
			}
			expect(kiwicacheCmd(t, url, "invalidate", "Tiny", "--yes"), 0, "deleted resource:Tiny")
			if rdb.Exists(context.Background(), "resource:Tiny").Val() != 0 {
				t.Error("invalidate --yes left the record")
			}
			expect(kiwicacheCmd(t, url, "invalidate", "Tiny", "--yes"), 4)
		})
	}
}

// Every golden record is well-formed to inspect, with the items Python read.
func TestGoldenRecords(t *testing.T) {
	url := backends(t)["miniredis"]
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

func TestErrors(t *testing.T) {
	url := backends(t)["miniredis"]
	for name, tc := range map[string]struct {
		args   []string
		status int
		stderr string
	}{
		"unreachable":     {[]string{"--redis", "redis://127.0.0.1:1/0", "list"}, 3, "unreachable"},
		"no command":      {nil, 2, "usage:"},
		"unknown command": {[]string{"frobnicate"}, 2, "unknown command"},
		"missing arg":     {[]string{"get", "Airlines"}, 2, "usage: kiwicache"},
		"bad name":        {[]string{"inspect", "a b"}, 2, "bad record name"},
		"bad flag":        {[]string{"--frob", "list"}, 2, "flag provided but not defined"},
		"bad url":         {[]string{"--redis", "http://x", "list"}, 2, "bad Redis URL"},
	} {
		t.Run(name, func(t *testing.T) {
			r := kiwicacheCmd(t, url, tc.args...)
			if r.status != tc.status || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("status %d, stderr %q; want %d and %q", r.status, r.stderr, tc.status, tc.stderr)
			}
		})
	}
	for _, args := range [][]string{{"--help"}, {"list", "--help"}, {"inspect", "-h"}, {"get", "--help"},
		{"keys", "--help"}, {"dump", "--help"}, {"invalidate", "--help"}} {
		if r := kiwicacheCmd(t, url, args...); r.status != 0 || !strings.Contains(r.stdout, "usage: kiwicache") {
			t.Errorf("%v: status %d, output %q", args, r.status, r.stdout)
		}
	}
}
