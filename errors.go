package kiwicache

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Every failure of a Cache is an *Error that
// wraps one of these where one applies, so callers tell failures apart with
// errors.Is and find the cache, operation and key with errors.As.
//
// Some sentinels imply another: an error wrapping ErrRefused or ErrEmptyData
// also matches ErrLoadFailed, and one wrapping ErrAttemptsExhausted also
// matches ErrNoData.
var (
	// ErrNotFound: the snapshot holds no item with the key.
	ErrNotFound = errors.New("key not found")

	// ErrNoData: a read needed a first snapshot and none could be loaded, from
	// Redis or from the source. The error also wraps the cause.
	ErrNoData = errors.New("no data loaded")

	// ErrAttemptsExhausted: with WithMaxAttempts(n), n > 0, a read with no data
	// failed n attempts in a row. It implies ErrNoData.
	ErrAttemptsExhausted error = &impliedError{"attempts exhausted", ErrNoData}

	// ErrInvalidConfig: New was given an unusable name, client, loader or option.
	ErrInvalidConfig = errors.New("invalid config")

	// ErrMalformedRecord: a record in Redis is not what the codec reads (see
	// PROTOCOL.md for the default's format). The cache treats such a record as
	// missing and refills it.
	ErrMalformedRecord = errors.New("malformed record")

	// ErrLoadFailed: no record could be made from the source: the Loader
	// returned an error, panicked or timed out, returned empty data without
	// WithAllowEmpty, returned data that a guard refused, or data that the
	// codec could not encode.
	ErrLoadFailed = errors.New("load from source failed")

	// ErrEmptyData: the Loader returned no items and WithAllowEmpty is off. It
	// implies ErrLoadFailed.
	ErrEmptyData error = &impliedError{"source returned empty data", ErrLoadFailed}

	// ErrRefused: source data failed validation (WithMinItems, WithMaxShrink,
	// WithValidate). It implies ErrLoadFailed.
	ErrRefused error = &impliedError{"source data refused", ErrLoadFailed}

	// ErrRecordTooLarge: a record, in Redis or about to be written, is larger
	// than WithMaxRecordSize allows.
	ErrRecordTooLarge = errors.New("record too large")

	// ErrRedis: a Redis command failed. The go-redis error is wrapped too.
	ErrRedis = errors.New("redis command failed")

	// ErrNotWritten: a refill loaded the source but did not write the record,
	// because another process's load replaced it meanwhile, or the write was
	// refused. The error says why.
	ErrNotWritten = errors.New("record not written")

	// ErrLoaderBusy: an earlier call of the Loader has not returned yet (it
	// ignored its context's end), so no new load starts. It implies
	// ErrLoadFailed.
	ErrLoaderBusy error = &impliedError{"loader still busy with an earlier call", ErrLoadFailed}

	// ErrClosed: the Cache was closed; it serves its last snapshot but no longer
	// loads.
	ErrClosed = errors.New("cache closed")
)

// An impliedError is a sentinel that also matches a broader one.
type impliedError struct {
	msg     string
	implies error
}

func (e *impliedError) Error() string        { return e.msg }
func (e *impliedError) Is(target error) bool { return target == e.implies }

// An Error is a failure of a Cache: which cache, what operation, on which
// key, and why. Op is a Redis command ("GET", "SET NX", ...) with Key the
// Redis key it was sent for (the record, or the lock when the lock's command
// failed), or one of the Cache's own operations ("get", "reload", "refill",
// "load", "decode", "encode") with Key the record key, or for "get" the item
// key.
//
// Err is the cause; it wraps a sentinel of this package where one applies.
type Error struct {
	Cache string // NAME or NAME:SUFFIX
	Op    string
	Key   string
	Err   error
}

// Error reads "kiwicache: CACHE: OP KEY: CAUSE". An *Error directly inside
// another is written without the prefix again.
func (e *Error) Error() string { return "kiwicache: " + e.Cache + ": " + e.detail() }

func (e *Error) detail() string {
	s := e.Op
	if e.Key != "" {
		s += " " + e.Key
	}
	if e.Err != nil {
		s += ": " + errText(e.Err)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// A PanicError is a panic recovered from user code (a Loader, a validation
// function, a Codec) or from the decoder. Its message holds the panic's value
// only; the stack, for the log, is in Stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// withKind returns err marked as a failure of kind: it matches kind with
// errors.Is and reads as err alone, where the operation already says the kind
// (a Redis command that failed, a load that failed).
func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }

type kindError struct {
	kind error
	note string // written before err, when not empty
	err  error
}

func (e *kindError) Error() string {
	if e.note == "" {
		return errText(e.err)
	}
	return e.note + ": " + errText(e.err)
}

func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// errText is err's text, without the prefix of an *Error (which the *Error
// that wraps it writes once).
func errText(err error) string {
	if e, ok := err.(*Error); ok {
		return e.detail()
	}
	return err.Error()
}
