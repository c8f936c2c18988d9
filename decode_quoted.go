package kiwicache

import (
	"encoding"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The `,string` option of a struct field (a number, boolean or string field
// whose JSON value is a string holding its JSON text) is read as
// encoding/json reads it, rule for rule: null stays null; a string's
// content is the field's literal, checked as encoding/json checks it, which
// is not JSON's grammar exactly ("0x1p-2" is a float64, `\'` an escape).

// quotedFunc decodes a field of type t that has the `,string` option.
func (b *planBuilder) quotedFunc(t reflect.Type) decodeFunc {
	plain := b.plan(t)
	return func(d *decoder, p unsafe.Pointer) error {
		switch d.peek() {
		case 'n':
			return plain.decode(d, p) // null, as without the option
		case '"':
			start := d.i
			s, err := d.stringBytes()
			if err != nil {
				return err
			}
			item := append([]byte(nil), s...) // d.buf is reused by what follows
			return storeQuoted(d, reflect.NewAt(t, p).Elem(), item, start)
		}
		if err := d.skipValue(); err != nil {
			return err
		}
		return errorf("invalid use of the ,string option: the value before byte %d is not a string", d.i)
	}
}

// storeQuoted stores the literal item into v as encoding/json's literalStore
// does with fromQuoted set.
func storeQuoted(d *decoder, v reflect.Value, item []byte, at int) error {
	misuse := func() error {
		return errorf("invalid use of the ,string option: %q at byte %d is not a %v", item, at, v.Type())
	}
	if len(item) == 0 {
		return misuse()
	}
	isNull := item[0] == 'n'
	// What encoding/json's indirect finds: the pointer (set to nil for a
	// null), or a method that decodes, or the value itself.
	if v.Kind() == reflect.Pointer {
		if isNull {
			if string(item) != "null" {
				return misuse()
			}
			v.SetZero()
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if u, ok := v.Interface().(jsonUnmarshaler); ok {
			return callUnmarshalJSON(u, item, at, v.Type())
		}
		if u, ok := v.Interface().(encoding.TextUnmarshaler); ok {
			return storeQuotedText(u, item, at, v.Type(), misuse)
		}
		v = v.Elem()
	} else if v.Type().Name() != "" {
		if u, ok := v.Addr().Interface().(jsonUnmarshaler); ok {
			return callUnmarshalJSON(u, item, at, v.Type())
		}
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok && !isNull {
			return storeQuotedText(u, item, at, v.Type(), misuse)
		}
	}
	switch c := item[0]; c {
	case 'n':
		if string(item) != "null" {
			return misuse()
		}
		return nil // null leaves a number, boolean or string as it is
	case 't', 'f':
		if string(item) != "true" && string(item) != "false" || v.Kind() != reflect.Bool {
			return misuse()
		}
		v.SetBool(c == 't')
		return nil
	case '"':
		s, ok := unquoteLegacy(item)
		if !ok || v.Kind() != reflect.String {
			return misuse()
		}
		v.SetString(d.str(s))
		return nil
	}
	if c := item[0]; c != '-' && (c < '0' || c > '9') {
		return misuse()
	}
	s := string(item)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return numberError(item, at, v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(n) {
			return numberError(item, at, v.Type())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || v.OverflowFloat(n) {
			return numberError(item, at, v.Type())
		}
		v.SetFloat(n)
	default:
		return misuse()
	}
	return nil
}

func callUnmarshalJSON(u jsonUnmarshaler, item []byte, at int, t reflect.Type) error {
	if err := u.UnmarshalJSON(item); err != nil {
		return errorf("the value at byte %d: %v.UnmarshalJSON: %v", at, t, err)
	}
	return nil
}

func storeQuotedText(u encoding.TextUnmarshaler, item []byte, at int, t reflect.Type, misuse func() error) error {
	s, ok := unquoteLegacy(item)
	if item[0] != '"' || !ok {
		return misuse()
	}
	if err := u.UnmarshalText(s); err != nil {
		return errorf("the string at byte %d: %v.UnmarshalText: %v", at, t, err)
	}
	return nil
}

// unquoteLegacy is encoding/json's unquoteBytes: the content of a quoted
// string, which, unlike JSON, may escape a single quote; invalid UTF-8 and
// halves of surrogate pairs become U+FFFD.
func unquoteLegacy(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	out := make([]byte, 0, len(s))
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			r++
			if r >= len(s) {
				return nil, false
			}
			if c, ok := simpleEscape(s[r]); ok {
				out = append(out, c)
				r++
				continue
			}
			switch s[r] {
			case '\'': // not JSON, but encoding/json takes it here
				out = append(out, '\'')
			case 'u':
				rr := hex4(s[r+1:])
				if rr < 0 {
					return nil, false
				}
				r += 5
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if len(s)-r >= 6 && s[r] == '\\' && s[r+1] == 'u' {
						rr1 = hex4(s[r+2:])
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
						r += 6
						out = utf8.AppendRune(out, dec)
						continue
					}
					rr = utf8.RuneError
				}
				out = utf8.AppendRune(out, rr)
				continue
			default:
				return nil, false
			}
			r++
		case c == '"' || c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			out = append(out, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			out = utf8.AppendRune(out, rr)
		}
	}
	return out, true
}
