package kiwicache

import (
	"reflect"
	"strconv"
	"unsafe"
)

// Numbers decoded into Go integers and floats: encoding/json's results (the
// text parsed by strconv), with fast paths for the numbers records are full
// of (ids, counts, prices) that read the digits once, while checking them.

// integerPart reads, from d.i without moving it, the sign and the integer
// digits of a number: whether it is negative, their value (exact for up to
// 19 digits), and where they start and end.
func (d *decoder) integerPart() (neg bool, n uint64, start, end int) {
	b, i := d.b, d.i
	neg = i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start = i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	return neg, n, start, i
}

// quickInt reads the number at d.i if it is an integer of up to 18 digits,
// the common case, and reports whether it did; else it reads nothing.
func (d *decoder) quickInt() (int64, bool) {
	neg, n, start, i := d.integerPart()
	digits := i - start
	if digits == 0 || digits > 18 || digits > 1 && d.b[start] == '0' {
		return 0, false
	}
	if i < len(d.b) && (d.b[i] == '.' || d.b[i] == 'e' || d.b[i] == 'E') {
		return 0, false // not an integer: the slow path says so
	}
	d.i = i
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// quickFloat64 reads the number at d.i if it has up to 15 digits and no
// exponent, the common case, and reports whether it did; else it reads
// nothing. See parseFloat for why the result is exact.
func (d *decoder) quickFloat64() (float64, bool) {
	neg, mant, start, i := d.integerPart()
	b := d.b
	if intDigits := i - start; intDigits == 0 || intDigits > 15 || intDigits > 1 && b[start] == '0' {
		return 0, false
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			mant = mant*10 + uint64(b[i]-'0')
			i++
			frac++
		}
		if frac == 0 {
			return 0, false
		}
	}
	if i-start-min(frac, 1) > 15 || frac >= len(float64pow10) || i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		return 0, false
	}
	d.i = i
	f := float64(mant) / float64pow10[frac]
	if neg {
		f = -f
	}
	return f, true
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
		n, ok := d.quickInt()
		if !ok {
			num, ok, err := d.numberFor(t)
			if !ok {
				return err
			}
			if n, ok = parseInt(num); !ok {
				return numberError(num, start, t)
			}
		}
		if bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
			return numberError(d.b[start:d.i], start, t)
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
// fraction or an exponent is not an integer; a sign may be '+' (in a member
// name: a JSON number has none).
func parseInt(num []byte) (int64, bool) {
	neg := len(num) > 0 && num[0] == '-'
	if neg || len(num) > 0 && num[0] == '+' {
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
		if f, ok := d.quickFloat64(); ok {
			*(*float64)(p) = f
			return nil
		}
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
