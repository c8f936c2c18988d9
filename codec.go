package kiwicache

import (
	"bytes"
	"encoding"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	// The Go team's encoding/json/v2 (standard from Go 1.27; this module mirrors
	// it for Go 1.26), for encoding. It is here for what encoding/json cannot
	// do: a type-specific marshaler, so that every float is written as Python
	// writes it ("5.0", not "5") wherever it sits in V. With the v1 options
	// below, values keep encoding/json's semantics. Records are decoded by
	// the package's own decoder (decode.go).
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// A Record is a dataset as Redis holds it: the items and when they were read
// from the source.
type Record[K comparable, V any] struct {
	Data      map[K]V
	Timestamp time.Time

	size int // bytes of the Redis string it came from or went to; 0 if unknown
}

// A Codec turns a Record into the bytes of the Redis string and back.
// Decode must return an error (never panic) for any input it cannot read; the
// cache logs such a record as malformed and refills it from the source.
//
// A Cache copies the map that Decode returns into its snapshot, which keeps
// the values in one slice (fewer bytes than a map); with a JSONCodec, the
// default, it decodes straight into it instead, making no map.
type Codec[K comparable, V any] interface {
	Encode(rec Record[K, V]) ([]byte, error)
	Decode(b []byte) (Record[K, V], error)
}

// JSONCodec is the default Codec: the record format of the Python kiwi-cache
// 0.4.5 (PROTOCOL.md), {"data": {...}, "timestamp": <float seconds>}.
//
// Keys are JSON member names: K must be a string or integer kind, or
// implement both encoding.TextMarshaler and (on *K) encoding.TextUnmarshaler.
// Values are encoded and decoded with encoding/json's semantics (struct tags,
// case-insensitive field names, UnmarshalJSON and UnmarshalText methods,
// ...), with three differences that keep the data as Python has it:
//   - float64 and float32 values are written with a '.' or an exponent (5.0),
//     so that Python reads them back as floats; named float types (type
//     Celsius float64) in V too, but inside an any they are written as
//     encoding/json writes them (5, not 5.0);
//   - numbers decoded into any are Number, with their exact text, not float64;
//   - a record with invalid UTF-8 is malformed (encoding/json would replace
//     the bytes, and merge keys that differ only by them), as it is for Python.
//
// Records are decoded by a decoder made for them: straight into the
// snapshot's storage when a Cache decodes them (Decode makes a map of it),
// with a plan per value type made once, on every core for large records,
// with strings copied so that nothing keeps the record's bytes alive
// (BENCHMARKS.md has its measurements against encoding/json and others).
//
// The zero value is ready to use.
type JSONCodec[K comparable, V any] struct {
	// Unmarshal, if set, decodes the data object's members in place of the
	// built-in decoder: it is called, concurrently, with JSON objects (parts
	// of the data object, checked as JSON first) to decode into a *map[K]V.
	// It must keep encoding/json's semantics. It is for a decoder with
	// semantics of its own; for speed, the built-in decoder is faster than
	// sonic, goccy/go-json and encoding/json on the benchmark records
	// (BENCHMARKS.md). Leave it nil when V holds an any or a Number, which
	// only the built-in decoder keeps exact.
	Unmarshal func(data []byte, v any) error
}

var (
	encodeBaseOptions = json.JoinOptions(
		jsonv1.DefaultOptionsV1(),
		jsontext.EscapeForHTML(false), // Python does not escape <, >, &
		// Member order means nothing to the readers; sorting 100,000 keys and
		// looking each up again took a third of a refill's encode.
		json.Deterministic(false),
	)
	encodeOptions = json.JoinOptions(encodeBaseOptions, json.WithMarshalers(json.JoinMarshalers(
		json.MarshalToFunc(func(enc *jsontext.Encoder, f float64) error {
			return writeFloat(enc, f, 64)
		}),
		json.MarshalToFunc(func(enc *jsontext.Encoder, f float32) error {
			return writeFloat(enc, float64(f), 32)
		}),
	)))
	// namedFloatOptions also write named float types (type Rate float64) as
	// Python floats. Their marshaler sees every value, so it is used only for
	// a V that holds such a type (see holdsNamedFloat).
	namedFloatOptions = json.JoinOptions(encodeBaseOptions, json.WithMarshalers(
		json.MarshalToFunc(func(enc *jsontext.Encoder, v any) error {
			rv := reflect.ValueOf(v).Elem() // for an interface T, v points to the value
			switch k := rv.Kind(); {
			case k != reflect.Float64 && k != reflect.Float32, rv.Type().Implements(jsonMarshalerType),
				rv.Type().Implements(textMarshalerType):
				return skipMarshaler // the default encoding
			case k == reflect.Float32:
				return writeFloat(enc, rv.Float(), 32)
			}
			return writeFloat(enc, rv.Float(), 64)
		}),
	))
	jsonMarshalerType = reflect.TypeFor[jsonv1.Marshaler]()
)

// Encode writes rec as Python's kiwi-cache would: the two members in its order,
// with its separators between them.
func (JSONCodec[K, V]) Encode(rec Record[K, V]) ([]byte, error) {
	if err := checkKeyType[K](); err != nil {
		return nil, fmt.Errorf("kiwicache: encode record: %w: %w", ErrInvalidConfig, err)
	}
	if s := rec.Timestamp.Unix(); s < 0 || s >= maxUnixSeconds {
		return nil, fmt.Errorf("kiwicache: encode record: timestamp %v is out of range", rec.Timestamp)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"data": `)
	if rec.Data == nil {
		buf.WriteString("{}") // encoding/json writes a nil map as null
	} else if err := json.MarshalWrite(&buf, rec.Data, encodeOptionsFor[V]()); err != nil {
		return nil, fmt.Errorf("kiwicache: encode record: %w", err)
	}
	buf.WriteString(`, "timestamp": `)
	buf.Write(appendUnixSeconds(buf.AvailableBuffer(), rec.Timestamp))
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Decode reads a record in any valid JSON layout. It accepts exactly the
// members data (an object) and timestamp (a number); anything else, invalid
// UTF-8 included, is an error wrapping ErrMalformedRecord that says what was
// found and where. A member repeated in the record or its data object keeps
// its last value, as in Python. Inside a value, V is decoded as encoding/json
// decodes it: a member repeated in an item is decoded over the first one's
// value (a struct keeps the fields the second leaves out, a null element of
// an array the earlier element), where Python keeps only the last.
//
// Strings are copies: the decoded record keeps nothing of b alive.
func (c JSONCodec[K, V]) Decode(b []byte) (Record[K, V], error) {
	rec, err := c.decode(b, true)
	if err != nil {
		return Record[K, V]{}, err
	}
	return Record[K, V]{Data: rec.data, Timestamp: rec.timestamp}, nil
}

// decode is Decode into the table a snapshot serves, or with toMap into a
// map: a Cache whose Codec is a JSONCodec decodes records into the table,
// and makes no map.
func (c JSONCodec[K, V]) decode(b []byte, toMap bool) (rec decodedRecord[K, V], err error) {
	if err := checkKeyType[K](); err != nil {
		return rec, fmt.Errorf("kiwicache: decode record: %w: %w", ErrInvalidConfig, err)
	}
	defer func() {
		// A panic of a method of V (UnmarshalJSON, UnmarshalText) or of
		// Unmarshal: the record is one this program cannot read.
		if p := recover(); p != nil {
			rec, err = decodedRecord[K, V]{}, fmt.Errorf("%w: the decoder panicked: %w", ErrMalformedRecord,
				&PanicError{Value: p, Stack: debug.Stack()})
		}
	}()
	rec, err = decodeJSONRecord[K, V](b, c.Unmarshal, toMap)
	if err != nil {
		return decodedRecord[K, V]{}, fmt.Errorf("%w: %w", ErrMalformedRecord, err)
	}
	return rec, nil
}

var holdsNamedFloatCache sync.Map // reflect.Type -> bool

func encodeOptionsFor[V any]() json.Options {
	t := reflect.TypeFor[V]()
	holds, ok := holdsNamedFloatCache.Load(t)
	if !ok {
		holds, _ = holdsNamedFloatCache.LoadOrStore(t, holdsNamedFloat(t, map[reflect.Type]bool{}))
	}
	if holds.(bool) {
		return namedFloatOptions
	}
	return encodeOptions
}

// holdsNamedFloat reports whether values of t can hold a float type other
// than float64 and float32 (not counting what an interface holds).
func holdsNamedFloat(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return t != reflect.TypeFor[float64]() && t != reflect.TypeFor[float32]()
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsNamedFloat(t.Elem(), seen)
	case reflect.Map:
		return holdsNamedFloat(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsNamedFloat(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// writeFloat writes f as encoding/json would, plus ".0" where that leaves no
// '.' or exponent: Python reads a number without them as an int.
func writeFloat(enc *jsontext.Encoder, f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("unsupported float value %v", f)
	}
	return enc.WriteValue(appendPythonFloat(enc.AvailableBuffer(), f, bits))
}

func appendPythonFloat(b []byte, f float64, bits int) []byte {
	start := len(b)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		return b
	}
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

// appendUnixSeconds writes t as the record's timestamp: seconds since the
// epoch with up to six decimals (Python's time.time() has no more), exactly,
// with no float64 in between.
func appendUnixSeconds(b []byte, t time.Time) []byte {
	micro := t.UnixMicro()
	b = strconv.AppendInt(b, micro/1e6, 10)
	frac := strconv.AppendInt([]byte("."), 1e6+micro%1e6, 10)
	frac = append(frac[:1], frac[2:]...) // the digits after the leading 1
	for len(frac) > 2 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return append(b, frac...)
}

// maxUnixSeconds bounds record timestamps (about the year 2242): below it a
// float64 holds every microsecond exactly, so a timestamp survives any
// number of round trips.
const maxUnixSeconds = 1 << 33

func parseUnixSeconds(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, err
	}
	if !(f >= 0 && f < maxUnixSeconds) {
		return time.Time{}, fmt.Errorf("%s is out of range", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3), nil
}

var (
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeyType reports whether K can be a JSON member name both ways: a
// string or integer kind, or a type with both MarshalText and UnmarshalText
// (on *K), so that keys are written and read back the same way. A type with
// only one of them would be written one way and read another.
func checkKeyType[K comparable]() error {
	t := reflect.TypeFor[K]()
	marshals, unmarshals := t.Implements(textMarshalerType), reflect.PointerTo(t).Implements(textUnmarshalerType)
	switch {
	case marshals && unmarshals:
		return nil
	case marshals:
		return fmt.Errorf("key type %v has MarshalText but no UnmarshalText: its keys could not be read back", t)
	case unmarshals:
		return fmt.Errorf("key type %v has UnmarshalText but no MarshalText: its keys would be written otherwise than read", t)
	}
	switch t.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return nil
	}
	return fmt.Errorf("key type %v is not a string, an integer or an encoding.TextMarshaler and TextUnmarshaler", t)
}
