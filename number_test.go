package kiwicache

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// numberTexts are numbers whose text a Number keeps exactly: the digits
// Python writes for Decimals, ints beyond 2^53 and floats.
var numberTexts = []string{"0", "-0", "455", "1.1000", "12345678901234567890", "-1.5e-7", "1E+400", "0.10"}

// Every JSON encoder a Go service uses writes a Number as a JSON number with
// its exact text, wherever it sits.
func TestNumberEncodesAsJSONNumber(t *testing.T) {
	marshalers := map[string]func(any) ([]byte, error){
		"encoding/json":                     json.Marshal,
		"go-json-experiment/json":           func(v any) ([]byte, error) { return jsonv2.Marshal(v) },
		"go-json-experiment/json/v1":        jsonv1.Marshal,
		"go-json-experiment/json, v1 flags": func(v any) ([]byte, error) { return jsonv2.Marshal(v, jsonv1.DefaultOptionsV1()) },
	}
	for name, marshal := range marshalers {
		for _, text := range numberTexts {
			n := Number(text)
			type row struct {
				N Number `json:"n"`
			}
			for _, c := range []struct {
				v    any
				want string
			}{
				{n, text},
				{&n, text},
				{[]any{n}, "[" + text + "]"},
				{map[string]any{"n": n}, `{"n":` + text + `}`},
				{row{n}, `{"n":` + text + `}`},
			} {
				got, err := marshal(c.v)
				if err != nil || string(got) != c.want {
					t.Errorf("%s: Marshal(%#v) = %s, %v; want %s", name, c.v, got, err, c.want)
				}
			}
		}
		// The empty Number is 0, as encoding/json writes an empty json.Number.
		if got, err := marshal(map[string]any{"n": Number("")}); err != nil || string(got) != `{"n":0}` {
			t.Errorf("%s: Marshal(Number(\"\")) = %s, %v; want {\"n\":0}", name, got, err)
		}
	}
}

// Text that is not exactly one JSON number is refused, never written into
// the document as it is (which would make the whole document invalid).
func TestNumberRefusesInvalidText(t *testing.T) {
	for _, text := range []string{"1.", "01", "+1", ".5", "1e", " 1", "1 ", "NaN", "Infinity", "0x10", "1_000", `1"`, "1,2", "true", "null", `"1"`} {
		if b, err := Number(text).MarshalJSON(); err == nil || !strings.Contains(err.Error(), "not a JSON number") {
			t.Errorf("Number(%q).MarshalJSON() = %s, %v; want an error", text, b, err)
		}
		if b, err := json.Marshal(map[string]any{"n": Number(text)}); err == nil {
			t.Errorf("encoding/json wrote Number(%q) as %s", text, b)
		}
		if b, err := jsonv2.Marshal(Number(text)); err == nil {
			t.Errorf("encoding/json/v2 wrote Number(%q) as %s", text, b)
		}
	}
}

// A Number decodes from a JSON number or from a string holding one (as
// json.Number does); null leaves it as it was; anything else is an error.
func TestNumberDecodes(t *testing.T) {
	unmarshalers := map[string]func([]byte, any) error{
		"encoding/json":           json.Unmarshal,
		"go-json-experiment/json": func(b []byte, v any) error { return jsonv2.Unmarshal(b, v) },
	}
	for name, unmarshal := range unmarshalers {
		for _, c := range []struct{ in, want string }{
			{`1.1000`, "1.1000"},
			{`12345678901234567890`, "12345678901234567890"},
			{`"1.10"`, "1.10"},
			{`"\u0031"`, "1"},
			{`null`, "kept"},
		} {
			n := Number("kept")
			if err := unmarshal([]byte(c.in), &n); err != nil || n != Number(c.want) {
				t.Errorf("%s: Unmarshal(%s) = %q, %v; want %q", name, c.in, n, err, c.want)
			}
		}
		for _, in := range []string{`true`, `"abc"`, `""`, `"1 "`, `[1]`, `{}`} {
			var n Number
			if err := unmarshal([]byte(in), &n); err == nil {
				t.Errorf("%s: Unmarshal(%s) = %q, want an error", name, in, n)
			}
		}
	}
}

// String, Float64 and Int64 answer as encoding/json's Number answers.
func TestNumberMethodsMatchEncodingJSON(t *testing.T) {
	for _, text := range append(numberTexts, "", "1e3", "9223372036854775808", "-9223372036854775808", "abc", "0x10") {
		n, std := Number(text), json.Number(text)
		if n.String() != std.String() {
			t.Errorf("Number(%q).String() = %q, json.Number says %q", text, n.String(), std.String())
		}
		f, err := n.Float64()
		stdF, stdErr := std.Float64()
		if f != stdF || (err == nil) != (stdErr == nil) {
			t.Errorf("Number(%q).Float64() = %v, %v; json.Number says %v, %v", text, f, err, stdF, stdErr)
		}
		i, err := n.Int64()
		stdI, stdErr := std.Int64()
		if i != stdI || (err == nil) != (stdErr == nil) {
			t.Errorf("Number(%q).Int64() = %v, %v; json.Number says %v, %v", text, i, err, stdI, stdErr)
		}
	}
}

// A row cached with V = map[string]any, as a Python writer or sqlloader
// leaves it, goes out of a Go service through encoding/json with every
// number as written in the record, and reads back to the same values.
func TestCachedRowRoundTripsThroughEncodingJSON(t *testing.T) {
	_, rdb := newMiniredis(t)
	ctx := context.Background()
	name := uniqueName(t)
	const row = `{"iatacode": "FR", "fleet": 455, "course": 1.1765, "big": 12345678901234567890, ` +
		`"price": 1.1000, "tiny": -1.5e-7, "nested": {"n": [1, 2.50]}, "alliance": null}`
	rdb.Set(ctx, "resource:"+name, `{"data": {"FR": `+row+`}, "timestamp": 1764087331.412345}`, 0)
	never := LoaderFunc[string, map[string]any](func(context.Context) (map[string]map[string]any, error) {
		return nil, errors.New("not called: the record is in Redis")
	})
	c := mustNew(t, name, rdb, never)

	fr, err := c.Get(ctx, "FR")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fr["course"].(Number); !ok {
		t.Fatalf("course decoded as %T, want Number", fr["course"])
	}
	out, err := json.Marshal(fr)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json sorts map keys; numbers keep their text, not even 1.1000
	// is shortened.
	const want = `{"alliance":null,"big":12345678901234567890,"course":1.1765,"fleet":455,` +
		`"iatacode":"FR","nested":{"n":[1,2.50]},"price":1.1000,"tiny":-1.5e-7}`
	if string(out) != want {
		t.Errorf("encoding/json wrote the cached row as\n%s\nwant\n%s", out, want)
	}

	// What a client of the service reads back holds the same numbers.
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber()
	var back map[string]any
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fleet", "course", "big", "price", "tiny"} {
		if got := back[k].(json.Number).String(); got != fr[k].(Number).String() {
			t.Errorf("%s: read back %s, the cache holds %s", k, got, fr[k])
		}
	}
}
