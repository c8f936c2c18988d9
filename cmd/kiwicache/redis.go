package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// connect opens c.rdb on the Redis at rawURL and checks that it answers.
// Neither a bad URL nor any later message shows the URL's password.
func (c *cli) connect(ctx context.Context, rawURL string) error {
	opts, err := parseRedisURL(rawURL)
	if err != nil {
		return failure{exitUsage, err}
	}
	opts.MaxRetries = -1
	c.url, c.db = rawURL, opts.DB
	c.rdb = redis.NewClient(opts)
	err = c.rdb.Ping(ctx).Err()
	switch {
	case err == nil, redis.IsPermissionError(err):
		// An ACL user without PING is still connected and authenticated.
		return nil
	case redis.IsAuthError(err):
		err = failure{exitAuth, fmt.Errorf("Redis at %s refused the credentials: %w", opts.Addr, err)}
	default:
		err = failure{exitRedis, fmt.Errorf("Redis at %s is unreachable: %w", opts.Addr, err)}
	}
	c.rdb.Close()
	return err
}

// parseRedisURL is redis.ParseURL with errors that say what is wrong and show
// the URL with its password redacted.
func parseRedisURL(raw string) (*redis.Options, error) {
	shown := redactURL(raw)
	if u, err := url.Parse(raw); err == nil && u.Scheme == "" {
		return nil, fmt.Errorf("bad Redis URL %q: no scheme; want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://... or unix:///PATH", shown)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// url.Parse's errors hold the whole URL.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			ue.URL = redactURL(ue.URL)
		}
		return nil, fmt.Errorf("bad Redis URL %q: %w", shown, err)
	}
	return opts, nil
}

// redactURL returns raw with its password, in the user information or a
// password= query parameter, replaced by "xxxxx", whether or not raw parses.
func redactURL(raw string) string {
	const mask = "xxxxx"
	if u, err := url.Parse(raw); err == nil {
		_, hasPassword := u.User.Password()
		q := u.Query()
		if !hasPassword && !q.Has("password") {
			return raw // as given: nothing to hide
		}
		if q.Has("password") {
			q.Set("password", mask)
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// It does not parse: cut by hand, erring on the side of hiding more.
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":" + mask + rest[at:]
		}
	}
	if i := strings.Index(rest, "password="); i >= 0 {
		end := strings.IndexByte(rest[i:], '&')
		if end < 0 {
			end = len(rest) - i
		}
		rest = rest[:i] + "password=" + mask + rest[i+end:]
	}
	return prefix + rest
}

// redisFailure is a failed Redis command as a failure whose exit status says
// what went wrong: the credentials refused, an ACL refusal, a key of another
// type, or anything else (unreachable, timed out, ...).
func redisFailure(cmd, key string, err error) error {
	status := exitRedis
	switch {
	case redis.IsAuthError(err):
		status = exitAuth
	case redis.IsPermissionError(err):
		status = exitPermission
	case isWrongType(err):
		status = exitWrongType
	}
	return failure{status, fmt.Errorf("%s %s: %w", cmd, display(key), err)}
}

// isWrongType reports whether Redis refused a command for the type of its key.
// WRONGTYPE is the error code of the Redis protocol, which go-redis exposes
// only through HasErrorPrefix.
func isWrongType(err error) bool { return redis.HasErrorPrefix(err, "WRONGTYPE") }
