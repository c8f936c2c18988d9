package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// aclUser is the user that README.md's ACL rule creates.
const aclUser = "kiwicache"

// readmeACLRule returns the ACL SETUSER command of README.md's "Redis
// permissions (ACL)" section, with the test's password in place of PASSWORD:
// the test runs the rule users copy, so the two cannot drift apart.
func readmeACLRule(t *testing.T) []any {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "ACL SETUSER "+aclUser+" ") {
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	if len(rules) != 1 {
		t.Fatalf("README.md has %d lines starting with \"ACL SETUSER %s \", want the one rule of its ACL section", len(rules), aclUser)
	}
	var args []any
	for _, f := range strings.Fields(rules[0]) {
		if f == ">PASSWORD" {
			f = ">" + testACLPassword
		}
		args = append(args, f)
	}
	return args
}

// The README's ACL rule lets a cache do everything it does: with a user made
// by exactly that rule on a real redis-server, a cache listens for push
// notifications by client tracking, publishes its writes, which reach it
// from another writer, refills a missing record under the lock, reloads
// changed, unchanged and malformed records,
// refills on demand and through RefillAll, keeps the record alive (with and
// without expiry) and writes it back while its source fails, extends the lock
// through a long load, and waits for another process's lock.
// Every command, key or channel Redis refuses that user (ACL LOG records each
// one, even where the library only logs the error) fails the test, naming the
// step and the permission the rule lacks.
func TestACLRuleOfREADME(t *testing.T) {
	srv := startTestRedis(t)
	ctx := t.Context()
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer admin.Close()
	rule := readmeACLRule(t)
	if err := admin.Do(ctx, rule...).Err(); err != nil {
		t.Fatalf("redis-server refuses README.md's ACL rule: %v", err)
	}
	if err := admin.ACLLogReset(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	user := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: aclUser, Password: testACLPassword, MaxRetries: -1})
	defer user.Close()

	name := uniqueName(t)
	key, lockKey := "resource:"+name, "lock:"+name
	var sourceDown atomic.Bool
	source := LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
		if sourceDown.Load() {
			return nil, errors.New("source is down")
		}
		return map[string]string{"a": "one", "b": "two"}, nil
	})
	reg := new(Registry)
	logs := &logBuffer{}
	// c does not listen: the steps below change its record behind its back,
	// and a reload started by a notification would race with theirs. l
	// listens for push notifications, as every Cache does by default, on a
	// record of its own.
	c := mustNew(t, name, user, source, WithRegistry(reg), WithReloadTTL(time.Hour),
		WithRefillLockTTL(2*time.Second), WithLogger(logs.logger()))
	l := mustNewListening(t, name, user, source, WithSuffix("push"), WithRegistry(nil), WithReloadTTL(time.Hour),
		WithLogger(logs.logger()))
	record := func(data string) string {
		return fmt.Sprintf(`{"data": %s, "timestamp": %.6f}`, data, float64(time.Now().UnixMicro())/1e6)
	}
	want := func(v string) error {
		if got, err := c.Get(ctx, "a"); err != nil || got != v {
			return fmt.Errorf("Get(a) = %q, %v; want %q", got, err, v)
		}
		return nil
	}
	// failsFromSource accepts the error of a step whose source is down.
	failsFromSource := func(err error) error {
		if errors.Is(err, ErrLoadFailed) && !strings.Contains(err.Error(), "NOPERM") {
			return nil
		}
		return fmt.Errorf("want a load failure, got %v", err)
	}

	steps := []struct {
		name string
		run  func() error
	}{
		{"first Get: a missing record refilled under the lock", func() error { return want("one") }},
		{"listening for writes (push notifications)", func() error {
			deadline := time.Now().Add(10 * time.Second)
			if _, err := l.Get(ctx, "a"); err != nil {
				return err
			}
			for !l.Health().PushConnected {
				if time.Now().After(deadline) {
					return fmt.Errorf("not listening after 10s; log:\n%s", logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), `"mode":"client tracking"`) {
				return fmt.Errorf("not listening by client tracking; log:\n%s", logs)
			}
			return nil
		}},
		{"Reload of an unchanged record", func() error { return c.Reload(ctx) }},
		{"Reload of a record another process wrote", func() error {
			admin.Set(ctx, key, record(`{"a": "uno"}`), time.Hour)
			if err := c.Reload(ctx); err != nil {
				return err
			}
			return want("uno")
		}},
		{"Refill", func() error {
			if err := c.Refill(ctx); err != nil {
				return err
			}
			return want("one")
		}},
		{"Reload of a malformed record: refilled", func() error {
			admin.Set(ctx, key, "not json", time.Hour)
			if err := c.Reload(ctx); err != nil {
				return err
			}
			return want("one")
		}},
		{"Refill while the source fails: the record kept alive", func() error {
			sourceDown.Store(true)
			defer sourceDown.Store(false)
			return failsFromSource(c.Refill(ctx))
		}},
		{"Reload of a deleted record while the source fails: written back", func() error {
			admin.Del(ctx, key)
			sourceDown.Store(true)
			defer sourceDown.Store(false)
			return failsFromSource(c.Reload(ctx))
		}},
		{"a record without expiry: refilled, then kept while the source fails", func() error {
			forever := mustNew(t, name, user, source, WithSuffix("forever"), WithNoExpiry(), WithRegistry(reg))
			if _, err := forever.Get(ctx, "a"); err != nil {
				return err
			}
			sourceDown.Store(true)
			defer sourceDown.Store(false)
			return failsFromSource(forever.Refill(ctx))
		}},
		{"a load longer than the lock's TTL: the lock extended", func() error {
			slow := LoaderFunc[string, string](func(ctx context.Context) (map[string]string, error) {
				time.Sleep(1500 * time.Millisecond)
				return source.Load(ctx)
			})
			long := mustNew(t, name, user, slow, WithSuffix("slow"), WithRefillLockTTL(time.Second))
			return long.Refill(ctx)
		}},
		{"first Get while another process holds the lock", func() error {
			admin.Del(ctx, key)
			admin.Set(ctx, lockKey, "locked", 5*time.Second) // a Python process loading
			go func() {
				time.Sleep(200 * time.Millisecond)
				admin.Set(ctx, key, record(`{"a": "from the holder"}`), time.Hour)
				admin.Del(ctx, lockKey)
			}()
			waiting := mustNew(t, name, user, source, WithReloadTTL(time.Hour))
			if got, err := waiting.Get(ctx, "a"); err != nil || got != "from the holder" {
				return fmt.Errorf("Get(a) = %q, %v; want the holder's record", got, err)
			}
			return nil
		}},
		{"a write by another process, announced to the listening cache", func() error {
			writer := mustNew(t, name, user, LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
				return map[string]string{"a": "pushed"}, nil
			}), WithSuffix("push"))
			if err := writer.Refill(ctx); err != nil {
				return err
			}
			deadline := time.Now().Add(10 * time.Second)
			for got, _ := l.Get(ctx, "a"); got != "pushed"; got, _ = l.Get(ctx, "a") {
				if time.Now().After(deadline) {
					return fmt.Errorf("the listening cache serves %q 10s after the write, want pushed", got)
				}
				time.Sleep(10 * time.Millisecond)
			}
			return nil
		}},
		{"RefillAll", func() error { return reg.RefillAll(ctx) }},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			t.Errorf("%s, as the README's ACL user: %v", step.name, err)
		}
		checkACLLog(t, admin, step.name)
	}
	c.Close()
	checkACLLog(t, admin, "after Close")
}

// checkACLLog fails the test for every refusal Redis logged for the README's
// ACL user since the last check, saying what the rule must add.
func checkACLLog(t *testing.T, admin *redis.Client, step string) {
	t.Helper()
	ctx := context.Background()
	entries, err := admin.ACLLog(ctx, 100).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Username != aclUser {
			continue
		}
		add := ""
		switch e.Reason {
		case "command":
			if e.Object == "client|setinfo" {
				// go-redis names its connections on Redis >= 7.2 and carries
				// on when refused; the README says how to allow or avoid it.
				continue
			}
			add = "+" + e.Object
		case "key":
			add = "a key pattern (~...) matching " + e.Object
		case "channel":
			add = "a channel pattern (&...) matching " + e.Object
		default:
			add = "what Redis refused"
		}
		t.Errorf("%s: Redis refused the README's ACL user %s %q (%s, %d time(s)): the ACL rule in README.md lacks %s",
			step, e.Reason, e.Object, e.Context, e.Count, add)
	}
	admin.ACLLogReset(ctx)
}
