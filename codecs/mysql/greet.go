package mysql

import (
	"crypto/rand"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// The proxy's own greeting, for connections routed on user and database
// (codec.Greeter).
const (
	proxyConnID  = 1
	proxyVersion = "5.5.5-10.11.0-metaproxy"
)

var _ codec.Greeter = (*Codec)(nil)

// greeting is a downstream codec's state while the proxy authenticates
// the client against the server it chose for it.
type greeting struct {
	scramble [20]byte
	resp     HandshakeResponse
	seq      byte // the sequence id of the client's last packet
}

// Greet implements codec.Greeter: a HandshakeV10 with a fresh scramble of
// the proxy's, offering mysql_native_password and no TLS.
func (c *Codec) Greet(dst []byte) []byte {
	c.greet = &greeting{}
	_, _ = rand.Read(c.greet.scramble[:])
	for i := range c.greet.scramble {
		c.greet.scramble[i] = 1 + c.greet.scramble[i]%126 // no NUL, as servers do
	}
	return AppendGreeting(dst, proxyConnID, c.greet.scramble, proxyVersion)
}

// Handshake implements codec.Greeter: the client's HandshakeResponse41,
// answered later with the chosen server's challenge. The client's answer
// to the proxy's own scramble is dropped: the server checks the password.
func (c *Codec) Handshake(frame []byte) error {
	if c.greet == nil {
		return fmt.Errorf("mysql: handshake before the proxy's greeting")
	}
	r, err := ParseHandshakeResponse(frame)
	if err != nil {
		return err
	}
	r.Attrs = append([]byte(nil), r.Attrs...) // the frame does not outlive its message
	c.greet.resp, c.greet.seq = r, PacketSeq(frame)
	return nil
}

// ServerGreeting implements codec.Greeter: an AuthSwitchRequest carrying
// the server's scramble, so that the client answers the server's
// challenge.
func (c *Codec) ServerGreeting(dst, frame []byte) ([]byte, error) {
	g, err := ParseGreeting(frame)
	if err != nil {
		return dst, err
	}
	c.greet.resp.Caps &= g.Caps | CapLongPassword
	return AppendAuthSwitchRequest(dst, c.greet.seq+1, NativePasswordPlugin, g.Scramble), nil
}

// ClientAuth implements codec.Greeter: the client's handshake, now with
// its answer to the server's scramble, as the server's first client
// packet.
func (c *Codec) ClientAuth(dst, frame []byte) ([]byte, error) {
	if len(frame) < headerLen {
		return dst, malformed("short auth switch response")
	}
	c.greet.seq = PacketSeq(frame)
	c.greet.resp.Auth = append([]byte(nil), frame[headerLen:]...)
	c.greet.resp.Plugin = NativePasswordPlugin
	return AppendHandshakeResponse(dst, 1, c.greet.resp), nil
}

// ServerAuthReply implements codec.Greeter: the server's OK or ERR,
// renumbered to follow the client's last packet. Any other answer (a
// further auth switch, for a user of another plugin) ends the connection
// with an error: such users cannot be routed on their name.
func (c *Codec) ServerAuthReply(dst, frame []byte) ([]byte, bool, error) {
	if !IsOK(frame) && !IsErr(frame) {
		return dst, false, fmt.Errorf("mysql: the server wants another authentication exchange (a user of another auth plugin), which is not relayed when connections are routed on user or database")
	}
	n := len(dst)
	dst = append(dst, frame...)
	SetPacketSeq(dst[n:], c.greet.seq+1)
	c.greet = nil
	return dst, true, nil
}
