package trpc

import (
	"bytes"
	"math/rand"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"
)

// The hand-written header reader is checked against trpc-protocol's
// generated types: headers marshalled by protobuf-go from random values,
// and random wire bytes (unknown fields, wrong wire types, repeated
// scalars, groups, non-minimal varints) that protobuf-go's Unmarshal
// accepts or refuses.

func randBytes(r *rand.Rand, max int) []byte {
	if r.Intn(4) == 0 {
		return nil
	}
	b := make([]byte, r.Intn(max+1))
	r.Read(b)
	return b
}

func randKey(r *rand.Rand) string {
	const alphabet = "abcXYZ-_.0ü€"
	rs := []rune(alphabet)
	k := make([]rune, r.Intn(8))
	for i := range k {
		k[i] = rs[r.Intn(len(rs))]
	}
	return string(k)
}

func randU32(r *rand.Rand) uint32 {
	switch r.Intn(4) {
	case 0:
		return 0
	case 1:
		return uint32(r.Intn(128))
	}
	return r.Uint32()
}

func randTransInfo(r *rand.Rand) map[string][]byte {
	if r.Intn(3) == 0 {
		return nil
	}
	m := map[string][]byte{}
	for range r.Intn(6) {
		m[randKey(r)] = randBytes(r, 20)
	}
	return m
}

// transInfoOf reads the trans_info entries (field num) of header b with
// the codec's reader, the last entry of a key winning.
func transInfoOf(b []byte, num int32) map[string][]byte {
	m := map[string][]byte{}
	for p := 0; ; {
		k, v, next, ok := nextEntry(b, p, num)
		if !ok {
			return m
		}
		m[string(k)], p = v, next
	}
}

func sameMap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// checkRequest compares the codec's reading of header b with req.
func checkRequest(t *testing.T, b []byte, req *trpcpb.RequestProtocol, h *unaryHeader) {
	t.Helper()
	if h.callType != req.CallType || h.requestID != req.RequestId || h.timeout != req.Timeout ||
		!bytes.Equal(h.caller, req.Caller) || !bytes.Equal(h.callee, req.Callee) || !bytes.Equal(h.fn, req.Func) ||
		h.messageType != req.MessageType || h.contentType != req.ContentType ||
		h.contentEncoding != req.ContentEncoding || h.attachment != req.AttachmentSize {
		t.Fatalf("header % x: codec read %+v, protobuf-go %v", b, *h, req)
	}
	if got := transInfoOf(b, reqTransInfo); !sameMap(got, req.TransInfo) {
		t.Fatalf("header % x: trans_info %q, protobuf-go %q", b, got, req.TransInfo)
	}
}

// checkResponse compares the codec's reading of header b with rsp.
func checkResponse(t *testing.T, b []byte, rsp *trpcpb.ResponseProtocol, h *unaryHeader) {
	t.Helper()
	if h.callType != rsp.CallType || h.requestID != rsp.RequestId || h.ret != rsp.Ret || h.funcRet != rsp.FuncRet ||
		!bytes.Equal(h.errorMsg, rsp.ErrorMsg) || h.messageType != rsp.MessageType ||
		h.contentType != rsp.ContentType || h.contentEncoding != rsp.ContentEncoding || h.attachment != rsp.AttachmentSize {
		t.Fatalf("header % x: codec read %+v, protobuf-go %v", b, *h, rsp)
	}
	if got := transInfoOf(b, rspTransInfo); !sameMap(got, rsp.TransInfo) {
		t.Fatalf("header % x: trans_info %q, protobuf-go %q", b, got, rsp.TransInfo)
	}
}

// TestHeaderMarshalledByProtobufGo: random RequestProtocol and
// ResponseProtocol values marshalled by the generated code read back the
// same, and are told apart correctly.
func TestHeaderMarshalledByProtobufGo(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		req := &trpcpb.RequestProtocol{
			Version: randU32(r), CallType: randU32(r), RequestId: randU32(r), Timeout: randU32(r),
			Caller: randBytes(r, 30), Callee: randBytes(r, 30), Func: randBytes(r, 40),
			MessageType: randU32(r), TransInfo: randTransInfo(r), ContentType: randU32(r),
			ContentEncoding: randU32(r), AttachmentSize: randU32(r),
		}
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var h unaryHeader
		if err := h.parse(b); err != nil {
			t.Fatalf("request % x: %v", b, err)
		}
		// What only a request has: caller, func, message_type, trans_info.
		if want := len(req.Caller) > 0 || len(req.Func) > 0 || req.MessageType != 0 || len(req.TransInfo) > 0; h.request != want {
			t.Fatalf("request % x read as request=%v", b, h.request)
		}
		if err := h.parseAs(b, asRequest, nil); err != nil {
			t.Fatal(err)
		}
		checkRequest(t, b, req, &h)

		rsp := &trpcpb.ResponseProtocol{
			Version: randU32(r), CallType: randU32(r), RequestId: randU32(r), Ret: int32(randU32(r)),
			FuncRet: int32(randU32(r)), ErrorMsg: randBytes(r, 40), MessageType: randU32(r),
			TransInfo: randTransInfo(r), ContentType: randU32(r), ContentEncoding: randU32(r),
			AttachmentSize: randU32(r),
		}
		if b, err = proto.Marshal(rsp); err != nil {
			t.Fatal(err)
		}
		if err := h.parse(b); err != nil || h.request {
			t.Fatalf("response % x: request=%v err=%v", b, h.request, err)
		}
		checkResponse(t, b, rsp, &h)
	}
}

// randWire appends random fields: known numbers with right and wrong wire
// types, unknown ones, groups, non-minimal varints.
func randWire(r *rand.Rand, b []byte, depth int) []byte {
	for range r.Intn(8) {
		num := protowire.Number(1 + r.Intn(14))
		if r.Intn(20) == 0 {
			num = protowire.Number(1 + r.Intn(int(protowire.MaxValidNumber)))
		}
		switch r.Intn(6) {
		case 0, 1:
			b = protowire.AppendTag(b, num, protowire.VarintType)
			v := uint64(r.Int63()) >> r.Intn(64)
			if r.Intn(5) == 0 { // non-minimal
				b = append(b, byte(v)|0x80, 0x80, 0)
			} else {
				b = protowire.AppendVarint(b, v)
			}
		case 2:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			if r.Intn(2) == 0 { // a map entry
				e := protowire.AppendTag(nil, 1, protowire.BytesType)
				e = protowire.AppendString(e, randKey(r))
				if r.Intn(10) == 0 {
					e = protowire.AppendTag(e, 1, protowire.BytesType)
					e = protowire.AppendBytes(e, []byte{0xff}) // invalid UTF-8 key
				}
				e = protowire.AppendTag(e, 2, protowire.BytesType)
				e = protowire.AppendBytes(e, randBytes(r, 10))
				if r.Intn(5) == 0 {
					e = protowire.AppendTag(e, 2, protowire.VarintType)
					e = protowire.AppendVarint(e, 7)
				}
				b = protowire.AppendBytes(b, e)
			} else {
				b = protowire.AppendBytes(b, randBytes(r, 12))
			}
		case 3:
			b = protowire.AppendTag(b, num, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, r.Uint32())
		case 4:
			b = protowire.AppendTag(b, num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, r.Uint64())
		case 5:
			if depth < 3 {
				b = protowire.AppendTag(b, num, protowire.StartGroupType)
				b = randWire(r, b, depth+1)
				b = protowire.AppendTag(b, num, protowire.EndGroupType)
			}
		}
	}
	return b
}

// TestHeaderAgreesWithProtobufGo: on random wire bytes, and on corrupted
// copies of them, the codec's reader accepts what protobuf-go's Unmarshal
// accepts, and reads the same values.
func TestHeaderAgreesWithProtobufGo(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	accepted := 0
	for i := 0; i < 20000; i++ {
		b := randWire(r, nil, 0)
		if i%3 == 0 && len(b) > 0 {
			b = append([]byte(nil), b...)
			b[r.Intn(len(b))] = byte(r.Intn(256))
			if r.Intn(2) == 0 {
				b = b[:r.Intn(len(b))]
			}
		}
		oracleCompare(t, b)
		if proto.Unmarshal(b, &trpcpb.RequestProtocol{}) == nil {
			accepted++
		}
	}
	if accepted < 5000 {
		t.Fatalf("only %d of 20000 random headers were valid: the generator is broken", accepted)
	}
}

// TestHeaderRepeatedMapKey: a trans_info entry whose key field repeats is
// refused when any occurrence is not UTF-8, though the last one wins (what
// protobuf-go does; fuzzing found the codec checking only the winner).
func TestHeaderRepeatedMapKey(t *testing.T) {
	entry := func(keys ...string) []byte {
		var e []byte
		for _, k := range keys {
			e = protowire.AppendBytes(protowire.AppendTag(e, 1, protowire.BytesType), []byte(k))
		}
		return protowire.AppendBytes(protowire.AppendTag(e, 2, protowire.BytesType), []byte("v"))
	}
	for _, keys := range [][]string{{"000\xe200000", "0"}, {"0", "\xff"}, {"a", "b"}} {
		for _, num := range []protowire.Number{8, 9} { // trans_info of the response and of the request
			b := protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), entry(keys...))
			oracleCompare(t, b)
		}
	}
	// the fuzzer's own input
	oracleCompare(t, []byte{0x42, 0x12, 0x0a, 0x09, 0x30, 0x30, 0x30, 0xe2, 0x30, 0x30, 0x30, 0x30, 0x30, 0x0a, 0x01, 0x30, 0x32, 0x02, 0x30, 0x30})
}

// oracleCompare reads b as both messages with protobuf-go and the codec.
func oracleCompare(t *testing.T, b []byte) {
	t.Helper()
	var h unaryHeader
	req := &trpcpb.RequestProtocol{}
	errLib, errOwn := proto.Unmarshal(b, req), h.parseAs(b, asRequest, nil)
	if (errLib == nil) != (errOwn == nil) {
		t.Fatalf("request % x: protobuf-go err=%v, codec err=%v", b, errLib, errOwn)
	}
	if errLib == nil {
		checkRequest(t, b, req, &h)
	}
	rsp := &trpcpb.ResponseProtocol{}
	errLib, errOwn = proto.Unmarshal(b, rsp), h.parseAs(b, asResponse, nil)
	if (errLib == nil) != (errOwn == nil) {
		t.Fatalf("response % x: protobuf-go err=%v, codec err=%v", b, errLib, errOwn)
	}
	if errLib == nil {
		checkResponse(t, b, rsp, &h)
	}
}

// FuzzHeader compares the codec's header reader with protobuf-go on
// arbitrary bytes.
func FuzzHeader(f *testing.F) {
	r := rand.New(rand.NewSource(3))
	for range 50 {
		f.Add(randWire(r, nil, 0))
	}
	f.Fuzz(oracleCompare)
}
