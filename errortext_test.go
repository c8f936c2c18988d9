package kiwicache

import (
	"context"
	"errors"
	"testing"
)

// An error marked with a kind (a failed load, a failed Redis command) reads
// as its cause alone: the operation already says what kind of failure it is.
func TestKindErrorsReadAsTheirCause(t *testing.T) {
	mr, rdb := newMiniredis(t)
	c := mustNew(t, "Items", rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
		return nil, errors.New("db down")
	}))
	if err := c.Refill(t.Context()); err == nil || err.Error() != "kiwicache: Items: load resource:Items: db down" {
		t.Errorf("a failed load reads %q", err)
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	if err := c.Refill(t.Context()); err == nil ||
		err.Error() != "kiwicache: Items: fetch script resource:Items: LOADING Redis is loading the dataset in memory" {
		t.Errorf("a failed Redis command reads %q", err)
	}
}
