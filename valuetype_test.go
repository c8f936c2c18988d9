package kiwicache

// Which value types New accepts for the JSON codec: everything JSON can
// write, and nothing that would fail at every load.

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"unsafe"
)

type recursiveRow struct {
	Name string         `json:"name"`
	Kids []recursiveRow `json:"kids"`
	Next *recursiveRow  `json:"next"`
	Map  map[string]*recursiveRow
}

// marshalsItself holds a chan but writes itself as JSON.
type marshalsItself struct{ C chan int }

func (marshalsItself) MarshalJSON() ([]byte, error) { return []byte(`"m"`), nil }

// marshalsItselfByPointer does so with a pointer receiver.
type marshalsItselfByPointer struct{ F func() }

func (*marshalsItselfByPointer) MarshalJSON() ([]byte, error) { return []byte(`"p"`), nil }

// textItself holds a func but writes itself as text.
type textItself struct{ F func() }

func (textItself) MarshalText() ([]byte, error) { return []byte("t"), nil }

type textItselfByPointer struct{ C chan int }

func (*textItselfByPointer) MarshalText() ([]byte, error) { return []byte("t"), nil }

type textKey struct{ A, B int }

func (k textKey) MarshalText() ([]byte, error) { return []byte("k"), nil }

type withHiddenChan struct {
	Name string
	c    chan int // unexported: JSON does not see it
}

type innerWithChan struct{ C chan int }

type embedsChan struct {
	innerWithChan // unexported but embedded: its field C is promoted
}

// newWith calls New with a working loader of V, so that only the value type
// can make it fail.
func newWith[V any](t *testing.T) error {
	t.Helper()
	_, rdb := newMiniredis(t)
	c, err := New("Values", rdb, LoaderFunc[string, V](func(context.Context) (map[string]V, error) { return nil, nil }), testOpts()...)
	if err == nil {
		c.Close()
	}
	return err
}

// New refuses a value type that JSON cannot write, wherever it sits in V.
func TestNewRefusesValueTypesJSONCannotWrite(t *testing.T) {
	for name, err := range map[string]error{
		"chan":                  newWith[chan int](t),
		"func":                  newWith[func()](t),
		"complex":               newWith[complex128](t),
		"complex64 in a slice":  newWith[[]complex64](t),
		"unsafe pointer":        newWith[unsafe.Pointer](t),
		"func field":            newWith[struct{ F func() }](t),
		"chan behind a pointer": newWith[*struct{ C chan int }](t),
		"func in an array":      newWith[[2]func()](t),
		"chan map values":       newWith[map[string]chan int](t),
		"struct map keys":       newWith[map[struct{ A int }]string](t),
		"float map keys":        newWith[map[float64]string](t),
		"embedded chan":         newWith[embedsChan](t),
	} {
		var e *Error
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &e) || e.Op != "new" {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// New accepts every value type that JSON can write: recursive types, types
// that write themselves (json.Marshaler, encoding.TextMarshaler, by value or
// pointer receiver) whatever they hold, maps with integer or text keys, and
// fields JSON does not see.
func TestNewAcceptsValueTypesJSONCanWrite(t *testing.T) {
	for name, err := range map[string]error{
		"recursive":                 newWith[recursiveRow](t),
		"json.Marshaler":            newWith[marshalsItself](t),
		"json.Marshaler by pointer": newWith[marshalsItselfByPointer](t),
		"TextMarshaler":             newWith[textItself](t),
		"TextMarshaler by pointer":  newWith[[]textItselfByPointer](t),
		"int map keys":              newWith[map[int64]string](t),
		"uint map keys":             newWith[map[uint8][]int](t),
		"text map keys":             newWith[map[textKey]int](t),
		"unexported chan":           newWith[withHiddenChan](t),
		"json.RawMessage":           newWith[json.RawMessage](t),
		"any":                       newWith[any](t),
		"func behind json:\"-\"": newWith[struct {
			F func() `json:"-"`
		}](t),
		"pointer to recursive in a map": newWith[map[string]*recursiveRow](t),
	} {
		if err != nil {
			t.Errorf("%s: New = %v, want it accepted", name, err)
		}
	}
}
