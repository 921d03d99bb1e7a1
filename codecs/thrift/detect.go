package thrift

import "encoding/binary"

// verdict is the answer of one detection rule.
type verdict uint8

const (
	no   verdict = iota // the bytes are not this variant
	yes                 // they are
	wait                // more bytes are needed to tell
)

// detect works out the transport and protocol of a connection from its
// first bytes, within what the configuration pins. ok is false with a nil
// error while more bytes are needed. The rules are tried in order and the
// first that says yes wins; a rule that must wait stops the search, so the
// answer never depends on how the bytes were cut into reads.
//
//  1. unframed strict binary (80 01) or compact (82 x1);
//  2. THeader: a length, then the magic 0f ff; the protocol is the header's;
//  3. framed strict binary or compact: a length, then 80 01 or 82 x1;
//  4. THeader inside a framed transport: a length n, then the length n-4
//     and the magic 0f ff; the protocol is the header's;
//  5. framed non-strict binary: a length, then a message with its name first;
//  6. unframed non-strict binary, only when the configuration pins the
//     binary protocol or the unframed transport: these bytes are too
//     ambiguous to guess.
//
// A length is at most s.maxFrame. Rule 1 comes first because a first word
// of 0x80000000 or more is no frame length (Apache's libraries read it as
// negative): 80 01 and 82 x1 there start unframed messages. Rule 4 cannot
// take a frame of the other rules: its second word, a length, starts with
// a byte of at most 0x3f, and as a non-strict name length it would be
// longer than its frame.
func detect(b []byte, s *settings) (t Transport, p Protocol, ok bool, err error) {
	allowT := func(x Transport) bool { return s.transport == TransportAuto || s.transport == x }
	allowP := func(x Protocol) bool { return s.protocol == ProtocolAuto || s.protocol == x }
	if len(b) < 2 {
		return 0, 0, false, nil
	}
	if allowT(TransportUnframed) {
		if p := sniffVersion(b); p != ProtocolAuto && allowP(p) {
			return TransportUnframed, p, true, nil
		}
	}
	if len(b) < 4 {
		return 0, 0, false, nil
	}
	size := int(be32(b))
	framedT := allowT(TransportHeader) || allowT(TransportFramed) || allowT(TransportFramedHeader)
	if size > 0 && size <= s.maxFrame && framedT {
		if len(b) < 6 {
			return 0, 0, false, nil
		}
		if allowT(TransportHeader) && binary.BigEndian.Uint16(b[4:]) == headerMagic {
			if len(b) <= headerFixedSize {
				return 0, 0, false, nil
			}
			p, err := headerProtocol(b[headerFixedSize])
			if err != nil {
				return 0, 0, false, err
			}
			if !allowP(p) {
				return 0, 0, false, malformed("THeader with the %v protocol, configured for %v", p, s.protocol)
			}
			return TransportHeader, p, true, nil
		}
		if allowT(TransportFramed) {
			if p := sniffVersion(b[4:]); p != ProtocolAuto && allowP(p) {
				return TransportFramed, p, true, nil
			}
		}
		// The inner frame holds at least the THeader fixed part and one
		// word of header section, with the protocol id.
		if allowT(TransportFramedHeader) && size >= headerFixedSize+4 {
			if len(b) < 10 {
				return 0, 0, false, nil
			}
			if int(be32(b[4:])) == size-4 && binary.BigEndian.Uint16(b[8:]) == headerMagic {
				if len(b) <= 4+headerFixedSize {
					return 0, 0, false, nil
				}
				p, err := headerProtocol(b[4+headerFixedSize])
				if err != nil {
					return 0, 0, false, err
				}
				if !allowP(p) {
					return 0, 0, false, malformed("THeader with the %v protocol, configured for %v", p, s.protocol)
				}
				return TransportFramedHeader, p, true, nil
			}
		}
		if allowT(TransportFramed) {
			if allowP(ProtocolBinary) {
				switch sniffNonStrict(b[4:], size) {
				case yes:
					return TransportFramed, ProtocolBinary, true, nil
				case wait:
					return 0, 0, false, nil
				}
			}
		}
	}
	if allowT(TransportUnframed) && allowP(ProtocolBinary) &&
		(s.protocol == ProtocolBinary || s.transport == TransportUnframed) {
		switch sniffNonStrict(b, s.maxFrame) {
		case yes:
			return TransportUnframed, ProtocolBinary, true, nil
		case wait:
			return 0, 0, false, nil
		}
	}
	if framedT && size > s.maxFrame && size <= maxLength {
		return 0, 0, false, malformed("frame length %d over max_frame_bytes %d", size, s.maxFrame)
	}
	return 0, 0, false, malformed("not a Thrift message for transport %v, protocol %v (% x)", s.transport, s.protocol, b[:min(len(b), 8)])
}

// sniffVersion recognises the first two bytes of a strict binary or a
// compact message. It returns ProtocolAuto for anything else.
func sniffVersion(b []byte) Protocol {
	switch {
	case b[0] == 0x80 && b[1] == 0x01:
		return ProtocolBinary
	case b[0] == compactProtocolID && b[1]&compactVersionMask == compactVersion:
		return ProtocolCompact
	}
	return ProtocolAuto
}

// sniffNonStrict recognises a non-strict binary message head (name length,
// name, message type) at the start of m, in a message of at most size bytes.
func sniffNonStrict(m []byte, size int) verdict {
	if len(m) < 4 {
		return wait
	}
	n := int(int32(be32(m)))
	if n < 0 || n+9 > size { // name, type, sequence id
		return no
	}
	if len(m) <= 4+n {
		return wait
	}
	if t := m[4+n]; t < msgCall || t > msgOneway {
		return no
	}
	return yes
}

// headerProtocol maps a THeader protocol id (one varint byte) to a protocol.
func headerProtocol(id byte) (Protocol, error) {
	switch id {
	case headerProtoBin:
		return ProtocolBinary, nil
	case headerProtoComp:
		return ProtocolCompact, nil
	}
	return 0, malformed("THeader protocol id %d not supported", id)
}
