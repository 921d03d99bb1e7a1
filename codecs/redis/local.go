package redis

import (
	"crypto/subtle"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

var _ codec.LocalAnswerer = (*Codec)(nil)

// NewSidedCodec implements codec.Sided.
func (f *Factory) NewSidedCodec(side codec.Side) codec.Codec { return f.NewCodecFor(side) }

// LocalAnswer implements codec.LocalAnswerer: the commands that set or
// read connection state are answered by the proxy, since upstream
// connections are shared by many clients (as Envoy's redis_proxy does):
//
//	PING [msg]          +PONG, or msg
//	ECHO msg            msg
//	SELECT 0            +OK; any other database is an error (one database)
//	QUIT                +OK, then the connection closes
//	AUTH [user] pw      checked against downstream_auth_password
//	HELLO ...           -NOPROTO: clients (go-redis v9) fall back to RESP2
//	CLIENT SETNAME|SETINFO  +OK (the name stays at the proxy)
//	SUBSCRIBE, MULTI, BLPOP... an error: they need a connection of their own (see bound)
//
// With downstream_auth_password set, every other command of a client that
// has not authenticated gets -NOAUTH.
func (c *Codec) LocalAnswer(dst []byte, req *codec.Message) ([]byte, bool, bool) {
	if req.Kind != codec.KindRequest {
		return dst, false, false
	}
	a, ok := request(req)
	if !ok {
		return dst, false, false
	}
	name := req.Meta.Value(codec.KeyMethod)
	switch name {
	case "AUTH":
		return c.auth(dst, a), true, false
	case "QUIT":
		return append(dst, "+OK\r\n"...), true, true
	case "HELLO":
		return AppendError(dst, "NOPROTO this proxy speaks RESP2 only"), true, false
	}
	if c.o.DownstreamAuthPassword != "" && !c.authed {
		return AppendError(dst, "NOAUTH Authentication required."), true, false
	}
	if bound[name] || (name == "XREAD" || name == "XREADGROUP") && hasBlock(a) {
		return AppendError(dst, "ERR "+name+" is not supported through metaproxy: it needs an upstream connection of its own, and upstream connections are shared"), true, false
	}
	switch name {
	case "PING":
		return PingReply(dst, req), true, false
	case "ECHO":
		if a.argc != 2 {
			return AppendError(dst, "ERR wrong number of arguments for 'echo' command"), true, false
		}
		return appendBulk(dst, a.bytes(1)), true, false
	case "SELECT":
		if db, ok := SelectDB(req); ok && db == 0 {
			return append(dst, "+OK\r\n"...), true, false
		}
		return AppendError(dst, "ERR only database 0 is served through this proxy"), true, false
	case "CLIENT":
		if a.argc >= 2 {
			if sub := strings.ToUpper(string(a.bytes(1))); sub == "SETNAME" || sub == "SETINFO" {
				return append(dst, "+OK\r\n"...), true, false
			}
		}
	}
	return dst, false, false
}

// bound are the commands that hold a connection in a state other clients'
// commands must not see (subscriptions, transactions, blocking pops, the
// replication stream): refused, since upstream connections are shared.
var bound = map[string]bool{
	"SUBSCRIBE": true, "PSUBSCRIBE": true, "SSUBSCRIBE": true, "UNSUBSCRIBE": true, "PUNSUBSCRIBE": true, "SUNSUBSCRIBE": true,
	"MONITOR": true, "MULTI": true, "EXEC": true, "DISCARD": true, "WATCH": true, "UNWATCH": true, "RESET": true,
	"BLPOP": true, "BRPOP": true, "BRPOPLPUSH": true, "BLMOVE": true, "BLMPOP": true, "BZPOPMIN": true, "BZPOPMAX": true, "BZMPOP": true,
	"WAIT": true, "WAITAOF": true, "SYNC": true, "PSYNC": true, "SWAPDB": true,
}

// hasBlock reports whether an XREAD or XREADGROUP blocks (BLOCK ms).
func hasBlock(a argIter) bool {
	for i := 1; i < a.argc; i++ {
		if equalFold(a.bytes(i), "BLOCK") {
			return true
		}
	}
	return false
}

func (c *Codec) auth(dst []byte, a argIter) []byte {
	want := c.o.DownstreamAuthPassword
	if want == "" {
		return AppendError(dst, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	}
	if a.argc < 2 || a.argc > 3 {
		return AppendError(dst, "ERR wrong number of arguments for 'auth' command")
	}
	pw := a.bytes(a.argc - 1) // AUTH pw, or AUTH user pw
	if subtle.ConstantTimeCompare(pw, []byte(want)) != 1 {
		c.authed = false
		return AppendError(dst, "WRONGPASS invalid username-password pair or user is disabled.")
	}
	c.authed = true
	return append(dst, "+OK\r\n"...)
}
