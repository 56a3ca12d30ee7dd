// Package testnet gives tests network peers that misbehave the way real
// ones do, for the timeouts of the connectors: a libvirtd stopped with
// SIGSTOP, a wedged vCenter, a dead proxy behind a firewall that lets the
// connection through.
package testnet

import (
	"net"
	"testing"
)

// SilentListener listens on a loopback port, accepts every connection and
// never answers; it returns the address. Everything is closed when the
// test ends.
func SilentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
