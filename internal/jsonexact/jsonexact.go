// Package jsonexact compares decoded JSON values for the tests, numbers by
// their exact decimal value: "1.1000" equals "1.1", and 9007199254740993
// does not equal 9007199254740992.
package jsonexact

import (
	"fmt"
	"math/big"
	"reflect"
)

// Diff describes the first difference between got and want (nil, bool,
// string, map[string]any, []any, or a number held as a string type named
// Number, like json.Number and kiwicache.Number), or returns "".
func Diff(got, want any) string { return diff("", got, want) }

func diff(path string, got, want any) string {
	if w, ok := number(want); ok {
		g, ok := number(got)
		if !ok {
			return fmt.Sprintf("%s: got %T %v, want number %s", path, got, got, w)
		}
		gr, ok1 := new(big.Rat).SetString(g)
		wr, ok2 := new(big.Rat).SetString(w)
		if !ok1 || !ok2 || gr.Cmp(wr) != 0 {
			return fmt.Sprintf("%s: got %s, want %s", path, g, w)
		}
		return ""
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %#v, want %#v", path, got, want)
		}
		for k := range w {
			if d := diff(path+"."+k, g[k], w[k]); d != "" {
				return d
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %#v, want %#v", path, got, want)
		}
		for i := range w {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s: got %T %#v, want %T %#v", path, got, got, want, want)
		}
	}
	return ""
}

func number(v any) (string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String && rv.Type().Name() == "Number" {
		return rv.String(), true
	}
	return "", false
}
