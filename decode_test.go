package kiwicache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// withCores runs the test with n Ps, so that records are cut into pieces
// whatever the machine.
func withCores(t testing.TB, n int) {
	prev := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// decodeAt decodes b with n Ps.
func decodeAt[K comparable, V any](n int, b []byte) (Record[K, V], error) {
	prev := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(prev)
	return JSONCodec[K, V]{}.Decode(b)
}

// decodeTableAt decodes b as a Cache does, into a snapshot's table, at
// GOMAXPROCS n, and returns its items as a map.
func decodeTableAt[K comparable, V any](n int, b []byte) (map[K]V, error) {
	prev := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(prev)
	rec, err := JSONCodec[K, V]{}.decode(b, false)
	if err != nil {
		return nil, err
	}
	if problem := untrimmed(&rec.items); problem != "" {
		return nil, fmt.Errorf("the table is not trimmed: %s", problem)
	}
	return rec.items.toMap(), nil
}

// decodesAlikeIntoTable returns an error unless decoding b into a snapshot's
// table, as a Cache does, gives what JSONCodec.Decode gave: rec or err.
func decodesAlikeIntoTable[K comparable, V any](b []byte, rec Record[K, V], err error) error {
	items, terr := decodeTableAt[K, V](runtime.GOMAXPROCS(0), b)
	switch {
	case (err == nil) != (terr == nil) || err != nil && err.Error() != terr.Error():
		return fmt.Errorf("Decode and the decoding into a table differ: %v, and %v", err, terr)
	case err == nil && !reflect.DeepEqual(items, rec.Data):
		return fmt.Errorf("Decode and the decoding into a table read different items: %d and %d", len(rec.Data), len(items))
	}
	return nil
}

// coreCounts are the GOMAXPROCS values the decoder is checked at: one piece,
// and two, four and eight pieces for records large enough.
var coreCounts = []int{1, 2, 4, 8}

// A record cut into pieces decodes to what the source held, typed or into any.
func TestParallelDecode(t *testing.T) {
	const n = 10_000
	rec := pythonRecord(n, benchTimestamp)
	if cuts, _ := findCuts(rec, len(`{"data": `), maxPieces); len(cuts) != maxPieces-1 {
		t.Fatalf("%d cuts in the %d-byte record, want %d", len(cuts), len(rec), maxPieces-1)
	}
	for _, cores := range coreCounts {
		typed := must(decodeAt[string, item](cores, rec))
		if want := benchItemsData(n); !reflect.DeepEqual(typed.Data, want) {
			t.Errorf("%d cores: typed decode differs from the source data (%d items, want %d)", cores, len(typed.Data), len(want))
		}
		untyped := must(decodeAt[string, any](cores, rec))
		if len(untyped.Data) != n || fmt.Sprint(untyped.Data["k9999"]) != "map[active:false id:9999 name:item-9999 price:12498.75 tags:[a b]]" {
			t.Errorf("%d cores: untyped decode: %d items, k9999 = %v", cores, len(untyped.Data), untyped.Data["k9999"])
		}
		if _, ok := untyped.Data["k1"].(map[string]any)["id"].(Number); !ok {
			t.Errorf("%d cores: untyped numbers are %T, want Number", cores, untyped.Data["k1"].(map[string]any)["id"])
		}
	}
}

// Strings full of the characters a cut could be made at (commas, quotes,
// brackets, escaped backslashes ending a string as in "C:\\"), and a key
// repeated in the first and the last piece: the last value wins, as in
// Python.
func TestParallelDecodeTrickyData(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"data": {"dup": {"name": "first"}, `)
	const n = 20_000
	for i := range n {
		fmt.Fprintf(&b, `"k%d": {"name": "x\\\", {[}]\\\\%d", "tags": ["]", "}", ", \"", "C:\\\\"]}, `, i, i)
		if i%1000 == 0 {
			fmt.Fprintf(&b, `"path%d": {"name": "C:\\", "tags": ["\\", "}, \"k\": {"]}, `, i)
		}
	}
	b.WriteString(`"dup": {"name": "last"}}, "timestamp": 1.5}`)
	for _, cores := range coreCounts {
		rec := must(decodeAt[string, item](cores, b.Bytes()))
		if len(rec.Data) != n+21 || rec.Data["dup"].Name != "last" {
			t.Errorf("%d cores: %d items, dup = %+v; want %d and the last value", cores, len(rec.Data), rec.Data["dup"], n+21)
		}
		if got := rec.Data["k777"]; got.Name != `x\", {[}]\\777` || !reflect.DeepEqual(got.Tags, []string{"]", "}", `, "`, `C:\\`}) {
			t.Errorf("%d cores: k777 = %+v", cores, got)
		}
		if got := rec.Data["path5000"]; got.Name != `C:\` || !reflect.DeepEqual(got.Tags, []string{`\`, `}, "k": {`}) {
			t.Errorf("%d cores: path5000 = %+v", cores, got)
		}
	}
}

// An error anywhere, in any piece, makes the whole record malformed.
func TestParallelDecodeErrors(t *testing.T) {
	good := string(pythonRecord(10_000, benchTimestamp))
	for name, rec := range map[string]string{
		"bad literal in the last piece": strings.Replace(good, `"active": false}}`, `"active": fals}}`, 1),
		"bracket mismatch mid-way":      strings.Replace(good, `"k5000": {"id": 5000`, `"k5000": ["id": 5000`, 1),
		"missing comma mid-way":         strings.Replace(good, `}, "k6000"`, `} "k6000"`, 1),
		"unterminated":                  good[:len(good)/2],
		"invalid UTF-8 mid-way":         strings.Replace(good, `"item-7000"`, "\"item-\xff\"", 1),
	} {
		if rec == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		for _, cores := range coreCounts {
			if _, err := decodeAt[string, item](cores, []byte(rec)); !isMalformed(err) {
				t.Errorf("%s, %d cores, typed: error = %v, want ErrMalformedRecord", name, cores, err)
			}
			if _, err := decodeAt[string, any](cores, []byte(rec)); !isMalformed(err) {
				t.Errorf("%s, %d cores, any: error = %v, want ErrMalformedRecord", name, cores, err)
			}
		}
	}
	wrongType := strings.Replace(good, `"id": 7000,`, `"id": "7000",`, 1)
	_, err := JSONCodec[string, item]{}.Decode([]byte(wrongType))
	want := fmt.Sprintf(`malformed record: data["k7000"].id: cannot decode the JSON string at byte %d into a Go int`,
		strings.Index(wrongType, `"7000",`))
	if !isMalformed(err) || err.Error() != want {
		t.Errorf("a string for an int field: error = %v\nwant %s", err, want)
	}
}

// Commas where JSON has none (before the first member, after the last, two
// in a row) are refused at every core count, wherever they fall: at the
// places the record is cut for its pieces, or anywhere else, in records
// above 512 KB, whose pieces are decoded in parallel. What one core accepts,
// all do, and the other way round.
func TestParallelAcceptsWhatSequentialAccepts(t *testing.T) {
	good := pythonRecord(6_000, benchTimestamp) // 582 KB: two pieces at 2 cores and up
	data := len(`{"data": `)
	insertAt := func(b []byte, at int, s string) []byte {
		return append(append(append([]byte{}, b[:at]...), s...), b[at:]...)
	}
	variants := map[string][]byte{
		"valid":               good,
		"leading comma":       insertAt(good, data+1, ","),
		"leading comma space": insertAt(good, data+1, " , "),
		"trailing comma":      insertAt(good, bytes.Index(good, []byte(`}, "timestamp"`)), ","),
		"comma in an item":    insertAt(good, bytes.Index(good, []byte(`, "k3000"`))-1, ","),
		"empty member list":   []byte(`{"data": {,}, "timestamp": 1.5}`),
	}
	// Doubled commas at every cut the decoder makes in it, and at every 1/50.
	cuts, _ := findCuts(good, data, min((len(good)-data)/minPiece, maxPieces))
	if len(cuts) < 2 {
		t.Fatalf("the %d-byte record is cut in %d places", len(good), len(cuts))
	}
	for i, cut := range cuts {
		variants[fmt.Sprintf("doubled comma at cut %d", i)] = insertAt(good, cut, ",")
		variants[fmt.Sprintf("comma after cut %d", i)] = insertAt(good, cut+1, " ,")
		variants[fmt.Sprintf("trailing comma before cut %d", i)] = insertAt(good, cut-1, ",")
	}
	for i := 1; i < 50; i++ {
		at := data + len(good)*i/50
		at += bytes.IndexByte(good[at:], ',')
		variants[fmt.Sprintf("doubled comma at %d/50", i)] = insertAt(good, at, ",")
	}
	for name, rec := range variants {
		var first error
		for _, cores := range coreCounts {
			got, err := decodeAt[string, item](cores, rec)
			if cores == 1 {
				first = err
			} else if (err == nil) != (first == nil) {
				t.Errorf("%s: %d cores: error %v; 1 core: %v", name, cores, err, first)
			}
			if name == "valid" && (err != nil || len(got.Data) != 6_000) {
				t.Errorf("valid record at %d cores: %d items, %v", cores, len(got.Data), err)
			}
			if name != "valid" && !isMalformed(err) {
				t.Errorf("%s at %d cores: error = %v, want ErrMalformedRecord", name, cores, err)
			}
		}
	}
}

// Strings must be valid UTF-8, in member names and values, typed or not,
// decoded or skipped: Python refuses such a record, and replacing the bytes
// would merge keys ("\xff" and "\xfe" would both become "\uFFFD").
func TestInvalidUTF8IsMalformed(t *testing.T) {
	type named struct {
		Name string `json:"name"`
	}
	records := map[string]string{
		"in keys":             "{\"data\": {\"\xff\": 1, \"\xfe\": 2}, \"timestamp\": 1.5}",
		"in a value":          "{\"data\": {\"a\": {\"name\": \"x\xffy\"}}, \"timestamp\": 1.5}",
		"in a nested name":    "{\"data\": {\"a\": {\"n\xc3\": 1}}, \"timestamp\": 1.5}",
		"truncated sequence":  "{\"data\": {\"a\": {\"name\": \"\xe2\x82\"}}, \"timestamp\": 1.5}",
		"surrogate as UTF-8":  "{\"data\": {\"a\": {\"name\": \"\xed\xa0\x80\"}}, \"timestamp\": 1.5}",
		"overlong encoding":   "{\"data\": {\"a\": {\"name\": \"\xc0\xaf\"}}, \"timestamp\": 1.5}",
		"in a skipped member": "{\"data\": {\"a\": {\"other\": \"\xff\", \"name\": \"x\"}}, \"timestamp\": 1.5}",
		"in the record names": "{\"data\": {}, \"timestamp\xff\": 1.5}",
	}
	for name, rec := range records {
		for _, decode := range map[string]func([]byte) error{
			"any":   func(b []byte) error { _, err := JSONCodec[string, any]{}.Decode(b); return err },
			"typed": func(b []byte) error { _, err := JSONCodec[string, named]{}.Decode(b); return err },
			"hook": func(b []byte) error {
				_, err := JSONCodec[string, any]{Unmarshal: json.Unmarshal}.Decode(b)
				return err
			},
		} {
			if err := decode([]byte(rec)); !isMalformed(err) {
				t.Errorf("invalid UTF-8 %s: error = %v, want ErrMalformedRecord", name, err)
			} else if !strings.Contains(err.Error(), "UTF-8") && !strings.Contains(err.Error(), "invalid byte") {
				t.Errorf("invalid UTF-8 %s: error %q does not say so", name, err)
			}
		}
	}
	// Escapes of any code point are fine, and so is valid UTF-8 of 2 to 4 bytes.
	ok := `{"data": {"\u00e9t\u00e9": "été ✓ 𝄞", "\ud834\udd1e": 1}, "timestamp": 1.5}`
	rec, err := JSONCodec[string, any]{}.Decode([]byte(ok))
	if err != nil || rec.Data["été"] != "été ✓ 𝄞" || rec.Data["𝄞"] != Number("1") {
		t.Errorf("valid UTF-8 and escapes: %v, %v", rec.Data, err)
	}
}

// A record that is not JSON says what was found and where, after the
// prefix of ErrMalformedRecord; one that is JSON but not an object says
// which kind it is.
func TestMalformedReasons(t *testing.T) {
	for in, want := range map[string]string{
		"not json":                               `malformed record: not JSON: invalid literal "not" at byte 0 where a value should be`,
		"nope":                                   `malformed record: not JSON: invalid literal "nope" at byte 0 where a value should be`,
		"hello":                                  `malformed record: not JSON: invalid literal "hello" at byte 0 where a value should be`,
		"Hello":                                  `malformed record: not JSON: invalid character 'H' at byte 0 where a value should be`,
		"":                                       `malformed record: not JSON: the record is empty`,
		" \n":                                    `malformed record: not JSON: the record is only white space`,
		"\xff\xfe":                               `malformed record: not JSON: invalid byte 0xff at byte 0 where a value should be`,
		"null":                                   `malformed record: the record is a JSON null, not an object`,
		`"x"`:                                    `malformed record: the record is a JSON string, not an object`,
		"[1] 2":                                  `malformed record: not JSON: invalid character '2' at byte 4 after a JSON array`,
		`{"data": {"a": 1}, "timestamp": 1.5} x`: `malformed record: invalid character 'x' at byte 37 after the record's end`,
		`{"data": [], "timestamp": 1.5}`:         `malformed record: data is a JSON array, not an object`,
		`{"data": {"a": tru}, "timestamp": 1.5}`: `malformed record: data["a"]: invalid literal "tru" at byte 15 where a value should be`,
		`{"data": {}, "timestamp": "1.5"}`:       `malformed record: timestamp is a JSON string, not a number`,
		`{"data": {}, "timestamp": 1.}`:          `malformed record: timestamp: invalid character '}' at byte 28 where a digit after the decimal point should be`,
		`{"data": {}, "timestamp": 01}`:          `malformed record: invalid character '1' at byte 27 where ',' or '}' after a member should be`,
		`{"data": {"a": 1,}, "timestamp": 1.5}`:  `malformed record: data: invalid character '}' at byte 17 where a member name should be`,
		`{"data": {"a": 1}, "extra": 1}`:         `malformed record: unexpected member "extra" (a record has only data and timestamp)`,
	} {
		_, err := JSONCodec[string, int]{}.Decode([]byte(in))
		if !isMalformed(err) || err.Error() != want {
			t.Errorf("%q: error\n%v\nwant\n%s", in, err, want)
		}
	}
}

// JSON's own rules for the record's top level: an escaped member name is
// the name it spells, an exponent may be lowercase; numbers with a leading
// zero or a bare decimal point are refused.
func TestRecordStrictness(t *testing.T) {
	for in, want := range map[string]time.Time{
		`{"d\u0061ta": {"a": 1}, "timest\u0061mp": 1.5}`: time.Unix(1, 5e8),
		`{"data": {"a": 1}, "timestamp": 1.5e1}`:         time.Unix(15, 0),
		`{"data": {"a": 1}, "timestamp": 15E-1}`:         time.Unix(1, 5e8),
		` {"timestamp": 2, "data": {"a": 1}} `:           time.Unix(2, 0),
	} {
		rec, err := JSONCodec[string, int]{}.Decode([]byte(in))
		if err != nil || !rec.Timestamp.Equal(want) || rec.Data["a"] != 1 {
			t.Errorf("%s: %v at %v, %v", in, rec.Data, rec.Timestamp, err)
		}
	}
	for _, in := range []string{
		`{"data": {"a": 01}, "timestamp": 1.5}`,
		`{"data": {"a": 1.}, "timestamp": 1.5}`,
		`{"data": {"a": .5}, "timestamp": 1.5}`,
		`{"data": {"a": -}, "timestamp": 1.5}`,
		`{"data": {"a": 1e}, "timestamp": 1.5}`,
		`{"data": {"a": "\x"}, "timestamp": 1.5}`,
		"{\"data\": {\"a\": \"\t\"}, \"timestamp\": 1.5}",
		`{"data": {"a": NaN}, "timestamp": 1.5}`,
		`{"data": {"a": 1}, "timestamp": 01.5}`,
		`{"data": {"a": 1}, "timestamp": 1.}`,
		`{"data": {"a": 1}, "timestamp": 1e400}`, // valid JSON, no float64
	} {
		if _, err := (JSONCodec[string, any]{}).Decode([]byte(in)); !isMalformed(err) {
			t.Errorf("%s: error = %v, want ErrMalformedRecord", in, err)
		}
	}
}

// Values nest at most 10,000 deep (encoding/json's limit), the record
// counting as one: deeper is refused with an error, not a stack overflow.
func TestDeepNesting(t *testing.T) {
	for depth, ok := range map[int]bool{100: true, maxDepth - 2: true, maxDepth - 1: false, 1_000_000: false} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			rec := `{"data": {"a": ` + strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth) + `}, "timestamp": 1.0}`
			_, errAny := JSONCodec[string, any]{}.Decode([]byte(rec))
			_, errTyped := JSONCodec[string, item]{}.Decode([]byte(rec)) // skipped or refused by type
			if ok && errAny != nil || !ok && !isMalformed(errAny) {
				t.Errorf("%s x %d into any: error = %v", open, depth, errAny)
			}
			if !ok && !strings.Contains(errTyped.Error(), "deeper") && depth > maxDepth {
				t.Errorf("%s x %d into a struct: error = %v, want one about the depth", open, depth, errTyped)
			}
		}
	}
}

// JSONCodec.Unmarshal replaces the decoder of the pieces; one that panics,
// in any piece, makes the record malformed instead of ending the process.
func TestJSONCodecUnmarshal(t *testing.T) {
	withCores(t, 4)
	rec := pythonRecord(10_000, benchTimestamp)
	var calls atomic.Int64
	counting := JSONCodec[string, item]{Unmarshal: func(data []byte, v any) error {
		calls.Add(1)
		return json.Unmarshal(data, v)
	}}
	got := must(counting.Decode(rec))
	if calls.Load() != 4 || !reflect.DeepEqual(got.Data, benchItemsData(10_000)) {
		t.Errorf("Unmarshal called %d times (want 4, one per piece), data equal: %v",
			calls.Load(), reflect.DeepEqual(got.Data, benchItemsData(10_000)))
	}

	panicking := JSONCodec[string, item]{Unmarshal: func(data []byte, v any) error {
		if bytes.Contains(data, []byte(`"k9999"`)) {
			panic("decoder bug")
		}
		return json.Unmarshal(data, v)
	}}
	for _, b := range [][]byte{rec, pythonRecord(10, benchTimestamp)} {
		b = bytes.Replace(b, []byte(`"k9"`), []byte(`"k9999"`), 1)
		_, err := panicking.Decode(b)
		var p *PanicError
		if !isMalformed(err) || !strings.Contains(err.Error(), "decoder panicked") || !errors.As(err, &p) {
			t.Errorf("%d-byte record: error = %v, want a malformed record from the panic", len(b), err)
		}
	}

	// The pieces it is given are checked JSON: commas where JSON has none
	// are refused before it sees them, at every core count.
	for _, cores := range coreCounts {
		withCores(t, cores)
		bad := bytes.Replace(rec, []byte(`}, "k5000"`), []byte(`},, "k5000"`), 1)
		if _, err := counting.Decode(bad); !isMalformed(err) {
			t.Errorf("%d cores: a doubled comma: error = %v", cores, err)
		}
	}
}

// A method of V that panics while decoding makes the record malformed, in
// whichever piece it is, instead of ending the process.
func TestDecodePanicIsMalformed(t *testing.T) {
	rec := bytes.Replace(pythonRecord(10_000, benchTimestamp), []byte(`"item-8000"`), []byte(`"panic"`), 1)
	for _, cores := range coreCounts {
		_, err := decodeAt[string, panicky](cores, rec)
		var p *PanicError
		if !isMalformed(err) || !errors.As(err, &p) || p.Value != "panicky" {
			t.Errorf("%d cores: error = %v, want a malformed record wrapping the panic", cores, err)
		}
	}
}

type panicky struct {
	Name panickyName `json:"name"`
}

type panickyName string

func (n *panickyName) UnmarshalText(b []byte) error {
	if string(b) == "panic" {
		panic("panicky")
	}
	*n = panickyName(b)
	return nil
}

// Nothing decoded keeps the record's bytes alive: strings are copies, and
// the record's buffer is collected while the decoded data is still in use.
func TestDecodedDataDoesNotKeepTheRecord(t *testing.T) {
	for _, cores := range []int{1, 4} {
		for name, decode := range map[string]func([]byte) any{
			"typed": func(b []byte) any { return must(decodeAt[string, item](cores, b)).Data },
			"any":   func(b []byte) any { return must(decodeAt[string, any](cores, b)).Data },
			"raw": func(b []byte) any {
				type rawItem struct {
					Tags json.RawMessage `json:"tags"`
					Name Number          `json:"id"`
				}
				return must(decodeAt[string, rawItem](cores, b)).Data
			},
		} {
			rec := pythonRecord(10_000, benchTimestamp)
			collected := make(chan struct{})
			runtime.AddCleanup(&rec[0], func(ch chan struct{}) { close(ch) }, collected)
			data := decode(rec)
			rec = nil
			deadline := time.Now().Add(5 * time.Second)
			for done := false; !done && time.Now().Before(deadline); {
				runtime.GC()
				select {
				case <-collected:
					done = true
				case <-time.After(10 * time.Millisecond):
				}
			}
			select {
			case <-collected:
			default:
				t.Errorf("%s, %d cores: the record's bytes are still alive while the decoded data is", name, cores)
			}
			runtime.KeepAlive(data)
		}
	}
}

// The direct computation of short decimals gives strconv.ParseFloat's
// result, bit for bit, at both sizes.
func TestParseFloatMatchesStrconv(t *testing.T) {
	var inputs []string
	for _, s := range []string{"0", "-0", "0.0", "-0.0", "1", "1.25", "12498.75", "0.1", "0.3", "123456789012345",
		"1234567890123456", "0.000000000000000000001", "9007199254740993", "16777217", "3.4028235e38", "1e400",
		"-1e-400", "2.2250738585072011e-308", "0.1000000000000000055511151231257827", "8.589934591999999e9"} {
		inputs = append(inputs, s)
	}
	for i := range 20_000 {
		mant, exp := (i*7919)%100_000_000, i%23
		s := fmt.Sprint(mant)
		if exp > 0 && exp < len(s) {
			s = s[:len(s)-exp] + "." + s[len(s)-exp:]
		} else if exp > 0 {
			s = "0." + strings.Repeat("0", exp-len(s)) + s
		}
		inputs = append(inputs, s, "-"+s)
	}
	for _, s := range inputs {
		for _, bits := range []int{32, 64} {
			want, err := strconv.ParseFloat(s, bits)
			got, ok := parseFloat([]byte(s), bits)
			if ok != (err == nil) || ok && bits == 64 && got != want || ok && bits == 32 && float32(got) != float32(want) ||
				ok && (got == 0) && (1/got != 1/want) { // the sign of zero too
				t.Fatalf("parseFloat(%s, %d) = %v, %v; strconv: %v, %v", s, bits, got, ok, want, err)
			}
		}
	}
}

// allocated is the heap f allocates (the least of 3 runs): an upper bound
// of the peak heap it adds, and unlike the peak, exact.
func allocated(f func()) uint64 {
	least := ^uint64(0)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// recordOf writes a record of about size bytes: its data object holds head,
// then unit as many times as fits, then tail.
func recordOf(size int, head, unit, tail string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data": {` + head)
	for b.Len() < size-len(tail)-len(`}, "timestamp": 1.5}`) {
		b.WriteString(unit)
	}
	b.WriteString(tail + `}, "timestamp": 1.5}`)
	return b.Bytes()
}

// A hostile record costs no more memory than a valid one of the same size:
// what is malformed (a comma flood, nesting 10,000 deep) is refused before
// it allocates much; what is valid but repeats one member a hundred
// thousand times, or holds one array of a million values, allocates no more
// than about the valid record, or, where its values are costlier by nature
// (a map per member in an any), than about encoding/json does for the same
// record. Before, a comma flood allocated 98 times its size: the map was
// sized from a count of commas.
func TestHostileRecordsMemory(t *testing.T) {
	valid := pythonRecord(20_000, benchTimestamp)
	size := len(valid)
	malformed := map[string][]byte{
		"comma flood":   recordOf(size, `"a": 1`, ",", ""),
		"comma flood 2": recordOf(size, `"a": {"id": 1}`, ", ,", ""),
		"deep arrays":   recordOf(size, `"a": `, "[", ""),
		"deep objects":  recordOf(size, `"a": `, `{"a":`, ""),
		"unterminated":  recordOf(size, `"a": "`, "x", ""),
	}
	repeated := map[string][]byte{
		"one member, repeated":      recordOf(size, `"a": null`, `, "a": null`, ""),
		"one item, repeated":        recordOf(size, `"a": {"id": 1}`, `, "a": {"id": 1, "tags": []}`, ""),
		"a million ones":            recordOf(size, `"a": [1`, ",1", "]"),
		"half a million empties":    recordOf(size, `"a": [{}`, ",{}", "]"),
		"members with empty values": recordOf(size, `"k": {}`, `, "k": {}`, ""),
	}
	withCores(t, 1)
	validItem := allocated(func() { JSONCodec[string, item]{}.Decode(valid) })
	validAny := allocated(func() { JSONCodec[string, any]{}.Decode(valid) })
	t.Logf("a valid %d-byte record allocates %.2fx its size into a struct, %.2fx into any",
		size, float64(validItem)/float64(size), float64(validAny)/float64(size))
	for _, cores := range []int{1, 4} {
		withCores(t, cores)
		// Pieces decoded in parallel hold their members in slices until
		// the map takes them in: up to the pieces' size more.
		pieces := uint64(0)
		if cores > 1 {
			pieces = uint64(size)
		}
		for name, rec := range malformed {
			if _, err := (JSONCodec[string, any]{}).Decode(rec); !isMalformed(err) {
				t.Fatalf("%s: %v", name, err)
			}
			typed := allocated(func() { JSONCodec[string, item]{}.Decode(rec) })
			untyped := allocated(func() { JSONCodec[string, any]{}.Decode(rec) })
			if typed > validItem/2 || untyped > validAny/2 {
				t.Errorf("%d cores, %s: allocates %.2fx its size into a struct, %.2fx into any; want under half the valid record's",
					cores, name, float64(typed)/float64(size), float64(untyped)/float64(size))
			}
		}
		for name, rec := range repeated {
			typed := allocated(func() { JSONCodec[string, item]{}.Decode(rec) }) // the arrays are no items
			untyped := allocated(func() { must(JSONCodec[string, any]{}.Decode(rec)) })
			reference := allocated(func() {
				var r struct{ Data map[string]any }
				must(0, unmarshalNumbers(rec, &r))
			})
			t.Logf("%d cores, %s: %.2fx into a struct, %.2fx into any (encoding/json: %.2fx)",
				cores, name, float64(typed)/float64(size), float64(untyped)/float64(size), float64(reference)/float64(size))
			// Maps are sized from an estimate of the members: 1.5 allows
			// for it.
			if typed > validItem*3/2+pieces {
				t.Errorf("%d cores, %s: allocates %.2fx its size into a struct, over 1.5 times the valid record's %.2fx",
					cores, name, float64(typed)/float64(size), float64(validItem)/float64(size))
			}
			if untyped > max(validAny, reference)*5/4+pieces {
				t.Errorf("%d cores, %s: allocates %.2fx its size into any, over 1.25 times the valid record's %.2fx and encoding/json's %.2fx",
					cores, name, float64(untyped)/float64(size), float64(validAny)/float64(size), float64(reference)/float64(size))
			}
		}
	}
}

// The quick paths for integers and short decimals read what the full
// grammar and strconv read, and nothing else: on anything else they read
// nothing and leave it to the full path.
func TestQuickNumbers(t *testing.T) {
	inputs := []string{"0", "-0", "7", "-7", "123456789012345678", "1234567890123456789", "-999999999999999999",
		"01", "-", "-01", "1.5", "1e5", "1E5", "0.0", "-0.0", "12498.75", "1.", "1.e5", "123456789012345.6",
		"12345678901234.5", "0.1234567890123456789", "5e-324", ".5", "+1", "1x", "1,", "1}", "1 "}
	for i := range 5_000 {
		inputs = append(inputs, strconv.Itoa(i*7919-10_000), strconv.FormatFloat(float64(i)*1.25-3000, 'f', -1, 64),
			strconv.FormatFloat(float64(i)/7, 'f', 6, 64))
	}
	for _, in := range inputs {
		d := decoder{b: []byte(in)}
		if n, ok := d.quickInt(); ok {
			text := in[:d.i]
			want, err := strconv.ParseInt(text, 10, 64)
			full := decoder{b: []byte(in)}
			num, numErr := full.number()
			if err != nil || want != n || numErr != nil || string(num) != text {
				t.Errorf("quickInt(%q) = %d reading %q; strconv: %d, %v; grammar: %q, %v", in, n, text, want, err, num, numErr)
			}
		}
		d = decoder{b: []byte(in)}
		if f, ok := d.quickFloat64(); ok {
			text := in[:d.i]
			want, err := strconv.ParseFloat(text, 64)
			full := decoder{b: []byte(in)}
			num, numErr := full.number()
			if err != nil || want != f || 1/want != 1/f || numErr != nil || string(num) != text {
				t.Errorf("quickFloat64(%q) = %v reading %q; strconv: %v, %v; grammar: %q, %v", in, f, text, want, err, num, numErr)
			}
		}
	}
}
