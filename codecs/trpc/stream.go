package trpc

import "github.com/metaproxy/metaproxy/codec"

// Stream frames carry no protobuf header (header length 0): their meta is
// the body, a TrpcStreamInitMeta (INIT), TrpcStreamFeedBackMeta (FEEDBACK)
// or TrpcStreamCloseMeta (CLOSE); a DATA frame's body is the user's message.

// Field numbers of the stream metas.
const (
	initRequestMeta  = 1 // TrpcStreamInitMeta.request_meta
	initResponseMeta = 2 // TrpcStreamInitMeta.response_meta

	// TrpcStreamInitRequestMeta
	irmCaller    = 1
	irmCallee    = 2
	irmFunc      = 3
	irmTransInfo = 5

	// TrpcStreamInitResponseMeta
	irspRet = 1

	// TrpcStreamCloseMeta
	closeType      = 1
	closeRet       = 2
	closeTransInfo = 5
	closeFuncRet   = 6

	// closeReset is TrpcStreamCloseType_TRPC_STREAM_RESET.
	closeReset = 1
)

var errStreamType = &codec.ProtocolError{Protocol: Name, Reason: "unknown stream frame type"}

// decodeStream fills msg from a stream frame: its kind, StreamID (also
// its ID), and from INIT and CLOSE metas the call's metadata and status.
func (c *Codec) decodeStream(h head, frame []byte, msg *codec.Message) error {
	msg.StreamID = uint64(h.streamID)
	msg.ID = msg.StreamID
	// trpc-go reads the meta right after the head, whatever the header
	// length says.
	meta := frame[HeadLen:]
	switch h.streamType {
	case streamInit:
		msg.Kind = codec.KindStreamInit
		return decodeInit(meta, msg)
	case streamData:
		msg.Kind = codec.KindStreamData
		return nil
	case streamFeedback:
		// Flow control: a window increment. Proxied as data, as Aeraki does.
		msg.Kind = codec.KindStreamData
		return walk(meta)
	case streamClose:
		msg.Kind = codec.KindStreamClose
		return decodeClose(meta, msg)
	}
	return errStreamType
}

// walk checks that b is a well-formed protobuf message.
func walk(b []byte) error {
	var f field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return err
		}
	}
	return nil
}

// decodeInit reads a TrpcStreamInitMeta: the request meta of a client's
// INIT (caller, callee, func, trans_info), the return code of a server's.
// A message field that occurs more than once is merged, as protobuf does:
// its scalars take their last value, its trans_info entries add up.
func decodeInit(b []byte, msg *codec.Message) error {
	var caller, callee, fn []byte
	var requests bool
	var f, g field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return err
		}
		if f.Typ != wireBytes {
			continue
		}
		switch f.Num {
		case initRequestMeta:
			requests = true
			for q := 0; q < len(f.B); q = g.End {
				if err := g.Next(f.B, q, &pbErrors); err != nil {
					return err
				}
				if g.Typ != wireBytes {
					continue
				}
				switch g.Num {
				case irmCaller:
					caller = g.B
				case irmCallee:
					callee = g.B
				case irmFunc:
					fn = g.B
				case irmTransInfo:
					if _, _, err := mapEntry(g.B); err != nil {
						return err
					}
				}
			}
		case initResponseMeta:
			for q := 0; q < len(f.B); q = g.End {
				if err := g.Next(f.B, q, &pbErrors); err != nil {
					return err
				}
				if g.Num == irspRet && g.Typ == wireVarint {
					msg.Status = codec.StatusOK
					if int32(g.V) != 0 {
						msg.Status = codec.StatusServerFailure
					}
				}
			}
		}
	}
	if !requests {
		return nil
	}
	setCallMeta(&msg.Meta, caller, callee, fn)
	for p := 0; p < len(b); p = f.End {
		_ = f.Next(b, p, &pbErrors) // validated above
		if f.Num == initRequestMeta && f.Typ == wireBytes {
			addTransInfo(&msg.Meta, f.B, irmTransInfo, true)
		}
	}
	return nil
}

// decodeClose reads a TrpcStreamCloseMeta: a RESET or a non-zero ret is a
// server failure, a non-zero func_ret the callee's error; its trans_info
// entries are metadata.
func decodeClose(b []byte, msg *codec.Message) error {
	var typ, ret, funcRet int32
	var f field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return err
		}
		switch {
		case f.Typ == wireBytes && f.Num == closeTransInfo:
			if _, _, err := mapEntry(f.B); err != nil {
				return err
			}
		case f.Typ != wireVarint:
		case f.Num == closeType:
			typ = int32(f.V)
		case f.Num == closeRet:
			ret = int32(f.V)
		case f.Num == closeFuncRet:
			funcRet = int32(f.V)
		}
	}
	switch {
	case typ == closeReset || ret != 0:
		msg.Status = codec.StatusServerFailure
	case funcRet != 0:
		msg.Status = codec.StatusError
	}
	addTransInfo(&msg.Meta, b, closeTransInfo, false)
	return nil
}
