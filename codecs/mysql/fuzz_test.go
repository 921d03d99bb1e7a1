package mysql

import (
	"bytes"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// FuzzDecode feeds arbitrary bytes to codecs of both sides, fresh and past
// the handshake (with and without multi-statements and query attributes):
// codectest.FuzzDecode checks they never panic, never split more than they
// were given, re-encode every accepted frame to itself, and that error
// and reject replies do not panic. Every frame also goes through the
// exported helpers, whose parses must round-trip. Seeded with the golden
// streams.
func FuzzDecode(f *testing.F) {
	factory, err := NewFactory(Options{MaxFrame: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	for _, gc := range goldenConns(f) {
		for _, b := range [][]byte{gc.ClientBytes, gc.ServerBytes} {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Add(cmd(0, comQuery, "\x01\x01\x00\x01\xfe\x00\x01n\x05value/*!50000 SELECT */ 1; DELETE"))
	f.Add(cmd(0, comChangeUser, "amy\x00\x14"+string(make([]byte, 20))+"db2\x00"))
	sides := []codec.Factory{
		codec.FactoryFunc(func() codec.Codec { return factory.NewCodecFor(codec.SideDownstream) }),
		codec.FactoryFunc(func() codec.Codec { return factory.NewCodecFor(codec.SideUpstream) }),
		codec.FactoryFunc(func() codec.Codec { return commandCodec(factory, "u", "d", GreetingCaps) }),
		codec.FactoryFunc(func() codec.Codec { return commandCodec(factory, "u", "", CapQueryAttributes|CapMultiStatements) }),
		afterHandshake(factory, codec.SideUpstream),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range sides {
			codectest.FuzzDecode(t, s, data)
		}
		for _, p := range packets(data) {
			helpers(t, p)
		}
		classify(data, true)
		useDatabase(data)
	})
}

// helpers runs every exported helper on pkt; parses must round-trip.
func helpers(t *testing.T, pkt []byte) {
	PacketSeq(pkt)
	IsOK(pkt)
	IsAuthSwitch(pkt)
	IsSSLRequest(pkt)
	SetPacketSeq(append([]byte(nil), pkt...), 9)
	if g, err := ParseGreeting(pkt); err == nil {
		NativePassword(g.Scramble, []byte("pw"))
		var s [20]byte
		copy(s[:], g.Scramble)
		if _, err := ParseGreeting(AppendGreeting(nil, g.ConnID, s, g.Version)); err != nil {
			t.Fatalf("AppendGreeting does not parse: %v", err)
		}
	}
	if hr, err := ParseHandshakeResponse(pkt); err == nil {
		out := AppendHandshakeResponse(nil, PacketSeq(pkt), hr)
		hr2, err := ParseHandshakeResponse(out)
		if err != nil || hr2.User != hr.User || hr2.Database != hr.Database || hr2.Plugin != hr.Plugin || hr2.Caps != hr.Caps ||
			!bytes.Equal(hr2.Auth, hr.Auth) || !bytes.Equal(hr2.Attrs, hr.Attrs) || hr2.ExtCaps != hr.ExtCaps || hr2.MaxPacket != hr.MaxPacket {
			t.Fatalf("handshake response %+v re-encoded as %+v (%v)", hr, hr2, err)
		}
	}
	if code, state, msg, ok := ParseErr(pkt); ok && (len(state) == 5 || len(msg) < 6 || msg[0] != '#') {
		c2, s2, m2, ok := ParseErr(AppendErr(nil, PacketSeq(pkt), code, state, msg))
		if !ok || c2 != code || s2 != state || m2 != msg {
			t.Fatalf("ERR %d %q %q re-encoded as %d %q %q", code, state, msg, c2, s2, m2)
		}
	}
	if IsErr(pkt) {
		AppendAuthSwitchRequest(nil, 2, string(payload(pkt)), payload(pkt))
	}
}
