package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A Redis URL that does not parse is shown with its password replaced, from
// --redis and from REDIS_URL alike; a URL without a scheme says so.
func TestRedisURLRedacted(t *testing.T) {
	const secret = "s3cretpw"
	for _, bad := range []string{
		"redis://user:" + secret + "@host:badport/0",
		"redis://:" + secret + "@127.0.0.1:6379/notadb",
		"redis://:" + secret + "@[::1/0",
		"redis://u:" + secret + "%zz@host/0",
		"http://:" + secret + "@host/0",
		"redis://host/0?password=" + secret + "&dial_timeout=zz",
		"redis://user:" + secret + "@host/0?protocol=x",
		":" + secret + "@host:6379",
	} {
		for _, r := range []result{kiwicacheCmd(t, "redis://unused", "--redis", bad, "list"), kiwicacheCmd(t, bad, "list")} {
			expectErr(t, r, exitUsage, "bad Redis URL")
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%s: the password is shown:\n%s", bad, r)
			}
		}
	}
	r := kiwicacheCmd(t, "redis://unused", "--redis", "not a url", "list")
	expectErr(t, r, exitUsage, `bad Redis URL "not a url": no scheme; want redis://`)
	if strings.Contains(r.stderr, ": \n") || strings.Contains(r.stderr, "scheme: ") {
		t.Errorf("an empty detail: %q", r.stderr)
	}
	// Nor is it shown when Redis cannot be reached.
	r = kiwicacheCmd(t, "redis://:"+secret+"@127.0.0.1:1/0", "list")
	expectErr(t, r, exitRedis, "Redis at 127.0.0.1:1 is unreachable")
	if strings.Contains(r.stderr, secret) {
		t.Errorf("the password is shown: %s", r)
	}
	for raw, want := range map[string]string{
		"redis://localhost:6379/0":                  "redis://localhost:6379/0",
		"redis://u:pw@h/0":                          "redis://u:xxxxx@h/0",
		"redis://h/0?password=pw":                   "redis://h/0?password=xxxxx",
		"redis://u:pw@h:x:y/0":                      "redis://u:xxxxx@h:x:y/0",
		"redis://u:p@w@h:bad/0":                     "redis://u:xxxxx@h:bad/0",
		"rediss://h:bad/0?a=1&password=pw&b=2":      "rediss://h:bad/0?a=1&password=xxxxx&b=2",
		"redis://h:bad/0?password=pw":               "redis://h:bad/0?password=xxxxx",
		"not a url":                                 "not a url",
		"redis://:pw@[::1/0":                        "redis://:xxxxx@[::1/0",
		"unix://u:pw@/tmp/redis.sock?db=1":          "unix://u:xxxxx@/tmp/redis.sock?db=1",
		"redis://u:pw%zz@h/0":                       "redis://u:xxxxx@h/0",
		"redis://default:pw@h/0?dial_timeout=1s#ok": "redis://default:xxxxx@h/0?dial_timeout=1s#ok",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// Credentials refused and ACL refusals have exit statuses of their own (7
// and 8), and say which command on which key was refused; list shows a key
// it may not read as such and goes on.
func TestAuthAndPermissions(t *testing.T) {
	const password = "s3cretpw"
	addr := startRedis(t, "--requirepass", password)
	admin := client(t, fmt.Sprintf("redis://:%s@%s/0", password, addr))
	ctx := context.Background()
	record := `{"data": {"k": 1}, "timestamp": 1.5}`
	admin.Set(ctx, "resource:Public", record, 0)
	admin.Set(ctx, "resource:Secret", record, 0)
	admin.Set(ctx, "resource:NoLock", record, 0)
	must(0, admin.Do(ctx, "ACL", "SETUSER", "reader", "on", ">readerpw", "resetkeys",
		"~resource:Public", "~resource:NoLock", "~lock:Public", "+@read", "+@connection", "+scan").Err())

	r := kiwicacheCmd(t, fmt.Sprintf("redis://:wrong-%s@%s/0", password, addr), "list")
	expectErr(t, r, exitAuth, "refused the credentials")
	if strings.Contains(r.stderr, password) {
		t.Errorf("the password is shown: %s", r)
	}
	expectErr(t, kiwicacheCmd(t, fmt.Sprintf("redis://%s/0", addr), "list"), exitAuth, "NOAUTH")

	reader := fmt.Sprintf("redis://reader:readerpw@%s/0", addr)
	expect(t, kiwicacheCmd(t, reader, "inspect", "Public"), 0, "well-formed  yes")
	expectErr(t, kiwicacheCmd(t, reader, "inspect", "Secret"), exitPermission, "GET resource:Secret: NOPERM")
	expectErr(t, kiwicacheCmd(t, reader, "get", "Secret", "k"), exitPermission, "NOPERM")
	// The refused command is on the lock key: the error names it.
	expectErr(t, kiwicacheCmd(t, reader, "inspect", "NoLock"), exitPermission, "PTTL lock:NoLock: NOPERM")
	r = kiwicacheCmd(t, reader, "list")
	expect(t, r, 0, "resource:Public ", "resource:Secret ", "unreadable (ACL)")
	expectErr(t, kiwicacheCmd(t, reader, "invalidate", "Public", "--yes"), exitPermission, "DEL resource:Public: NOPERM")
	if admin.Exists(ctx, "resource:Public").Val() != 1 {
		t.Error("a refused invalidate deleted the record")
	}
}

// A key of another Redis type under resource:* is listed and marked, not an
// error for list; for the commands that read it, exit status 6.
func TestWrongType(t *testing.T) {
	for backend, newURL := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			url := newURL(t)
			rdb := client(t, url)
			ctx := context.Background()
			rdb.Set(ctx, "resource:Good", `{"data": {"k": 1}, "timestamp": 1.5}`, 0)
			rdb.HSet(ctx, "resource:Hash", "a", "b")
			rdb.RPush(ctx, "resource:List", "a")
			r := kiwicacheCmd(t, url, "list")
			expect(t, r, 0, "resource:Good ", "resource:Hash ", "wrong type: hash", "wrong type: list")
			var listed []map[string]any
			if err := json.Unmarshal([]byte(kiwicacheCmd(t, url, "--json", "list").stdout), &listed); err != nil || len(listed) != 3 ||
				listed[1]["wrong_type"] != "hash" || listed[1]["bytes"] != nil || listed[1]["well_formed"] != false {
				t.Errorf("list --json: %v, %v", listed, err)
			}
			for _, args := range [][]string{{"inspect", "Hash"}, {"get", "Hash", "a"}, {"keys", "List"}, {"dump", "Hash"}, {"diff", "Good", "Hash"}} {
				expectErr(t, kiwicacheCmd(t, url, args...), exitWrongType, "is no record: the key holds a")
			}
			expect(t, kiwicacheCmd(t, url, "inspect", "Hash"), exitWrongType, "type  hash: no record")
		})
	}
}
