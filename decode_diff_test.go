package kiwicache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The decoder keeps encoding/json's semantics for every shape of value, and
// these tests hold it to them: the same data object is decoded by
// JSONCodec and by encoding/json itself, and both must accept it or both
// refuse it, and decode it to the same values. The only differences are the
// ones JSONCodec documents: numbers decoded into any are Number (compared
// here with encoding/json's UseNumber), and invalid UTF-8 is refused
// (encoding/json replaces it).

type diffInner struct {
	X    int        `json:"x"`
	Y    string     // matched case-insensitively too
	S    string     `json:"s"` // matched by "ſ" (U+017F), of another length
	Next *diffInner `json:"next,omitempty"`
}

type diffEmbedded struct {
	E1     string `json:"e1"`
	Shadow int    `json:"shadow"` // hidden by diffValue.Shadow
	Both   int    // hidden: diffEmbedded2 has it at the same depth
}

type diffEmbedded2 struct {
	Both int
	E2   []int `json:"e2"`
}

type DiffPtrEmbedded struct {
	P1 float64 `json:"p1"`
}

type diffUnexportedPtr struct {
	U1 int `json:"u1"` // a member for it needs the nil pointer allocated: an error, as encoding/json
}

// diffText decodes from a JSON string only, by UnmarshalText.
type diffText struct{ s string }

func (t *diffText) UnmarshalText(b []byte) error {
	if string(b) == "bad" {
		return errors.New("bad text")
	}
	t.s = "text:" + string(b)
	return nil
}

func (t diffText) MarshalText() ([]byte, error) { return []byte(t.s), nil }

// diffRaw decodes any value, by UnmarshalJSON: it keeps its text.
type diffRaw struct{ raw string }

func (r *diffRaw) UnmarshalJSON(b []byte) error {
	if string(b) == `"bad"` {
		return errors.New("bad raw")
	}
	r.raw = string(b)
	return nil
}

type diffString string

type diffFloat float64

type diffValue struct {
	diffEmbedded
	diffEmbedded2
	*DiffPtrEmbedded
	*diffUnexportedPtr
	Shadow   string                  `json:"shadow"`
	Int      int                     `json:"int"`
	Int8     int8                    // named by its Go name
	Uint16   uint16                  `json:"u16"`
	Uint     uint                    `json:"uint"`
	Float    float64                 `json:"float,omitempty"`
	Float32  float32                 `json:"f32"`
	Named    diffFloat               `json:"named"`
	Bool     bool                    `json:"bool"`
	Str      string                  `json:"str"`
	NamedStr diffString              `json:"namedStr"`
	Ptr      *int                    `json:"ptr"`
	PtrPtr   **string                `json:"ptrPtr"`
	Inner    diffInner               `json:"inner"`
	InnerPtr *diffInner              `json:"innerPtr"`
	Ints     []int                   `json:"ints"`
	Strings  []string                `json:"strings"`
	Inners   []diffInner             `json:"inners"`
	Bytes    []byte                  `json:"bytes"`
	Array    [2]int                  `json:"array"`
	Map      map[string]int          `json:"map"`
	IntMap   map[int]string          `json:"intMap"`
	UintMap  map[uint8]bool          `json:"uintMap"`
	TextMap  map[diffText]int        `json:"textMap"`
	AnyMap   map[string]any          `json:"anyMap"`
	NamedMap map[diffString]any      `json:"namedMap"`
	Any      any                     `json:"any"`
	Anys     []any                   `json:"anys"`
	Time     time.Time               `json:"time"`
	TimePtr  *time.Time              `json:"timePtr"`
	Raw      json.RawMessage         `json:"raw"`
	Text     diffText                `json:"text"`
	TextPtr  *diffText               `json:"textPtr"`
	JSON     diffRaw                 `json:"json"`
	JSONPtr  *diffRaw                `json:"jsonPtr"`
	Stringer fmt.Stringer            `json:"stringer"`
	Ignored  int                     `json:"-"`
	Dash     int                     `json:"-,"`
	Tagged   int                     `json:"a-b.c"`
	BadTag   int                     `json:"a\"b"` // not a valid name: the Go name is used
	Func     func()                  `json:"func"` // only null fits
	Nested   map[string][]*diffInner `json:"nested"`
	Num      Number                  `json:"num"`
	Nums     []Number                `json:"nums"`
	NumPtr   *Number                 `json:"numPtr"`
	hidden   int
}

// diffNarrow has integers, floats and booleans narrower than a word side by
// side: decoding one must not write over its neighbours.
type diffNarrow struct {
	I8  int8
	I16 int16
	I32 int32
	U8  uint8
	U16 uint16
	U32 uint32
	F32 float32
	B   bool
	I8b int8
	Arr [3]int16
}

// diffDup embeds diffDupBase twice at the same depth, through diffDupA and
// diffDupB: its fields are ambiguous, and no member fills them.
type diffDup struct {
	diffDupA
	diffDupB
	diffTagA
	diffTagB
	Own int
}

// diffTagA and diffTagB have a field of the same name at the same depth:
// the tagged one takes the member.
type diffTagA struct{ Name int }

type diffTagB struct {
	Other int `json:"Name"`
}

type diffDupA struct{ diffDupBase }

type diffDupB struct{ diffDupBase }

type diffDupBase struct {
	Dup   int `json:"dup"`
	Plain int
}

// diffQuoted has a field with the `,string` option.
type diffQuoted struct {
	N  int             `json:"n,string"`
	F  float64         `json:"f,string"`
	S  string          `json:"s,string"`
	B  *bool           `json:"b,string"`
	T  *diffQuotedText `json:"t,string"`
	TV diffQuotedText  `json:"tv,string"`
}

// diffQuotedText is a string that decodes itself from text.
type diffQuotedText string

func (q *diffQuotedText) UnmarshalText(b []byte) error {
	if string(b) == "bad" {
		return errors.New("bad text")
	}
	*q = diffQuotedText("text:" + string(b))
	return nil
}

// diffTypes decodes data into each value type with both decoders and
// compares.
var diffTypes = []func(t *testing.T, data []byte){
	diffCheck[diffValue],
	diffCheck[*diffValue],
	diffCheck[any],
	diffCheck[map[string]any],
	diffCheck[[]any],
	diffCheck[int],
	diffCheck[int64],
	diffCheck[uint8],
	diffCheck[float32],
	diffCheck[float64],
	diffCheck[string],
	diffCheck[bool],
	diffCheck[[]string],
	diffCheck[[]byte],
	diffCheck[[]int],
	diffCheck[diffQuoted],
	diffCheck[diffNarrow],
	diffCheck[diffDup],
	diffCheck[*struct{ diffText }],
	diffCheck[diffInner],
	diffCheck[time.Time],
	diffCheck[json.RawMessage],
	diffCheck[diffText],
	diffCheck[*diffRaw],
	diffCheck[map[int]float64],
	diffCheck[map[int]any],
	diffCheck[Number],
	diffCheck[map[string]Number],
	diffCheckKeys[int],
	diffCheckKeys[uint16],
	diffCheckKeys[int8],
	diffCheckKeys[uint8],
	diffCheckKeys[int32],
	diffCheckKeys[diffText],
}

// diffCheck decodes data (a data object) into map[string]V with both.
func diffCheck[V any](t *testing.T, data []byte) { diffDecode[string, V](t, data) }

// diffCheckKeys does it with keys of type K.
func diffCheckKeys[K comparable](t *testing.T, data []byte) { diffDecode[K, any](t, data) }

func diffDecode[K comparable, V any](t *testing.T, data []byte) {
	t.Helper()
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return // a record's data is an object
	}
	rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1.5}`...)
	got, gotErr := JSONCodec[K, V]{}.Decode(rec)
	if panicked := (*PanicError)(nil); errors.As(gotErr, &panicked) {
		t.Fatalf("%T from %q: the decoder panicked: %v", got.Data, data, panicked.Value)
	}
	if err := decodesAlikeIntoTable(rec, got, gotErr); err != nil {
		t.Fatalf("%T from %q: %v", got.Data, data, err)
	}
	if !utf8.Valid(data) {
		if gotErr == nil {
			t.Fatalf("%T: accepted invalid UTF-8: %q", got.Data, data)
		}
		return
	}
	if depth(data) > maxDepth-3 {
		return // the record's own levels count for JSONCodec's limit, not for encoding/json's
	}
	var want map[K]V
	wantErr := unmarshalNumbers(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%T from %q:\nJSONCodec:     %v\nencoding/json: %v", want, data, gotErr, wantErr)
	}
	if gotErr != nil {
		if !isMalformed(gotErr) {
			t.Fatalf("%T from %q: error %v does not wrap ErrMalformedRecord", want, data, gotErr)
		}
		return
	}
	normalizeNumbers(reflect.ValueOf(&want).Elem())
	if !reflect.DeepEqual(got.Data, want) {
		t.Fatalf("%T from %q:\nJSONCodec:     %#v\nencoding/json: %#v", want, data, got.Data, want)
	}
}

// unmarshalNumbers is json.Unmarshal with UseNumber.
func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the value: %v", err)
	}
	return nil
}

// normalizeNumbers turns encoding/json's json.Number inside any into Number.
func normalizeNumbers(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if n, ok := e.Interface().(json.Number); ok && v.CanSet() {
			v.Set(reflect.ValueOf(Number(n)))
			return
		}
		if e.Kind() == reflect.Map || e.Kind() == reflect.Slice || e.Kind() == reflect.Pointer {
			normalizeNumbers(e)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			normalizeNumbers(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() || v.Type().Field(i).Anonymous {
				normalizeNumbers(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			normalizeNumbers(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			c := reflect.New(e.Type()).Elem()
			c.Set(e)
			normalizeNumbers(c)
			v.SetMapIndex(k, c)
		}
	}
}

// depth is how deeply data nests.
func depth(data []byte) int {
	deepest, d, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == '['):
			d++
			deepest = max(deepest, d)
		case !inString && (c == '}' || c == ']'):
			d--
		}
	}
	return deepest
}

// diffSeeds are data objects with every shape of value, and the
// edges of encoding/json's rules.
var diffSeeds = []string{
	`{}`,
	`{"a": {}}`,
	`{"a": null, "b": {"int": null, "str": null, "ints": null, "map": null, "ptr": null, "inner": null, "time": null, "text": null, "json": null, "stringer": null, "func": null}}`,
	`{"a": {"e1": "embedded", "shadow": "outer", "Both": 3, "e2": [1, 2], "p1": 2.5, "E1": "again"}}`,
	`{"a": {"u1": 1}}`,
	`{"a": {"int": -9223372036854775808, "Int8": 127, "u16": 65535, "uint": 18446744073709551615, "float": 1.5e300, "f32": 3.4e38, "named": 2, "bool": true}}`,
	`{"a": {"int": 9223372036854775808}}`,
	`{"a": {"Int8": 128}}`,
	`{"a": {"u16": -1}}`,
	`{"a": {"uint": -0}}`,
	`{"a": {"int": 1.0}}`,
	`{"a": {"int": 1e2}}`,
	`{"a": {"f32": 3.5e38}}`,
	`{"a": {"float": 1e400}}`,
	`{"a": {"float": -0.0, "f32": 0.1}}`,
	`{"a": {"float": 12345678901234567890, "f32": 16777217}}`,
	`{"a": {"str": "tab\t", "namedStr": "x"}}`,
	`{"a": {"str": "\u00e9\ud834\udd1e\ud800\u0041\/\b\f\n\r\t\\\"", "namedStr": "\udc00x"}}`,
	`{"a": {"ptr": 5, "ptrPtr": "pp", "inner": {"x": 1, "y": "lower", "Y": "upper", "X": 2}, "innerPtr": {"next": {"x": 3}}}}`,
	`{"a": {"INNER": {"X": 7}, "Int": 5, "iNt8": 3, "STR": "folded", "inT": 9}}`,
	`{"a": {"ints": [1, 2, 3], "strings": ["a", "b", null, "c"], "inners": [{"x": 1}, null, {"y": "z"}], "array": [1, 2, 3]}}`,
	`{"a": {"ints": [], "strings": [], "inners": [], "array": [9]}}`,
	`{"a": {"bytes": "aGVsbG8="}, "b": {"bytes": [104, 105]}, "c": {"bytes": "not base64!"}, "d": {"bytes": null}}`,
	`{"a": {"map": {"x": 1, "y": 2}, "intMap": {"1": "one", "-2": "minus two"}, "uintMap": {"255": true}, "textMap": {"k": 1}}}`,
	`{"a": {"intMap": {"x": "not an int key"}}}`,
	`{"a": {"uintMap": {"256": true}}}`,
	`{"a": {"textMap": {"bad": 1}}}`,
	`{"a": {"anyMap": {"n": 1.10, "s": "x", "l": [1, "2", null, true, {"k": []}], "o": {}}, "namedMap": {"k": 1}}}`,
	`{"a": {"any": 12345678901234567890123, "anys": [1.5e999, -0, "x", false, null, [], {}]}}`,
	`{"a": {"time": "2026-11-25T12:00:00Z", "timePtr": "2026-11-25T12:00:00.123456789+02:00"}}`,
	`{"a": {"time": "not a time"}}`,
	`{"a": {"time": 5}}`,
	`{"a": {"raw": {"x": [1, 2, {"y": null}]}, "json": [1, 2], "jsonPtr": "x", "text": "hello", "textPtr": "ptr"}}`,
	`{"a": {"raw": null, "jsonPtr": null, "textPtr": null}}`,
	`{"a": {"json": "bad"}}`,
	`{"a": {"text": "bad"}}`,
	`{"a": {"text": 5}}`,
	`{"a": {"text": {}}}`,
	`{"a": {"stringer": "x"}}`,
	`{"a": {"func": 1}}`,
	`{"a": {"-": 1, "Ignored": 2, "a-b.c": 3, "BadTag": 4, "hidden": 5, "Dash": 6}}`,
	`{"a": {"nested": {"k": [{"x": 1}, null, {"next": {"y": "deep"}}]}}}`,
	`{"a": {"num": 1.1000, "nums": [12345678901234567890, -0, "7", null], "numPtr": "1e400"}}`,
	`{"a": {"num": "x"}}`, `{"a": {"num": true}}`, `{"a": {"num": " 1"}}`, `{"a": {"num": null, "numPtr": null}}`,
	`{"a": {"inner": {"x": 1}, "inner": {"y": "merged"}}}`,
	`{"a": {"inners": [{"x": 1}, {"x": 2}], "inners": [{"y": "merged"}]}}`,
	`{"a": {"strings": ["x", "y"], "strings": ["z", null]}}`,
	`{"a": {"map": {"x": 1}, "map": {"y": 2}}}`,
	`{"a": {"ints": [1, 2, 3], "ints": [4]}}`,
	`{"a": {"anyMap": {"x": 1}, "anyMap": {"y": 2}}}`,
	`{"a": {"ptr": 1, "ptr": null}}`,
	`{"a": {"innerPtr": {"x": 1}, "innerPtr": {"y": "merged"}}}`,
	`{"a": 1, "a": 2, "b": "x", "b": null}`,
	`{"a": {"int": "5"}}`,
	`{"a": {"str": 5}}`,
	`{"a": {"ints": {}}}`,
	`{"a": {"inner": []}}`,
	`{"a": {"bool": "true"}}`,
	`{"a": {"n": "12", "f": "1.5", "s": "\"q\"", "b": "true"}}`,
	`{"a": {"n": 12}}`,
	`{"a": {"n": "x"}}`,
	`{"a": {"n": null, "b": null}}`,
	`{"a": {"b": "null"}}`,
	`{"a": {"f": "+0"}}`, `{"a": {"f": "0x1p-2"}}`, `{"a": {"f": "-Inf"}}`, `{"a": {"n": "0x10"}}`, `{"a": {"n": " 1"}}`,
	`{"a": {"s": "\"\\'\""}}`, `{"a": {"s": "abc"}}`, `{"a": {"s": "\"\\ud800\""}}`, `{"a": {"b": "nope"}}`, `{"a": {"b": "t"}}`,
	`{"a": {"n": [1]}}`, `{"a": {"n": ""}}`, `{"a": {"f": "1e400"}}`, `{"a": {"s": "\"a\" "}}`, `{"a": {"b": "false"}}`,
	`{"1": {}, "-1": 1, "x": "y", "65535": [1], "65536": null}`,
	`{"127": 1, "-128": 2}`, `{"255": 3, "0": 4}`, `{"+1": 1}`, `{"-0": 1}`, `{"128": 1}`, `{"-129": 1}`, `{"256": 1}`, `{"-1": 1}`,
	`{"65535": 1}`, `{"65536": 1}`, `{"2147483647": 1, "-2147483648": 2}`, `{"2147483648": 1}`, `{"-2147483649": 1}`,
	`{"01": 1}`, `{"+1": 1}`, `{"1.0": 1}`, `{"": 1}`, `{"99999999999999999999": 1}`,
	`{"a": {"I8b": -1, "B": true, "F32": 1.5, "U32": 4294967295, "U16": 65535, "U8": 255, "I32": -2147483648, "I16": -32768, "I8": -128}}`,
	`{"a": {"I8b": 127, "B": true, "F32": -2.5, "U32": 1, "U16": 2, "U8": 3, "I32": 4, "I16": 5, "I8": 6, "Arr": [-1, 32767, -32768]}}`,
	`{"a": {"I8": 128}}`, `{"a": {"I8": -129}}`, `{"a": {"I16": 32768}}`, `{"a": {"I16": -32769}}`,
	`{"a": {"I32": 2147483648}}`, `{"a": {"I32": -2147483649}}`, `{"a": {"U8": 256}}`, `{"a": {"U16": 65536}}`,
	`{"a": {"U32": 4294967296}}`, `{"a": {"U8": -1}}`, `{"a": {"F32": 3.5e38}}`, `{"a": {"Arr": [1, 2, 3, 4]}}`,
	`{"a": 256, "b": -1}`, `{"a": 65536}`, `{"a": 123456789012345678901}`, `{"a": -123456789012345678901.5}`,
	`{"a": 1234567890.1234567}`, `{"a": 0.30000000000000004441}`, `{"a": 9007199254740993}`, `{"a": 16777217.5}`,
	`{"a": {"b": "true", "b": "null"}}`, `{"a": {"s": "\"a\\\""}}`, `{"a": {"s": "\"a\\"}}`,
	`{"a": {"t": "\"x\""}}`, `{"a": {"t": "x"}}`, `{"a": {"t": "null"}}`, `{"a": {"t": "\"bad\""}}`, `{"a": {"t": "\"\\u00e9\\'\""}}`,
	`{"a": {"t": "\"x\"", "t": "null"}}`, `{"a": {"t": 5}}`, `{"a": {"t": "5"}}`,
	`{"a": {"tv": "\"x\""}}`, `{"a": {"tv": "x"}}`, `{"a": {"tv": "null"}}`, `{"a": {"tv": "\"bad\""}}`, `{"a": {"tv": 5}}`,
	`{"a": {"1": 2, "-3": [4]}}`, `{"a": {x": 1}}`, `{"a": {1: 1}}`, `{"a": {"map": {x": 1}}}`, `{"a": {"map": {"x": 1 "y": 2}}}`,
	`{"a": {"ints": [1 2]}}`, `{"a": {"strings": ["a" "b"]}}`, `{"a": {"array": [1 2]}}`, `{"a": {"inner": {"x": 1 "y": ""}}}`,
	`{"a": {"anyMap": {x": 1}}}`, `{"a": {"unknown": {x": 1}}}`, `{"a": {"unknown": [1 2]}}`,
	"{\"a\": [1,  2], \"b\": {\"x\":  1,  \"y\": [ 1 ,\n\t2 ]},\t\"c\":\n{}}",
	"{\"a\": {\"int\":  1,  \"str\": \"x\",\n \"ints\": [1,  2],  \"map\": {\"k\":  1,  \"l\":\t2}}}",
	`{"a": {"dup": 1, "Plain": 2, "Own": 3, "DUP": 4, "plain": 5, "Name": 6}}`, `{"a": {"name": 7, "Other": 8}}`,
	`{"a": {"ſtr": "long s", "Key": 1, "ınt": 2, "İnt": 3}}`,
	`{"a": {"s": "\"\\ud834\\udd1e\""}}`, `{"a": {"s": "\"\\ud834x\""}}`, `{"a": {"s": "\"\\ud834\\u0041\""}}`,
	`{"a": {"s": "\"\\u00e9\\/\\b\\f\\n\\r\\t\\\\\""}}`, `{"a": {"s": "\"\\u12\""}}`, `{"a": {"s": "\"\\x\""}}`,
	`{"a": {"s": "\"é✓\""}}`, `{"a": {"s": "\"a\\\"b\""}}`, `{"a": {"s": "\"\\ud834\""}}`, `{"a": {"s": "\"\\ud834\\ud834\""}}`,
	`{"a": {"s": "\"\\u00\""}}`, `{"a": {"s": "\"a\tb\""}}`, `{"a": {"s": "\"\\"}}`, `{"a": {"s": "x"}}`, `{"a": {"s": "null"}}`,
	`{"a": {"array": null, "int": 1}}`, `{"a": {"array": [1, 2], "array": null}}`,
	`{"a": {"n": "-5"}}`, `{"a": {"n": "1.5"}}`, `{"a": {"n": "99999999999999999999"}}`, `{"a": {"f": "1e400"}}`, `{"a": {"f": "-0.5e1"}}`,
	`{"a": {"n": "true"}}`, `{"a": {"n": "nul"}}`, `{"a": {"b": "nul"}}`, `{"a": {"s": "nul"}}`, `{"a": {"f": "x"}}`,
	`{"a": ["s", "t", "u", "v", "w", "x", "y", "z", "0", "1", "2", "3"]}`,
	`{"a": [` + strings.Repeat(`"s", `, 600) + `"t"], "b": [` + strings.Repeat(`"u", `, 9) + `null]}`,
	`{"a": {"ſ": "long s", "Kelvin": 1}}`,
	`{"a": "2026-11-25T12:00:00Z"}`,
	`{"a": [1, 2]}`,
	`{"a": "aGk="}`,
	`{"a": "hello", "b": null}`,
	`{"a": 1.5, "b": -0, "c": 1e308, "d": 5e-324}`,
	`{"a": 255, "b": 0}`,
	` { "a" : [ ] , "b" : { } } `,
	`{"a": {"x": 1} , }`,
	`{, "a": 1}`,
	`{"a": 1,, "b": 2}`,
	`{"a" 1}`,
	`{"a": [1,]}`,
	`{"a": [,1]}`,
	`{"a": 01}`,
	`{"a": tru}`,
	`{"a": "unterminated}`,
	`{"a": "\x"}`,
	`{"a": "\u12"}`,
	"{\"a\": \"\x00\"}",
	"{\"a\": \"\xff\"}",
	"{\"\xc3\xa9\": \"\xe2\x9c\x93\"}",
}

// Every seed decodes as encoding/json decodes it, into every value type.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, seed := range diffSeeds {
		for _, check := range diffTypes {
			check(t, []byte(seed))
		}
	}
}

// FuzzDecodeMatchesEncodingJSON explores beyond the seeds (`make fuzz`).
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, seed := range diffSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, check := range diffTypes {
			check(t, data)
		}
	})
}

// The decoder in pieces gives what it gives in one, for any value: each
// fuzzed data object's members are repeated, with keys of their own, into
// records large enough to be cut for 4 pieces, and decoded at 1 and 4 Ps.
func FuzzParallelDecode(f *testing.F) {
	for _, seed := range diffSeeds {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"a": "C:\\", "b": ", \"k\": ", "c": [",", "}"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) < 2 || trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' {
			return
		}
		members := trimmed[1 : len(trimmed)-1]
		var rec bytes.Buffer
		rec.WriteString(`{"data": {`)
		for i := 0; rec.Len() < 4*minPiece+len(members); i++ {
			if i > 0 {
				rec.WriteString(", ")
			}
			fmt.Fprintf(&rec, `"k%d": {`, i)
			rec.Write(members)
			rec.WriteString("}")
		}
		rec.WriteString(`}, "timestamp": 1.5}`)
		// On one core into a map (Decode's), on four into a table (a Cache's).
		for _, decode := range []func(cores int) (any, error){
			func(cores int) (any, error) {
				if cores == 1 {
					r, err := decodeAt[string, any](cores, rec.Bytes())
					return r.Data, err
				}
				return decodeTableAt[string, any](cores, rec.Bytes())
			},
			func(cores int) (any, error) {
				if cores == 1 {
					r, err := decodeAt[string, diffValue](cores, rec.Bytes())
					return r.Data, err
				}
				return decodeTableAt[string, diffValue](cores, rec.Bytes())
			},
			func(cores int) (any, error) {
				if cores == 1 {
					r, err := decodeAt[string, item](cores, rec.Bytes())
					return r.Data, err
				}
				return decodeTableAt[string, item](cores, rec.Bytes())
			},
		} {
			one, oneErr := decode(1)
			four, fourErr := decode(4)
			if (oneErr == nil) != (fourErr == nil) || oneErr == nil && !reflect.DeepEqual(one, four) {
				t.Fatalf("members %q: 1 core: %v; 4 cores: %v", members, oneErr, fourErr)
			}
			if oneErr != nil && !strings.HasPrefix(oneErr.Error(), "malformed record: ") {
				t.Fatalf("members %q: error %v", members, oneErr)
			}
		}
	})
}
