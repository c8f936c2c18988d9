package kiwicache

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecodeHostileRepeatedFieldOfSharedSlice(t *testing.T) {
	data := []byte(`{"data": {"k1": {"tags": ["a", "b"]}, "k2": {"tags": ["a", "b"], "tags": ["x", "y"]}}, "timestamp": 1.5}`)
	rec, err := JSONCodec[string, item]{}.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Data map[string]item }
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.Data, want.Data) {
		t.Errorf("got %v, want %v", rec.Data, want.Data)
	}
}

// A value whose UnmarshalJSON takes a while, and counts the calls under way.
type slowValue struct{ ID int }

var slowCalls atomic.Int32

func (v *slowValue) UnmarshalJSON(b []byte) error {
	slowCalls.Add(1)
	defer slowCalls.Add(-1)
	time.Sleep(200 * time.Microsecond)
	var raw struct{ ID int }
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.ID < 0 {
		panic("a negative id")
	}
	v.ID = raw.ID
	return nil
}

// When a record cut into pieces turns out malformed, or a method of V
// panics, Decode returns only once the goroutines that decoded pieces apart
// have stopped: none of them still runs a method of V or reads the
// record's bytes, which the caller may reuse.
func TestDecodeHostileStopsItsGoroutines(t *testing.T) {
	items := func(first string) []byte {
		return recordOfItems(20_000, func(i int) string {
			if i == 0 {
				return first
			}
			return fmt.Sprintf(`{"ID": %d}`, i)
		})
	}
	for name, rec := range map[string][]byte{
		"a syntax error first": items(`{"ID": 0,}`),
		"a panic first":        items(`{"ID": -1}`),
	} {
		for _, cores := range []int{2, 4, 8} {
			before := runtime.NumGoroutine()
			_, err := decodeAt[string, slowValue](cores, rec)
			if err == nil {
				t.Fatalf("%s, %d cores: no error", name, cores)
			}
			if n := slowCalls.Load(); n != 0 {
				t.Errorf("%s, %d cores: %d calls of UnmarshalJSON still under way after Decode returned", name, cores, n)
			}
			if after := runtime.NumGoroutine(); after > before {
				t.Errorf("%s, %d cores: %d goroutines after Decode returned, %d before", name, cores, after, before)
			}
		}
	}
}
