package kiwicache

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// newCodec returns the Codec that WithCodec gave, or the JSON codec after
// checking that it can write K and V.
func newCodec[K comparable, V any](codec any) (Codec[K, V], error) {
	if codec == nil {
		if err := checkKeyType[K](); err != nil {
			return nil, err
		}
		return JSONCodec[K, V]{}, checkJSONValueType(reflect.TypeFor[V](), map[reflect.Type]bool{})
	}
	c, ok := codec.(Codec[K, V])
	if !ok {
		var want *Codec[K, V]
		return nil, fmt.Errorf("WithCodec: %T is not a %v", codec, reflect.TypeOf(want).Elem())
	}
	return c, nil
}

// checkJSONValueType refuses a value type that JSON cannot hold at all (a
// chan, a func, a complex number, anywhere in t but behind an interface or a
// json:"-" field), so that New fails rather than every load.
func checkJSONValueType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] || t.Implements(jsonMarshalerV1Type) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(jsonMarshalerV1Type) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("value type %v cannot be written as JSON", t)
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkJSONValueType(t.Elem(), seen)
	case reflect.Map:
		if err := checkJSONKeyKind(t.Key()); err != nil {
			return err
		}
		return checkJSONValueType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous || f.Tag.Get("json") == "-" {
				continue
			}
			if err := checkJSONValueType(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
	}
	return nil
}

func checkJSONKeyKind(t reflect.Type) error {
	if t.Implements(textMarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return nil
	}
	return fmt.Errorf("map key type %v cannot be written as JSON", t)
}

var jsonMarshalerV1Type = reflect.TypeFor[json.Marshaler]()
