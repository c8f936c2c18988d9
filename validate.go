package kiwicache

import (
	"context"
	"fmt"
)

// validate applies WithMinItems, WithMaxShrink and WithValidate to fresh
// source data, before it is written.
func (c *Cache[K, V]) validate(ctx context.Context, fresh map[K]V) (err error) {
	if c.cfg.minItems == 0 && c.cfg.maxShrink == 0 && c.validateFn == nil {
		return nil
	}
	if c.cfg.minItems > 0 && len(fresh) < c.cfg.minItems {
		return fmt.Errorf("%w: %w: %d items, fewer than the minimum %d", ErrLoadFailed, ErrRefused, len(fresh), c.cfg.minItems)
	}
	prev := c.snap.Load()
	if prev == nil && (c.cfg.maxShrink > 0 || c.validateFn != nil) {
		// A process with no data of its own (a cron job) compares with Redis.
		rec, err := c.fetch(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w: reading the current record to compare: %w", ErrLoadFailed, ErrRefused, err)
		}
		if rec != nil {
			prev = newSnapshot(rec)
		}
	}
	if c.cfg.maxShrink > 0 && prev != nil && float64(len(fresh)) < float64(prev.Len())*(1-c.cfg.maxShrink) {
		return fmt.Errorf("%w: %w: %d items where there were %d, a loss over the maximum %v",
			ErrLoadFailed, ErrRefused, len(fresh), prev.Len(), c.cfg.maxShrink)
	}
	if c.validateFn == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w: validation panicked: %v", ErrLoadFailed, ErrRefused, p)
		}
	}()
	if err := c.validateFn(prev, fresh); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrLoadFailed, ErrRefused, err)
	}
	return nil
}
