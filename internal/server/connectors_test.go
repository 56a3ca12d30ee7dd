package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/store"
)

// staticConnector is a connector of this test: it returns one estate
// document and counts its syncs. It stands for issue 6's connectors at the
// seam; the lease and the store behind it are real.
type staticConnector struct {
	syncs *atomic.Int64
	data  []byte
}

func (c staticConnector) Sync(context.Context) ([]load.Source, error) {
	c.syncs.Add(1)
	return []load.Source{{Name: "estate.yaml", Data: c.data}}, nil
}

// Two replicas on one store, both configured with the connector: only the
// one holding the lease runs it, and its documents reach the estate and
// the audit trail.
func TestConnectorLease(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vguard.db")
	var syncs atomic.Int64
	data := read(t, filepath.Join(examples, "vlan-typo", "estate.yaml"))
	factories := map[string]ConnectorFactory{"static": func(ConnectorConfig) (Connector, error) {
		return staticConnector{syncs: &syncs, data: data}, nil
	}}
	var servers []*Server
	for _, holder := range []string{"replica-a", "replica-b"} {
		st, err := store.OpenSQLite(ctx, path, store.SQLiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inventory", Kind: "static", Every: time.Hour}}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := New(ctx, cfg, Options{Store: st, Connectors: factories, Holder: holder})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syncs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // time for a second sync that must not happen
	for _, s := range servers {
		s.Close()
	}
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d syncs; want exactly 1 (one replica holds the lease)", n)
	}
	st := servers[0].st
	doc, err := st.Document(ctx, store.KindEstate, "connectors/inventory/estate.yaml")
	if err != nil || string(doc.Data) != string(data) {
		t.Fatalf("synced document: %v", err)
	}
	recs, err := st.AuditRecords(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		var d map[string]any
		json.Unmarshal(r.Data, &d)
		if r.Kind == audit.KindSync && r.Subject == "inventory" && d["ok"] == true {
			found = true
		}
	}
	if !found {
		t.Fatalf("no sync record in %+v", recs)
	}
	// Closing released the lease: another holder gets it at once.
	if ok, err := st.AcquireLease(ctx, leaseName, "replica-c", time.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("lease after close: %v %v", ok, err)
	}
}
