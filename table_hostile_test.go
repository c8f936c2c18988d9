package kiwicache

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// floatKey is a key read with strconv.ParseFloat: "NaN" is a key unequal to
// itself, which a map[K]V holds once per member, each found by no Get.
type floatKey float64

func (f *floatKey) UnmarshalText(b []byte) error {
	v, err := strconv.ParseFloat(string(b), 64)
	*f = floatKey(v)
	return err
}

func (f floatKey) MarshalText() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
}

// Keys unequal to themselves (NaN) are each an item of their own, as in a
// map[K]V, through the compactions that repeated names cause: Len, All and
// Keys agree with encoding/json, nothing panics, and the other keys keep
// their last values.
func TestTableHostileKeysUnequalToThemselves(t *testing.T) {
	for _, repeats := range []int{1, 65, 200, 5000} {
		var b strings.Builder
		b.WriteString(`{"NaN": -1, "NaN": -2`)
		for i := range repeats {
			fmt.Fprintf(&b, `, "%d": %d`, i%3, i)
			if i%50 == 0 {
				fmt.Fprintf(&b, `, "NaN": %d`, -i-3)
			}
		}
		b.WriteString(`}`)
		data := []byte(b.String())
		t.Run(fmt.Sprintf("%d repeats", repeats), func(t *testing.T) {
			withCores(t, 1)
			// encoding/json: reflect.DeepEqual and diffDecode find no NaN key.
			var ref map[floatKey]int
			if err := json.Unmarshal(data, &ref); err != nil {
				t.Fatal(err)
			}
			rec := append(append([]byte(`{"data": `), data...), `, "timestamp": 1.5}`...)
			dr, err := JSONCodec[floatKey, int]{}.decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			s := &Snapshot[floatKey, int]{items: dr.items}
			want := must(JSONCodec[floatKey, int]{}.Decode(rec)).Data
			if len(want) != len(ref) {
				t.Errorf("JSONCodec.Decode: %d items, encoding/json %d", len(want), len(ref))
			}
			want = ref
			nans, all := 0, 0
			for k, v := range s.All() {
				all++
				if math.IsNaN(float64(k)) {
					nans++
					continue
				}
				if want[k] != v {
					t.Errorf("All: %v = %d, want %d", k, v, want[k])
				}
			}
			keys := 0
			for range s.Keys() {
				keys++
			}
			if s.Len() != len(want) || all != len(want) || keys != len(want) {
				t.Errorf("Len %d, All %d, Keys %d, want %d items", s.Len(), all, keys, len(want))
			}
			if n := len(s.items.values); n > s.Len() {
				t.Errorf("%d values for %d items", n, s.Len())
			}
		})
	}
}
