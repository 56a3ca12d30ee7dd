package vsphere

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/vsphere/vspheretest"
)

// TestWatchNICMove moves a low-security VM's NIC to the internet-facing
// port group while watching: VG101 and VG102 must appear within 2 s, and
// be resolved when the NIC moves back.
func TestWatchNICMove(t *testing.T) {
	sim := vspheretest.Start(t, 20)
	vspheretest.Scenario(t, sim)
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan connector.Event, 1000)
	var mu sync.Mutex
	updates := 0
	w := &connector.Watcher{
		Overlays: []string{"testdata/overlay.yaml"},
		Emit:     func(ev connector.Event) error { events <- ev; return nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, ep, 100*time.Millisecond, func(inv *connector.Inventory) error {
			mu.Lock()
			updates++
			mu.Unlock()
			return w.Update(inv)
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	// The first inventory: findings present, none about the low VM's zone.
	deadline := time.After(10 * time.Second)
	for {
		mu.Lock()
		n := updates
		mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case ev := <-events:
			if ev.Event != connector.EventPresent {
				t.Fatalf("first events are present ones, got %+v", ev)
			}
		case <-deadline:
			t.Fatal("no first inventory within 10 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	drain(events)

	f := sim.Finder(t)
	vm, err := f.VirtualMachine(context.Background(), vspheretest.VMWebLow)
	if err != nil {
		t.Fatal(err)
	}
	net, err := f.Network(context.Background(), vspheretest.PGInternet)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sim.MoveNIC(t, vm, net.(*object.DistributedVirtualPortgroup))
	got := waitFor(t, events, connector.EventAppeared, "vm/"+vspheretest.VMWebLow, []string{"VG101", "VG102"}, 2*time.Second)
	t.Logf("VG101/VG102 appeared %v after the NIC moved", time.Since(start))
	if got["VG101"].Finding.Severity.String() == "" {
		t.Error("finding without severity")
	}

	back, err := f.Network(context.Background(), vspheretest.PGInternal)
	if err != nil {
		t.Fatal(err)
	}
	sim.MoveNIC(t, vm, back.(*object.DistributedVirtualPortgroup))
	waitFor(t, events, connector.EventResolved, "vm/"+vspheretest.VMWebLow, []string{"VG101", "VG102"}, 2*time.Second)
}

func drain(ch chan connector.Event) {
	for {
		select {
		case <-ch:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

func waitFor(t *testing.T, ch chan connector.Event, kind, subject string, checks []string, within time.Duration) map[string]connector.Event {
	t.Helper()
	got := map[string]connector.Event{}
	timeout := time.After(within)
	for len(got) < len(checks) {
		select {
		case ev := <-ch:
			if ev.Event != kind || ev.Finding.Subject != subject {
				continue
			}
			for _, c := range checks {
				if ev.Finding.Check == c {
					got[c] = ev
				}
			}
		case <-timeout:
			t.Fatalf("within %v: want %s %v on %s, got %v", within, kind, checks, subject, got)
		}
	}
	return got
}
