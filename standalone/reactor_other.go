//go:build !linux

package standalone

import (
	"net"

	"github.com/metaproxy/metaproxy/proxy"
)

// reactorSupported is false: without epoll the host runs one goroutine per
// connection.
const reactorSupported = false

func (l *Listener) startReactor(nc net.Conn) error { return l.startGoroutine(nc) }

func newReactorDialer(maxBuf int) proxy.Dialer { return dialer{maxBuf: maxBuf} }
