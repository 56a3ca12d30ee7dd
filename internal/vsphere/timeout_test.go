package vsphere

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// silentListener accepts connections and never answers, as a wedged
// vCenter (or a firewall that lets the SYN through to a dead proxy) does.
func silentListener(t *testing.T) string {
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

func TestSyncSilentEndpointTimesOut(t *testing.T) {
	addr := silentListener(t)
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			ep, err := ParseEndpoint(scheme+"://admin:Secr3tPass@"+addr+"/sdk", true)
			if err != nil {
				t.Fatal(err)
			}
			ep.Timeout = 300 * time.Millisecond
			start := time.Now()
			_, err = Sync(context.Background(), ep)
			if err == nil {
				t.Fatal("sync against an endpoint that never answers succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("sync took %v to give up", d)
			}
			msg := err.Error()
			if !strings.Contains(msg, addr) || !strings.Contains(msg, "no answer within") {
				t.Errorf("error does not name the host or the cause: %v", msg)
			}
			if strings.Contains(msg, "Secr3tPass") {
				t.Errorf("error holds the password: %v", msg)
			}
		})
	}
}
