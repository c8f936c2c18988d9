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
	var b strings.Builder
	b.WriteString(`{"data": {`)
	for i := range 100 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"k%d": {"name": "EUR", "tags": ["a", "b"]}`, i)
	}
	b.WriteString(`}, "timestamp": 1764087331.5}`)
	rec, err := (JSONCodec[string, item]{}).Decode([]byte(b.String()))
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

	anys, err := (JSONCodec[string, map[string]any]{}).Decode([]byte(b.String()))
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
	var b strings.Builder
	b.WriteString(`{"data": {`)
	for i := range 1000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"k%d": {"name": "a distinct name %d"}`, i, i)
	}
	b.WriteString(`}, "timestamp": 1764087331.5}`)
	rec := []byte(b.String())
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
