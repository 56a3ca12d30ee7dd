package libvirt

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// silentListener accepts connections and never answers: a libvirtd or
// vCenter that is stopped (SIGSTOP) or wedged looks like this.
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

func TestSyncSilentDaemonTimesOut(t *testing.T) {
	addr := silentListener(t)
	uri := "hv-x=test+tcp://admin:Secr3tPass@" + addr + "/default"
	tg, err := ParseTarget(uri)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = SyncTimeout(context.Background(), []Target{tg}, 300*time.Millisecond)
	if err == nil {
		t.Fatal("sync against a daemon that never answers succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sync took %v to give up", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, addr) || !strings.Contains(msg, "did not answer") {
		t.Errorf("error does not name the host or the cause: %v", msg)
	}
	if strings.Contains(msg, "Secr3tPass") {
		t.Errorf("error holds the password: %v", msg)
	}
}

func TestSyncContextEndsDial(t *testing.T) {
	addr := silentListener(t)
	tg, _ := ParseTarget("test+tcp://" + addr + "/default")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := SyncTimeout(ctx, []Target{tg}, time.Hour); err == nil {
		t.Fatal("sync succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sync ignored its context for %v", d)
	}
}
