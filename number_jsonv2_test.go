//go:build goexperiment.jsonv2

package kiwicache

import (
	"encoding/json/v2"
	"testing"
)

// The standard library's encoding/json/v2 (GOEXPERIMENT=jsonv2) writes a
// Number as a JSON number with its exact text and reads one back.
func TestNumberEncodingJSONv2(t *testing.T) {
	type row struct {
		N Number `json:"n"`
	}
	for _, text := range numberTexts {
		for _, c := range []struct {
			v    any
			want string
		}{
			{Number(text), text},
			{map[string]any{"n": Number(text)}, `{"n":` + text + `}`},
			{row{Number(text)}, `{"n":` + text + `}`},
		} {
			got, err := json.Marshal(c.v)
			if err != nil || string(got) != c.want {
				t.Errorf("Marshal(%#v) = %s, %v; want %s", c.v, got, err, c.want)
			}
		}
		var back row
		if err := json.Unmarshal([]byte(`{"n":`+text+`}`), &back); err != nil || back.N != Number(text) {
			t.Errorf("Unmarshal of %s = %q, %v", text, back.N, err)
		}
	}
	if b, err := json.Marshal(Number("1.")); err == nil {
		t.Errorf("encoding/json/v2 wrote Number(\"1.\") as %s", b)
	}
}
