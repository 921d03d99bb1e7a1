package thrift

// walker finds the end of an unframed message by skipping over its struct
// without building anything. It keeps its place between calls, so a message
// that arrives in many reads is walked once in total: every call resumes at
// the first value not yet complete, and re-reads at most that value's
// header (a length or a container size).
type walker struct {
	proto Protocol
	limit int // the longest message accepted

	pos   int   // bytes of the message walked so far; 0 before the head
	next  uint8 // type of the value at pos, or tStop if the next thing is a field header or element
	depth int
	stack [maxNestingDepth]level
}

// level is one open struct, list, set or map.
type level struct {
	kind     uint8 // tStruct, tList (lists and sets) or tMap
	key, val uint8 // element type of a list; key and value types of a map
	left     int   // elements left in a list; keys plus values left in a map
}

func (w *walker) reset() { w.pos, w.next, w.depth = 0, tStop, 0 }

// walk returns the length of the message at the start of b once all of it
// is in b, and 0 while more bytes are needed. Calls that return 0 must be
// followed by calls with the same bytes plus more, or by reset.
func (w *walker) walk(b []byte) (int, error) {
	if w.pos > len(b) {
		w.reset() // not the bytes of the previous call: start again
	}
	if w.pos == 0 {
		h, err := parseHead(b, w.proto, w.limit)
		if err != nil {
			return 0, w.short(b, err)
		}
		w.pos, w.next, w.depth = h.body, tStruct, 0
	}
	for {
		var err error
		switch {
		case w.next != tStop:
			err = w.value(b)
		case w.depth == 0:
			n := w.pos
			w.reset()
			return n, nil
		default:
			err = w.advance(b)
		}
		if err != nil {
			return 0, w.short(b, err)
		}
		if w.pos > w.limit {
			return 0, malformed("message longer than %d bytes", w.limit)
		}
	}
}

// short turns errShort into "need more bytes", unless the bytes already
// seen exceed the size limit.
func (w *walker) short(b []byte, err error) error {
	if err != errShort {
		w.reset()
		return err
	}
	if len(b) > w.limit {
		w.reset()
		return malformed("message longer than %d bytes", w.limit)
	}
	return nil
}

// advance moves to the next value of the innermost open container, or
// closes it.
func (w *walker) advance(b []byte) error {
	top := &w.stack[w.depth-1]
	switch top.kind {
	case tStruct:
		return w.field(b)
	case tList:
		if top.left == 0 {
			w.depth--
			return nil
		}
		top.left--
		w.next = top.key
	default: // tMap
		if top.left == 0 {
			w.depth--
			return nil
		}
		if top.left%2 == 0 {
			w.next = top.key
		} else {
			w.next = top.val
		}
		top.left--
	}
	return nil
}

// field reads a field header of the innermost struct, or its stop byte.
func (w *walker) field(b []byte) error {
	if w.pos >= len(b) {
		return errShort
	}
	c := b[w.pos]
	if w.proto == ProtocolBinary {
		if c == 0 {
			w.pos++
			w.depth--
			return nil
		}
		t := binaryType(c)
		if t == tInvalid {
			return malformed("field of unknown type %d", c)
		}
		if w.pos+3 > len(b) {
			return errShort
		}
		w.pos += 3
		w.next = t
		return nil
	}
	t := compactTypes[c&0x0f]
	switch {
	case t == tStop:
		w.pos++
		w.depth--
		return nil
	case t == tInvalid:
		return malformed("field of unknown compact type %d", c&0x0f)
	}
	n := 1
	if c>>4 == 0 { // no delta: the field id follows as a zigzag varint
		_, k, err := uvarint(b, w.pos+1, 3)
		if err != nil {
			return varintErr(err, "field id")
		}
		n += k
	}
	w.pos += n
	if t != tBool { // a boolean field carries its value in the type nibble
		w.next = t
	}
	return nil
}

// fixedSize is the encoded size of values of fixed size in protocol p, or 0.
func fixedSize(t uint8, p Protocol) int {
	switch t {
	case tBool, tByte:
		return 1
	case tDouble:
		return 8
	case tUUID:
		return 16
	}
	if p == ProtocolBinary {
		switch t {
		case tI16:
			return 2
		case tI32:
			return 4
		case tI64:
			return 8
		}
	}
	return 0
}

// value skips the value of type w.next at w.pos, or opens it if it is a
// container. It changes nothing when it returns an error.
func (w *walker) value(b []byte) error {
	t := w.next
	if n := fixedSize(t, w.proto); n > 0 {
		if w.pos+n > len(b) {
			return errShort
		}
		w.pos += n
		w.next = tStop
		return nil
	}
	if t == tStruct {
		return w.push(level{kind: tStruct}, 0)
	}
	if w.proto == ProtocolBinary {
		return w.binaryValue(b, t)
	}
	return w.compactValue(b, t)
}

func (w *walker) binaryValue(b []byte, t uint8) error {
	p := w.pos
	switch t {
	case tString:
		if p+4 > len(b) {
			return errShort
		}
		n, err := w.count(uint64(be32(b[p:])), 1)
		if err != nil {
			return err
		}
		if p+4+n > len(b) {
			return errShort
		}
		w.pos += 4 + n
		w.next = tStop
		return nil
	case tList, tSet:
		if p+5 > len(b) {
			return errShort
		}
		n, err := w.count(uint64(be32(b[p+1:])), 1)
		if err != nil {
			return err
		}
		return w.push(level{kind: tList, key: binaryType(b[p]), left: n}, 5)
	case tMap:
		if p+6 > len(b) {
			return errShort
		}
		n, err := w.count(uint64(be32(b[p+2:])), 2)
		if err != nil {
			return err
		}
		return w.push(level{kind: tMap, key: binaryType(b[p]), val: binaryType(b[p+1]), left: 2 * n}, 6)
	}
	return malformed("value of unknown type")
}

func (w *walker) compactValue(b []byte, t uint8) error {
	p := w.pos
	switch t {
	case tI16, tI32, tI64:
		_, n, err := uvarint(b, p, maxVarint64Bytes)
		if err != nil {
			return varintErr(err, "integer")
		}
		w.pos += n
		w.next = tStop
		return nil
	case tString:
		v, k, err := uvarint(b, p, maxVarint32Bytes)
		if err != nil {
			return varintErr(err, "string length")
		}
		n, err := w.count(v, 1)
		if err != nil {
			return err
		}
		if p+k+n > len(b) {
			return errShort
		}
		w.pos += k + n
		w.next = tStop
		return nil
	case tList, tSet:
		if p >= len(b) {
			return errShort
		}
		c, hdr, size := b[p], 1, uint64(b[p]>>4)
		if size == 15 {
			v, k, err := uvarint(b, p+1, maxVarint32Bytes)
			if err != nil {
				return varintErr(err, "list size")
			}
			size, hdr = v, 1+k
		}
		n, err := w.count(size, 1)
		if err != nil {
			return err
		}
		return w.push(level{kind: tList, key: compactTypes[c&0x0f], left: n}, hdr)
	case tMap:
		v, k, err := uvarint(b, p, maxVarint32Bytes)
		if err != nil {
			return varintErr(err, "map size")
		}
		n, err := w.count(v, 2)
		if err != nil {
			return err
		}
		if n == 0 { // an empty map has no type byte
			w.pos += k
			w.next = tStop
			return nil
		}
		if p+k >= len(b) {
			return errShort
		}
		c := b[p+k]
		return w.push(level{kind: tMap, key: compactTypes[c>>4], val: compactTypes[c&0x0f], left: 2 * n}, k+1)
	}
	return malformed("value of unknown type")
}

// count checks a length or element count read from the wire: every element
// takes at least per bytes, so a count that cannot fit in the size limit is
// rejected at once.
func (w *walker) count(v uint64, per int) (int, error) {
	room := max(w.limit-w.pos, 0)
	if int32(v) < 0 || v > uint64(room)/uint64(per) {
		return 0, malformed("length or size %d out of range", int32(v))
	}
	return int(v), nil
}

// push opens container l whose header took hdr bytes at w.pos.
func (w *walker) push(l level, hdr int) error {
	if l.left > 0 && (!validElem(l.key) || (l.kind == tMap && !validElem(l.val))) {
		return malformed("container of unknown element type")
	}
	if w.depth == maxNestingDepth {
		return malformed("nesting deeper than %d", maxNestingDepth)
	}
	w.stack[w.depth] = l
	w.depth++
	w.pos += hdr
	w.next = tStop
	return nil
}

func validElem(t uint8) bool { return t != tStop && t != tInvalid }
