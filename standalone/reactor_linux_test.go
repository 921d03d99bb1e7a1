//go:build linux

package standalone

import (
	"net"
	"syscall"
	"testing"

	"github.com/metaproxy/metaproxy/proxy"
)

func init() {
	hosts = append(hosts, host{name: "reactor", reactor: true, wrap: adopt})
}

// adopt moves nc's socket to a loop; what the peer sends is discarded.
func adopt(t *testing.T, nc net.Conn, maxBuf int) proxy.Conn {
	t.Helper()
	fd, err := takeFd(nc)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loopFor()
	if err != nil {
		t.Fatal(err)
	}
	c := newRconn(lp, fd, maxBuf)
	c.onData = func([]byte) {}
	if err := lp.add(c, syscall.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	return c
}
