//go:build !linux

package standalone

import (
	"net"

	"github.com/metaproxy/metaproxy/transport"
)

// reactorSupported is false: without epoll the host runs one goroutine per
// connection.
const reactorSupported = false

func (l *Listener) startReactor(nc net.Conn) error { return l.startGoroutine(nc) }

func newReactorDialer(maxBuf int) transport.Dialer { return dialer{maxBuf: maxBuf} }
