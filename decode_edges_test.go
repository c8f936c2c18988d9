package kiwicache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The edges of the decoder's input: records cut short anywhere, errors that
// name what they found, nesting at the limit in every kind of value.

// truncatedAnyRecord and truncatedTypedRecord hold every kind of token the
// decoder reads (escapes of each kind, a surrogate pair, literals, numbers of
// each shape, nested values), so that cutting them short ends the record
// inside each kind.
const (
	truncatedAnyRecord = `{"data": {"a": {"int": -12, "f": 1.5e+3, "g": 0.25E-2, "str": "x\"\\\/\b\f\n\r\t\u00e9\ud834\udd1e` +
		"é" + `", "t": true, "u": false, "n": null, "l": [1, [], {}, ["s"]]}, "b": "C:\\", "c": [true, false, null]}, ` +
		`"timestamp": 1.5}`
	truncatedTypedRecord = `{"data": {"a": {"int": -12, "float": 1.5e+3, "f32": 0.25, "str": "x\"\\\/\b\f\n\r\t\u00e9\ud834\udd1e", ` +
		`"bool": true, "ptr": null, "ints": [1, 2], "strings": ["s", "t"], "array": [1, 2], "map": {"k": 1}, ` +
		`"any": [false, {"k": 1.25}], "bytes": "aGk=", "text": "x", "json": {"y": [null]}, "unknown": {"z": [true, "w"]}}}, ` +
		`"timestamp": 1.5}`
)

// A record cut short anywhere is malformed with an error that says it ends
// (the record, or a string in it), into any value type: never a panic of the
// decoder, never an error about something else.
func TestTruncatedRecord(t *testing.T) {
	check := func(t *testing.T, decode func([]byte) error, rec string) {
		for n := 1; n < len(rec); n++ {
			err := decode([]byte(rec[:n]))
			var panicked *PanicError
			switch {
			case !isMalformed(err):
				t.Fatalf("%q: error = %v, want ErrMalformedRecord", rec[:n], err)
			case errors.As(err, &panicked):
				t.Fatalf("%q: the decoder panicked: %v", rec[:n], panicked.Value)
			case !strings.Contains(err.Error(), "ends at byte") && !strings.Contains(err.Error(), "does not end") &&
				!strings.Contains(err.Error(), "invalid UTF-8"): // a character cut in two
				t.Fatalf("%q: error = %v, want one saying where the record ends", rec[:n], err)
			}
		}
	}
	for _, cores := range []int{1, 4} {
		withCores(t, cores)
		check(t, func(b []byte) error { _, err := JSONCodec[string, any]{}.Decode(b); return err }, truncatedAnyRecord)
		check(t, func(b []byte) error { _, err := JSONCodec[string, map[string]any]{}.Decode(b); return err }, truncatedTypedRecord)
		check(t, func(b []byte) error { _, err := JSONCodec[string, diffValue]{}.Decode(b); return err }, truncatedTypedRecord)
		check(t, func(b []byte) error { _, err := JSONCodec[string, *diffValue]{}.Decode(b); return err }, truncatedTypedRecord)
	}
}

// Strings of every length up to well past the 16 bytes read one by one and
// the words of 8 read at once, with a character that needs a look (the
// closing quote, an escape, a control character, a multi-byte character,
// invalid UTF-8) at every position: each decodes as encoding/json decodes
// it, or is refused as it refuses it (invalid UTF-8 is refused).
func TestStringsAtEveryLength(t *testing.T) {
	specials := []string{``, `\"`, `\\`, `\n`, `\u0000`, `\u00e9`, `\ud834\udd1e`, `\ud800`, "\x01", "\x1f", "é", "\xff", "\xe2\x9c", `"`}
	for n := 0; n < 48; n++ {
		for p := 0; p <= n; p++ {
			for _, special := range specials {
				s := strings.Repeat("a", p) + special + strings.Repeat("b", n-p)
				data := []byte(`{"k": "` + s + `", "` + s + `": 1}`)
				diffDecode[string, any](t, data)
				diffDecode[string, string](t, []byte(`{"k": "`+s+`"}`))
				diffDecode[string, []string](t, []byte(`{"k": ["`+s+`", "`+s+`"]}`))
			}
		}
	}
}

// Values nested one level past the limit are refused with an error that
// says so, whatever they are decoded into or skipped as; one level less is
// accepted.
func TestDepthLimitInEveryKindOfValue(t *testing.T) {
	type check struct {
		name   string
		decode func([]byte) error
		open   string
		close  string
	}
	checks := []check{
		{"any array", decodeInto[any], "[", "]"},
		{"any object", decodeInto[any], `{"a": `, "}"},
		{"[]any", decodeInto[[]any], "[", "]"},
		{"map[string]any", decodeInto[map[string]any], `{"a": `, "}"},
		{"slice", decodeInto[deepSlice], "[", "]"},
		{"array", decodeInto[deepArray], "[", "]"},
		{"map", decodeInto[deepMap], `{"a": `, "}"},
		{"struct", decodeInto[deepStruct], `{"a": `, "}"},
		{"skipped array", decodeInto[item], "[", "]"},
		{"skipped object", decodeInto[item], `{"a": `, "}"},
		{"skipped member of a struct", decodeInto[item], `{"x": `, "}"},
		{"UnmarshalJSON", decodeInto[diffRaw], "[", "]"},
	}
	for _, c := range checks {
		for _, levels := range []int{maxDepth - 2, maxDepth - 1} {
			value := strings.Repeat(c.open, levels) + "null" + strings.Repeat(c.close, levels)
			if c.name == "skipped member of a struct" {
				value = `{"id": 1, "x": ` + strings.Repeat(c.open, levels-1) + "null" + strings.Repeat(c.close, levels-1) + "}"
			}
			err := c.decode([]byte(`{"data": {"a": ` + value + `}, "timestamp": 1.5}`))
			switch {
			case levels == maxDepth-2 && err != nil && !strings.Contains(err.Error(), "cannot decode"):
				t.Errorf("%s, %d levels: %v", c.name, levels, err)
			case levels == maxDepth-1 && (!isMalformed(err) || !strings.Contains(err.Error(), "values nest deeper than 10000 levels")):
				t.Errorf("%s, %d levels: error = %v, want one about the depth", c.name, levels, err)
			}
		}
	}
}

type (
	deepSlice  []deepSlice
	deepArray  [1]*deepArray
	deepMap    map[string]deepMap
	deepStruct struct {
		A *deepStruct `json:"a"`
	}
)

func decodeInto[V any](b []byte) error {
	_, err := JSONCodec[string, V]{}.Decode(b)
	return err
}

// An error deep in a value names the path to it: the outermost steps and the
// 4 innermost, with how many were left out between them.
func TestErrorPathOfADeepValue(t *testing.T) {
	var value, path strings.Builder
	const levels = 20
	for i := range levels {
		fmt.Fprintf(&value, `{"k%d": `, i)
	}
	value.WriteString("tru")
	value.WriteString(strings.Repeat("}", levels))
	rec := `{"data": {"a": ` + value.String() + `}, "timestamp": 1.5}`
	path.WriteString(`data["a"]`)
	for i := range levels {
		if i == levels-4 {
			fmt.Fprintf(&path, "…(%d more)…", levels+2-maxPath)
		}
		if i < 10 || i >= levels-4 {
			fmt.Fprintf(&path, `["k%d"]`, i)
		}
	}
	at := strings.Index(rec, "tru")
	want := fmt.Sprintf(`malformed record: %s: invalid literal "tru" at byte %d where a value should be`, path.String(), at)
	for _, decode := range []func([]byte) error{decodeInto[any], decodeInto[map[string]any]} {
		if err := decode([]byte(rec)); err == nil || err.Error() != want {
			t.Errorf("error\n%v\nwant\n%s", err, want)
		}
	}
}

// What is not the expected kind of JSON value is named by its kind.
func TestMalformedKinds(t *testing.T) {
	for in, want := range map[string]string{
		`-5`:                                   `malformed record: the record is a JSON number, not an object`,
		`7`:                                    `malformed record: the record is a JSON number, not an object`,
		`true`:                                 `malformed record: the record is a JSON boolean, not an object`,
		`[]`:                                   `malformed record: the record is a JSON array, not an object`,
		`{"data": 0, "timestamp": 1.5}`:        `malformed record: data is a JSON number, not an object`,
		`{"data": -1, "timestamp": 1.5}`:       `malformed record: data is a JSON number, not an object`,
		`{"data": "x", "timestamp": 1.5}`:      `malformed record: data is a JSON string, not an object`,
		`{"data": {}, "timestamp": null}`:      `malformed record: timestamp is a JSON null, not a number`,
		`{"data": {}, "timestamp": false}`:     `malformed record: timestamp is a JSON boolean, not a number`,
		`{"data": {}, "timestamp": {}}`:        `malformed record: timestamp is a JSON object, not a number`,
		`{"data": {"a": 5}, "timestamp": 1.5}`: `malformed record: data["a"]: cannot decode the JSON number at byte 15 into a Go string`,
		`{"data": {"a": -5}, "timestamp": 1}`:  `malformed record: data["a"]: cannot decode the JSON number at byte 15 into a Go string`,
		`{"data": {"a": {}}, "timestamp": 1}`:  `malformed record: data["a"]: cannot decode the JSON object at byte 15 into a Go string`,
	} {
		_, err := JSONCodec[string, string]{}.Decode([]byte(in))
		if err == nil || err.Error() != want {
			t.Errorf("%s: error\n%v\nwant\n%s", in, err, want)
		}
	}
}
