package kiwicache

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"fmt"
	"reflect"
	"sync"
	"unsafe"
)

// A record's values are decoded by a plan made once per Go type by
// reflection: a decodeFunc per type that writes the value at d.i straight
// into the memory of a Go value, with no reflection per value for the
// common kinds (strings, numbers, booleans, structs, slices, pointers, any).
// The plans keep encoding/json's semantics (see decodeFuncFor), which the
// differential tests check against encoding/json itself.

// A decodeFunc decodes the value at d.i into the value of its type at p.
type decodeFunc func(d *decoder, p unsafe.Pointer) error

// A typePlan is how to decode one type. It is a pointer so that recursive
// types can refer to their own plan while it is being made.
type typePlan struct {
	decode decodeFunc
}

// typePlans caches a plan per type, as encoding/json caches its decoders:
// plans never change, so the cache is safe to share and needs no reset.
var typePlans sync.Map // reflect.Type -> *typePlan

// planFor returns the plan of t.
func planFor(t reflect.Type) *typePlan {
	if p, ok := typePlans.Load(t); ok {
		return p.(*typePlan)
	}
	b := planBuilder{made: map[reflect.Type]*typePlan{}}
	p := b.plan(t)
	for t, made := range b.made {
		typePlans.LoadOrStore(t, made)
	}
	return p
}

type planBuilder struct {
	made map[reflect.Type]*typePlan
}

func (b *planBuilder) plan(t reflect.Type) *typePlan {
	if p, ok := typePlans.Load(t); ok {
		return p.(*typePlan)
	}
	if p, ok := b.made[t]; ok {
		return p // t is being made: recursive types
	}
	p := &typePlan{}
	b.made[t] = p
	p.decode = b.decodeFuncFor(t)
	return p
}

var (
	numberType          = reflect.TypeFor[Number]()
	stringType          = reflect.TypeFor[string]()
	anyType             = reflect.TypeFor[any]()
	jsonUnmarshalerType = reflect.TypeFor[jsonUnmarshaler]()
)

// jsonUnmarshaler is encoding/json's Unmarshaler.
type jsonUnmarshaler interface {
	UnmarshalJSON([]byte) error
}

// decodeFuncFor returns how to decode t, following encoding/json: a type
// whose pointer has UnmarshalJSON or UnmarshalText decodes itself; Number
// takes a number or a string holding one; null leaves a value as it is,
// except pointers, maps, slices and interfaces, which it sets to nil; an
// object decoded into a struct fills the fields it names (exact name first,
// then a case-insensitive match) and leaves the others; repeated members
// decode into the value decoded before, as encoding/json does.
func (b *planBuilder) decodeFuncFor(t reflect.Type) decodeFunc {
	switch {
	case t == numberType:
		return decodeNumber
	case t.Kind() != reflect.Pointer && t.Name() != "" && reflect.PointerTo(t).Implements(jsonUnmarshalerType):
		return unmarshalJSONFunc(t)
	case t.Kind() != reflect.Pointer && t.Name() != "" && reflect.PointerTo(t).Implements(textUnmarshalerType):
		return unmarshalTextFunc(t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return decodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intFunc(t)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintFunc(t)
	case reflect.Float32:
		return float32Func(t)
	case reflect.Float64:
		return float64Func(t)
	case reflect.String:
		return decodeString
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return decodeAny
		}
		return interfaceFunc(t)
	case reflect.Pointer:
		return b.pointerFunc(t)
	case reflect.Struct:
		return b.structFunc(t)
	case reflect.Slice:
		return b.sliceFunc(t)
	case reflect.Array:
		return b.arrayFunc(t)
	case reflect.Map:
		return b.mapFunc(t)
	}
	return unsupportedFunc(t)
}

// isNull reads a null if there is one at d.i.
func (d *decoder) isNull() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

func decodeNumber(d *decoder, p unsafe.Pointer) error {
	switch c := d.peek(); {
	case c == '-' || c >= '0' && c <= '9':
		num, err := d.number()
		if err != nil {
			return err
		}
		*(*Number)(p) = Number(d.str(num))
		return nil
	case c == '"':
		// A string holding a number, as encoding/json accepts for Number.
		start := d.i
		s, err := d.stringBytes()
		if err != nil {
			return err
		}
		if !isJSONNumber(s) {
			return errorf("the JSON string at byte %d is not a number", start)
		}
		*(*Number)(p) = Number(d.str(s))
		return nil
	case c == 'n':
		return d.literal("null")
	}
	return d.mismatch(numberType)
}

// isJSONNumber reports whether b is exactly one JSON number.
func isJSONNumber(b []byte) bool {
	d := decoder{b: b}
	_, err := d.number()
	return err == nil && d.i == len(b)
}

// str copies a string value of the record: interned if it is short enough to
// be a code or a state that items share (names and ids rarely are).
func (d *decoder) str(b []byte) string {
	if len(b) <= maxInternedValue {
		return d.intern(b)
	}
	return d.strings.copy(b)
}

func decodeString(d *decoder, p unsafe.Pointer) error {
	switch d.peek() {
	case '"':
		s, err := d.stringBytes()
		if err != nil {
			return err
		}
		*(*string)(p) = d.str(s)
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.mismatch(stringType)
}

func decodeBool(d *decoder, p unsafe.Pointer) error {
	switch d.peek() {
	case 't':
		*(*bool)(p) = true
		return d.literal("true")
	case 'f':
		*(*bool)(p) = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.mismatch(reflect.TypeFor[bool]())
}

func decodeAny(d *decoder, p unsafe.Pointer) error {
	v, err := d.anyValue()
	if err != nil {
		return err
	}
	*(*any)(p) = v
	return nil
}

// unmarshalJSONFunc decodes a type with an UnmarshalJSON method by calling
// it with the value's bytes, null included, as encoding/json does.
func unmarshalJSONFunc(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		start := d.i
		if err := d.skipValue(); err != nil {
			return err
		}
		u := reflect.NewAt(t, p).Interface().(jsonUnmarshaler)
		if err := u.UnmarshalJSON(d.b[start:d.i:d.i]); err != nil {
			return errorf("the value at byte %d: %v.UnmarshalJSON: %v", start, t, err)
		}
		return nil
	}
}

// unmarshalTextFunc decodes a type with an UnmarshalText method: it takes a
// string; null leaves the value as it is.
func unmarshalTextFunc(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		switch d.peek() {
		case '"':
			start := d.i
			s, err := d.stringBytes()
			if err != nil {
				return err
			}
			u := reflect.NewAt(t, p).Interface().(encoding.TextUnmarshaler)
			if err := u.UnmarshalText(s[:len(s):len(s)]); err != nil {
				return errorf("the string at byte %d: %v.UnmarshalText: %v", start, t, err)
			}
			return nil
		case 'n':
			return d.literal("null")
		}
		return d.mismatch(t)
	}
}

// interfaceFunc decodes into an interface with methods: only null, which
// sets it to nil, as encoding/json.
func interfaceFunc(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		if null, err := d.isNull(); null || err != nil {
			reflect.NewAt(t, p).Elem().SetZero()
			return err
		}
		return d.mismatch(t)
	}
}

// unsupportedFunc decodes into a type JSON has no value for (channels,
// functions, complex numbers): only null, which leaves it as it is.
func unsupportedFunc(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		if null, err := d.isNull(); null || err != nil {
			return err
		}
		return d.mismatch(t)
	}
}

// pointerFunc decodes into a pointer: null sets it to nil; anything else is
// decoded into what it points to, allocated if it is nil.
func (b *planBuilder) pointerFunc(t reflect.Type) decodeFunc {
	elem := t.Elem()
	var decodeElem decodeFunc
	switch {
	case elem.Name() == "" && t.Implements(jsonUnmarshalerType):
		decodeElem = unmarshalJSONFunc(elem) // a method promoted from an embedded field
	case elem.Name() == "" && t.Implements(textUnmarshalerType):
		decodeElem = unmarshalTextFunc(elem)
	default:
		plan := b.plan(elem)
		decodeElem = func(d *decoder, p unsafe.Pointer) error { return plan.decode(d, p) }
	}
	return func(d *decoder, p unsafe.Pointer) error {
		if null, err := d.isNull(); null || err != nil {
			if err == nil {
				*(*unsafe.Pointer)(p) = nil
			}
			return err
		}
		ptr := (*unsafe.Pointer)(p)
		if *ptr == nil {
			*ptr = reflect.New(elem).UnsafePointer()
		}
		return decodeElem(d, *ptr)
	}
}

// sliceFunc decodes into a slice: an array fills it (a new slice when it
// was nil, else its elements are decoded into as encoding/json does), a
// string fills a []byte from base64, null sets it to nil.
func (b *planBuilder) sliceFunc(t reflect.Type) decodeFunc {
	elem := t.Elem()
	plan := b.plan(elem)
	size := elem.Size()
	inPlace := func(d *decoder, p unsafe.Pointer) error {
		s := reflect.NewAt(t, p).Elem()
		if elem == stringType && s.Len() > 0 {
			// The slice may be shared with other items (see
			// shareStrings), as when a member name repeats in an item:
			// decode into a copy, which keeps the elements a null
			// leaves as they were, as encoding/json does: those past
			// its length too, up to its capacity, which a longer array
			// brings back into it.
			own := reflect.MakeSlice(t, s.Cap(), s.Cap())
			reflect.Copy(own, s.Slice(0, s.Cap()))
			s.Set(own.Slice(0, s.Len()))
		}
		n, err := d.elements(func(n int) error {
			if n >= s.Cap() {
				grown := reflect.MakeSlice(t, s.Len(), max(4, 2*s.Cap()))
				reflect.Copy(grown, s)
				s.Set(grown)
			}
			if n >= s.Len() {
				s.SetLen(n + 1)
			}
			return plan.decode(d, unsafe.Add(s.UnsafePointer(), uintptr(n)*size))
		})
		if err != nil {
			return err
		}
		if n < s.Len() {
			s.SetLen(n)
		}
		if n == 0 {
			s.Set(reflect.MakeSlice(t, 0, 0))
		}
		return nil
	}
	var fresh decodeFunc // for a nil slice of a common element type
	switch elem {
	case stringType:
		fresh = decodeNewStrings
	case anyType:
		fresh = decodeNewAnys
	}
	return func(d *decoder, p unsafe.Pointer) error {
		switch d.peek() {
		case '[':
			if fresh != nil && *(*unsafe.Pointer)(p) == nil {
				return fresh(d, p)
			}
			return inPlace(d, p)
		case 'n':
			reflect.NewAt(t, p).Elem().SetZero()
			return d.literal("null")
		case '"':
			if elem.Kind() == reflect.Uint8 {
				return decodeBase64(d, reflect.NewAt(t, p).Elem())
			}
		}
		return d.mismatch(t)
	}
}

// decodeNewStrings decodes an array into a nil []string (or a type of the
// same underlying type), of exactly its length.
func decodeNewStrings(d *decoder, p unsafe.Pointer) error {
	// An array written byte for byte as the last one shared decodes to
	// it: items often repeat their tags or codes word for word.
	if last := d.lastShared.text; len(last) > 0 && d.depth < maxDepth && bytes.HasPrefix(d.b[d.i:], last) {
		d.i += len(last)
		*(*[]string)(p) = d.lastShared.elems
		return nil
	}
	start := d.i
	if empty, err := d.open(']'); empty || err != nil {
		if empty {
			*(*[]string)(p) = []string{}
		}
		return err
	}
	// The first few elements in an array on the stack, the others, if
	// any, on d.strs.
	var first [8]string
	n, base := 0, d.strs.len()
	for {
		var s string
		if err := decodeString(d, unsafe.Pointer(&s)); err != nil {
			d.strs.drop(base)
			return inElement(err, n)
		}
		if n < len(first) {
			first[n] = s
		} else {
			d.strs.push(s)
		}
		n++
		more, err := d.next(']')
		if err != nil {
			d.strs.drop(base)
			return err
		}
		if !more {
			break
		}
	}
	d.leave()
	if n <= len(first) {
		elems, shared := d.shareStrings(first[:n])
		if shared {
			d.lastShared = sharedArray{text: d.b[start:d.i], elems: elems}
		}
		*(*[]string)(p) = elems
		return nil
	}
	out := d.strSlab.make(n)
	copy(out, first[:])
	for i := len(first); i < n; i++ {
		j := base + i - len(first)
		out[i] = d.strs.chunks[j/stackChunk][j%stackChunk]
	}
	d.strs.drop(base)
	*(*[]string)(p) = out
	return nil
}

// decodeNewAnys decodes an array into a nil []any.
func decodeNewAnys(d *decoder, p unsafe.Pointer) error {
	v, err := d.anyArray()
	if err != nil {
		return err
	}
	*(*[]any)(p) = v.([]any)
	return nil
}

// decodeBase64 decodes a string into a []byte as encoding/json does.
func decodeBase64(d *decoder, s reflect.Value) error {
	start := d.i
	text, err := d.stringBytes()
	if err != nil {
		return err
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(out, text)
	if err != nil {
		return errorf("the string at byte %d is not base64: %v", start, err)
	}
	s.SetBytes(out[:n])
	return nil
}

// arrayFunc decodes into a Go array: elements past its length are skipped,
// elements missing from the JSON array are zeroed.
func (b *planBuilder) arrayFunc(t reflect.Type) decodeFunc {
	plan := b.plan(t.Elem())
	size, length := t.Elem().Size(), t.Len()
	return func(d *decoder, p unsafe.Pointer) error {
		switch d.peek() {
		case '[':
		case 'n':
			return d.literal("null")
		default:
			return d.mismatch(t)
		}
		n, err := d.elements(func(n int) error {
			if n < length {
				return plan.decode(d, unsafe.Add(p, uintptr(n)*size))
			}
			return d.skipValue()
		})
		if err != nil {
			return err
		}
		for ; n < length; n++ {
			reflect.NewAt(t.Elem(), unsafe.Add(p, uintptr(n)*size)).Elem().SetZero()
		}
		return nil
	}
}

// mapFunc decodes an object into a map (made if nil), keys as encoding/json
// reads them: with UnmarshalText if the key type has it, else as a string or
// an integer in decimal.
func (b *planBuilder) mapFunc(t reflect.Type) decodeFunc {
	kt, et := t.Key(), t.Elem()
	if kt == stringType && et == anyType {
		return decodeStringAnyMap
	}
	key := mapKeyFunc(kt)
	plan := b.plan(et)
	return func(d *decoder, p unsafe.Pointer) error {
		switch d.peek() {
		case '{':
		case 'n':
			reflect.NewAt(t, p).Elem().SetZero()
			return d.literal("null")
		default:
			return d.mismatch(t)
		}
		if key == nil {
			return d.mismatch(t) // no JSON object fits a map with such keys
		}
		m := reflect.NewAt(t, p).Elem()
		if m.IsNil() {
			m.Set(reflect.MakeMap(t))
		}
		if empty, err := d.open('}'); empty || err != nil {
			return err
		}
		elem := reflect.New(et).Elem()
		for {
			if d.peek() != '"' {
				return d.syntaxError("a member name")
			}
			start := d.i
			name, err := d.stringBytes()
			if err != nil {
				return err
			}
			k, err := key(d, name, start)
			if err != nil {
				return err
			}
			if err := d.colon(); err != nil {
				return err
			}
			elem.SetZero()
			if err := plan.decode(d, elem.Addr().UnsafePointer()); err != nil {
				return inMember(err, fmt.Append(nil, k.Interface()))
			}
			m.SetMapIndex(k, elem)
			if more, err := d.next('}'); err != nil || !more {
				d.leave()
				return err
			}
		}
	}
}

func decodeStringAnyMap(d *decoder, p unsafe.Pointer) error {
	switch d.peek() {
	case '{':
		m, err := d.anyObject(*(*map[string]any)(p))
		if err != nil {
			return err
		}
		*(*map[string]any)(p) = m
		return nil
	case 'n':
		*(*map[string]any)(p) = nil
		return d.literal("null")
	}
	return d.mismatch(reflect.TypeFor[map[string]any]())
}

// mapKeyFunc returns how to make a key of type kt from a member name, or nil
// if encoding/json has no way.
func mapKeyFunc(kt reflect.Type) func(d *decoder, name []byte, at int) (reflect.Value, error) {
	if reflect.PointerTo(kt).Implements(textUnmarshalerType) {
		return func(d *decoder, name []byte, at int) (reflect.Value, error) {
			k := reflect.New(kt)
			if err := k.Interface().(encoding.TextUnmarshaler).UnmarshalText(name); err != nil {
				return k, errorf("the member name at byte %d: %v.UnmarshalText: %v", at, kt, err)
			}
			return k.Elem(), nil
		}
	}
	switch kt.Kind() {
	case reflect.String:
		return func(d *decoder, name []byte, at int) (reflect.Value, error) {
			k := reflect.New(kt).Elem()
			k.SetString(d.str(name))
			return k, nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(d *decoder, name []byte, at int) (reflect.Value, error) {
			k := reflect.New(kt).Elem()
			n, ok := parseInt(name)
			if !ok || k.OverflowInt(n) {
				return k, errorf("the member name %q at byte %d is not a Go %v", name, at, kt)
			}
			k.SetInt(n)
			return k, nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(d *decoder, name []byte, at int) (reflect.Value, error) {
			k := reflect.New(kt).Elem()
			n, ok := parseUint(name)
			if !ok || k.OverflowUint(n) {
				return k, errorf("the member name %q at byte %d is not a Go %v", name, at, kt)
			}
			k.SetUint(n)
			return k, nil
		}
	}
	return nil
}
