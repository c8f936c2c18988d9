package kiwicache

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseName splits a cache's identity NAME or NAME:SUFFIX (as in the record
// key resource:NAME[:SUFFIX]) and checks both parts as New does. A leading
// "resource:" is accepted and dropped.
func ParseName(id string) (name, suffix string, err error) {
	id = strings.TrimPrefix(id, "resource:")
	name, suffix, hasSuffix := strings.Cut(id, ":")
	if err := checkKeyPart("name", name); err != nil {
		return "", "", err
	}
	if hasSuffix {
		if err := checkKeyPart("suffix", suffix); err != nil {
			return "", "", err
		}
	}
	return name, suffix, nil
}

// checkKeyPart refuses NAME and SUFFIX values that would make the record or
// lock key ambiguous, address another cache's keys, or print as something
// else: empty, invalid UTF-8, spaces, control and format characters (such as
// U+202E, which reverses the text after it), ':' in a NAME, and the glob
// characters of SCAN patterns.
func checkKeyPart(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for i, r := range s {
		var why string
		switch {
		case r == ':' && what == "name":
			why = "':' separates NAME from SUFFIX (use WithSuffix)"
		case unicode.IsSpace(r) || r == '\u00a0':
			why = "no spaces"
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r):
			why = "no control, format or unprintable characters"
		case strings.ContainsRune(`*?[]\`, r):
			why = "no glob characters"
		}
		if why != "" {
			return fmt.Errorf("%s %q has %q at byte %d: %s", what, s, r, i, why)
		}
	}
	return nil
}
