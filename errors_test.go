package kiwicache

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A failure reads as one sentence that names the cache once, the operation
// and the key it was on, and the cause; errors.Is finds every sentinel it
// implies, errors.As the *Error.
func TestErrorsNameCacheOpAndKey(t *testing.T) {
	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(map[string]item{"a": {Name: "one"}}))
	c := mustNew(t, "Items", rdb, l, WithSuffix("EU"), WithMinItems(3), WithMaxAttempts(2))
	_, err := c.Get(t.Context(), "a")
	want := `kiwicache: Items:EU: get a: attempts exhausted (2 in a row): load resource:Items:EU: source data refused: 1 items, fewer than the minimum 3`
	if err == nil || err.Error() != want {
		t.Errorf("error text:\n got %v\nwant %s", err, want)
	}
	for _, sentinel := range []error{ErrNoData, ErrAttemptsExhausted, ErrLoadFailed, ErrRefused} {
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(err, %v) = false", sentinel)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Cache != "Items:EU" || e.Op != "get" || e.Key != "a" {
		t.Errorf("errors.As: %+v", e)
	}
	if strings.Count(err.Error(), "kiwicache") != 1 {
		t.Errorf("prefix repeated: %v", err)
	}

	l.set(staticData(twoItems))
	c2 := mustNew(t, "Other", rdb, l)
	_, err = c2.Get(t.Context(), "missing")
	if !errors.Is(err, ErrNotFound) || err.Error() != "kiwicache: Other: get missing: key not found" {
		t.Errorf("Get of an absent key = %v", err)
	}
}

// A Redis error names the key of the command that failed: the lock's, when
// an ACL user may not touch lock:*.
func TestRedisErrorNamesLockKey(t *testing.T) {
	srv, err := newRedisServer()
	if err != nil {
		t.Skip("integration test skipped:", err)
	}
	t.Cleanup(srv.stop)
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "nolock", "on", ">pw", "~resource:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), Username: "nolock", Password: "pw"})
	t.Cleanup(func() { rdb.Close() })
	c := mustNew(t, "ACLTest", rdb, LoaderFunc[string, item](staticData(twoItems)))
	err = c.Refill(t.Context())
	var e *Error
	if !errors.Is(err, ErrRedis) || !errors.As(err, &e) || e.Key != "lock:ACLTest" || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("Refill = %v (%+v), want ErrRedis naming lock:ACLTest", err, e)
	}
}

// A Loader's panic is an error with the panic's value; its stack goes to the
// log, not into the error's text (which Health and handlers print).
func TestLoaderPanicStackGoesToLog(t *testing.T) {
	_, rdb := newMiniredis(t)
	logs := &logBuffer{}
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		panic("boom")
	}), WithLogger(logs.logger()))
	err := c.Refill(t.Context())
	var p *PanicError
	if !errors.As(err, &p) || p.Value != "boom" || len(p.Stack) == 0 || !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("Refill = %v, want a *PanicError with its stack, as ErrLoadFailed", err)
	}
	if text := c.Health().LastError.Error(); strings.Contains(text, "goroutine") || !strings.HasSuffix(text, "panic: boom") {
		t.Errorf("LastError = %q, want the panic's value and no stack", text)
	}
	if !strings.Contains(logs.String(), `"stack":"goroutine`) {
		t.Errorf("the stack is not in the log:\n%s", logs)
	}
}
