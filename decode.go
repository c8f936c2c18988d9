package kiwicache

import (
	"errors"
	"fmt"
	"time"
)

// Decoding a record is most of a reload's time. JSONCodec decodes in one
// pass over the record's bytes (see BENCHMARKS.md for the measurements
// behind the design):
//
//  1. the record's top level is read here: exactly the members data and
//     timestamp, no trailing data;
//  2. the data object's members are decoded straight into the table a
//     snapshot serves them from (table.go), or for JSONCodec.Decode into a
//     map, their values by a plan made once per type (decode_plan.go),
//     strings copied;
//  3. a large data object is cut into pieces, decoded at the same time:
//     this goroutine decodes them from the first on, straight into the
//     table, while one per other core takes them from the last back, into
//     slices of members that the table takes in as soon as they are done. A
//     piece begins after a comma that looks like one between two members;
//     whether it really is, is known only when the piece before it has been
//     decoded: that piece must end exactly at that comma, between two
//     members. A piece whose start is not confirmed so is thrown away and
//     the rest of the object is decoded in one piece, so the pieces never
//     accept anything that decoding in one piece would refuse.

// minPiece is the smallest piece of a data object worth a goroutine.
const minPiece = 32 << 10

// maxPieces bounds the pieces a data object is cut into: more balance the
// work of the cores better (one of them may be busy with something else);
// each costs a probe of its cut.
const maxPieces = 16

// A decodedRecord is a record as the decoder reads it: its items in the
// table a snapshot serves them from, or in a map for JSONCodec.Decode.
type decodedRecord[K comparable, V any] struct {
	items     table[K, V]
	data      map[K]V
	timestamp time.Time
}

// decodeJSONRecord decodes a record, its items into a table, or with toMap
// into a map; hook, if not nil, decodes the data object's members instead
// of the built-in decoder (JSONCodec.Unmarshal).
func decodeJSONRecord[K comparable, V any](b []byte, hook func([]byte, any) error, toMap bool) (rec decodedRecord[K, V], err error) {
	d := &decoder{b: b}
	d.space()
	if d.i >= len(b) {
		if len(b) == 0 {
			return rec, errors.New("not JSON: the record is empty")
		}
		return rec, errors.New("not JSON: the record is only white space")
	}
	if b[d.i] != '{' {
		return rec, notAnObject(d)
	}
	if err := d.enter(); err != nil {
		return rec, err
	}
	d.i++
	d.space()
	var haveData, haveTimestamp bool
	for more := d.peek() != '}'; more; {
		name, err := recordMember(d, &rec, hook, toMap)
		if err != nil {
			return rec, err
		}
		// A repeated member replaces the earlier one, as in Python.
		haveData = haveData || name == "data"
		haveTimestamp = haveTimestamp || name == "timestamp"
		if more, err = d.next('}'); err != nil {
			return rec, err
		}
	}
	if d.peek() == '}' { // an empty record object
		d.i++
	}
	d.space()
	switch {
	case d.i < len(b):
		return rec, fmt.Errorf("%s at byte %d after the record's end", describeByte(b, d.i), d.i)
	case !haveData:
		return rec, errors.New("no data member")
	case !haveTimestamp:
		return rec, errors.New("no timestamp member")
	}
	return rec, nil
}

// recordMember decodes one member of the record's top level into rec and
// returns its name: data or timestamp, any other is an error.
func recordMember[K comparable, V any](d *decoder, rec *decodedRecord[K, V], hook func([]byte, any) error, toMap bool) (string, error) {
	if d.peek() != '"' {
		return "", d.syntaxError("a member name")
	}
	name, err := d.stringBytes()
	if err != nil {
		return "", err
	}
	switch string(name) {
	case "data":
		if err := d.colon(); err != nil {
			return "", err
		}
		into, err := decodeData[K, V](d, hook, toMap)
		if err != nil {
			return "", inData(err)
		}
		if into.t != nil {
			rec.items = *into.t
		} else {
			rec.data = into.m
		}
	case "timestamp":
		if err := d.colon(); err != nil {
			return "", err
		}
		if rec.timestamp, err = d.timestamp(); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unexpected member %q (a record has only data and timestamp)", name)
	}
	return string(name), nil
}

// notAnObject says what a record that is not a JSON object is.
func notAnObject(d *decoder) error {
	if err := d.skipValue(); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	kind := kindAt(d.b[0])
	d.space()
	if d.i < len(d.b) {
		return fmt.Errorf("not JSON: %s at byte %d after a JSON %s", describeByte(d.b, d.i), d.i, kind)
	}
	return fmt.Errorf("the record is a JSON %s, not an object", kind)
}

// inData puts "data" in front of the path of an error in the data object.
func inData(err error) error {
	return in(err, func() string { return "data" })
}

// timestamp reads the timestamp member's value.
func (d *decoder) timestamp() (time.Time, error) {
	start := d.i
	if c := d.peek(); c == '-' || c >= '0' && c <= '9' {
		num, err := d.number()
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp: %w", err)
		}
		t, err := parseUnixSeconds(string(num))
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp: %w", err)
		}
		return t, nil
	}
	if err := d.skipValue(); err != nil {
		return time.Time{}, fmt.Errorf("timestamp: %w", err)
	}
	return time.Time{}, fmt.Errorf("timestamp is a JSON %s, not a number", kindAt(d.b[start]))
}
