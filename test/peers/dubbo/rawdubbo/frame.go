// Package rawdubbo is a Dubbo (classic "dubbo" protocol, hessian2) client
// built directly on github.com/apache/dubbo-go-hessian2 over a plain TCP
// connection.
//
// The dubbo-go client cannot send attachments over the dubbo protocol and
// hides request ids, heartbeats and oneway calls; this client exposes them so
// that tests can prove what a proxy does with each. Frames are encoded and
// decoded by the real hessian2 library, never by hand, except for the bytes a
// test deliberately corrupts.
package rawdubbo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// HeaderLen is the length of the fixed Dubbo frame header.
const HeaderLen = hessian.HEADER_LENGTH

// Call describes one request.
type Call struct {
	Interface string // service path and interface name
	Version   string
	Group     string
	Method    string
	Args      []any // hessian-encodable values: string, int64, ...
	// Attachments are sent in the request body (Dubbo's "headers").
	Attachments map[string]string
	// Oneway sends the request without the two-way flag: no reply is due.
	Oneway bool
}

// Reply is a decoded response frame.
type Reply struct {
	ID        int64
	Status    byte // hessian.Response_OK (20) or an error status
	Heartbeat bool
	// Value is the decoded return value of a successful call.
	Value any
	// Exception is the error the server reported: the body of a non-OK
	// status, or a RESPONSE_WITH_EXCEPTION body under status OK.
	Exception   string
	Attachments map[string]string
}

// OK reports whether the call succeeded.
func (r *Reply) OK() bool { return r.Status == hessian.Response_OK && r.Exception == "" }

// String renders the reply the way dubbopeer prints it: the value of a
// successful call, or "ERROR <status> <message>".
func (r *Reply) String() string {
	if r.OK() {
		if r.Value == nil {
			return ""
		}
		return fmt.Sprint(r.Value)
	}
	return fmt.Sprintf("ERROR %d %s", r.Status, r.Exception)
}

// EncodeRequest returns the wire frame of c with request id id.
func EncodeRequest(id int64, c Call) ([]byte, error) {
	atta := make(map[string]string, len(c.Attachments))
	for k, v := range c.Attachments {
		atta[k] = v
	}
	typ := hessian.PackageRequest_TwoWay
	if c.Oneway {
		typ = hessian.PackageRequest
	}
	svc := hessian.Service{Path: c.Interface, Interface: c.Interface, Group: c.Group, Version: c.Version, Method: c.Method}
	hdr := hessian.DubboHeader{SerialID: 2, Type: typ, ID: id}
	args := c.Args
	if args == nil {
		args = []any{}
	}
	return hessian.NewHessianCodec(nil).Write(svc, hdr, hessian.NewRequest(args, atta))
}

// EncodeHeartbeat returns a heartbeat request frame with request id id.
func EncodeHeartbeat(id int64) ([]byte, error) {
	hdr := hessian.DubboHeader{SerialID: 2, Type: hessian.PackageHeartbeat, ID: id}
	return hessian.NewHessianCodec(nil).Write(hessian.Service{}, hdr, hessian.NewRequest([]any{}, nil))
}

// errMagic reports a frame that does not start with Dubbo's magic bytes.
var errMagic = errors.New("rawdubbo: bad magic")

// frameLen validates the header in hdr (HeaderLen bytes) and returns the
// body length it announces.
func frameLen(hdr []byte) (int, error) {
	if hdr[0] != hessian.MAGIC_HIGH || hdr[1] != hessian.MAGIC_LOW {
		return 0, fmt.Errorf("%w: % x", errMagic, hdr[:2])
	}
	n := binary.BigEndian.Uint32(hdr[12:16])
	if n > hessian.DEFAULT_LEN {
		return 0, fmt.Errorf("rawdubbo: body length %d over %d", n, hessian.DEFAULT_LEN)
	}
	return int(n), nil
}

// DecodeResponse decodes one complete response frame with the hessian2
// library. It never panics: the library's own panics on malformed bodies are
// reported as errors.
func DecodeResponse(frame []byte) (r Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rawdubbo: hessian2 panicked decoding a response: %v", p)
		}
	}()
	if len(frame) < HeaderLen {
		return r, fmt.Errorf("rawdubbo: short frame (%d bytes)", len(frame))
	}
	if _, err := frameLen(frame); err != nil {
		return r, err
	}
	c := hessian.NewHessianCodec(bufio.NewReaderSize(bytes.NewReader(frame), len(frame)+16))
	var h hessian.DubboHeader
	if err := c.ReadHeader(&h); err != nil {
		return r, fmt.Errorf("rawdubbo: header: %w", err)
	}
	if h.Type&hessian.PackageRequest != 0 {
		return r, fmt.Errorf("rawdubbo: got a request frame (id %d), want a response", h.ID)
	}
	r.ID, r.Status = h.ID, h.ResponseStatus
	r.Heartbeat = h.Type&hessian.PackageHeartbeat != 0
	if r.Heartbeat && r.Status == hessian.Response_OK {
		return r, nil
	}
	if r.Status != hessian.Response_OK {
		// The body of a non-OK response is one hessian string.
		v, err := hessian.NewDecoder(frame[HeaderLen:]).Decode()
		if err != nil {
			return r, fmt.Errorf("rawdubbo: error body: %w", err)
		}
		r.Exception = fmt.Sprint(v)
		return r, nil
	}
	resp := &hessian.Response{}
	if err := c.ReadBody(resp); err != nil {
		return r, fmt.Errorf("rawdubbo: body: %w", err)
	}
	r.Value, r.Attachments = resp.RspObj, resp.Attachments
	if resp.Exception != nil {
		r.Exception = resp.Exception.Error()
	}
	return r, nil
}
