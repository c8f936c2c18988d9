package kiwicache

import "errors"

// Errors returned by the package. Failures wrap one of these (and the cause), so
// callers tell them apart with errors.Is.
var (
	// ErrNotFound: the snapshot holds no item with the key.
	ErrNotFound = errors.New("kiwicache: key not found")

	// ErrNoData: a read needed a first snapshot and none could be loaded, from
	// Redis or from the source. The error also wraps the cause.
	ErrNoData = errors.New("kiwicache: no data loaded")

	// ErrAttemptsExhausted: with WithMaxAttempts(n), n > 0, a read with no data
	// failed n attempts in a row. It always comes with ErrNoData.
	ErrAttemptsExhausted = errors.New("kiwicache: attempts exhausted")

	// ErrInvalidConfig: New was given an unusable name, client, loader or option.
	ErrInvalidConfig = errors.New("kiwicache: invalid config")

	// ErrMalformedRecord: a record in Redis is not what PROTOCOL.md describes.
	// The cache treats such a record as missing and refills it.
	ErrMalformedRecord = errors.New("kiwicache: malformed record")

	// ErrLoadFailed: the Loader returned an error, panicked, or returned empty
	// data without WithAllowEmpty.
	ErrLoadFailed = errors.New("kiwicache: load from source failed")

	// ErrEmptyData: the Loader returned no items and WithAllowEmpty is off. It
	// always comes with ErrLoadFailed.
	ErrEmptyData = errors.New("kiwicache: source returned empty data")

	// ErrRefused: source data failed validation (WithMinItems, WithMaxShrink,
	// WithValidate). It always comes with ErrLoadFailed.
	ErrRefused = errors.New("kiwicache: source data refused")

	// ErrRecordTooLarge: a record, in Redis or about to be written, is larger
	// than WithMaxRecordSize allows.
	ErrRecordTooLarge = errors.New("kiwicache: record too large")

	// ErrRedis: a Redis command failed. The go-redis error is wrapped too.
	ErrRedis = errors.New("kiwicache: redis command failed")

	// ErrClosed: the Cache was closed; it serves its last snapshot but no longer
	// loads.
	ErrClosed = errors.New("kiwicache: cache closed")
)
