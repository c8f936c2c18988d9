package kiwicache

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// Decoding a record is most of a reload's time, so JSONCodec does it in three
// steps (see BENCHMARKS.md for the measurements behind them):
//
//  1. the record's top level is parsed here: exactly the members data and
//     timestamp, no trailing data;
//  2. the data object is scanned for its end, and cut between members into
//     one piece per core;
//  3. the pieces are decoded in parallel (by decodeOptions: encoding/json's
//     semantics, exact numbers; or by JSONCodec.Unmarshal), and merged in
//     record order, so that a repeated key keeps its last value, as in Python.

// minPiece is the smallest piece of data worth a goroutine of its own.
const minPiece = 256 << 10

func decodeJSONRecord[K comparable, V any](b []byte, unmarshal func([]byte, any) error) (rec Record[K, V], err error) {
	p := recordParser{b: b}
	p.skipSpace()
	if k := p.peek(); k != '{' {
		return rec, fmt.Errorf("record is a JSON %s, not an object", kindOf(k))
	}
	p.i++
	var data dataObject
	var haveData, haveTimestamp bool
	p.skipSpace()
	for more := p.peek() != '}'; more; {
		p.skipSpace()
		name, err := p.name()
		if err != nil {
			return rec, err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return rec, p.syntaxError("':' after a member name")
		}
		p.i++
		p.skipSpace()
		switch name {
		case "data":
			if k := p.peek(); k != '{' {
				return rec, fmt.Errorf("data is a JSON %s, not an object", kindOf(k))
			}
			if data, err = scanObject(b, p.i); err != nil {
				return rec, fmt.Errorf("data: %w", err)
			}
			p.i += len(data.raw)
			haveData = true // a repeated member replaces the earlier one
		case "timestamp":
			num := p.number()
			if num == nil {
				return rec, fmt.Errorf("timestamp is a JSON %s, not a number", kindOf(p.peek()))
			}
			if rec.Timestamp, err = parseUnixSeconds(string(num)); err != nil {
				return rec, fmt.Errorf("timestamp: %w", err)
			}
			haveTimestamp = true
		default:
			return rec, fmt.Errorf("unexpected member %q", name)
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			more = false
		default:
			return rec, p.syntaxError("',' or '}' after a member")
		}
	}
	p.i++ // the closing '}'
	p.skipSpace()
	switch {
	case p.i < len(b):
		return rec, fmt.Errorf("data after the record's end at byte %d", p.i)
	case !haveData:
		return rec, errors.New("no data member")
	case !haveTimestamp:
		return rec, errors.New("no timestamp member")
	}
	if rec.Data, err = decodeMembers[K, V](data, unmarshal); err != nil {
		return rec, fmt.Errorf("data: %w", err)
	}
	return rec, nil
}

// recordParser reads the top level of a record.
type recordParser struct {
	b []byte
	i int
}

func (p *recordParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *recordParser) skipSpace() {
	for p.i < len(p.b) && isSpace(p.b[p.i]) {
		p.i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *recordParser) syntaxError(want string) error {
	if p.i >= len(p.b) {
		return fmt.Errorf("record ends where %s should be", want)
	}
	return fmt.Errorf("%q at byte %d where %s should be", p.b[p.i], p.i, want)
}

// name reads a member name.
func (p *recordParser) name() (string, error) {
	if p.peek() != '"' {
		return "", p.syntaxError("a member name")
	}
	end, err := stringEnd(p.b, p.i)
	if err != nil {
		return "", err
	}
	raw := p.b[p.i : end+1]
	p.i = end + 1
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	name, err := jsontext.AppendUnquote(nil, raw)
	return string(name), err
}

// number reads a JSON number, or returns nil if there is none.
func (p *recordParser) number() []byte {
	start := p.i
	for p.i < len(p.b) && bytes.IndexByte([]byte("0123456789+-.eE"), p.b[p.i]) >= 0 {
		p.i++
	}
	if num := p.b[start:p.i]; isJSONNumber(num) {
		return num
	}
	p.i = start
	return nil
}

// isJSONNumber reports whether b is exactly one JSON number.
func isJSONNumber(b []byte) bool {
	return len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') && jsontext.Value(b).IsValid()
}

// stringEnd returns the index of the quote that ends the string at b[start].
func stringEnd(b []byte, start int) (int, error) {
	for i := start + 1; ; i++ {
		n := bytes.IndexByte(b[i:], '"')
		if n < 0 {
			return 0, fmt.Errorf("string at byte %d does not end", start)
		}
		i += n
		backslashes := 0
		for j := i - 1; b[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i, nil
		}
	}
}

func kindOf(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	}
	return "invalid value"
}

// A dataObject is the record's data member, with where to cut it.
type dataObject struct {
	raw     []byte
	members int   // an upper bound: the commas between members, plus one
	cuts    []int // offsets in raw of commas between members
}

// scanObject finds the end of the object at b[start], counts its members and
// cuts it into about equal pieces, one per core. It follows only strings and
// brackets: the decoders of the pieces check everything else, and since each
// piece is decoded as an object of its own, the whole is valid JSON exactly
// when every piece is.
func scanObject(b []byte, start int) (dataObject, error) {
	pieces := min(runtime.GOMAXPROCS(0), (len(b)-start)/minPiece)
	step := (len(b) - start) / max(pieces, 1)
	obj := dataObject{members: 1}
	next := start + step
	depth := 0
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, err := stringEnd(b, i)
			if err != nil {
				return obj, err
			}
			i = end
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				obj.raw = b[start : i+1]
				return obj, nil
			}
		case ',':
			if depth == 1 {
				obj.members++
				if i >= next && len(obj.cuts) < pieces-1 {
					obj.cuts = append(obj.cuts, i-start)
					next = i + step
				}
			}
		}
	}
	return obj, fmt.Errorf("object at byte %d does not end", start)
}

// pieces returns the object cut at obj.cuts, each piece an object.
func (obj dataObject) pieces() [][]byte {
	pieces := make([][]byte, 0, len(obj.cuts)+1)
	from := 1                                             // after the '{'
	ends := append(slices.Clip(obj.cuts), len(obj.raw)-1) // the last piece ends at the '}'
	for _, cut := range ends {
		piece := make([]byte, 0, cut-from+2)
		piece = append(append(append(piece, '{'), obj.raw[from:cut]...), '}')
		pieces = append(pieces, piece)
		from = cut + 1
	}
	return pieces
}

// decodeMembers decodes the pieces of obj in parallel into one map.
func decodeMembers[K comparable, V any](obj dataObject, unmarshal func([]byte, any) error) (map[K]V, error) {
	if len(obj.cuts) == 0 {
		m := make(map[K]V, obj.members)
		return m, unmarshalPiece(unmarshal, obj.raw, &m)
	}
	pieces := obj.pieces()
	parts := make([]map[K]V, len(pieces))
	errs := make([]error, len(pieces))
	var wg sync.WaitGroup
	for i, piece := range pieces {
		size := obj.members / len(pieces)
		if i == 0 {
			size = obj.members // the others are merged into it
		}
		parts[i] = make(map[K]V, size)
		wg.Go(func() { errs[i] = unmarshalPiece(unmarshal, piece, &parts[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for _, part := range parts[1:] {
		maps.Copy(parts[0], part) // in record order: the last value of a key wins
	}
	return parts[0], nil
}

// unmarshalPiece turns a panic of the decoder into an error: it may run in a
// goroutine of its own, where a panic would end the process.
func unmarshalPiece(unmarshal func([]byte, any) error, piece []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panicked: %v", p)
		}
	}()
	return unmarshal(piece, v)
}
