package kiwicache

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// ParseName splits NAME[:SUFFIX] (with or without "resource:") and accepts
// what New accepts.
func TestParseNameAccepts(t *testing.T) {
	for id, want := range map[string][2]string{
		"Airlines":                 {"Airlines", ""},
		"Airlines:backup":          {"Airlines", "backup"},
		"resource:Airlines":        {"Airlines", ""},
		"resource:Airlines:EU":     {"Airlines", "EU"},
		"CurrencyRates:EUR:2024":   {"CurrencyRates", "EUR:2024"}, // a suffix may hold ':'
		"Ünïcode:日本":               {"Ünïcode", "日本"},
		"a.b-c_d/e@f":              {"a.b-c_d/e@f", ""},
		"resource:resource:Nested": {"resource", "Nested"}, // one prefix is dropped, not two
	} {
		name, suffix, err := ParseName(id)
		if err != nil || name != want[0] || suffix != want[1] {
			t.Errorf("ParseName(%q) = %q, %q, %v; want %q, %q", id, name, suffix, err, want[0], want[1])
		}
	}
}

// ParseName refuses, saying why, the names and suffixes that would make a key
// ambiguous or print as something else: empty parts, invalid UTF-8, spaces
// of every kind, control and format characters, glob characters. The same
// parts are refused by New, through WithSuffix for the suffix.
func TestParseNameRefuses(t *testing.T) {
	for id, why := range map[string]string{
		"":             "name is empty",
		":EU":          "name is empty",
		"Products:":    "suffix is empty",
		"resource:":    "name is empty",
		"Weird name":   `name "Weird name" has ' ' at byte 5: no spaces`,
		"A\tB":         "no spaces",
		"A\u00a0B":     "no spaces",                                // no-break space
		"A\u0085":      "no spaces",                                // NEL, a space to unicode.IsSpace
		"A\u2028":      "no spaces",                                // line separator
		"A\u009b":      "no control, format or unprintable",        // CSI
		"A\u202eB":     "no control, format or unprintable",        // right-to-left override
		"A\u200b":      "no control, format or unprintable",        // zero-width space (Cf)
		"A\x1b[2J":     `has '\x1b' at byte 1: no control, format`, // ESC
		"A\x7f":        "no control",                               // DEL
		"A\xff":        "not valid UTF-8",
		"A:B\xfe":      `suffix "B\xfe" is not valid UTF-8`,
		"A*":           "no glob characters",
		"A?":           "no glob characters",
		"A[1]":         "no glob characters",
		`A\B`:          "no glob characters",
		"A:B C":        `suffix "B C" has ' ' at byte 1`,
		"A:\u202eEU":   `suffix "\u202eEU"`,
		"A:\U000E0001": "no control, format or unprintable", // a tag character beyond the BMP
	} {
		name, suffix, err := ParseName(id)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseName(%q) = %q, %q, %v; want an error with %q", id, name, suffix, err, why)
		}
		if err != nil && (name != "" || suffix != "") {
			t.Errorf("ParseName(%q) returned %q, %q with its error", id, name, suffix)
		}
	}
}

// New and the CLI share ParseName's rule: every name ParseName refuses, New
// refuses with ErrInvalidConfig.
func TestParseNameMatchesNew(t *testing.T) {
	_, rdb := newMiniredis(t)
	loader := LoaderFunc[string, int](func(context.Context) (map[string]int, error) { return map[string]int{"a": 1}, nil })
	for _, id := range []string{"Weird name", "A\u202eB", "A\xff", "A*", "A\u0085", ""} {
		if _, _, err := ParseName(id); err == nil {
			t.Fatalf("ParseName(%q) accepted it", id)
		}
		if _, err := New(id, rdb, loader, WithRegistry(nil)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%q) accepted a name that ParseName refuses", id)
		}
		if _, err := New("Ok", rdb, loader, WithSuffix(id), WithRegistry(nil)); !errors.Is(err, ErrInvalidConfig) && id != "" {
			t.Errorf("WithSuffix(%q) accepted a suffix that ParseName refuses", id)
		}
	}
}
