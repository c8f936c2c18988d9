package kiwicache

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the lexical half of the record decoder: white space,
// strings (unescaped, UTF-8 checked), numbers, literals and the skipping of a
// whole value, all reading a record's bytes in place. The grammar is JSON's
// (RFC 8259), with three limits that Python's reader also has in some form:
// strings must be valid UTF-8, control characters must be escaped, and values
// nest at most maxDepth deep (encoding/json's limit).

// maxDepth is how deeply arrays and objects may nest, the record itself
// counting as the first level: encoding/json's limit.
const maxDepth = 10000

// A decoder reads JSON values from b, starting at i.
//
// b is the record, or, for a piece decoded in parallel, the record up to the
// comma that ends the piece: so a value that crosses the end of its piece
// cannot be read, and positions are the record's.
type decoder struct {
	b     []byte
	i     int
	depth int
	stop  *atomic.Bool // set when the piece being decoded is no longer needed

	strings stringArena
	names   internTable
	buf     []byte        // unescaped strings
	anys    stack[any]    // elements of the arrays being decoded into any
	strs    stack[string] // elements of the []string being decoded
	anySlab slab[any]     // the []any decoded
	strSlab slab[string]  // the []string decoded
	shared  [][]string    // []string shared by the items (see shareStrings)
	// lastShared is the last array decoded to a shared []string, whose
	// text, met again, is not decoded again (see decodeNewStrings).
	lastShared sharedArray
}

// space skips white space.
func (d *decoder) space() {
	for d.i < len(d.b) && d.b[d.i] <= ' ' {
		switch d.b[d.i] {
		case ' ', '\n', '\r', '\t':
			d.i++
		default:
			return
		}
	}
}

// peek returns the byte at d.i, or 0 at the end.
func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// A decodeError is why a record is malformed: what was found, where, and the
// path to the value it was found in, which grows as the error returns
// through the values that hold it.
type decodeError struct {
	path   []string // innermost first
	elided int      // steps of the path left out after the first maxPath/4
	msg    string
}

// maxPath is the most steps of a path an error keeps: for a value nested
// 10,000 deep, the innermost and the outermost ones.
const maxPath = 16

func (e *decodeError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
		if i == maxPath/4 && e.elided > 0 {
			fmt.Fprintf(&b, "…(%d more)…", e.elided)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

// in adds a step, outward, to err's path.
func in(err error, step func() string) error {
	e, ok := err.(*decodeError)
	switch {
	case !ok:
	case len(e.path) < maxPath:
		e.path = append(e.path, step())
	default:
		copy(e.path[maxPath/4:], e.path[maxPath/4+1:])
		e.path[maxPath-1] = step()
		e.elided++
	}
	return err
}

// inMember adds the member name to err's path.
func inMember(err error, name []byte) error {
	return in(err, func() string { return "[" + strconv.Quote(string(name)) + "]" })
}

// inField adds a struct field to err's path.
func inField(err error, name string) error {
	return in(err, func() string { return "." + name })
}

// inElement adds an array index to err's path.
func inElement(err error, i int) error {
	return in(err, func() string { return "[" + strconv.Itoa(i) + "]" })
}

func errorf(format string, args ...any) error {
	return &decodeError{msg: fmt.Sprintf(format, args...)}
}

// syntaxError says what was found at d.i where want should be.
func (d *decoder) syntaxError(want string) error {
	if d.i >= len(d.b) {
		return errorf("the record ends at byte %d where %s should be", d.i, want)
	}
	return errorf("%s at byte %d where %s should be", describeByte(d.b, d.i), d.i, want)
}

// describeByte names the character at b[i] for an error message: a word
// where a literal was expected ("nope"), the character, or the byte's value.
func describeByte(b []byte, i int) string {
	c := b[i]
	switch {
	case c >= 'a' && c <= 'z':
		end := i
		for end < len(b) && end-i < 20 && b[end] >= 'a' && b[end] <= 'z' {
			end++
		}
		if end-i > 1 {
			return fmt.Sprintf("invalid literal %q", b[i:end])
		}
		return fmt.Sprintf("invalid character %q", c)
	case c >= 0x20 && c < 0x7f:
		return fmt.Sprintf("invalid character %q", c)
	}
	return fmt.Sprintf("invalid byte 0x%02x", c)
}

// kindAt names the JSON value that starts with c, for type errors.
func kindAt(c byte) string {
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

// literal reads the literal word (true, false or null) at d.i.
func (d *decoder) literal(word string) error {
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return nil
	}
	if rest := d.b[d.i:]; len(rest) < len(word) && string(rest) == word[:len(rest)] {
		d.i = len(d.b) // cut short
	}
	return d.syntaxError("a value")
}

// Errors at the end of d.b leave d.i there: a probe tells by it that it ran
// out of bytes rather than into something that is not JSON.

// endError is the error of a string that starts at start and does not end.
func (d *decoder) endError(start int) error {
	d.i = len(d.b)
	return errorf("the string at byte %d does not end", start)
}

// plainByte tells the bytes that a string holds as they are: printable
// ASCII other than '"' and '\\'. The others need a look: the end of the
// string, an escape, a control character (not allowed) or the first byte of
// a multi-byte UTF-8 sequence (checked).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the 8 bytes of w are all plain: long strings
// are read 8 bytes at a time.
func plainWord(w uint64) bool {
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	control := (w - ones*0x20) & ^w & highs // some byte is below 0x20 (or has its high bit set)
	return (hasZero(w^(ones*'"')) | hasZero(w^(ones*'\\')) | control | w&highs) == 0
}

// stringBytes reads the string at d.i and returns its content: a slice of
// the record when it has no escapes, else unescaped into d.buf (valid until
// the next call). Invalid UTF-8, a raw control character or a bad escape is
// an error.
func (d *decoder) stringBytes() ([]byte, error) {
	b := d.b
	start := d.i + 1
	i := start
	// Most strings are short: byte by byte; the rest 8 bytes at a time.
	scanned := min(len(b), start+16)
	for i < scanned && plainByte[b[i]] {
		i++
	}
	for {
		if i == scanned {
			for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
				i += 8
			}
			for i < len(b) && plainByte[b[i]] {
				i++
			}
		}
		if i >= len(b) {
			return nil, d.endError(d.i)
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return b[start:i], nil
		case c == '\\':
			return d.unescape(start, i)
		case c < 0x20:
			return nil, errorf("control character 0x%02x in the string at byte %d (it must be escaped)", c, i)
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, errorf("invalid UTF-8 in the string at byte %d", i)
			}
			i += size
			scanned = i
		}
	}
}

// unescape finishes reading the string whose content starts at start and
// whose first backslash is at i.
func (d *decoder) unescape(start, i int) ([]byte, error) {
	b := d.b
	out := append(d.buf[:0], b[start:i]...)
	defer func() { d.buf = out[:0] }()
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return out, nil
		case c == '\\':
			if i+1 >= len(b) {
				return nil, d.endError(start - 1)
			}
			if c, ok := simpleEscape(b[i+1]); ok {
				out = append(out, c)
				i += 2
				continue
			}
			switch e := b[i+1]; e {
			case 'u':
				r := hex4(b[i+2:])
				if r < 0 {
					if len(b)-i < 6 {
						return nil, d.endError(start - 1)
					}
					return nil, errorf("invalid \\u escape at byte %d", i)
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair of escapes for one character, or, as
					// encoding/json reads it, U+FFFD for half of one.
					if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(b[i+2:])); pair != utf8.RuneError {
							r = pair
							i += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, errorf("invalid escape '\\%c' at byte %d", e, i)
			}
		case c < 0x20:
			return nil, errorf("control character 0x%02x in the string at byte %d (it must be escaped)", c, i)
		case c < 0x80:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, errorf("invalid UTF-8 in the string at byte %d", i)
			}
			out = append(out, b[i:i+size]...)
			i += size
		}
	}
	return nil, d.endError(start - 1)
}

// simpleEscape returns the byte that \e stands for, for the escapes of one
// byte (all but \u).
func simpleEscape(e byte) (byte, bool) {
	switch e {
	case '"', '\\', '/':
		return e, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// hex4 reads four hex digits, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// skipString reads past the string at d.i, checking it as stringBytes does.
func (d *decoder) skipString() error {
	_, err := d.stringBytes()
	return err
}

// number reads the number at d.i and returns its text.
func (d *decoder) number() ([]byte, error) {
	b := d.b
	start := d.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return nil, d.syntaxError("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.syntaxError("a digit after the decimal point")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.syntaxError("a digit of the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return b[start:i], nil
}

// enter and leave count the nesting of arrays and objects.
func (d *decoder) enter() error {
	if d.depth++; d.depth > maxDepth {
		return errorf("values nest deeper than %d levels at byte %d", maxDepth, d.i)
	}
	return nil
}

func (d *decoder) leave() { d.depth-- }

// skipValue reads past the value at d.i, checking it.
func (d *decoder) skipValue() error {
	switch c := d.peek(); {
	case c == '{':
		return d.skipObject(nil)
	case c == '[':
		return d.skipArray()
	case c == '"':
		return d.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, err := d.number()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.syntaxError("a value")
}

// open reads the '{' or '[' at d.i and the space after it, a level deeper;
// empty reports whether close follows at once (read too, a level up again).
func (d *decoder) open(close byte) (empty bool, err error) {
	if err := d.enter(); err != nil {
		return false, err
	}
	d.i++
	d.space()
	if d.peek() == close {
		d.i++
		d.leave()
		return true, nil
	}
	return false, nil
}

// elements reads the array at d.i, calling each with the index of each
// element, with d.i at it; it returns how many there were.
func (d *decoder) elements(each func(n int) error) (int, error) {
	if empty, err := d.open(']'); empty || err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		if err := each(n); err != nil {
			return n, inElement(err, n)
		}
		more, err := d.next(']')
		if err != nil {
			return n + 1, err
		}
		if !more {
			d.leave()
			return n + 1, nil
		}
	}
}

// skipObject reads past the object at d.i, checking it; comma, if not nil,
// is called with the offset of each comma between its members.
func (d *decoder) skipObject(comma func(int)) error {
	if empty, err := d.open('}'); empty || err != nil {
		return err
	}
	for {
		if d.peek() != '"' {
			return d.syntaxError("a member name")
		}
		if err := d.skipString(); err != nil {
			return err
		}
		if err := d.colon(); err != nil {
			return err
		}
		if err := d.skipValue(); err != nil {
			return err
		}
		if comma != nil {
			if d.space(); d.peek() == ',' {
				comma(d.i)
			}
		}
		if more, err := d.next('}'); err != nil || !more {
			d.leave()
			return err
		}
	}
}

func (d *decoder) skipArray() error {
	if empty, err := d.open(']'); empty || err != nil {
		return err
	}
	for {
		if err := d.skipValue(); err != nil {
			return err
		}
		if more, err := d.next(']'); err != nil || !more {
			d.leave()
			return err
		}
	}
}

// colon reads the ':' after a member name and the space around it.
func (d *decoder) colon() error {
	if i := d.i; i+2 < len(d.b) && d.b[i] == ':' && d.b[i+1] == ' ' && d.b[i+2] > ' ' {
		d.i += 2 // as Python writes it
		return nil
	}
	d.space()
	if d.peek() != ':' {
		return d.syntaxError("':' after a member name")
	}
	d.i++
	d.space()
	return nil
}

// next reads what follows a value in an object or array closed by end:
// a comma (more is true, and d.i is at the next value) or end.
func (d *decoder) next(end byte) (more bool, err error) {
	if i := d.i; i+2 < len(d.b) && d.b[i] == ',' && d.b[i+1] == ' ' && d.b[i+2] > ' ' {
		d.i += 2 // as Python writes it
		return true, nil
	}
	d.space()
	switch d.peek() {
	case ',':
		d.i++
		d.space()
		return true, nil
	case end:
		d.i++
		return false, nil
	}
	if end == '}' {
		return false, d.syntaxError("',' or '}' after a member")
	}
	return false, d.syntaxError("',' or ']' after an element")
}

// mismatch is the error for a value of the wrong JSON kind for t: the value
// is read first, so that a syntax error in it is reported as such.
func (d *decoder) mismatch(t fmt.Stringer) error {
	start := d.i
	kind := kindAt(d.peek())
	if err := d.skipValue(); err != nil {
		return err
	}
	return errorf("cannot decode the JSON %s at byte %d into a Go %v", kind, start, t)
}
