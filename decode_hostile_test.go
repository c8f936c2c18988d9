package kiwicache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kiwicache/kiwicache/internal/skipreport"
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
			before := goroutinesIn("kiwicache.(*dataDecoder[")
			_, err := decodeAt[string, slowValue](cores, rec)
			if err == nil {
				t.Fatalf("%s, %d cores: no error", name, cores)
			}
			if n := slowCalls.Load(); n != 0 {
				t.Errorf("%s, %d cores: %d calls of UnmarshalJSON still under way after Decode returned", name, cores, n)
			}
			if after := goroutinesIn("kiwicache.(*dataDecoder["); after > before {
				t.Errorf("%s, %d cores: %d decoding goroutines after Decode returned, %d before", name, cores, after, before)
			}
		}
	}
}

type tagList []string

// stringsItem holds []string in every way a value can.
type stringsItem struct {
	Tags   []string            `json:"tags"`
	Named  tagList             `json:"named"`
	Nested [][]string          `json:"nested"`
	ByName map[string][]string `json:"by_name"`
	Arr    [2]string           `json:"arr"`
	Quoted int                 `json:"quoted,string"`
	Ptr    *[]string           `json:"ptr"`
}

// Arrays of short strings decode as encoding/json decodes them whatever
// they hold (null, escapes, empty strings, 8 and 9 bytes, more distinct
// arrays than the table of shared ones has slots, a field repeated in an
// item, arrays in arrays, in maps, behind pointers), and items that share a
// slice hold equal arrays: an item's slice changes no other item's, by
// decoding or by append.
func TestDecodeHostileSharedStringArrays(t *testing.T) {
	arrays := []string{
		`["a", "b"]`, `["a", null]`, `[null]`, `["\u0061", "b"]`, `["", ""]`, `[""]`, `[]`, `null`,
		`["12345678", "a"]`, `["123456789", "a"]`, `["\"q\\\\", "a"]`, `["a","b","c","d","e","f","g","h"]`,
		`["a","b","c","d","e","f","g","h","i"]`, `["é", "\ud83d\ude00"]`,
	}
	value := func(i int) string {
		a := arrays[i%len(arrays)]
		distinct := fmt.Sprintf(`["x%d", "y%d"]`, i%700, i%3) // more arrays than slots
		switch i % 5 {
		case 0:
			return fmt.Sprintf(`{"tags": %s, "named": %s, "nested": [%s, %s], "arr": ["a", "b"], "quoted": "%d"}`, a, a, a, distinct, i)
		case 1:
			return fmt.Sprintf(`{"tags": ["a", "b"], "tags": %s, "nested": [["a", "b"]], "nested": [[null, "c"], %s]}`, a, a)
		case 2:
			return fmt.Sprintf(`{"by_name": {"x": %s, "y": %s, "x": %s}, "ptr": %s}`, a, distinct, distinct, a)
		case 3:
			return fmt.Sprintf(`{"tags": %s, "named": %s, "tags": ["a", "b"]}`, distinct, distinct)
		}
		return fmt.Sprintf(`{"tags": %s, "tags": %s}`, distinct, a)
	}
	rec := recordOfItems(5_000, value)
	var want struct{ Data map[string]stringsItem }
	if err := json.Unmarshal(rec, &want); err != nil {
		t.Fatal(err)
	}
	for _, cores := range []int{1, 2, 4, 8} {
		got, err := decodeAt[string, stringsItem](cores, rec)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Data, want.Data) {
			for k, v := range want.Data {
				if !reflect.DeepEqual(got.Data[k], v) {
					t.Fatalf("%d cores: %s = %#v, want %#v", cores, k, got.Data[k], v)
				}
			}
			t.Fatalf("%d cores: the data differs from encoding/json's", cores)
		}
		// Every slice of strings, by its first element's address: the
		// slices that share one hold the same strings.
		byAddr := map[*string][]string{}
		check := func(k string, s []string) {
			if len(s) == 0 {
				return
			}
			if other, ok := byAddr[&s[0]]; ok && !reflect.DeepEqual(other[:min(len(other), len(s))], s[:min(len(other), len(s))]) {
				t.Errorf("%d cores: %s holds %q in the slice of %q", cores, k, s, other)
			}
			byAddr[&s[0]] = s
		}
		for k, v := range got.Data {
			check(k, v.Tags)
			check(k, v.Named)
			for _, s := range v.Nested {
				check(k, s)
			}
			for _, s := range v.ByName {
				check(k, s)
			}
			if v.Ptr != nil {
				check(k, *v.Ptr)
			}
		}
		for _, v := range got.Data {
			_ = append(v.Tags, "appended")
		}
		if !reflect.DeepEqual(got.Data, want.Data) {
			t.Errorf("%d cores: an append to one item's tags changed another's", cores)
		}
	}
}

// A Cache serves what Python's json.loads reads from a record written by
// hand with member names repeated (in the data object, across the pieces
// it is cut into, and in items): the last value of each, as in Python.
func TestDecodeHostileRepeatedNamesFromPython(t *testing.T) {
	rdb := realRedis(t)
	name := uniqueName(t)
	// The record: 6,000 items, the names k0, k1, k2999 and k5999 repeated
	// at the start, the middle and the end, and every other item with
	// its tags twice; Python writes it raw and prints what json.loads reads.
	script := `
import json, sys, redis
parts = []
for i in range(6000):
    k = "k%d" % i
    if i % 1000 == 500: k = "k0"
    if i % 1500 == 700: k = "k5999"
    if i == 3100: k = "k2999"
    tags = '"tags": ["a", "b"]' if i % 2 else '"tags": ["a", "b"], "tags": ["t%d", "x"]' % (i % 3)
    parts.append('"%s": {"id": %d, "name": "n%d", %s, "active": true}' % (k, i, i, tags))
parts.append('"k1": {"id": -1, "tags": ["a", "b"]}')
`
	out := pythonWritesRecord(t, script, name)
	var want map[string]item
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for _, cores := range []int{2, 4, 8} {
		withCores(t, cores)
		c := mustNew(t, name, rdb, LoaderFunc[string, item](func(context.Context) (map[string]item, error) {
			return nil, errors.New("the record is in Redis: nothing to load")
		}))
		snap, err := c.Snapshot(context.Background())
		if err != nil {
			t.Fatalf("%d cores: %v", cores, err)
		}
		got := maps.Collect(snap.All())
		if !reflect.DeepEqual(got, want) {
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%d cores: %s = %+v, Python reads %+v", cores, k, got[k], v)
				}
			}
			t.Fatalf("%d cores: %d items served, Python reads %d", cores, len(got), len(want))
		}
		c.Close()
	}
}

// A data object cut into pieces, with member names repeated in every way
// across them (first and last piece, two pieces decoded apart, the same
// name three times and more, many names, a piece that repeats one name past
// its budget of pairs), decodes as encoding/json decodes it, keeping the
// last value of each name, whatever the cores and the value and key types.
func TestDecodeHostileRepeatedNamesAcrossPieces(t *testing.T) {
	const n = 6_000
	type layout struct {
		name string
		key  func(i int) int
	}
	layouts := []layout{
		{"first and last", func(i int) int { return ifElse(i == n-1, 0, i) }},
		{"every 500th is k7", func(i int) int { return ifElse(i%500 == 499, 7, i) }},
		{"the last piece repeats a middle name", func(i int) int { return ifElse(i > n-40, n/2+i%3, i) }},
		{"two names, everywhere", func(i int) int { return ifElse(i%3 == 0, i%2, i) }},
		{"one name, past the pairs' budget", func(i int) int { return ifElse(i > n*3/4, 5, i) }},
		{"a name per piece, from the end back", func(i int) int { return ifElse(i%400 == 0, n-1-i, i) }},
	}
	value := func(i int) string {
		return fmt.Sprintf(`{"id": %d, "name": "n%d", "tags": ["a", "t%d"], "active": %t}`, i, i%7, i%3, i%2 == 0)
	}
	short := func(i int) string { return fmt.Sprintf("%d%24s", i, "") } // white space: a record to cut
	for _, l := range layouts {
		for _, v := range []func(int) string{value, short} {
			var b strings.Builder
			b.WriteString(`{`)
			for i := range n {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, `"%d": %s`, l.key(i), v(i))
				if l.name == "one name, past the pairs' budget" && i > n*3/4 {
					for range 20 {
						// 20 times more of them, in fewer bytes than their pairs
						if v(0) == value(0) {
							fmt.Fprintf(&b, `, "5": {"id": %d}`, i)
						} else {
							fmt.Fprintf(&b, `, "5": %d`, i)
						}
					}
				}
			}
			b.WriteString(`}`)
			data := []byte(b.String())
			if cuts, _ := findCuts(data, 0, maxPieces); len(cuts) < 4 {
				t.Fatalf("%s: %d cuts in a %d-byte data object", l.name, len(cuts), len(data))
			}
			for _, cores := range []int{1, 2, 4, 8} {
				t.Run(fmt.Sprintf("%s/%d cores", l.name, cores), func(t *testing.T) {
					withCores(t, cores)
					if v(0) == value(0) {
						diffDecode[string, item](t, data)
						diffDecode[int, any](t, data)
					} else {
						diffDecode[int, int](t, data)
						diffDecode[string, any](t, data)
					}
				})
			}
		}
	}
}

func ifElse(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

// One codec decodes records cut into pieces on several goroutines at once,
// each to what encoding/json reads (go test -race checks that they share
// nothing they write).
func TestDecodeHostileConcurrentDecodes(t *testing.T) {
	withCores(t, 4)
	codec := JSONCodec[string, item]{}
	recs := make([][]byte, 4)
	wants := make([]map[string]item, len(recs))
	for r := range recs {
		recs[r] = recordOfItems(3_000, func(i int) string {
			if i%700 == 0 {
				i = 0 // a name repeated across pieces
			}
			return fmt.Sprintf(`{"id": %d, "name": "r%d", "tags": ["a", "t%d"], "tags": ["a", "b"]}`, i, r, i%3)
		})
		var want struct{ Data map[string]item }
		if err := json.Unmarshal(recs[r], &want); err != nil {
			t.Fatal(err)
		}
		wants[r] = want.Data
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for r := range recs {
				r = (r + g) % len(recs)
				got, err := codec.Decode(recs[r])
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(got.Data, wants[r]) {
					t.Errorf("goroutine %d: record %d decodes to other data", g, r)
				}
			}
		})
	}
	wg.Wait()
}

// pythonWritesRecord runs script, Python that makes the members of a
// record's data object in parts, with python3 and its redis module (or skips
// t): the script's end SETs the record under name in the tests' Redis and
// prints its data object as json.loads reads it, which it returns.
func pythonWritesRecord(t *testing.T, script, name string) []byte {
	t.Helper()
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import redis").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		skipreport.Skip(t, "Python record with repeated names", "no python3 with the redis module (Debian: python3-redis)")
	}
	script += `
text = '{"data": {' + ", ".join(parts) + '}, "timestamp": 1764087331.5}'
r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), db=int(sys.argv[3]))
r.set("resource:" + sys.argv[4], text)
print(json.dumps(json.loads(text)["data"]))
`
	opts, _ := redis.ParseURL(realRedisURL)
	host, port, _ := strings.Cut(opts.Addr, ":")
	out, err := exec.Command(python, "-c", script, host, port, fmt.Sprint(opts.DB), name).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	return out
}
