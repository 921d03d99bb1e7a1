package main

import (
	"encoding/binary"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"
)

// describe reads f with trpc-protocol's generated types, as trpc-go does,
// and returns what metaproxy's codec must decode it to: its kind, id,
// stream id, status and metadata (see codecs/trpc/README.md). The relay
// knows f's direction, which the bytes do not say: frames to the server
// are RequestProtocol headers, frames from it ResponseProtocol ones.
func describe(f frame) (Want, error) {
	b := f.b
	hl := int(binary.BigEndian.Uint16(b[8:10]))
	sid := binary.BigEndian.Uint32(b[10:14])
	w := Want{Meta: map[string]string{}, Status: "ok"}
	if b[2] == 1 { // a stream frame: the meta is the body
		w.ID, w.StreamID = uint64(sid), uint64(sid)
		return w, describeStream(b[3], b[16:], &w)
	}
	hdr := b[16 : 16+hl]
	if f.toServer {
		var req trpcpb.RequestProtocol
		if err := proto.Unmarshal(hdr, &req); err != nil {
			return w, err
		}
		w.Kind, w.ID, w.Status = "request", uint64(req.RequestId), ""
		if req.CallType == uint32(trpcpb.TrpcCallType_TRPC_ONEWAY_CALL) {
			w.Kind = "oneway"
		}
		callMeta(w.Meta, req.Caller, req.Callee, req.Func, req.TransInfo)
		return w, nil
	}
	var rsp trpcpb.ResponseProtocol
	if err := proto.Unmarshal(hdr, &rsp); err != nil {
		return w, err
	}
	w.Kind, w.ID = "response", uint64(rsp.RequestId)
	w.Status = status(rsp.Ret, rsp.FuncRet)
	for k, v := range rsp.TransInfo {
		w.Meta[k] = string(v)
	}
	return w, nil
}

func describeStream(typ byte, meta []byte, w *Want) error {
	switch trpcpb.TrpcStreamFrameType(typ) {
	case trpcpb.TrpcStreamFrameType_TRPC_STREAM_FRAME_INIT:
		w.Kind = "stream_init"
		var m trpcpb.TrpcStreamInitMeta
		if err := proto.Unmarshal(meta, &m); err != nil {
			return err
		}
		if rm := m.RequestMeta; rm != nil {
			callMeta(w.Meta, rm.Caller, rm.Callee, rm.Func, rm.TransInfo)
		}
		if m.ResponseMeta.GetRet() != 0 {
			w.Status = "server_failure"
		}
	case trpcpb.TrpcStreamFrameType_TRPC_STREAM_FRAME_DATA, trpcpb.TrpcStreamFrameType_TRPC_STREAM_FRAME_FEEDBACK:
		w.Kind = "stream_data"
	case trpcpb.TrpcStreamFrameType_TRPC_STREAM_FRAME_CLOSE:
		w.Kind = "stream_close"
		var m trpcpb.TrpcStreamCloseMeta
		if err := proto.Unmarshal(meta, &m); err != nil {
			return err
		}
		w.Status = status(m.Ret, m.FuncRet)
		if m.CloseType == int32(trpcpb.TrpcStreamCloseType_TRPC_STREAM_RESET) {
			w.Status = "server_failure"
		}
		for k, v := range m.TransInfo {
			w.Meta[k] = string(v)
		}
	default:
		return fmt.Errorf("stream frame type %d", typ)
	}
	return nil
}

// status is a response's outcome: a framework error (ret) is a server
// failure, a business error (func_ret) the callee's error.
func status(ret, funcRet int32) string {
	switch {
	case ret != 0:
		return "server_failure"
	case funcRet != 0:
		return "error"
	}
	return "ok"
}

// callMeta fills the metadata of a call: caller, callee, func, interface
// (the callee), method (func's last path element) and the trans_info
// entries, which never override those keys.
func callMeta(m map[string]string, caller, callee, fn []byte, ti map[string][]byte) {
	for k, v := range ti {
		m[k] = string(v)
	}
	f := string(fn)
	for k, v := range map[string]string{"caller": string(caller), "callee": string(callee), "func": f,
		"interface": string(callee), "method": f[strings.LastIndexByte(f, '/')+1:]} {
		for tk := range m {
			if strings.EqualFold(tk, k) {
				delete(m, tk)
			}
		}
		m[k] = v
	}
}
