package kiwicache

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
			for i, special := range append(specials, specials...) {
				s := strings.Repeat("a", p) + special + strings.Repeat("b", n-p)
				if i >= len(specials) {
					s = `\t` + s // unescaped from the start
				}
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
		`{}`:                                   `malformed record: no data member`,
		` { } `:                                `malformed record: no data member`,
		`{"data": {}}`:                         `malformed record: no timestamp member`,
		`{"timestamp": 1}`:                     `malformed record: no data member`,
		`{"data": {}, "timestamp": 1}x`:        `malformed record: invalid character 'x' at byte 28 after the record's end`,
		`{"data": {"a": "x\n`:                  `malformed record: data["a"]: the string at byte 15 does not end`,
		`{"data" {}, "timestamp": 1}`:          `malformed record: invalid character '{' at byte 8 where ':' after a member name should be`,
		`{"data": {}, "timestamp" 1}`:          `malformed record: invalid character '1' at byte 25 where ':' after a member name should be`,
		`{"data": {} "timestamp": 1}`:          `malformed record: invalid character '"' at byte 12 where ',' or '}' after a member should be`,
	} {
		_, err := JSONCodec[string, string]{}.Decode([]byte(in))
		if err == nil || err.Error() != want {
			t.Errorf("%s: error\n%v\nwant\n%s", in, err, want)
		}
	}
}

// The pieces of a data object give what decoding it in one piece gives,
// whoever decodes them: here the goroutine of the first piece decodes every
// piece itself (no other goroutine took one: every core was busy), or every
// piece but the first was decoded apart before it got there. Errors, a
// key repeated across pieces (the last value wins) and commas where JSON has
// none, at the cuts, included.
func TestParallelPiecesInEitherOrder(t *testing.T) {
	good := pythonRecord(6_000, benchTimestamp)
	data := len(`{"data": `)
	cuts, _ := findCuts(good, data, min((len(good)-data)/minPiece, maxPieces))
	if len(cuts) < 3 {
		t.Fatalf("the %d-byte record is cut in %d places", len(good), len(cuts))
	}
	replace := func(old, new string) []byte {
		b := bytes.Replace(good, []byte(old), []byte(new), 1)
		if bytes.Equal(b, good) {
			t.Fatalf("%q is not in the record", old)
		}
		return b
	}
	insertAt := func(at int, s string) []byte {
		return append(append(append([]byte{}, good[:at]...), s...), good[at:]...)
	}
	// A member of the next-to-last piece, repeated in the last: taken
	// from the last back, the pieces would leave its first value.
	inNextToLast := good[(cuts[len(cuts)-2]+cuts[len(cuts)-1])/2:]
	inNextToLast = inNextToLast[bytes.Index(inNextToLast, []byte(`"k`)):]
	inNextToLast = inNextToLast[:bytes.IndexByte(inNextToLast[1:], '"')+2]
	variants := map[string][]byte{
		"valid":                               good,
		"repeated key":                        replace(`"k5999": {`, `"k0": {"id": -1}, "k5999": {`),
		"repeated key in the last two pieces": replace(`"k5999": {`, string(inNextToLast)+`: {"id": -1}, "k5999": {`),
		"bad literal in the last":             replace(`"active": false}}`, `"active": fals}}`),
		"wrong type mid-way":                  replace(`"id": 3000,`, `"id": "3000",`),
		"bracket mismatch mid-way":            replace(`"k4000": {"id": 4000`, `"k4000": ["id": 4000`),
		"unterminated":                        good[:len(good)/2],
		"cut in the last member":              good[:bytes.LastIndex(good, []byte(`"active"`))],
		"trailing comma":                      insertAt(bytes.Index(good, []byte(`}, "timestamp"`)), ","),
		"string across the 2nd cut":           insertAt(cuts[1]+1, ` "x, \"k\": 1": {}, `),
		"escaped backslash at a cut":          insertAt(cuts[1]+1, ` "C:\\": {"name": "C:\\"},`),
	}
	for i, cut := range cuts {
		variants[fmt.Sprintf("doubled comma at cut %d", i)] = insertAt(cut, ",")
		variants[fmt.Sprintf("trailing comma before cut %d", i)] = insertAt(cut-1, ",")
	}
	for name, rec := range variants {
		for _, apart := range []bool{false, true} {
			checkPieces[item](t, name, rec, apart)
			checkPieces[any](t, name, rec, apart)
		}
	}
}

// checkPieces decodes the data object of rec in pieces, on this goroutine,
// and compares with decoding rec on one core. A valid record is decoded
// from its pieces, not again in one pass.
func checkPieces[V any](t *testing.T, name string, rec []byte, apart bool) {
	t.Helper()
	want, wantErr := decodeAt[string, V](1, rec)
	start := len(`{"data": `)
	cuts, members := findCuts(rec, start, min((len(rec)-start)/minPiece, maxPieces))
	var stop atomic.Bool
	var dd dataDecoder[string, V]
	cut := func() []piece[string, V] {
		pieces := newPieces[string, V](cuts, start, len(rec))
		dd = dataDecoder[string, V]{key: keyFuncFor[string](), plan: planFor(reflect.TypeFor[V]()),
			spare: make(chan []pair[string, V], len(pieces))}
		if apart {
			pd := &decoder{stop: &stop}
			for j := len(pieces) - 1; j > 0; j-- {
				pieces[j].owner.Store(byWorker)
				pieces[j].decodeApart(&dd, pd, rec, 1, members*(pieces[j].limit-pieces[j].from)/(len(rec)-start))
			}
		}
		return pieces
	}
	pieces := cut()
	fromPieces := dd.decodePieces(&decoder{b: rec, i: start, depth: 1}, pieces, newSink[string, V](0, false))
	if apart && name == "valid" && len(dd.spare) != len(pieces)-1 {
		// Each piece decoded apart was taken in as soon as the first was
		// decoded, and its pairs given to the next.
		t.Errorf("%s, %T: %d of the %d pieces decoded apart were taken in before the end", name, want.Data, len(dd.spare), len(pieces)-1)
	}
	if wantFromPieces := name == "valid" || strings.HasPrefix(name, "repeated key"); fromPieces != wantFromPieces && (wantFromPieces || wantErr != nil) {
		t.Errorf("%s, %T, apart %v: decoded from its pieces: %v", name, want.Data, apart, fromPieces)
	}
	d := &decoder{b: rec, i: start, depth: 1}
	items, err := dd.decodeCut(d, cut(), 0, &stop) // into a table, as a Cache decodes
	var got map[string]V
	if err == nil {
		got = items.t.toMap()
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMalformedRecord, inData(err))
	}
	switch {
	case (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error():
		t.Errorf("%s, %T, apart %v: error\n%v\nin one piece:\n%v", name, want.Data, apart, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want.Data):
		t.Errorf("%s, %T, apart %v: %d members differ from the %d decoded in one piece", name, want.Data, apart, len(got), len(want.Data))
	case err == nil && !bytes.HasPrefix(rec[d.i:], []byte(`, "timestamp": `)):
		t.Errorf("%s, %T, apart %v: the pieces end at byte %d, before %q", name, want.Data, apart, d.i, rec[d.i:])
	}
}

// A Snapshot serves its items, its timestamps and its size; a nil one
// serves nothing, as an empty one.
func TestSnapshotMethodsOnValueAndNil(t *testing.T) {
	ts, loaded := time.Unix(1_700_000_000, 0), time.Unix(1_700_000_100, 0)
	s := &Snapshot[string, int]{items: tableOf(map[string]int{"a": 1, "b": 2}), timestamp: ts, loadedAt: loaded, record: recordID{size: 42}}
	if v, ok := s.Get("a"); v != 1 || !ok {
		t.Errorf("Get(a) = %d, %v", v, ok)
	}
	if v, ok := s.Get("c"); v != 0 || ok {
		t.Errorf("Get(c) = %d, %v", v, ok)
	}
	all := map[string]int{}
	for k, v := range s.All() {
		all[k] = v
	}
	if !reflect.DeepEqual(all, map[string]int{"a": 1, "b": 2}) || len(collect(s.Keys())) != 2 || s.Len() != 2 {
		t.Errorf("All = %v, Keys = %v, Len = %d", all, collect(s.Keys()), s.Len())
	}
	if !s.Timestamp().Equal(ts) || !s.LoadedAt().Equal(loaded) || s.size() != 42 {
		t.Errorf("Timestamp %v, LoadedAt %v, size %d", s.Timestamp(), s.LoadedAt(), s.size())
	}
	if unknown := (&Snapshot[string, int]{record: recordID{size: -1}}); unknown.size() != 0 {
		t.Errorf("size of a snapshot of unknown size = %d, want 0", unknown.size())
	}
	var none *Snapshot[string, int]
	if v, ok := none.Get("a"); v != 0 || ok {
		t.Errorf("nil Get = %d, %v", v, ok)
	}
	for range none.All() {
		t.Error("nil All yields an item")
	}
	if none.Len() != 0 || len(collect(none.Keys())) != 0 || !none.Timestamp().IsZero() || !none.LoadedAt().IsZero() || none.size() != 0 {
		t.Error("a nil Snapshot is not empty")
	}
}

// A value of the wrong JSON kind for its Go type is refused with an error
// that names both, whatever the type: each kind of Go value reads the value
// to say so, and does not leave it for what follows to trip on.
func TestDecodeWrongKindNamesBoth(t *testing.T) {
	for _, c := range []struct {
		decode      func([]byte) error
		value, kind string
		typ         string
	}{
		{decodeInto[bool], `5`, "number", "bool"},
		{decodeInto[int], `"x"`, "string", "int"},
		{decodeInto[int8], `[1]`, "array", "int8"},
		{decodeInto[uint16], `true`, "boolean", "uint16"},
		{decodeInto[float32], `[]`, "array", "float32"},
		{decodeInto[float64], `{"x": 1}`, "object", "float64"},
		{decodeInto[string], `-5`, "number", "string"},
		{decodeInto[Number], `true`, "boolean", "kiwicache.Number"},
		{decodeInto[diffText], `5`, "number", "kiwicache.diffText"},
		{decodeInto[fmt.Stringer], `{}`, "object", "fmt.Stringer"},
		{decodeInto[func()], `5`, "number", "func()"},
		{decodeInto[*int], `"x"`, "string", "int"},
		{decodeInto[diffInner], `5`, "number", "kiwicache.diffInner"},
		{decodeInto[[]int], `5`, "number", "[]int"},
		{decodeInto[[]string], `{}`, "object", "[]string"},
		{decodeInto[[]any], `"x"`, "string", "[]interface {}"},
		{decodeInto[[]byte], `5`, "number", "[]uint8"},
		{decodeInto[[2]int], `"x"`, "string", "[2]int"},
		{decodeInto[map[string]int], `[]`, "array", "map[string]int"},
		{decodeInto[map[string]any], `5`, "number", "map[string]interface {}"},
		{decodeInto[map[bool]int], `{"true": 1}`, "object", "map[bool]int"},
	} {
		rec := `{"data": {"a": ` + c.value + `, "b": ` + c.value + `}, "timestamp": 1.5}`
		want := fmt.Sprintf(`malformed record: data["a"]: cannot decode the JSON %s at byte 15 into a Go %s`, c.kind, c.typ)
		if err := c.decode([]byte(rec)); err == nil || err.Error() != want {
			t.Errorf("%s into %s: error\n%v\nwant\n%s", c.value, c.typ, err, want)
		}
	}
}

// A syntax error inside a value is reported as that error, where it is,
// whatever Go type the value is decoded into: not as a value of the wrong
// kind, nor as an error further on.
func TestDecodeSyntaxErrorInsideEachType(t *testing.T) {
	for _, c := range []struct {
		decode func([]byte) error
		value  string
		want   string // after data["a"]
	}{
		{decodeInto[Number], `"\q"`, `: invalid escape '\q' at byte 16`},
		{decodeInto[Number], `-x`, `: invalid character 'x' at byte 16 where a digit should be`},
		{decodeInto[Number], `"1 "`, `: the JSON string at byte 15 is not a number`},
		{decodeInto[[]int], `[1 2]`, `: invalid character '2' at byte 18 where ',' or ']' after an element should be`},
		{decodeInto[[2]int], `[1 2]`, `: invalid character '2' at byte 18 where ',' or ']' after an element should be`},
		{decodeInto[[]string], `["a" "b"]`, `: invalid character '"' at byte 20 where ',' or ']' after an element should be`},
		{decodeInto[[]any], `[1 2]`, `: invalid character '2' at byte 18 where ',' or ']' after an element should be`},
		{decodeInto[map[string]int], `{x": 1}`, `: invalid character 'x' at byte 16 where a member name should be`},
		{decodeInto[map[string]int], `{"x": 1 "y": 2}`, `: invalid character '"' at byte 23 where ',' or '}' after a member should be`},
		{decodeInto[map[string]any], `{x": 1}`, `: invalid character 'x' at byte 16 where a member name should be`},
		{decodeInto[map[string]any], `{"x": 1 "y": 2}`, `: invalid character '"' at byte 23 where ',' or '}' after a member should be`},
		{decodeInto[any], `{"x": 1 "y": 2}`, `: invalid character '"' at byte 23 where ',' or '}' after a member should be`},
		{decodeInto[any], `[0, [1, tru]]`, `[1][1]: invalid literal "tru" at byte 23 where a value should be`},
		{decodeInto[[]any], `[0, [1, [tru]]]`, `[1][1][0]: invalid literal "tru" at byte 24 where a value should be`},
		{decodeInto[any], `[1 2]`, `: invalid character '2' at byte 18 where ',' or ']' after an element should be`},
		{decodeInto[any], `{"x": [1 2]}`, `["x"]: invalid character '2' at byte 24 where ',' or ']' after an element should be`},
		{decodeInto[diffInner], `{x": 1}`, `: invalid character 'x' at byte 16 where a member name should be`},
		{decodeInto[diffInner], `{"x": 1 "y": ""}`, `: invalid character '"' at byte 23 where ',' or '}' after a member should be`},
		{decodeInto[diffInner], `{"x" 1}`, `: invalid character '1' at byte 20 where ':' after a member name should be`},
		{decodeInto[item], `{"other": {x": 1}}`, `: invalid character 'x' at byte 26 where a member name should be`},
		{decodeInto[item], `{"other": [1 2]}`, `: invalid character '2' at byte 28 where ',' or ']' after an element should be`},
		{decodeInto[diffRaw], `[1 2]`, `: invalid character '2' at byte 18 where ',' or ']' after an element should be`},
		{decodeInto[diffText], `"\q"`, `: invalid escape '\q' at byte 16`},
		{decodeInto[*diffInner], `nul`, `: invalid literal "nul" at byte 15 where a value should be`},
		{decodeInto[bool], `tru`, `: invalid literal "tru" at byte 15 where a value should be`},
		{decodeInto[fmt.Stringer], `nul`, `: invalid literal "nul" at byte 15 where a value should be`},
		{decodeInto[func()], `nul`, `: invalid literal "nul" at byte 15 where a value should be`},
	} {
		rec := `{"data": {"a": ` + c.value + `}, "timestamp": 1.5}`
		err := c.decode([]byte(rec))
		if want := `malformed record: data["a"]` + c.want; err == nil || err.Error() != want {
			t.Errorf("%s: error\n%v\nwant\n%s", c.value, err, want)
		}
	}
}

// Nesting is counted per value: a record of more members than the depth
// limit, each holding containers of every kind, decodes, on one core and
// in pieces.
func TestDecodeDepthIsPerValue(t *testing.T) {
	const value = `{"map": {"x": 1}, "intMap": {"1": "a"}, "ints": [1], "strings": ["a"], "inners": [{"x": 1}], ` +
		`"array": [1, 2, 3], "anyMap": {"k": [1, {}]}, "namedMap": {"k": {}}, "any": [{}], "anys": [[]], ` +
		`"raw": {"a": [1]}, "json": [1], "inner": {"x": 1}, "innerPtr": {"x": 1}, "nested": {"k": [{"x": 1}]}, ` +
		`"unknown": {"a": [{}]}, "nums": [1], "bytes": [1, 2], "textMap": {"k": 1}}`
	var rec bytes.Buffer
	rec.WriteString(`{"data": {`)
	const n = maxDepth + 10
	for i := range n {
		if i > 0 {
			rec.WriteString(", ")
		}
		fmt.Fprintf(&rec, `"k%d": %s`, i, value)
	}
	rec.WriteString(`}, "timestamp": 1.5}`)
	for _, cores := range []int{1, 4} {
		typed, err := decodeAt[string, diffValue](cores, rec.Bytes())
		if err != nil || len(typed.Data) != n {
			t.Errorf("%d cores, typed: %d members, %v", cores, len(typed.Data), err)
		}
		untyped, err := decodeAt[string, any](cores, rec.Bytes())
		if err != nil || len(untyped.Data) != n {
			t.Errorf("%d cores, any: %d members, %v", cores, len(untyped.Data), err)
		}
	}
}

// A timestamp out of the range a record may have is refused with an
// error saying so.
func TestDecodeTimestampOutOfRange(t *testing.T) {
	for in, want := range map[string]string{
		`1e400`:        `malformed record: timestamp: strconv.ParseFloat: parsing "1e400": value out of range`,
		`-1`:           `malformed record: timestamp: -1 is out of range`,
		`8589934592`:   `malformed record: timestamp: 8589934592 is out of range`,
		`-0.5`:         `malformed record: timestamp: -0.5 is out of range`,
		`8589934591.5`: ``,
		`0`:            ``,
	} {
		_, err := JSONCodec[string, int]{}.Decode([]byte(`{"data": {}, "timestamp": ` + in + `}`))
		if want == "" && err != nil || want != "" && (err == nil || err.Error() != want) {
			t.Errorf("timestamp %s: error\n%v\nwant\n%s", in, err, want)
		}
	}
}

// A record with no map is written with an empty data object, as Python
// writes an empty dict (encoding/json would write null); a key type JSON
// has no member names for is refused both ways.
func TestDecodeEncodeNilDataAndKeyTypes(t *testing.T) {
	b, err := JSONCodec[string, int]{}.Encode(Record[string, int]{Timestamp: time.Unix(1, 5e8)})
	if err != nil || string(b) != `{"data": {}, "timestamp": 1.5}` {
		t.Errorf("Encode of no data = %s, %v", b, err)
	}
	if _, err := (JSONCodec[float64, int]{}).Encode(Record[float64, int]{Timestamp: time.Unix(1, 0)}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Encode with float64 keys: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := (JSONCodec[float64, int]{}).Decode([]byte(`{"data": {"1": 1}, "timestamp": 1}`)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Decode with float64 keys: error = %v, want ErrInvalidConfig", err)
	}
}

// The pairs of a piece taken into the table go to the next piece a worker
// decodes, if large enough; a piece whose pairs were moved into a map of
// their own keeps it, for taking in again in order if a name repeats.
func TestPairsOfTakenPiecesAreReused(t *testing.T) {
	dd := dataDecoder[string, int]{spare: make(chan []pair[string, int], 2)}
	taken := &piece[string, int]{out: newPairSink(100, 1<<20, dd.spare)}
	taken.out.pairs = append(taken.out.pairs, pair[string, int]{k: "a", v: 1})
	dd.reuse(taken)
	if taken.out != nil {
		t.Fatal("a piece taken into the table kept its pairs")
	}
	next := newPairSink(80, 1<<20, dd.spare)
	if len(next.pairs) != 0 || cap(next.pairs) != 100 {
		t.Errorf("the next piece's pairs: length %d, capacity %d, want the 100 given back", len(next.pairs), cap(next.pairs))
	}
	if fresh := newPairSink(80, 1<<20, dd.spare); cap(fresh.pairs) != 80 {
		t.Errorf("with no pairs given back, a piece's pairs have capacity %d, want 80", cap(fresh.pairs))
	}
	dd.reuse(&piece[string, int]{out: next})
	if small := newPairSink(200, 1<<20, dd.spare); cap(small.pairs) != 200 {
		t.Errorf("pairs too few for the piece were taken: capacity %d, want 200", cap(small.pairs))
	}

	repeated := &piece[string, int]{out: &memberSink[string, int]{m: map[string]int{"a": 1}}}
	dd.reuse(repeated)
	if repeated.out == nil || len(dd.spare) != 0 {
		t.Error("a piece whose pairs were moved into a map gave them away")
	}
}
