package main

import (
	"cmp"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keys of a dataset and Redis key names are data from anyone who can write to
// Redis: printed raw, an ESC starts a terminal escape sequence, BEL rings, CR
// overwrites the line, U+202E reverses it. Everything this command prints
// goes through display, escapeJSON or terminalSafe.

// display returns s as it is when a terminal shows it faithfully, or
// Go-quoted ("a\x1b[2Jb") when it holds anything else: a control or format
// character, another unprintable rune, invalid UTF-8, or a leading or
// trailing space. A key that starts with '"' is quoted too, so that a quoted
// key is never mistaken for a plain one.
func display(s string) string {
	if s != "" && s[0] != '"' && s[0] != ' ' && s[len(s)-1] != ' ' && utf8.ValidString(s) &&
		!strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// terminalSafe writes text with every unprintable rune but newline and tab
// escaped as Go escapes it (\x1b, \u202e); invalid UTF-8 as \x.. bytes.
type terminalSafe struct{ w io.Writer }

func (t terminalSafe) Write(p []byte) (int, error) {
	var out []byte
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == '\n' || r == '\t' || r != utf8.RuneError && unicode.IsPrint(r):
			out = append(out, p[i:i+size]...)
		case r == utf8.RuneError && size == 1:
			out = append(out, `\x`...)
			out = strconv.AppendUint(out, uint64(p[i])>>4, 16)
			out = strconv.AppendUint(out, uint64(p[i])&15, 16)
		default:
			q := strconv.QuoteRune(r)
			out = append(out, q[1:len(q)-1]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// escapeJSON rewrites, inside the strings of the JSON text b, every rune
// that display would quote (controls, DEL, C1 controls such as U+009B,
// format characters such as U+202E) as a \u escape, and invalid UTF-8 as
// \ufffd: the same JSON value, safe to print.
func escapeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case !inString:
			inString = c == '"'
			out = append(out, c)
			i++
		case c == '\\' && i+1 < len(b):
			out = append(out, c, b[i+1])
			i += 2
		case c == '"':
			inString = false
			out = append(out, c)
			i++
		case c < utf8.RuneSelf:
			if c < 0x20 || c == 0x7f {
				out = appendUnicodeEscape(out, rune(c))
			} else {
				out = append(out, c)
			}
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if !unicode.IsPrint(r) || r == utf8.RuneError && size == 1 {
				out = appendUnicodeEscape(out, r)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return out
}

// appendUnicodeEscape appends r as JSON's \uXXXX, a surrogate pair beyond
// the Basic Multilingual Plane.
func appendUnicodeEscape(b []byte, r rune) []byte {
	if r > 0xffff {
		r -= 0x10000
		b = appendUnicodeEscape(b, 0xd800+(r>>10))
		return appendUnicodeEscape(b, 0xdc00+(r&0x3ff))
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}

// compareKeys orders dataset keys for people: integers (an optional '-' and
// decimal digits, of any length) by value and before every other key, which
// follow in byte order. Python's integer keys arrive as such strings.
func compareKeys(a, b string) int {
	aInt, bInt := isIntegerKey(a), isIntegerKey(b)
	switch {
	case aInt && bInt:
		return cmp.Or(compareIntegers(a, b), strings.Compare(a, b)) // "007" after "7"
	case aInt:
		return -1
	case bInt:
		return 1
	}
	return strings.Compare(a, b)
}

func isIntegerKey(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	return digits != "" && strings.Trim(digits, "0123456789") == ""
}

// compareIntegers compares two integer keys by value, without a size limit.
func compareIntegers(a, b string) int {
	negA, negB := a[0] == '-', b[0] == '-'
	ma := strings.TrimLeft(strings.TrimPrefix(a, "-"), "0")
	mb := strings.TrimLeft(strings.TrimPrefix(b, "-"), "0")
	negA, negB = negA && ma != "", negB && mb != "" // -0 is 0
	if negA != negB {
		if negA {
			return -1
		}
		return 1
	}
	c := cmp.Or(cmp.Compare(len(ma), len(mb)), strings.Compare(ma, mb))
	if negA {
		return -c
	}
	return c
}
