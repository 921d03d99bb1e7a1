package dubbo

import "fmt"

// skip skips one Hessian 2 value of any type at p and returns the position
// after it. Class definitions met on the way are recorded, so that later
// objects know their field count; refs are checked against the values that
// can be referenced so far.
func (r *reader) skip(p int) (int, error) {
	if r.depth >= maxDepth {
		return p, r.fail(p, "values nested too deeply")
	}
	r.depth++
	p, err := r.skipValue(p)
	r.depth--
	return p, err
}

func (r *reader) skipValue(p int) (int, error) {
	for {
		if err := r.need(p, 1); err != nil {
			return p, err
		}
		t := r.b[p]
		if t == 'C' { // a class definition prefixes the value that uses it
			var err error
			if p, err = r.classDef(p); err != nil {
				return p, err
			}
			continue
		}
		if n := fixedSize(t); n > 0 {
			if err := r.need(p, n); err != nil {
				return p, err
			}
			return p + n, nil
		}
		switch {
		case isStringTag(t):
			return r.skipString(p)
		case (t >= 0x20 && t <= 0x2f) || (t >= 0x34 && t <= 0x37) || t == 'A' || t == 'B':
			return r.skipBinary(p)
		case t == 0x51: // ref
			i, q, err := r.count(p + 1)
			if err == nil && i >= r.refs {
				err = r.fail(p, fmt.Sprintf("ref %d to one of %d values", i, r.refs))
			}
			return q, err
		case (t >= 0x55 && t <= 0x58) || t >= 0x70 && t <= 0x7f:
			return r.skipList(p)
		case t == 'M' || t == 'H':
			return r.skipMap(p)
		case t == 'O' || (t >= 0x60 && t <= 0x6f):
			return r.skipObject(p)
		}
		return p, r.fail(p, fmt.Sprintf("tag 0x%02x does not start a value", t))
	}
}

// fixedSize returns the encoded size of the values whose size the tag
// alone gives (null, booleans, numbers, dates), or 0.
func fixedSize(t byte) int {
	switch {
	case t == 'N' || t == 'T' || t == 'F':
		return 1
	case t >= 0x80 && t <= 0xbf, t >= 0xd8 && t <= 0xef: // direct int, direct long
		return 1
	case t >= 0xc0 && t <= 0xcf, t >= 0xf0: // byte int, byte long
		return 2
	case t >= 0xd0 && t <= 0xd7, t >= 0x38 && t <= 0x3f: // short int, short long
		return 3
	case t == 'I' || t == 0x59 || t == 0x4b: // int, long as int, date in minutes
		return 5
	case t == 'L' || t == 'D' || t == 0x4a: // long, double, date in ms
		return 9
	case t == 0x5b || t == 0x5c: // double 0.0, 1.0
		return 1
	case t == 0x5d:
		return 2
	case t == 0x5e:
		return 3
	case t == 0x5f:
		return 5
	}
	return 0
}

// skipList skips a list in any of its six forms.
func (r *reader) skipList(p int) (int, error) {
	t := r.b[p]
	r.refs++
	p++
	var err error
	n := -1 // -1: values up to 'Z'
	switch {
	case t == 0x55: // variable length, typed
		p, err = r.skipType(p)
	case t == 'V': // fixed length, typed
		if p, err = r.skipType(p); err == nil {
			n, p, err = r.count(p)
		}
	case t == 0x57: // variable length, untyped
	case t == 0x58: // fixed length, untyped
		n, p, err = r.count(p)
	case t >= 0x70 && t <= 0x77: // short fixed length, typed
		n = int(t - 0x70)
		p, err = r.skipType(p)
	default: // 0x78-0x7f: short fixed length, untyped
		n = int(t - 0x78)
	}
	if err != nil {
		return p, err
	}
	if n < 0 {
		return r.skipUntilEnd(p, 1)
	}
	for ; n > 0; n-- {
		if p, err = r.skip(p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// skipMap skips a typed ('M') or untyped ('H') map.
func (r *reader) skipMap(p int) (int, error) {
	r.refs++
	var err error
	if r.b[p] == 'M' {
		if p, err = r.skipType(p + 1); err != nil {
			return p, err
		}
	} else {
		p++
	}
	return r.skipUntilEnd(p, 2)
}

// skipUntilEnd skips values up to and including the 'Z' that ends a
// variable-length list (per = 1) or a map (per = 2: keys and values).
func (r *reader) skipUntilEnd(p, per int) (int, error) {
	for {
		if err := r.need(p, 1); err != nil {
			return p, err
		}
		if r.b[p] == 'Z' {
			return p + 1, nil
		}
		for i := 0; i < per; i++ {
			var err error
			if p, err = r.skip(p); err != nil {
				return p, err
			}
		}
	}
}

// skipObject skips an object instance of a class defined earlier in the body.
func (r *reader) skipObject(p int) (int, error) {
	var class int
	var err error
	if t := r.b[p]; t == 'O' {
		if class, p, err = r.count(p + 1); err != nil {
			return p, err
		}
	} else {
		class, p = int(t-0x60), p+1
	}
	if class >= len(r.classes) {
		return p, r.fail(p, fmt.Sprintf("object of class %d, only %d defined", class, len(r.classes)))
	}
	r.refs++
	for n := r.classes[class]; n > 0; n-- {
		if p, err = r.skip(p); err != nil {
			return p, err
		}
	}
	return p, nil
}
