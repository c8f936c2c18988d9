package kiwicache

import (
	"encoding"
	"encoding/base64"
	"fmt"
	"reflect"
	"strconv"
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

// str copies a string of the record: interned if short.
func (d *decoder) str(b []byte) string {
	if len(b) <= maxInterned {
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

// numberFor reads the number at d.i for a value of type t; ok is false for a
// null, which leaves the value as it is.
func (d *decoder) numberFor(t reflect.Type) (num []byte, ok bool, err error) {
	switch c := d.peek(); {
	case c == '-' || c >= '0' && c <= '9':
		num, err := d.number()
		return num, err == nil, err
	case c == 'n':
		return nil, false, d.literal("null")
	}
	return nil, false, d.mismatch(t)
}

func numberError(num []byte, at int, t reflect.Type) error {
	return errorf("cannot decode the JSON number %s at byte %d into a Go %v", num, at, t)
}

func intFunc(t reflect.Type) decodeFunc {
	bits := t.Bits()
	return func(d *decoder, p unsafe.Pointer) error {
		start := d.i
		num, ok, err := d.numberFor(t)
		if !ok {
			return err
		}
		n, ok := parseInt(num)
		if !ok || bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
			return numberError(num, start, t)
		}
		switch bits {
		case 8:
			*(*int8)(p) = int8(n)
		case 16:
			*(*int16)(p) = int16(n)
		case 32:
			*(*int32)(p) = int32(n)
		default:
			*(*int64)(p) = n
		}
		return nil
	}
}

func uintFunc(t reflect.Type) decodeFunc {
	bits := t.Bits()
	return func(d *decoder, p unsafe.Pointer) error {
		start := d.i
		num, ok, err := d.numberFor(t)
		if !ok {
			return err
		}
		n, ok := parseUint(num)
		if !ok || bits < 64 && n >= 1<<bits {
			return numberError(num, start, t)
		}
		switch bits {
		case 8:
			*(*uint8)(p) = uint8(n)
		case 16:
			*(*uint16)(p) = uint16(n)
		case 32:
			*(*uint32)(p) = uint32(n)
		default:
			*(*uint64)(p) = n
		}
		return nil
	}
}

// parseInt parses an integer as strconv.ParseInt(num, 10, 64) does: a
// fraction or an exponent is not an integer.
func parseInt(num []byte) (int64, bool) {
	neg := len(num) > 0 && num[0] == '-'
	if neg {
		num = num[1:]
	}
	u, ok := parseUint(num)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// parseUint parses an unsigned integer as strconv.ParseUint(num, 10, 64).
func parseUint(num []byte) (uint64, bool) {
	if len(num) == 0 {
		return 0, false
	}
	var n uint64
	for i, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		if i >= 19 { // more than 19 digits may overflow: let strconv say
			n, err := strconv.ParseUint(unsafe.String(&num[0], len(num)), 10, 64)
			return n, err == nil
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func float64Func(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		start := d.i
		num, ok, err := d.numberFor(t)
		if !ok {
			return err
		}
		f, ok := parseFloat(num, 64)
		if !ok {
			return numberError(num, start, t)
		}
		*(*float64)(p) = f
		return nil
	}
}

func float32Func(t reflect.Type) decodeFunc {
	return func(d *decoder, p unsafe.Pointer) error {
		start := d.i
		num, ok, err := d.numberFor(t)
		if !ok {
			return err
		}
		f, ok := parseFloat(num, 32)
		if !ok {
			return numberError(num, start, t)
		}
		*(*float32)(p) = float32(f)
		return nil
	}
}

// float64pow10 and float32pow10 are the powers of ten that the types hold
// exactly.
var (
	float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
		1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
	float32pow10 = [...]float32{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}
)

// parseFloat parses a JSON number as strconv.ParseFloat(num, bits) does,
// with its result: out of range is not ok. Numbers of up to 15 digits
// without an exponent (prices, ratios, coordinates) are computed directly:
// the digits and the power of ten are exact in a float64, so one division,
// correctly rounded, is the correctly rounded value.
func parseFloat(num []byte, bits int) (float64, bool) {
	i, neg := 0, false
	if num[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, exp := 0, 0
	for ; i < len(num) && num[i] >= '0' && num[i] <= '9'; i++ {
		mant = mant*10 + uint64(num[i]-'0')
		digits++
	}
	if i < len(num) && num[i] == '.' {
		for i++; i < len(num) && num[i] >= '0' && num[i] <= '9'; i++ {
			mant = mant*10 + uint64(num[i]-'0')
			digits++
			exp--
		}
	}
	var f float64
	switch {
	case i < len(num) || digits > 15: // an exponent, or too many digits
		return parseFloatSlow(num, bits)
	case bits == 64 && -exp < len(float64pow10):
		f = float64(mant) / float64pow10[-exp]
	case bits == 32 && mant < 1<<24 && -exp < len(float32pow10):
		f = float64(float32(mant) / float32pow10[-exp])
	default:
		return parseFloatSlow(num, bits)
	}
	if neg {
		f = -f
	}
	return f, true
}

func parseFloatSlow(num []byte, bits int) (float64, bool) {
	// strconv does not keep its argument (its errors hold a copy), so it
	// may read the record's bytes in place.
	f, err := strconv.ParseFloat(unsafe.String(&num[0], len(num)), bits)
	return f, err == nil
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
		if err := d.enter(); err != nil {
			return err
		}
		d.i++
		d.space()
		s := reflect.NewAt(t, p).Elem()
		n := 0
		if d.peek() != ']' {
			for {
				if n >= s.Cap() {
					grown := reflect.MakeSlice(t, s.Len(), max(4, 2*s.Cap()))
					reflect.Copy(grown, s)
					s.Set(grown)
				}
				if n >= s.Len() {
					s.SetLen(n + 1)
				}
				if err := plan.decode(d, unsafe.Add(s.UnsafePointer(), uintptr(n)*size)); err != nil {
					return inElement(err, n)
				}
				n++
				more, err := d.next(']')
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		} else {
			d.i++
		}
		d.leave()
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
	if err := d.enter(); err != nil {
		return err
	}
	d.i++
	d.space()
	base := d.strs.len()
	if d.peek() != ']' {
		for {
			var s string
			if err := decodeString(d, unsafe.Pointer(&s)); err != nil {
				n := d.strs.len() - base
				d.strs.drop(base)
				return inElement(err, n)
			}
			d.strs.push(s)
			more, err := d.next(']')
			if err != nil {
				d.strs.drop(base)
				return err
			}
			if !more {
				break
			}
		}
	} else {
		d.i++
	}
	d.leave()
	out := d.strs.pop(base)
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
		if err := d.enter(); err != nil {
			return err
		}
		d.i++
		d.space()
		n := 0
		if d.peek() != ']' {
			for {
				var err error
				if n < length {
					err = plan.decode(d, unsafe.Add(p, uintptr(n)*size))
				} else {
					err = d.skipValue()
				}
				if err != nil {
					return inElement(err, n)
				}
				n++
				more, err := d.next(']')
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		} else {
			d.i++
		}
		d.leave()
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
		if err := d.enter(); err != nil {
			return err
		}
		d.i++
		d.space()
		m := reflect.NewAt(t, p).Elem()
		if m.IsNil() {
			m.Set(reflect.MakeMap(t))
		}
		if d.peek() == '}' {
			d.i++
			d.leave()
			return nil
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
