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
//  4. framed non-strict binary: a length, then a message with its name first;
//  5. unframed non-strict binary, only when the configuration pins the
//     binary protocol or the unframed transport: these bytes are too
//     ambiguous to guess.
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
	if size > 0 && size <= s.maxFrame && (allowT(TransportHeader) || allowT(TransportFramed)) {
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
