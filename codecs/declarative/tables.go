package declarative

import (
	"strconv"

	"github.com/metaproxy/metaproxy/codec"
)

// The compiled description: flat tables built once at load time and
// shared, read-only, by every codec of the factory.
type protocol struct {
	name     string
	maxFrame int
	hsize    int
	hfields  []hfield
	magics   []int // header fields with a magic value
	allowed  []int // header fields with allowed values

	lenField  int // -1: delimiter framing
	lenBase   int // the frame length is value + lenBase + lenAdjust
	lenAdjust int
	delim     []byte

	regions []region
	slots   []slotSpec // every named protobuf field

	kinds  []kindRule
	id     ref // srcNone: no request ids
	idAlso []int
	idMax  uint64
	status []statusCheck
	meta   []metaRule
	// target[k] is the region (kv) or slot (map) header edits of kind k
	// go into.
	target    [numKinds]ref
	errReply  *template
	hbReply   *template
	hbRequest bool // some rule makes heartbeat requests
	// rejectUpTo is the last region RejectReply reads (-1: none; -2:
	// refused frames are not answered).
	rejectUpTo int
}

// Kinds a description can give (codec.Kind values below numKinds).
const numKinds = int(codec.KindHeartbeat) + 1

// Where a name points.
const (
	srcNone   = iota
	srcHeader // hfields[i]
	srcSlot   // slots[i]
	srcRegion // regions[i]
)

type ref struct {
	src uint8
	i   int
}

type hfield struct {
	name      string
	off, size int
	little    bool
	raw       bool   // bytes, not an integer
	mask      uint64 // 0: the whole integer
	shift     uint8
	magic     []byte
	allowed   []uint64
}

// Region formats.
const (
	fmtRaw = iota
	fmtProtobuf
	fmtKV
	fmtJSON
)

type region struct {
	name     string
	lenField int // -1: the rest of the frame
	adjust   int
	format   uint8
	root     *pbNode // protobuf: the fields to read
	kv       kvLayout
}

type kvLayout struct {
	count, key, value int
	little            bool
}

type slotSpec struct {
	name   string
	region int
	path   []int32
	typ    pbType
}

// pbNode is one message level of a protobuf region's named fields.
type pbNode struct{ entries []pbEntry }

type pbEntry struct {
	num   int32
	wire  uint8
	slot  int     // -1: only a path to deeper fields
	child *pbNode // fields inside this (message) field
}

type kindRule struct {
	kind      codec.Kind
	hbRequest bool
	when      []cond
}

// Condition operators.
const (
	opEquals = iota
	opIn
	opNotIn
	opPresent
	opAbsent
)

type cond struct {
	f    ref
	op   uint8
	vals []uint64
}

type statusCheck struct {
	f         ref
	ok, err   []uint64
	otherwise codec.Status
}

// Metadata rule forms.
const (
	metaField   = iota // a header or protobuf field
	metaJSON           // a path into a JSON region
	metaEntries        // every entry of a map field or kv region
)

type metaRule struct {
	form      uint8
	key       string
	f         ref
	path      []string
	kinds     uint8 // bit k: applies to kind k
	def       string
	hasDef    bool
	afterLast string
}

// template is a compiled reply.
type template struct {
	header []byte       // magic values set, other bytes zero
	sets   []fieldWrite // header fields set
	pb     [][]pbWrite  // per region, by field number
	copies []copyRule   // header fields copied from the request
	status ref
	codes  [codec.NumErrorTypes]uint64
	msg    ref // srcSlot: a protobuf field; srcRegion: a kv or json pair
	msgKey string
}

type fieldWrite struct {
	f int
	v uint64
}

// What a protobuf field of a reply holds.
const (
	pbConst = iota
	pbID
	pbStatus
	pbMessage
	pbCopy
)

type pbWrite struct {
	num  int32
	typ  pbType
	what uint8
	v    uint64 // pbConst
	from ref    // pbCopy
}

type copyRule struct {
	from ref
	to   int // a header field
}

func (m *metaRule) applies(k codec.Kind) bool { return int(k) < numKinds && m.kinds&(1<<k) != 0 }

var kindByName = map[string]codec.Kind{
	"request": codec.KindRequest, "response": codec.KindResponse,
	"oneway": codec.KindOneway, "heartbeat": codec.KindHeartbeat,
}

// readUint reads an unsigned integer of len(b) <= 8 bytes.
func readUint(b []byte, little bool) uint64 {
	var v uint64
	if little {
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v
	}
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// putUint writes v into b as an unsigned integer of len(b) bytes.
func putUint(b []byte, v uint64, little bool) {
	n := len(b)
	for i := 0; i < n; i++ {
		if little {
			b[i] = byte(v >> (8 * i))
		} else {
			b[n-1-i] = byte(v >> (8 * i))
		}
	}
}

// maxOf is the largest value of a size-byte integer.
func maxOf(size int) uint64 {
	if size >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*size) - 1
}

// get reads header field f of frame (which holds the whole header).
func (f *hfield) get(frame []byte) uint64 {
	v := readUint(frame[f.off:f.off+f.size], f.little)
	if f.mask != 0 {
		v = (v & f.mask) >> f.shift
	}
	return v
}

// put writes v into header field f of frame, keeping the bits outside a
// bit field's mask.
func (f *hfield) put(frame []byte, v uint64) {
	b := frame[f.off : f.off+f.size]
	if f.mask != 0 {
		v = readUint(b, f.little)&^f.mask | (v<<f.shift)&f.mask
	}
	putUint(b, v, f.little)
}

// max is the largest value field f holds.
func (f *hfield) max() uint64 {
	if f.mask != 0 {
		return f.mask >> f.shift
	}
	return maxOf(f.size)
}

// smallInts are the decimal forms of small values, so that integer
// metadata does not allocate in the common case.
var smallInts = func() (s [1024]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// decimal formats v, signed or not.
func decimal(v uint64, signed bool) string {
	if signed && int64(v) < 0 {
		return strconv.FormatInt(int64(v), 10)
	}
	if v < uint64(len(smallInts)) {
		return smallInts[v]
	}
	return strconv.FormatUint(v, 10)
}
