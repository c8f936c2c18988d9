package kiwicache

import (
	"encoding/json"
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

// Short arrays of short strings that repeat from item to item (tags,
// codes) are one slice per snapshot, as values are read-only: equal arrays
// share it, and an append to one item's copies it rather than change the
// others'. Arrays that differ, or hold a long string, are their own.
func TestRepeatedStringArraysShareOneSlice(t *testing.T) {
	tags := []string{`["a", "b"]`, `["b", "a"]`, `["a"]`, `["a", "b", "c"]`, `[]`, `["a", "a long tag, not shared"]`}
	data := recordOfItems(600, func(i int) string { return fmt.Sprintf(`{"tags": %s}`, tags[i%len(tags)]) })
	rec, err := (JSONCodec[string, item]{}).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	arrays := make([]map[*string]bool, len(tags))
	for i := range 600 {
		v := rec.Data[fmt.Sprintf("k%d", i)]
		if want := mustJSON[[]string](t, tags[i%len(tags)]); fmt.Sprint(v.Tags) != fmt.Sprint(want) || len(v.Tags) != cap(v.Tags) {
			t.Fatalf("k%d: tags %q (capacity %d), want %q", i, v.Tags, cap(v.Tags), want)
		}
		if arrays[i%len(tags)] == nil {
			arrays[i%len(tags)] = map[*string]bool{}
		}
		arrays[i%len(tags)][unsafe.SliceData(v.Tags)] = true
	}
	for i, want := range []int{1, 1, 1, 1, 1, 100} {
		if i == 4 {
			continue // an empty array has no elements to share
		}
		if len(arrays[i]) != want {
			t.Errorf("100 arrays %s are %d slices, want %d", tags[i], len(arrays[i]), want)
		}
	}
	k0 := rec.Data["k0"]
	k0.Tags = append(k0.Tags, "c")
	if fmt.Sprint(rec.Data["k6"].Tags) != "[a b]" {
		t.Errorf("an append to one item's tags changed another's: %q", rec.Data["k6"].Tags)
	}

	// More different arrays than the table that shares them has slots:
	// each item still gets its own elements.
	data = recordOfItems(3000, func(i int) string { return fmt.Sprintf(`{"tags": ["t%d", "x"]}`, i%1500) })
	rec, err = (JSONCodec[string, item]{}).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if got, want := rec.Data[fmt.Sprintf("k%d", i)].Tags, fmt.Sprintf("[t%d x]", i%1500); fmt.Sprint(got) != want {
			t.Fatalf("k%d: tags %q, want %s", i, got, want)
		}
	}
}

// mustJSON decodes s with encoding/json.
func mustJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// An array written byte for byte as the last shared one is not decoded
// again: it gets that slice, and the decoder moves past its text. An array
// written otherwise is decoded, and one nested too deep is refused either
// way.
func TestRepeatedArrayTextIsNotDecodedAgain(t *testing.T) {
	d := &decoder{b: []byte(`["a", "b"]["a", "b"]["a","b"]`)}
	var first, again, spaced []string
	if err := decodeNewStrings(d, unsafe.Pointer(&first)); err != nil || d.i != 10 {
		t.Fatalf("first array: %v, at byte %d", err, d.i)
	}
	d.shared, d.names = nil, internTable{} // only the last array's text can share it now
	if err := decodeNewStrings(d, unsafe.Pointer(&again)); err != nil || d.i != 20 || unsafe.SliceData(again) != unsafe.SliceData(first) {
		t.Fatalf("the same text again: %q, %v, at byte %d, shared %v", again, err, d.i, unsafe.SliceData(again) == unsafe.SliceData(first))
	}
	if err := decodeNewStrings(d, unsafe.Pointer(&spaced)); err != nil || d.i != len(d.b) || fmt.Sprint(spaced) != "[a b]" || unsafe.SliceData(spaced) == unsafe.SliceData(first) {
		t.Fatalf("the same array written otherwise: %q, %v, at byte %d", spaced, err, d.i)
	}

	d.i, d.depth = 0, maxDepth
	d.lastShared = sharedArray{text: d.b[:10], elems: first}
	var deep []string
	if err := decodeNewStrings(d, unsafe.Pointer(&deep)); err == nil || !strings.Contains(err.Error(), "nest deeper") {
		t.Errorf("an array one level too deep: %q, %v", deep, err)
	}
}
