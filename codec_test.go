package kiwicache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache/internal/jsonexact"
)

var goldenCases = []string{"tiny", "unicode", "int_keys", "sql_row", "suffix", "empty", "nested", "sql_table"}

// expectedItems reads CASE.expected.json with every number kept exact.
func expectedItems(t *testing.T, name string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readGolden(t, name+".expected.json")))
	dec.UseNumber()
	var want map[string]any
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	return want
}

// 11. Every golden record decodes to the items of its .expected.json, every
// number exact ("1.1000" equals "1.1", 9007199254740993 stays itself).
func TestGoldenRecordsDecode(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			rec, err := JSONCodec[string, any]{}.Decode(readGolden(t, name+".record"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonexact.Diff(map[string]any(rec.Data), expectedItems(t, name)); diff != "" {
				t.Error(diff)
			}
			if rec.Timestamp.Year() != 2026 {
				t.Errorf("timestamp = %v", rec.Timestamp)
			}
		})
	}
}

// 11. Golden records decode into typed V and integer K too.
func TestGoldenRecordsDecodeTyped(t *testing.T) {
	tiny, err := JSONCodec[string, item]{}.Decode(readGolden(t, "tiny.record"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tiny.Data["k1"]; got.ID != 1 || got.Name != "item-1" || got.Price != 1.25 || len(got.Tags) != 2 {
		t.Errorf("tiny k1 = %+v", got)
	}

	type carrier struct {
		Code  string   `json:"code"`
		Fleet int      `json:"fleet"`
		Ratio float64  `json:"ratio"`
		Big   Number   `json:"big"`
		Tiny  float64  `json:"tiny"`
		None  *float64 `json:"none"`
	}
	carriers, err := JSONCodec[int, carrier]{}.Decode(readGolden(t, "int_keys.record"))
	if err != nil {
		t.Fatal(err)
	}
	if got := carriers.Data[22]; got.Code != "W6" || got.Big != "-9007199254740993" || got.Tiny != 2.5e300 || got.None != nil {
		t.Errorf("int_keys 22 = %+v", got)
	}

	type airline struct {
		Course    Number     `json:"course"`
		Updated   string     `json:"updated"`
		Since     string     `json:"since"`
		Hubs      []string   `json:"hubs"`
		DeletedAt *time.Time `json:"deleted_at"`
	}
	row, err := JSONCodec[string, airline]{}.Decode(readGolden(t, "sql_row.record"))
	if err != nil {
		t.Fatal(err)
	}
	if got := row.Data["FR"]; got.Course != "1.1765" || got.Updated != "2019-10-08 12:34:56" || got.Hubs[0] != "DUB" {
		t.Errorf("sql_row FR = %+v", got)
	}

	dup, err := JSONCodec[string, int]{}.Decode(readGolden(t, "malformed/duplicate_key.record"))
	if err != nil || len(dup.Data) != 1 || dup.Data["a"] != 2 {
		t.Errorf("duplicate_key = %v, %v; want a=2 (the last value, as Python)", dup.Data, err)
	}
}

func TestMalformedRecordsAreRejected(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "malformed", "*.record"))
	if len(files) < 9 {
		t.Fatalf("only %d malformed records in testdata", len(files))
	}
	extra := map[string]string{
		"trailing garbage": `{"data": {}, "timestamp": 1.0} x`,
		"data is null":     `{"data": null, "timestamp": 1.0}`,
		"no data":          `{"timestamp": 1.0}`,
		"case differs":     `{"DATA": {}, "timestamp": 1.0}`,
		"negative time":    `{"data": {}, "timestamp": -1.0}`,
		"huge time":        `{"data": {}, "timestamp": 1e300}`,
		"array at top":     `[1]`,
	}
	for _, f := range files {
		if !strings.Contains(f, "duplicate_key") {
			extra[filepath.Base(f)] = string(must(os.ReadFile(f)))
		}
	}
	for name, in := range extra {
		if _, err := (JSONCodec[string, any]{}).Decode([]byte(in)); !isMalformed(err) {
			t.Errorf("%s: Decode error = %v, want ErrMalformedRecord", name, err)
		}
	}
}

func isMalformed(err error) bool { return errors.Is(err, ErrMalformedRecord) }

type priced struct {
	Price float64 `json:"price"`
	Ratio float32 `json:"ratio"`
	Count int     `json:"count"`
}

// 11. Records written by Go: exactly data and timestamp, float seconds, and
// integral floats written so that Python reads floats.
func TestEncodeWritesPythonTypes(t *testing.T) {
	ts := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b, err := JSONCodec[string, any]{}.Encode(Record[string, any]{
		Data: map[string]any{
			"p": priced{Price: 5, Ratio: 2, Count: 3},
			"m": map[string]any{"f": 3.0, "i": 3, "tiny": 1e-7, "small": 1e-6, "huge": 1e21, "n": Number("1.1000"),
				"big": Number("12345678901234567890"), "html": "<&>"},
		},
		Timestamp: ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`{"data": {`, `"price":5.0`, `"ratio":2.0`, `"count":3}`, `"f":3.0`, `"i":3`,
		`"tiny":1e-07`, `"small":0.000001`, `"huge":1e+21`, // as encoding/json writes them `"n":1.1000`, `"big":12345678901234567890`, `"html":"<&>"`,
		fmt.Sprintf(`, "timestamp": %d.0}`, ts.Unix())} {
		if !strings.Contains(s, want) {
			t.Errorf("encoded record lacks %s:\n%s", want, s)
		}
	}
	rec, err := JSONCodec[string, any]{}.Decode(b)
	if err != nil || !rec.Timestamp.Equal(ts) {
		t.Errorf("round trip: %v, %v", rec.Timestamp, err)
	}
	// NaN and the infinities have no JSON form: the error names the value.
	for _, f := range []float64{nanValue(), math.Inf(1), math.Inf(-1)} {
		_, err = JSONCodec[string, float64]{}.Encode(Record[string, float64]{Data: map[string]float64{"x": f}, Timestamp: ts})
		if want := fmt.Sprintf("unsupported float value %v", f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error = %v, want %q", f, err, want)
		}
	}
	// A nil map is an empty data object (encoding/json would write null).
	if b, err := (JSONCodec[string, int]{}).Encode(Record[string, int]{Timestamp: ts}); err != nil ||
		!strings.HasPrefix(string(b), `{"data": {}, "timestamp": `) {
		t.Errorf("nil data: %s, %v", b, err)
	}
	if _, err := (JSONCodec[string, int]{}).Encode(Record[string, int]{Data: map[string]int{}}); err == nil {
		t.Error("a zero timestamp was encoded")
	}
}

type rate float64

type rated struct {
	Rate  rate             `json:"rate"`
	Rates map[string]*rate `json:"rates"`
	Since celsius          `json:"since"`
}

type celsius float64

func (c celsius) MarshalJSON() ([]byte, error) { return []byte(`"warm"`), nil }

// Named float types in V are floats to Python too ("2.0"); their own
// MarshalJSON still wins.
func TestEncodeNamedFloats(t *testing.T) {
	two := rate(2)
	b, err := JSONCodec[string, rated]{}.Encode(Record[string, rated]{
		Data:      map[string]rated{"a": {Rate: 5, Rates: map[string]*rate{"x": &two}, Since: 1}},
		Timestamp: time.Unix(1, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rate":5.0`, `"x":2.0`, `"since":"warm"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("encoded %s lacks %s", b, want)
		}
	}
	if holdsNamedFloat(reflect.TypeFor[item](), map[reflect.Type]bool{}) {
		t.Error("item holds no named float, yet takes the slower encoding")
	}
}

func nanValue() float64 { var z float64; return z / z }

// 11. What Go writes, Python reads back with the same values and types: each
// golden record decoded and re-encoded by Go, and typed values with floats.
func TestPythonReadsGoRecords(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		skipreport.Skip(t, "Python round trip", "python3 is not installed")
	}
	dir := t.TempDir()
	for _, name := range goldenCases {
		rec, err := JSONCodec[string, any]{}.Decode(readGolden(t, name+".record"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := JSONCodec[string, any]{}.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".go.record"), out, 0o644)
		os.WriteFile(filepath.Join(dir, name+".py.record"), readGolden(t, name+".record"), 0o644)
	}
	typed, _ := JSONCodec[string, priced]{}.Encode(Record[string, priced]{
		Data: map[string]priced{"x": {Price: 5, Ratio: 2, Count: 3}}, Timestamp: time.Now()})
	os.WriteFile(filepath.Join(dir, "typed.go.record"), typed, 0o644)

	script := `
import json, sys, glob, os
def same(a, b, path):
    if type(a) is not type(b):
        sys.exit("%s: %r (%s) != %r (%s)" % (path, a, type(a).__name__, b, type(b).__name__))
    if isinstance(a, dict):
        if a.keys() != b.keys(): sys.exit("%s: keys %s != %s" % (path, sorted(a), sorted(b)))
        for k in a: same(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        if len(a) != len(b): sys.exit(path + ": lengths differ")
        for i, (x, y) in enumerate(zip(a, b)): same(x, y, "%s[%d]" % (path, i))
    elif a != b: sys.exit("%s: %r != %r" % (path, a, b))
d = sys.argv[1]
for f in glob.glob(os.path.join(d, "*.py.record")):
    go = json.load(open(f.replace(".py.", ".go.")))
    py = json.load(open(f))
    if set(go) != {"data", "timestamp"} or not isinstance(go["timestamp"], float):
        sys.exit(f + ": bad members or timestamp: %r" % list(go))
    same(go["data"], py["data"], os.path.basename(f))
t = json.load(open(os.path.join(d, "typed.go.record")))["data"]["x"]
same(t, {"price": 5.0, "ratio": 2.0, "count": 3}, "typed")
print("ok")
`
	out, err := exec.Command(python, "-c", script, dir).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("Python read Go's records differently: %v\n%s", err, out)
	}
}

// Timestamps are written exactly, in microseconds, with no float64 between:
// found by FuzzDecode (testdata/fuzz), where a far-future timestamp changed
// on a round trip.
func TestTimestampDigits(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0.0"},
		{time.Unix(1, 5e8), "1.5"},
		{time.Unix(1, 1e3), "1.000001"},
		{time.Unix(1764087331, 412345e3), "1764087331.412345"},
		{time.Unix(1764087331, 412345999), "1764087331.412345"},
		{time.Unix(maxUnixSeconds-1, 999999e3), "8589934591.999999"},
	} {
		got := string(appendUnixSeconds(nil, tc.t))
		if got != tc.want {
			t.Errorf("appendUnixSeconds(%v) = %s, want %s", tc.t, got, tc.want)
		}
		if back, err := parseUnixSeconds(got); err != nil || !back.Equal(tc.t.Truncate(time.Microsecond)) {
			t.Errorf("parseUnixSeconds(%s) = %v, %v", got, back, err)
		}
	}
	if _, err := parseUnixSeconds("8589934592"); err == nil {
		t.Error("a timestamp past maxUnixSeconds was accepted")
	}
}

type temperature float64

// A named float type is written as a Python float ("5.0") wherever it sits
// in V: a map's values, a slice's elements, V itself. Python would read
// "5" back as an int.
func TestEncodeNamedFloatsInMaps(t *testing.T) {
	ts := time.Unix(1, 0)
	for name, encode := range map[string]func() ([]byte, error){
		"map": func() ([]byte, error) {
			return JSONCodec[string, map[string]temperature]{}.Encode(Record[string, map[string]temperature]{
				Data: map[string]map[string]temperature{"a": {"x": 5}}, Timestamp: ts})
		},
		"slice": func() ([]byte, error) {
			return JSONCodec[string, []temperature]{}.Encode(Record[string, []temperature]{
				Data: map[string][]temperature{"a": {5}}, Timestamp: ts})
		},
		"value": func() ([]byte, error) {
			return JSONCodec[string, temperature]{}.Encode(Record[string, temperature]{
				Data: map[string]temperature{"a": 5}, Timestamp: ts})
		},
		// A type that holds itself (a tree) is looked through once.
		"recursive type": func() ([]byte, error) {
			return JSONCodec[string, reading]{}.Encode(Record[string, reading]{
				Data: map[string]reading{"a": {Kids: []reading{{T: 5}}}}, Timestamp: ts})
		},
	} {
		b, err := encode()
		if err != nil || !bytes.Contains(b, []byte("5.0")) || bytes.Contains(b, []byte("5,")) || bytes.Contains(b, []byte("5}")) {
			t.Errorf("%s: %s, %v; want 5.0", name, b, err)
		}
	}
}

// A reading holds readings: a value type that holds itself (before the
// named float, so that a look through its fields meets itself first).
type reading struct {
	Kids []reading   `json:"kids,omitempty"`
	T    temperature `json:"t"`
}

// Timestamps are written from the epoch up to, not including, 2^33 seconds
// (about the year 2242), the range that survives a round trip through a
// float64 exactly; outside it, Encode refuses the record.
func TestEncodeTimestampBounds(t *testing.T) {
	for ts, ok := range map[time.Time]bool{
		time.Unix(0, 0):                          true,
		time.Unix(maxUnixSeconds-1, 999_999_999): true,
		time.Unix(maxUnixSeconds, 0):             false,
		time.Unix(maxUnixSeconds+1, 0):           false,
		time.Unix(0, -1):                         false,
		time.Unix(-1, 0):                         false,
		{}:                                       false,
	} {
		b, err := JSONCodec[string, int]{}.Encode(Record[string, int]{Data: map[string]int{"a": 1}, Timestamp: ts})
		if ok != (err == nil) {
			t.Errorf("timestamp %v: %s, %v; accepted should be %v", ts, b, err, ok)
			continue
		}
		if ok {
			rec, err := JSONCodec[string, int]{}.Decode(b)
			if err != nil || !rec.Timestamp.Equal(ts.Truncate(time.Microsecond)) {
				t.Errorf("timestamp %v: read back as %v, %v", ts, rec.Timestamp, err)
			}
		}
	}
}

// onlyMarshals writes its keys with MarshalText but has no UnmarshalText.
type onlyMarshals string

func (k onlyMarshals) MarshalText() ([]byte, error) { return []byte("m:" + k), nil }

// onlyUnmarshals reads its keys with UnmarshalText but has no MarshalText.
type onlyUnmarshals string

func (k *onlyUnmarshals) UnmarshalText(b []byte) error {
	*k = onlyUnmarshals("u:" + string(b))
	return nil
}

// bothWays has both, and is a key type like any string.
type bothWays string

func (k bothWays) MarshalText() ([]byte, error)  { return []byte(k), nil }
func (k *bothWays) UnmarshalText(b []byte) error { *k = bothWays(b); return nil }

// A key type with only one of MarshalText and UnmarshalText would be
// written one way and read back another: New, Encode and Decode refuse it,
// though its kind (string) would do on its own.
func TestKeyTypesWithOneTextMethodAreRefused(t *testing.T) {
	ts := time.Unix(1, 0)
	rec := []byte(`{"data": {"a": 1}, "timestamp": 1.0}`)
	if _, err := (JSONCodec[onlyMarshals, int]{}).Encode(Record[onlyMarshals, int]{Data: map[onlyMarshals]int{"a": 1}, Timestamp: ts}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Encode with MarshalText only: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := (JSONCodec[onlyMarshals, int]{}).Decode(rec); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Decode with MarshalText only: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := (JSONCodec[onlyUnmarshals, int]{}).Decode(rec); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Decode with UnmarshalText only: error = %v, want ErrInvalidConfig", err)
	}
	_, rdb := newMiniredis(t)
	if _, err := New("OneWay", rdb, LoaderFunc[onlyUnmarshals, int](staticData(map[onlyUnmarshals]int{"a": 1}))); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with UnmarshalText only: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := New("OneWay", rdb, LoaderFunc[onlyMarshals, int](staticData(map[onlyMarshals]int{"a": 1}))); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with MarshalText only: error = %v, want ErrInvalidConfig", err)
	}
	b, err := JSONCodec[bothWays, int]{}.Encode(Record[bothWays, int]{Data: map[bothWays]int{"k": 1}, Timestamp: ts})
	back, err2 := JSONCodec[bothWays, int]{}.Decode(b)
	if err != nil || err2 != nil || back.Data["k"] != 1 {
		t.Errorf("a key type with both: %s, %v, %v, %v", b, back.Data, err, err2)
	}
}
