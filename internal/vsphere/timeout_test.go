package vsphere

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testnet"
)

func TestSyncSilentEndpointTimesOut(t *testing.T) {
	addr := testnet.SilentListener(t)
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
