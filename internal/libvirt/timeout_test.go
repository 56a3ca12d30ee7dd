package libvirt

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testnet"
)

func TestSyncSilentDaemonTimesOut(t *testing.T) {
	addr := testnet.SilentListener(t)
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
	addr := testnet.SilentListener(t)
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

// TestWedgedDaemonOneSocket: a scheduler that retries a wedged libvirtd
// (vguard serve does, for days) opens one connection to it, not one per
// attempt: go-libvirt cannot close a connection whose peer never answers,
// so each would keep its socket and goroutines.
func TestWedgedDaemonOneSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	tg, err := ParseTarget("hv-w=test+tcp://" + ln.Addr().String() + "/default")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		_, err := DialTimeout(context.Background(), tg, 100*time.Millisecond)
		if err == nil {
			t.Fatal("a daemon that never answers was connected to")
		}
		if i > 0 && !strings.Contains(err.Error(), "an earlier connection to it has not answered yet") {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	ln.Close()
	var conns []net.Conn
	for c := range accepted {
		conns = append(conns, c)
	}
	if len(conns) != 1 {
		t.Errorf("%d connections opened to the wedged daemon, want 1", len(conns))
	}
	// Once the daemon's side goes away, the target may be tried again.
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for wedged.has(Redact(tg.URI)) {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned connection was never released after its peer closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
