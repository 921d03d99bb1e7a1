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
	if err := w.run(b); err != nil {
		return 0, w.short(b, err)
	}
	n := w.pos
	w.reset()
	return n, nil
}

// short turns errShort into "need more bytes", unless the bytes already
// seen exceed the size limit. Other errors end the walk.
func (w *walker) short(b []byte, err error) error {
	if err == errShort && len(b) <= w.limit {
		return nil
	}
	w.reset()
	if err == errShort {
		return malformed("message longer than %d bytes", w.limit)
	}
	return err
}

// run walks b from w.pos until the message ends or b runs out (errShort),
// and saves its place. It is one loop over local state because it runs for
// every value of every unframed message.
func (w *walker) run(b []byte) (err error) {
	pos, next, depth := w.pos, w.next, w.depth
	bin := w.proto == ProtocolBinary
	for err == nil {
		if pos > w.limit {
			err = malformed("message longer than %d bytes", w.limit)
			break
		}
		if next != tStop {
			pos, next, depth, err = w.value(b, pos, next, depth)
			continue
		}
		if depth == 0 {
			break
		}
		top := &w.stack[depth-1]
		switch {
		case top.kind == tStruct && bin:
			if pos >= len(b) {
				err = errShort
				break
			}
			c := b[pos]
			switch t := binaryType(c); {
			case t == tStop:
				pos++
				depth--
			case t == tInvalid:
				err = malformed("field of unknown type %d", c)
			case pos+3 > len(b):
				err = errShort
			default:
				pos += 3
				next = t
			}
		case top.kind == tStruct:
			if pos >= len(b) {
				err = errShort
				break
			}
			c := b[pos]
			t := compactTypes[c&0x0f]
			if t == tStop {
				pos++
				depth--
				break
			}
			if t == tInvalid {
				err = malformed("field of unknown compact type %d", c&0x0f)
				break
			}
			n := 1
			if c>>4 == 0 { // no delta: the field id follows as a zigzag varint
				_, k, e := uvarint(b, pos+1, 3)
				if e != nil {
					err = varintErr(e, "field id")
					break
				}
				n += k
			}
			pos += n
			if t != tBool { // a boolean field carries its value in the type nibble
				next = t
			}
		case top.left == 0:
			depth--
		case top.kind == tList:
			if sz := fixedSize(top.key, w.proto); sz > 0 {
				k := min(top.left, (len(b)-pos)/sz)
				if k == 0 {
					err = errShort
				}
				pos += k * sz
				top.left -= k
				break
			}
			top.left--
			next = top.key
		default: // tMap: keys at even counts, values at odd
			if top.left%2 == 0 {
				next = top.key
			} else {
				next = top.val
			}
			top.left--
		}
	}
	w.pos, w.next, w.depth = pos, next, depth
	return err
}

// value skips the value of type t at b[pos:], or opens it if it is a
// container, and returns the new place. On an error the place is unchanged.
func (w *walker) value(b []byte, pos int, t uint8, depth int) (int, uint8, int, error) {
	if n := fixedSize(t, w.proto); n > 0 {
		if pos+n > len(b) {
			return pos, t, depth, errShort
		}
		return pos + n, tStop, depth, nil
	}
	var (
		l   level
		hdr int
		err error
	)
	if w.proto == ProtocolBinary {
		l, hdr, err = w.binaryValue(b, pos, t)
	} else {
		l, hdr, err = w.compactValue(b, pos, t)
	}
	if err != nil {
		return pos, t, depth, err
	}
	if l.kind == tStop { // a scalar of hdr bytes
		return pos + hdr, tStop, depth, nil
	}
	if l.left > 0 && (!validElem(l.key) || (l.kind == tMap && !validElem(l.val))) {
		return pos, t, depth, malformed("container of unknown element type")
	}
	if depth == maxNestingDepth {
		return pos, t, depth, malformed("nesting deeper than %d", maxNestingDepth)
	}
	w.stack[depth] = l
	return pos + hdr, tStop, depth + 1, nil
}

// binaryValue reads the binary-protocol value of type t at b[pos:] that is
// not of fixed size. It returns the container it opens (kind tStop for a
// string) and the size of its header (of the whole string).
func (w *walker) binaryValue(b []byte, pos int, t uint8) (level, int, error) {
	switch t {
	case tStruct:
		return level{kind: tStruct}, 0, nil
	case tString:
		if pos+4 > len(b) {
			return level{}, 0, errShort
		}
		n, err := w.count(uint64(be32(b[pos:])), 1, pos)
		if err != nil {
			return level{}, 0, err
		}
		if pos+4+n > len(b) {
			return level{}, 0, errShort
		}
		return level{}, 4 + n, nil
	case tList, tSet:
		if pos+5 > len(b) {
			return level{}, 0, errShort
		}
		n, err := w.count(uint64(be32(b[pos+1:])), 1, pos)
		return level{kind: tList, key: binaryType(b[pos]), left: n}, 5, err
	case tMap:
		if pos+6 > len(b) {
			return level{}, 0, errShort
		}
		n, err := w.count(uint64(be32(b[pos+2:])), 2, pos)
		return level{kind: tMap, key: binaryType(b[pos]), val: binaryType(b[pos+1]), left: 2 * n}, 6, err
	}
	return level{}, 0, malformed("value of unknown type")
}

// compactValue is binaryValue for the compact protocol, where integers are
// varints too.
func (w *walker) compactValue(b []byte, pos int, t uint8) (level, int, error) {
	switch t {
	case tStruct:
		return level{kind: tStruct}, 0, nil
	case tI16, tI32, tI64:
		_, n, err := uvarint(b, pos, maxVarint64Bytes)
		return level{}, n, varintErr(err, "integer")
	case tString:
		v, k, err := uvarint(b, pos, maxVarint32Bytes)
		if err != nil {
			return level{}, 0, varintErr(err, "string length")
		}
		n, err := w.count(v, 1, pos)
		if err != nil {
			return level{}, 0, err
		}
		if pos+k+n > len(b) {
			return level{}, 0, errShort
		}
		return level{}, k + n, nil
	case tList, tSet:
		if pos >= len(b) {
			return level{}, 0, errShort
		}
		c, hdr, size := b[pos], 1, uint64(b[pos]>>4)
		if size == 15 {
			v, k, err := uvarint(b, pos+1, maxVarint32Bytes)
			if err != nil {
				return level{}, 0, varintErr(err, "list size")
			}
			size, hdr = v, 1+k
		}
		n, err := w.count(size, 1, pos)
		return level{kind: tList, key: compactTypes[c&0x0f], left: n}, hdr, err
	case tMap:
		v, k, err := uvarint(b, pos, maxVarint32Bytes)
		if err != nil {
			return level{}, 0, varintErr(err, "map size")
		}
		n, err := w.count(v, 2, pos)
		if err != nil || n == 0 { // an empty map has no type byte
			return level{}, k, err
		}
		if pos+k >= len(b) {
			return level{}, 0, errShort
		}
		c := b[pos+k]
		return level{kind: tMap, key: compactTypes[c>>4], val: compactTypes[c&0x0f], left: 2 * n}, k + 1, nil
	}
	return level{}, 0, malformed("value of unknown type")
}

// count checks a length or element count read at pos: every element takes
// at least per bytes, so a count that cannot fit in the size limit is
// rejected at once.
func (w *walker) count(v uint64, per, pos int) (int, error) {
	room := max(w.limit-pos, 0)
	if int32(v) < 0 || v > uint64(room)/uint64(per) {
		return 0, malformed("length or size %d out of range", int32(v))
	}
	return int(v), nil
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

func validElem(t uint8) bool { return t != tStop && t != tInvalid }
