package main

import (
	"bytes"
	"strings"
	"testing"
)

// The example caches the SQLite table both ways and prints a row of each;
// the Python-shaped row goes through encoding/json with its numbers as
// numbers.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"resource:AirlinesTable: Czech Airlines (CZ, founded 1923, alliance SkyTeam)",
		`resource:AirlinesTable:recent: 2 rows, FR: {"alliance":null,"iatacode":"FR","name":"Ryanair","rating":2.5}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
