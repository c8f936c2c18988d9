package kiwicache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A member repeated inside an item decodes over the first one's value, as
// encoding/json does: a []string is filled again from its first element,
// and its capacity is kept, so that a longer array brings back the elements
// a shorter one left past its length, and a null there leaves them as they
// were. The slice may be shared with other items (see shareStrings), so it
// is decoded into a copy, which must keep that capacity.
func TestRepeatedMemberKeepsTheSliceCapacity(t *testing.T) {
	type tagged struct {
		Tags  []string  `json:"tags"`
		Named memoTags  `json:"named"`
		Ptr   *[]string `json:"ptr"`
	}
	for _, item := range []string{
		`{"tags": ["a","b"], "tags": ["c"], "tags": ["d", null]}`,
		`{"tags": ["a","b","c"], "tags": [], "tags": ["d", null]}`,
		`{"tags": ["long string one","long string two"], "tags": ["c"], "TAGS": [null, null]}`,
		`{"named": ["a","b"], "named": ["c"], "named": ["d", null]}`,
		`{"ptr": ["a","b"], "ptr": ["c"], "ptr": ["d", null]}`,
		`{"tags": ["a","b","c","d","e","f","g","h","i"], "tags": ["x"], "tags": [null, null, null]}`,
	} {
		data := []byte(`{"k1": ` + item + `, "k2": {"tags": ["a","b"], "named": ["a","b"], "ptr": ["a","b"]}}`)
		diffCheck[tagged](t, data)
	}
}

type memoTags []string

// An array written byte for byte as an earlier one decodes to the same
// value, wherever it is (an item's field, a pointer to a slice, a nested
// array, a map, an any), and an array that only starts like it is decoded
// for what it is: each record decodes as encoding/json decodes it, in one
// piece and in pieces at 2, 4 and 8 cores.
func TestRepeatedArrayTextDecodesAsEncodingJSON(t *testing.T) {
	type memoItem struct {
		Tags   []string            `json:"tags"`
		Named  memoTags            `json:"named"`
		Ptr    *[]string           `json:"ptr"`
		Nested [][]string          `json:"nested"`
		Map    map[string][]string `json:"map"`
		Any    any                 `json:"any"`
		Inner  *memoItem           `json:"inner"`
	}
	items := []string{
		`{"tags": ["a","b"], "named": ["a","b"], "ptr": ["a","b"]}`,
		`{"tags": ["a","b"], "tags": ["a","b"], "tags": ["a",null]}`,
		`{"tags": ["a","b"] , "nested": [["a","b"],["a","b"]], "map": {"x": ["a","b"], "y": ["a","b"]}}`,
		`{"any": ["a","b"], "tags": ["a","b"], "inner": {"tags": ["a","b"], "inner": {"named": ["a","b"]}}}`,
		`{"tags": ["a"], "named": ["a","b"], "ptr": ["a"]}`,
		`{"tags": ["\u0061","b"], "named": ["a","\u0062"], "ptr": ["a", "b"]}`,
		`{"tags": [null], "named": [null], "ptr": [null, null], "nested": [[null],[null]]}`,
		`{"tags": ["a","b","c","d","e","f","g","h"], "named": ["a","b","c","d","e","f","g","h"]}`,
		`{"tags": ["abcdefgh"], "named": ["abcdefgh"], "ptr": ["abcdefghi"], "Tags": ["abcdefghi"]}`,
	}
	for _, tail := range []string{
		``,
		`, "bad": {"tags": ["a","b"]]}`,
		`, "bad": {"tags": ["a","b"], "named": ["a","b"`,
		`, "bad": {"tags": ["a","b"], "named": ["a",1]}`,
		`, "bad": {"tags": ["a","b"], "str": ["a","b"]}`,
		", \"bad\": {\"tags\": [\"a\",\"b\"], \"named\": [\"a\",\"\xff\"]}",
	} {
		for _, size := range []int{0, 5 * minPiece} {
			var b strings.Builder
			b.WriteString("{")
			for i := 0; i == 0 || b.Len() < size; i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, `"k%d": %s`, i, items[i%len(items)])
			}
			b.WriteString(strings.Replace(tail, `"bad"`, `"k0"`, 1))
			b.WriteString("}")
			for _, cores := range []int{1, 2, 4, 8} {
				prev := runtime.GOMAXPROCS(cores)
				diffCheck[memoItem](t, []byte(b.String()))
				diffCheck[map[string]memoTags](t, []byte(b.String()))
				runtime.GOMAXPROCS(prev)
			}
		}
	}
}
