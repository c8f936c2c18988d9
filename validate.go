package kiwicache

import (
	"context"
	"fmt"
	"runtime/debug"
)

// validate applies WithMinItems, WithMaxShrink and WithValidate to fresh
// source data, before it is written.
func (c *Cache[K, V]) validate(ctx context.Context, fresh map[K]V) (err error) {
	if c.cfg.minItems == 0 && c.cfg.maxShrink == 0 && c.validateFn == nil {
		return nil
	}
	if c.cfg.minItems > 0 && len(fresh) < c.cfg.minItems {
		return fmt.Errorf("%w: %d items, fewer than the minimum %d", ErrRefused, len(fresh), c.cfg.minItems)
	}
	prev := c.snap.Load()
	if prev == nil && (c.cfg.maxShrink > 0 || c.validateFn != nil) {
		// A process with no data of its own (a cron job) compares with Redis.
		f, err := c.record.fetch(ctx, recordID{size: unknownID})
		if err != nil {
			return fmt.Errorf("%w: reading the current record to compare: %w", ErrRefused, err)
		}
		if f.b != nil {
			if prev, err = c.decode(f.b, f.id); err != nil {
				prev = nil // nothing to compare with: the record is replaced anyway
			}
		}
	}
	if c.cfg.maxShrink > 0 && prev != nil && float64(len(fresh)) < float64(prev.Len())*(1-c.cfg.maxShrink) {
		return fmt.Errorf("%w: %d items where there were %d, a loss over the maximum %v",
			ErrRefused, len(fresh), prev.Len(), c.cfg.maxShrink)
	}
	if c.validateFn == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			stack := debug.Stack()
			c.log.Error("kiwicache.validate_panicked", "key", c.record.key, "panic", p, "stack", string(stack))
			err = fmt.Errorf("%w: validation: %w", ErrRefused, &PanicError{Value: p, Stack: stack})
		}
	}()
	if err := c.validateFn(prev, fresh); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}
