package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiwicache/kiwicache"
)

// A dataset is one side of a diff: where it came from and its data.
type dataset struct {
	Source    string     `json:"source"`
	Items     int        `json:"items"`
	Bytes     int        `json:"bytes"`
	Timestamp *time.Time `json:"timestamp"` // null for a file holding a dataset, not a record
	data      map[string]json.RawMessage
}

// readDataset reads the record NAME[:SUFFIX], or the JSON file @PATH (@-:
// stdin) holding a record or a dataset as dump prints it.
func (c *cli) readDataset(ctx context.Context, arg string) (*dataset, error) {
	path, isFile := strings.CutPrefix(arg, "@")
	if !isFile {
		in, err := c.wellFormed(ctx, arg)
		if err != nil {
			return nil, err
		}
		return &dataset{Source: in.Key, Items: *in.Items, Bytes: *in.Bytes, Timestamp: in.Timestamp, data: in.data}, nil
	}
	var b []byte
	var err error
	if path == "-" {
		path = "stdin"
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, failure{exitUsage, err}
	}
	d := &dataset{Source: path, Bytes: len(b)}
	rec, err := kiwicache.JSONCodec[string, json.RawMessage]{}.Decode(b)
	switch {
	case err == nil:
		d.data, d.Timestamp = rec.Data, &rec.Timestamp
	case errors.Is(err, kiwicache.ErrMalformedRecord):
		// Not a record: a dataset, as dump prints it.
		if json.Unmarshal(b, &d.data) != nil || d.data == nil || !utf8.Valid(b) {
			return nil, fail(exitMalformed, "%s holds neither a record (%s) nor a JSON object of items", display(path), malformedReason(err))
		}
	default:
		return nil, fail(exitMalformed, "%s: %w", display(path), err)
	}
	d.Items = len(d.data)
	return d, nil
}

// A valueDiff is one place where two values differ: a path into the value
// (".name", "[2]", "" for the whole value) and the JSON there on each side,
// left out where that side has nothing.
type valueDiff struct {
	Path string          `json:"path"`
	A    json.RawMessage `json:"a,omitempty"`
	B    json.RawMessage `json:"b,omitempty"`
	// SameNumber is true for two numbers of the same value written
	// differently (5 and 5.0, 1.10 and 1.1): an int and a float in Python,
	// two Decimals of different precision.
	SameNumber bool `json:"same_number,omitempty"`
}

type changedKey struct {
	Key   string      `json:"key"`
	Diffs []valueDiff `json:"diffs"`
}

// A datasetDiff is what diff found.
type datasetDiff struct {
	A       *dataset     `json:"a"`
	B       *dataset     `json:"b"`
	OnlyInA []string     `json:"only_in_a"`
	OnlyInB []string     `json:"only_in_b"`
	Changed []changedKey `json:"changed"`
	Same    int          `json:"same"`
	Differ  bool         `json:"differ"`
}

func (c *cli) diff(ctx context.Context, args []string) error {
	for _, arg := range args { // both names checked before either is read
		if !strings.HasPrefix(arg, "@") {
			if _, err := recordKey(arg); err != nil {
				return err
			}
		}
	}
	a, err := c.readDataset(ctx, args[0])
	if err != nil {
		return err
	}
	b, err := c.readDataset(ctx, args[1])
	if err != nil {
		return err
	}
	d := compareDatasets(a, b)
	if c.opts.json {
		err = c.printJSON(d)
	} else {
		err = c.printDiff(d)
	}
	if err == nil && d.Differ {
		return failure{exitAbsent, errSilent}
	}
	return err
}

// errSilent is a failure whose exit status says it all: run prints nothing.
var errSilent = errors.New("")

func compareDatasets(a, b *dataset) *datasetDiff {
	d := &datasetDiff{A: a, B: b, OnlyInA: []string{}, OnlyInB: []string{}, Changed: []changedKey{}}
	for _, k := range sortedKeys(a.data) {
		vb, ok := b.data[k]
		if !ok {
			d.OnlyInA = append(d.OnlyInA, k)
			continue
		}
		if diffs := diffRaw(a.data[k], vb); len(diffs) > 0 {
			d.Changed = append(d.Changed, changedKey{k, diffs})
		} else {
			d.Same++
		}
	}
	for _, k := range sortedKeys(b.data) {
		if _, ok := a.data[k]; !ok {
			d.OnlyInB = append(d.OnlyInB, k)
		}
	}
	d.Differ = len(d.OnlyInA)+len(d.OnlyInB)+len(d.Changed) > 0
	return d
}

// diffRaw compares two JSON values as the readers of a record see them:
// member order and whitespace do not count, escapes are read, and numbers
// compare as written (5 is not 5.0: Python reads an int and a float).
func diffRaw(a, b json.RawMessage) []valueDiff {
	if bytes.Equal(a, b) {
		return nil
	}
	var diffs []valueDiff
	diffValues("", decodeExact(a), decodeExact(b), &diffs)
	return diffs
}

// valuesEqual reports whether diffRaw finds no difference.
func valuesEqual(a, b json.RawMessage) bool { return len(diffRaw(a, b)) == 0 }

// decodeExact decodes a JSON value with its numbers as json.Number.
func decodeExact(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw) // not JSON (cannot happen in a decoded record): compare the text
	}
	return v
}

func diffValues(path string, a, b any, out *[]valueDiff) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		for _, k := range sortedKeys(av) {
			if y, inB := bv[k]; inB {
				diffValues(path+memberPath(k), av[k], y, out)
			} else {
				*out = append(*out, valueDiff{Path: path + memberPath(k), A: encodeExact(av[k])})
			}
		}
		for _, k := range sortedKeys(bv) {
			if _, inA := av[k]; !inA {
				*out = append(*out, valueDiff{Path: path + memberPath(k), B: encodeExact(bv[k])})
			}
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok {
			break
		}
		for i := range max(len(av), len(bv)) {
			p := path + "[" + strconv.Itoa(i) + "]"
			switch {
			case i >= len(bv):
				*out = append(*out, valueDiff{Path: p, A: encodeExact(av[i])})
			case i >= len(av):
				*out = append(*out, valueDiff{Path: p, B: encodeExact(bv[i])})
			default:
				diffValues(p, av[i], bv[i], out)
			}
		}
		return
	case json.Number:
		if bv, ok := b.(json.Number); ok {
			if av == bv {
				return
			}
			*out = append(*out, valueDiff{Path: path, A: encodeExact(a), B: encodeExact(b), SameNumber: sameNumber(av, bv)})
			return
		}
	default: // string, bool, nil: comparable
		if a == b {
			return
		}
	}
	*out = append(*out, valueDiff{Path: path, A: encodeExact(a), B: encodeExact(b)})
}

func sameNumber(a, b json.Number) bool {
	x, okA := new(big.Rat).SetString(string(a))
	y, okB := new(big.Rat).SetString(string(b))
	return okA && okB && x.Cmp(y) == 0
}

// memberPath is how a path names an object member: .name for identifiers,
// ["any key"] for the others.
func memberPath(k string) string {
	if k != "" && strings.TrimLeft(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == "" &&
		(k[0] < '0' || k[0] > '9') {
		return "." + k
	}
	return "[" + string(encodeExact(k)) + "]"
}

func encodeExact(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(strconv.Quote(fmt.Sprint(v)))
	}
	return b
}

// printDiff prints d for people, in the manner of diff -u: "-" only in A,
// "+" only in B, "~" changed, with the path and both values.
func (c *cli) printDiff(d *datasetDiff) error {
	var w bytes.Buffer
	side := func(mark string, s *dataset) {
		fmt.Fprintf(&w, "%s %s: %d items, %d bytes", mark, display(s.Source), s.Items, s.Bytes)
		if s.Timestamp != nil {
			fmt.Fprintf(&w, ", timestamp %s", s.Timestamp.UTC().Format(time.RFC3339Nano))
		}
		w.WriteByte('\n')
	}
	side("---", d.A)
	side("+++", d.B)
	for _, k := range d.OnlyInA {
		fmt.Fprintf(&w, "- %s\n", display(k))
	}
	for _, k := range d.OnlyInB {
		fmt.Fprintf(&w, "+ %s\n", display(k))
	}
	for _, ch := range d.Changed {
		for _, v := range ch.Diffs {
			fmt.Fprintf(&w, "~ %s%s: %s -> %s", display(ch.Key), displayPath(v.Path), shortJSON(v.A), shortJSON(v.B))
			if v.SameNumber {
				w.WriteString(" (the same number, written differently)")
			}
			w.WriteByte('\n')
		}
	}
	fmt.Fprintf(&w, "%d only in %s, %d only in %s, %d changed, %d the same\n",
		len(d.OnlyInA), display(d.A.Source), len(d.OnlyInB), display(d.B.Source), len(d.Changed), d.Same)
	_, err := c.out.Write(w.Bytes())
	return err
}

func displayPath(p string) string {
	if p == "" {
		return ""
	}
	return " " + string(escapeJSON([]byte(p)))
}

// shortJSON shows a value in one line of at most 60 runes, escaped.
func shortJSON(v json.RawMessage) string {
	if v == nil {
		return "(absent)"
	}
	s := string(escapeJSON(v))
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:59]) + "…"
	}
	return s
}
