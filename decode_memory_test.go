package kiwicache

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// A short string value that repeats (a currency, a tag, a status) is kept
// once per snapshot, not once per item: the values share its bytes. So do
// the strings inside an any.
func TestRepeatedShortStringsShareOneCopy(t *testing.T) {
	data := recordOfItems(100, func(int) string { return `{"name": "EUR", "tags": ["a", "b"]}` })
	rec, err := (JSONCodec[string, item]{}).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	names, tags := map[*byte]bool{}, map[*byte]bool{}
	for _, v := range rec.Data {
		names[unsafe.StringData(v.Name)] = true
		tags[unsafe.StringData(v.Tags[0])] = true
	}
	if len(names) != 1 || len(tags) != 1 {
		t.Errorf("100 equal names are %d copies, 100 equal tags %d; want one each", len(names), len(tags))
	}

	anys, err := (JSONCodec[string, map[string]any]{}).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	inAny := map[*byte]bool{}
	for _, v := range anys.Data {
		inAny[unsafe.StringData(v["name"].(string))] = true
	}
	if len(inAny) != 1 {
		t.Errorf("100 equal strings in an any are %d copies, want one", len(inAny))
	}
}

// Strings are copied out of the record into shared chunks, not one
// allocation each: decoding 1,000 distinct names costs a few allocations.
func TestStringsShareAllocations(t *testing.T) {
	rec := recordOfItems(1000, func(i int) string { return fmt.Sprintf(`{"name": "a distinct name %d"}`, i) })
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := (JSONCodec[string, item]{}).Decode(rec); err != nil {
			t.Fatal(err)
		}
	})
	// 2,000 strings (keys and names); chunks that double from 1 KB to
	// 32 KB take about a dozen allocations for their 35 KB.
	if allocs > 100 {
		t.Errorf("decoding 1,000 items with distinct names took %.0f allocations, want the strings in shared chunks", allocs)
	}
}

// recordOfItems is a record of n members "k0".."k<n-1>", member i's value
// being value(i).
func recordOfItems(n int, value func(i int) string) []byte {
	var b strings.Builder
	b.WriteString(`{"data": {`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"k%d": %s`, i, value(i))
	}
	b.WriteString(`}, "timestamp": 1764087331.5}`)
	return []byte(b.String())
}
