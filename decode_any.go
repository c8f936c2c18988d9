package kiwicache

// Values decoded into an any are what encoding/json makes of them, except
// that a number is a Number holding its exact text (so 12345678901234567890
// and 1.1000 survive a round trip): map[string]any, []any, string, Number,
// bool or nil.

// anyValue decodes the value at d.i into an any.
func (d *decoder) anyValue() (any, error) {
	switch c := d.peek(); {
	case c == '{':
		m, err := d.anyObject(nil)
		if err != nil {
			return nil, err
		}
		return m, nil
	case c == '[':
		return d.anyArray()
	case c == '"':
		s, err := d.stringBytes()
		if err != nil {
			return nil, err
		}
		if len(s) <= maxInterned {
			return d.internAny(s), nil
		}
		return d.strings.copy(s), nil
	case c == '-' || c >= '0' && c <= '9':
		num, err := d.number()
		if err != nil {
			return nil, err
		}
		if len(num) <= maxInterned {
			return d.internNumber(num), nil
		}
		return Number(d.strings.copy(num)), nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.syntaxError("a value")
}

// anyObject decodes the object at d.i into m, or into a new map if m is nil.
func (d *decoder) anyObject(m map[string]any) (map[string]any, error) {
	if m == nil {
		m = make(map[string]any)
	}
	if empty, err := d.open('}'); empty || err != nil {
		return m, err
	}
	for {
		if d.peek() != '"' {
			return nil, d.syntaxError("a member name")
		}
		name, err := d.memberName()
		if err != nil {
			return nil, err
		}
		if err := d.colon(); err != nil {
			return nil, err
		}
		v, err := d.anyValue()
		if err != nil {
			return nil, inMember(err, []byte(name))
		}
		m[name] = v
		if more, err := d.next('}'); err != nil || !more {
			d.leave()
			return m, err
		}
	}
}

// memberName reads a member name as a string: interned, since the same
// names come back in every item.
func (d *decoder) memberName() (string, error) {
	b, err := d.stringBytes()
	if err != nil {
		return "", err
	}
	if len(b) <= maxInterned {
		return d.intern(b), nil
	}
	return d.strings.copy(b), nil
}

// anyArray decodes the array at d.i into a []any of exactly its length.
func (d *decoder) anyArray() (any, error) {
	if empty, err := d.open(']'); empty || err != nil {
		return []any{}, err
	}
	base := d.anys.len()
	for {
		v, err := d.anyValue()
		if err != nil {
			n := d.anys.len() - base
			d.anys.drop(base)
			return nil, inElement(err, n)
		}
		d.anys.push(v)
		more, err := d.next(']')
		if err != nil {
			d.anys.drop(base)
			return nil, err
		}
		if !more {
			break
		}
	}
	out := d.anys.pop(base, &d.anySlab)
	d.leave()
	return out, nil
}
