package kiwicache

import (
	"cmp"
	"encoding/binary"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// A structPlan decodes JSON objects into one struct type.
type structPlan struct {
	typ    reflect.Type
	fields []fieldPlan    // in the order of their index sequences, as encoding/json
	exact  map[string]int // name -> field, for structs with many fields
	folded map[string]int // case-folded name -> the first field with it
	// foldedLengths has bit n set if a folded name has n bytes, and all
	// bits if one has 64 or more.
	foldedLengths uint64
}

// A fieldPlan is one field that a member name can fill.
type fieldPlan struct {
	// quoted holds the bytes of a short name and a closing quote, as a
	// little-endian word under quotedMask; 0 if the name is longer.
	quoted, quotedMask uint64
	name               string
	plain              bool    // name has only plain bytes (see plainByte): it appears as itself in JSON
	offset             uintptr // from the struct, or from the last embedded pointer
	// through holds the embedded struct pointers on the way to the field
	// (followed, and allocated if nil, in order), if any.
	through []embeddedPointer
	plan    *typePlan
}

type embeddedPointer struct {
	offset   uintptr
	elem     reflect.Type
	settable bool // an unexported embedded pointer cannot be allocated
}

// exactLookupFields is the field count above which names are looked up in a
// map instead of one by one.
const exactLookupFields = 12

func (b *planBuilder) structFunc(t reflect.Type) decodeFunc {
	fields := jsonFields(t)
	s := &structPlan{typ: t, folded: map[string]int{}}
	for i, f := range fields {
		fp := fieldPlan{name: f.name, plain: isPlain(f.name)}
		if fp.plain && len(f.name) <= 7 {
			var word [8]byte
			copy(word[:], f.name+`"`)
			fp.quoted = binary.LittleEndian.Uint64(word[:])
			fp.quotedMask = 1<<(8*(len(f.name)+1)) - 1
		}
		cur := t
		for depth, index := range f.index {
			sf := cur.Field(index)
			fp.offset += sf.Offset
			if depth == len(f.index)-1 {
				fp.plan = b.plan(sf.Type)
				if f.quoted {
					fp.plan = &typePlan{decode: b.quotedFunc(sf.Type)}
				}
				break
			}
			cur = sf.Type
			if cur.Kind() == reflect.Pointer {
				cur = cur.Elem()
				fp.through = append(fp.through, embeddedPointer{offset: fp.offset, elem: cur, settable: sf.IsExported()})
				fp.offset = 0
			}
		}
		s.fields = append(s.fields, fp)
		folded := string(appendFoldedName(nil, []byte(f.name)))
		if _, ok := s.folded[folded]; !ok {
			s.folded[folded] = i
		}
		if len(folded) < 64 {
			s.foldedLengths |= 1 << len(folded)
		} else {
			s.foldedLengths = ^uint64(0)
		}
	}
	if len(s.fields) > exactLookupFields {
		s.exact = make(map[string]int, len(s.fields))
		for i, f := range s.fields {
			s.exact[f.name] = i
		}
	}
	return s.decode
}

// lookup finds the field that name fills: the field with exactly that name,
// else the first whose name matches it case-insensitively. Items of a record
// have their members in the same order, so the field after the one last
// filled (hint) is tried first.
func (s *structPlan) lookup(name []byte, hint int) int {
	if hint < len(s.fields) && s.fields[hint].name == string(name) {
		return hint
	}
	if s.exact != nil {
		if i, ok := s.exact[string(name)]; ok {
			return i
		}
	} else {
		for i := range s.fields {
			if s.fields[i].name == string(name) {
				return i
			}
		}
	}
	// Case-insensitively. An ASCII name folds to a name of its length: if no
	// field's folded name has that length, none matches (most names of
	// members that no field takes, in records with more than V holds).
	ascii := true
	for _, c := range name {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii && len(name) < 64 && s.foldedLengths&(1<<len(name)) == 0 {
		return -1
	}
	var buf [64]byte
	if i, ok := s.folded[string(appendFoldedName(buf[:0], name))]; ok {
		return i
	}
	return -1
}

// quickMatch reads the member name at d.i if it is, byte for byte, the
// name of the field after the last one filled (hint), as it is in records
// written from the same struct type; else it returns -1 and reads nothing.
func (s *structPlan) quickMatch(d *decoder, hint int) int {
	if hint >= len(s.fields) || !s.fields[hint].plain {
		return -1
	}
	f := &s.fields[hint]
	end := d.i + 1 + len(f.name)
	if f.quoted != 0 && d.i+9 <= len(d.b) {
		// A name of up to 7 bytes and its closing quote, in one word.
		if binary.LittleEndian.Uint64(d.b[d.i+1:])&f.quotedMask != f.quoted {
			return -1
		}
	} else if end >= len(d.b) || d.b[end] != '"' || string(d.b[d.i+1:end]) != f.name {
		return -1
	}
	d.i = end + 1
	return hint
}

func (s *structPlan) decode(d *decoder, p unsafe.Pointer) error {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	default:
		return d.mismatch(s.typ)
	}
	if empty, err := d.open('}'); empty || err != nil {
		return err
	}
	hint := 0
	for {
		if d.peek() != '"' {
			return d.syntaxError("a member name")
		}
		i := s.quickMatch(d, hint)
		if i < 0 {
			name, err := d.stringBytes()
			if err != nil {
				return err
			}
			i = s.lookup(name, hint)
		}
		if err := d.colon(); err != nil {
			return err
		}
		var err error
		if i < 0 {
			err = d.skipValue()
		} else {
			f := &s.fields[i]
			err = f.decode(d, p)
			hint = i + 1
		}
		if err != nil {
			return err
		}
		if more, err := d.next('}'); err != nil || !more {
			d.leave()
			return err
		}
	}
}

func (f *fieldPlan) decode(d *decoder, p unsafe.Pointer) error {
	for _, e := range f.through {
		ptr := (*unsafe.Pointer)(unsafe.Add(p, e.offset))
		if *ptr == nil {
			if !e.settable {
				return inField(errorf("cannot set the embedded pointer to unexported struct %v", e.elem), f.name)
			}
			*ptr = reflect.New(e.elem).UnsafePointer()
		}
		p = *ptr
	}
	if err := f.plan.decode(d, unsafe.Add(p, f.offset)); err != nil {
		return inField(err, f.name)
	}
	return nil
}

// A jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	name   string
	tagged bool
	index  []int
	quoted bool
}

// jsonFields returns the fields of t that JSON members fill, by encoding/json's
// rules (its typeFields): exported fields and the fields of embedded structs,
// named by their tag or their Go name; of fields with the same name the
// shallowest wins, then a tagged one; if that leaves two, neither.
func jsonFields(t reflect.Type) []jsonField {
	type embedded struct {
		typ   reflect.Type
		index []int
	}
	var fields []jsonField
	next := []embedded{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, e := range current {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := append(slices.Clip(e.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOption(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						quoted = true
					}
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := jsonField{name: name, tagged: name != "", index: index, quoted: quoted}
					if f.name == "" {
						f.name = sf.Name
					}
					fields = append(fields, f)
					if count[e.typ] > 1 {
						// Two embeddings of the same type at this depth: the
						// copy makes the name ambiguous, so neither wins.
						fields = append(fields, f)
					}
					continue
				}
				if nextCount[ft]++; nextCount[ft] == 1 {
					next = append(next, embedded{typ: ft, index: index})
				}
			}
		}
	}
	slices.SortFunc(fields, func(a, b jsonField) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return +1
		}
		return slices.Compare(a.index, b.index)
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		// The first is dominant unless the second is as deep and as tagged.
		if j-i == 1 || len(fields[i].index) < len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			out = append(out, fields[i])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b jsonField) int { return slices.Compare(a.index, b.index) })
	return out
}

func hasOption(opts, name string) bool {
	for opts != "" {
		var opt string
		opt, opts, _ = strings.Cut(opts, ",")
		if opt == name {
			return true
		}
	}
	return false
}

// isValidTag is encoding/json's rule for a tag name it uses.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// appendFoldedName folds a name as encoding/json does to match member names
// to fields case-insensitively.
func appendFoldedName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune that r folds to.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// isPlain reports whether a string needs no escape in JSON and is ASCII.
func isPlain(s string) bool {
	for i := range len(s) {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}
