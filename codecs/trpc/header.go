package trpc

import "github.com/metaproxy/metaproxy/codec"

// Field numbers of trpc.RequestProtocol and trpc.ResponseProtocol
// (trpc-protocol's trpc.proto). Fields 1-3 are common; from 4 on the two
// messages differ.
const (
	fieldCallType  = 2 // both
	fieldRequestID = 3 // both
	fieldAttSize   = 12

	// RequestProtocol
	reqTimeout         = 4
	reqCaller          = 5
	reqCallee          = 6
	reqFunc            = 7
	reqMessageType     = 8
	reqTransInfo       = 9
	reqContentType     = 10
	reqContentEncoding = 11

	// ResponseProtocol
	rspRet             = 4
	rspFuncRet         = 5
	rspErrorMsg        = 6
	rspMessageType     = 7
	rspTransInfo       = 8
	rspContentType     = 9
	rspContentEncoding = 10
)

// onewayCall is trpc.TrpcCallType_TRPC_ONEWAY_CALL.
const onewayCall = 1

// unaryHeader is what the codec reads of a unary frame's protobuf header.
//
// The header does not say whether it is a RequestProtocol or a
// ResponseProtocol, and the codec is not told which side of the proxy it
// parses. It tells them apart by the fields whose wire type only one of the
// two messages has: caller (5), func (7) and trans_info (9) as bytes and
// message_type (8) as a varint are request fields; func_ret (5),
// message_type (7) and content_type (9) as varints and trans_info (8) as
// bytes are response fields. Every request a tRPC client sends has a
// caller and a func; a header with neither kind of field (a bare response:
// request_id, ret, error_msg) is a response; a header with both is
// malformed.
type unaryHeader struct {
	request   bool
	callType  uint32
	requestID uint32
	ret       int32  // response: the framework's return code
	funcRet   int32  // response: the callee's own return code
	errorMsg  []byte // response
	// Request fields.
	caller, callee, fn []byte
	timeout            uint32
	// Both.
	messageType, contentType, contentEncoding uint32
	attachment                                uint32
	transInfo                                 int32 // the trans_info field number
}

var errMixed = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header mixes RequestProtocol and ResponseProtocol fields"}

// Which message a header is read as.
const (
	asEither   = iota // told apart by its fields
	asRequest         // a RequestProtocol
	asResponse        // a ResponseProtocol
)

// parse reads header b, a request or a response as its fields say.
func (h *unaryHeader) parse(b []byte) error { return h.parseAs(b, asEither, nil) }

// parseAs reads header b as message as. Scalars repeated in b take their
// last value, as in protobuf-go; fields of an unexpected wire type are
// unknown fields. When meta is not nil, the trans_info entries are added
// to it on the way (see addEntry).
func (h *unaryHeader) parseAs(b []byte, as int, meta *codec.Metadata) error {
	*h = unaryHeader{}
	var f4, f10, f11, msgType7, msgType8, ct9 uint64
	var f6 []byte
	var reqs, rsps int
	var f field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return err
		}
		if f.Typ == wireBytes {
			switch f.Num {
			case reqCaller:
				h.caller, reqs = f.B, reqs+1
			case reqCallee: // rspErrorMsg
				f6 = f.B
			case reqFunc:
				h.fn, reqs = f.B, reqs+1
			case rspTransInfo, reqTransInfo:
				// An entry of the other message's trans_info is an unknown field.
				if as == asEither || (as == asRequest) == (f.Num == reqTransInfo) {
					k, v, err := mapEntry(f.B)
					if err != nil {
						return err
					}
					if meta != nil {
						// A field 9 entry is in a request, a field 8 one in
						// a response: a header holding both is refused below.
						addEntry(meta, k, v, f.Num == reqTransInfo)
					}
				}
				if f.Num == reqTransInfo {
					reqs++
				} else {
					rsps++
				}
			}
			continue
		}
		if f.Typ != wireVarint {
			continue
		}
		switch f.Num {
		case fieldCallType:
			h.callType = uint32(f.V)
		case fieldRequestID:
			h.requestID = uint32(f.V)
		case reqTimeout: // rspRet
			f4 = f.V
		case rspFuncRet:
			h.funcRet, rsps = int32(f.V), rsps+1
		case rspMessageType:
			msgType7, rsps = f.V, rsps+1
		case reqMessageType:
			msgType8, reqs = f.V, reqs+1
		case rspContentType:
			ct9, rsps = f.V, rsps+1
		case reqContentType: // rspContentEncoding
			f10 = f.V
		case reqContentEncoding:
			f11 = f.V
		case fieldAttSize:
			h.attachment = uint32(f.V)
		}
	}
	if as == asEither && reqs > 0 && rsps > 0 {
		return errMixed
	}
	h.request = as == asRequest || as == asEither && reqs > 0
	if h.request {
		h.timeout, h.callee, h.messageType = uint32(f4), f6, uint32(msgType8)
		h.contentType, h.contentEncoding, h.transInfo = uint32(f10), uint32(f11), reqTransInfo
		h.funcRet = 0
	} else {
		h.caller, h.fn = nil, nil
		// Field 11 is not in ResponseProtocol: an unknown field there.
		h.ret, h.errorMsg = int32(f4), f6
		h.messageType, h.contentType, h.contentEncoding = uint32(msgType7), uint32(ct9), uint32(f10)
		h.transInfo = rspTransInfo
	}
	return nil
}

// nextEntry finds the next trans_info entry (field num) of header b at or
// after p and returns it and the position after it; ok is false at the
// end. parse has validated the header.
func nextEntry(b []byte, p int, num int32) (key, value []byte, next int, ok bool) {
	var f field
	for ; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return nil, nil, len(b), false
		}
		if f.Num == num && f.Typ == wireBytes {
			if k, v, err := mapEntry(f.B); err == nil {
				return k, v, f.End, true
			}
		}
	}
	return nil, nil, p, false
}
