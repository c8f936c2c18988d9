package kiwicache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// withCores runs the test with n Ps, so that records are cut into pieces
// whatever the machine.
func withCores(t *testing.T, n int) {
	prev := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// A record cut into pieces decodes to what the source held, typed or into any.
func TestParallelDecode(t *testing.T) {
	withCores(t, 4)
	const n = 10_000
	rec := pythonRecord(n, benchTimestamp)
	// 977,825 bytes: 3 pieces of at least minPiece.
	typed := must(JSONCodec[string, item]{}.Decode(rec))
	if want := benchItemsData(n); !reflect.DeepEqual(typed.Data, want) {
		t.Errorf("typed decode differs from the source data (%d items, want %d)", len(typed.Data), len(want))
	}
	untyped := must(JSONCodec[string, any]{}.Decode(rec))
	if len(untyped.Data) != n || fmt.Sprint(untyped.Data["k9999"]) != "map[active:false id:9999 name:item-9999 price:12498.75 tags:[a b]]" {
		t.Errorf("untyped decode: %d items, k9999 = %v", len(untyped.Data), untyped.Data["k9999"])
	}
	if _, ok := untyped.Data["k1"].(map[string]any)["id"].(Number); !ok {
		t.Errorf("untyped numbers are %T, want Number", untyped.Data["k1"].(map[string]any)["id"])
	}
}

// Strings full of the characters the scanner cuts at, and a key repeated in
// the first and the last piece (the last value wins, as in Python).
func TestParallelDecodeTrickyData(t *testing.T) {
	withCores(t, 4)
	var b bytes.Buffer
	b.WriteString(`{"data": {"dup": {"name": "first"}, `)
	const n = 20_000
	for i := range n {
		fmt.Fprintf(&b, `"k%d": {"name": "x\\\", {[}]\\\\%d", "tags": ["]", "}", ","]}, `, i, i)
	}
	b.WriteString(`"dup": {"name": "last"}}, "timestamp": 1.5}`)
	rec := must(JSONCodec[string, item]{}.Decode(b.Bytes()))
	if len(rec.Data) != n+1 || rec.Data["dup"].Name != "last" {
		t.Errorf("%d items, dup = %+v; want %d and the last value", len(rec.Data), rec.Data["dup"], n+1)
	}
	if got := rec.Data["k777"]; got.Name != `x\", {[}]\\777` || len(got.Tags) != 3 {
		t.Errorf("k777 = %+v", got)
	}
}

// An error anywhere, in any piece, makes the whole record malformed.
func TestParallelDecodeErrors(t *testing.T) {
	withCores(t, 4)
	good := string(pythonRecord(10_000, benchTimestamp))
	for name, rec := range map[string]string{
		"bad literal in the last piece": strings.Replace(good, `"active": false}}`, `"active": fals}}`, 1),
		"bracket mismatch mid-way":      strings.Replace(good, `"k5000": {"id": 5000`, `"k5000": ["id": 5000`, 1),
		"missing comma mid-way":         strings.Replace(good, `}, "k6000"`, `} "k6000"`, 1),
		"unterminated":                  good[:len(good)/2],
	} {
		if rec == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		for _, decode := range []func([]byte) error{
			func(b []byte) error { _, err := JSONCodec[string, item]{}.Decode(b); return err },
			func(b []byte) error { _, err := JSONCodec[string, any]{}.Decode(b); return err },
		} {
			if err := decode([]byte(rec)); !isMalformed(err) {
				t.Errorf("%s: error = %v, want ErrMalformedRecord", name, err)
			}
		}
	}
	wrongType := strings.Replace(good, `"id": 7000,`, `"id": "7000",`, 1)
	if _, err := (JSONCodec[string, item]{}).Decode([]byte(wrongType)); !isMalformed(err) {
		t.Errorf("a string for an int field: error = %v, want ErrMalformedRecord", err)
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
	if calls.Load() != 3 || !reflect.DeepEqual(got.Data, benchItemsData(10_000)) {
		t.Errorf("Unmarshal called %d times (want 3, one per piece), data equal: %v",
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
		if _, err := panicking.Decode(b); !isMalformed(err) || !strings.Contains(err.Error(), "decoder panicked") {
			t.Errorf("%d-byte record: error = %v, want a malformed record from the panic", len(b), err)
		}
	}
}
