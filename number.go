package kiwicache

import (
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Number is a JSON number kept as its exact text, such as "1.1000" or
// "12345678901234567890". A Cache whose V holds an any decodes every number
// in it as a Number, so that a Python Decimal or an integer beyond 2^53
// survives a round trip through a Go service digit for digit; sqlloader
// caches NUMERIC columns as Numbers.
//
// Number is not encoding/json's Number (a type switch on json.Number does
// not match it), but it behaves like one: encoding/json, encoding/json/v2 and
// github.com/go-json-experiment/json all write it as a JSON number with its
// exact text (1.1000, never "1.1000"), the empty Number as 0, and refuse to
// write one whose text is not a JSON number. It decodes from a JSON number,
// or from a string that holds one, as json.Number does.
type Number string

// String returns the number's text.
func (n Number) String() string { return string(n) }

// Float64 returns the number as a float64, as strconv.ParseFloat reads it:
// rounded to the nearest float64, with an error wrapping strconv.ErrRange
// beyond its range.
func (n Number) Float64() (float64, error) { return strconv.ParseFloat(string(n), 64) }

// Int64 returns the number as an int64, as strconv.ParseInt reads it in
// base 10: "1.0", "1e3" and integers beyond the range of int64 are errors.
func (n Number) Int64() (int64, error) { return strconv.ParseInt(string(n), 10, 64) }

// MarshalJSON writes the number's exact text, or 0 for the empty Number (as
// encoding/json writes an empty json.Number). Text that is not one JSON
// number (" 1", "1.", "NaN", "0x10") is an error: written as it is, it would
// make the surrounding document invalid.
func (n Number) MarshalJSON() ([]byte, error) {
	if n == "" {
		return []byte("0"), nil
	}
	b := []byte(n)
	if !isExactJSONNumber(b) {
		return nil, fmt.Errorf("kiwicache: Number %q is not a JSON number", string(n))
	}
	return b, nil
}

// UnmarshalJSON sets n to a JSON number's text, or to the number held in a
// JSON string ("1.10", as encoding/json accepts for json.Number); null leaves
// n unchanged. Anything else is an error.
func (n *Number) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case isExactJSONNumber(b):
		*n = Number(b)
		return nil
	case len(b) > 0 && b[0] == '"':
		s, err := jsontext.AppendUnquote(nil, b)
		if err != nil {
			return fmt.Errorf("kiwicache: decode Number: %w", err)
		}
		if !isExactJSONNumber(s) {
			return fmt.Errorf("kiwicache: decode Number: string %s is not a JSON number", b)
		}
		*n = Number(s)
		return nil
	}
	return fmt.Errorf("kiwicache: decode Number: %.40s is not a JSON number", b)
}

// isExactJSONNumber reports whether b is one JSON number and nothing else:
// no space around it, which the JSON validator would otherwise allow after it.
func isExactJSONNumber(b []byte) bool {
	return isJSONNumber(b) && b[len(b)-1] >= '0' && b[len(b)-1] <= '9'
}
