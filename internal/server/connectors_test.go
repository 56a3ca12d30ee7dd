package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

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
	// The sync's age is a metric of the replica that synced only.
	withAge := 0
	for _, s := range servers {
		rec := httptest.NewRecorder()
		s.metrics.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if strings.Contains(rec.Body.String(), `vguard_sync_age_seconds{connector="inventory"}`) {
			withAge++
		}
	}
	if withAge != 1 {
		t.Errorf("%d replicas report vguard_sync_age_seconds; want 1, the lease holder", withAge)
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

// slowConnector blocks each Sync for longer than the lease lasts and
// records how many Syncs run at once, across replicas.
type slowConnector struct {
	inFlight, most, syncs *atomic.Int64
	block                 time.Duration
	data                  []byte
}

func (c slowConnector) Sync(context.Context) ([]load.Source, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.most.Load()
		if n <= m || c.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(c.block) // ignores ctx on purpose: the worst case
	c.syncs.Add(1)
	return []load.Source{{Name: "estate.yaml", Data: c.data}}, nil
}

// Two replicas, a connector whose sync takes two lease lifetimes: the
// holder renews the lease while it syncs, so the other replica never
// syncs at the same time.
func TestLeaseRenewedWhileSyncing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vguard.db")
	var inFlight, most, syncs atomic.Int64
	data := read(t, filepath.Join(examples, "vlan-typo", "estate.yaml"))
	// Renewal every 100 ms leaves room for a slow write on a loaded
	// machine; each sync outlives the lease twice.
	ttl := 300 * time.Millisecond
	factories := map[string]ConnectorFactory{"slow": func(ConnectorConfig) (Connector, error) {
		return slowConnector{inFlight: &inFlight, most: &most, syncs: &syncs, block: 2 * ttl, data: data}, nil
	}}
	for _, holder := range []string{"replica-a", "replica-b"} {
		st, err := store.OpenSQLite(ctx, path, store.SQLiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inv", Kind: "slow", Every: time.Millisecond}}}
		cfg.Validate()
		srv, err := New(ctx, cfg, Options{Store: st, Connectors: factories, Holder: holder, LeaseTTL: ttl, ReloadEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syncs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syncs.Load() < 3 {
		t.Fatalf("only %d syncs", syncs.Load())
	}
	if most.Load() != 1 {
		t.Fatalf("%d syncs ran at once on two replicas", most.Load())
	}
}

// stealingConnector loses the lease in the middle of its sync (another
// holder takes it), then returns documents anyway, ignoring its context.
type stealingConnector struct {
	st       store.Store
	canceled chan time.Duration
	data     []byte
}

func (c stealingConnector) Sync(ctx context.Context) ([]load.Source, error) {
	_ = c.st.ReleaseLease(context.Background(), leaseName, "replica-a")
	if ok, err := c.st.AcquireLease(context.Background(), leaseName, "intruder", time.Now(), time.Hour); !ok || err != nil {
		panic(fmt.Sprint("could not steal the lease: ", ok, err))
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		c.canceled <- time.Since(start)
	case <-time.After(5 * time.Second):
		c.canceled <- -1
	}
	return []load.Source{{Name: "estate.yaml", Data: c.data}}, nil
}

// A replica that loses the lease mid-sync has its sync's context canceled
// within the renewal period, and what the sync returns anyway is refused
// at the store (fencing): no document, no sync record.
func TestLeaseLostMidSync(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "vguard.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ttl := 150 * time.Millisecond
	canceled := make(chan time.Duration, 10)
	data := read(t, filepath.Join(examples, "vlan-typo", "estate.yaml"))
	factories := map[string]ConnectorFactory{"steal": func(ConnectorConfig) (Connector, error) {
		return stealingConnector{st: st, canceled: canceled, data: data}, nil
	}}
	cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inv", Kind: "steal", Every: time.Hour}}}
	cfg.Validate()
	srv, err := New(ctx, cfg, Options{Store: st, Connectors: factories, Holder: "replica-a", LeaseTTL: ttl, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-canceled:
		if d < 0 || d > 2*ttl { // renewal every ttl/3; slack for a loaded machine
			t.Fatalf("the sync's context ended %v after the lease was lost; want within %v", d, ttl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connector never ran")
	}
	time.Sleep(100 * time.Millisecond) // time for a write that must not happen
	srv.Close()
	if _, err := st.Document(ctx, store.KindEstate, "connectors/inv/estate.yaml"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a replica without the lease stored its sync: %v", err)
	}
	recs, _ := st.AuditRecords(ctx, 0, 100)
	for _, r := range recs {
		if r.Kind == audit.KindSync && strings.Contains(string(r.Data), `"ok":true`) {
			t.Fatalf("a sync without the lease is recorded as done: %s", r.Data)
		}
	}
}

// shrinkingConnector returns two documents on its first sync and one
// afterwards.
type shrinkingConnector struct {
	syncs       *atomic.Int64
	estate, vm2 []byte
}

func (c shrinkingConnector) Sync(context.Context) ([]load.Source, error) {
	if c.syncs.Add(1) == 1 {
		return []load.Source{{Name: "estate.yaml", Data: c.estate}, {Name: "more/vm.yaml", Data: c.vm2}}, nil
	}
	return []load.Source{{Name: "estate.yaml", Data: c.estate}}, nil
}

// A document a connector no longer returns is removed. The documents of a
// connector missing from a replica's config are kept; those of one marked
// remove: true go when a replica takes the lease.
func TestConnectorDocumentsReplaced(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "vguard.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var syncs atomic.Int64
	vm2 := []byte("apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: extra, hypervisor: esx-core-1, owner: x, app: x, securityLevel: low, homeZone: office, nics: [{network: vlan20}]}\n")
	factories := map[string]ConnectorFactory{"shrink": func(ConnectorConfig) (Connector, error) {
		return shrinkingConnector{syncs: &syncs, estate: read(t, filepath.Join(examples, "vlan-typo", "estate.yaml")), vm2: vm2}, nil
	}}
	cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inv", Kind: "shrink", Every: time.Millisecond}}}
	cfg.Validate()
	srv, err := New(ctx, cfg, Options{Store: st, Connectors: factories, LeaseTTL: 60 * time.Millisecond, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syncs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Close()
	docs, _ := st.Documents(ctx, store.KindEstate)
	if len(docs) != 1 || docs[0].Name != "connectors/inv/estate.yaml" {
		t.Fatalf("after the connector stopped returning more/vm.yaml: %v", docNames(docs))
	}
	// Started again without the connector (another replica's config, or
	// a rolling change): its documents stay.
	cfg = &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "other", Kind: "shrink", Every: time.Hour}}}
	cfg.Validate()
	syncs.Store(1)
	srv, err = New(ctx, cfg, Options{Store: st, Connectors: factories, LeaseTTL: 60 * time.Millisecond, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		docs, _ = st.Documents(ctx, store.KindEstate)
		if len(docs) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // time for a removal that must not happen
	srv.Close()
	docs, _ = st.Documents(ctx, store.KindEstate)
	if got := docNames(docs); len(got) != 2 || got[0] != "connectors/inv/estate.yaml" {
		t.Fatalf("a replica without the connector in its config: %v; want both connectors' documents", got)
	}
	// Marked remove: true: its documents go.
	cfg = &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "other", Kind: "shrink", Every: time.Hour}, {Name: "inv", Remove: true}}}
	cfg.Validate()
	syncs.Store(1)
	srv, err = New(ctx, cfg, Options{Store: st, Connectors: factories, LeaseTTL: 60 * time.Millisecond, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		docs, _ = st.Documents(ctx, store.KindEstate)
		if len(docs) == 1 && docs[0].Name == "connectors/other/estate.yaml" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Close()
	if len(docs) != 1 || docs[0].Name != "connectors/other/estate.yaml" {
		t.Fatalf("after the connector was marked remove: %v", docNames(docs))
	}
}

func docNames(docs []store.Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Name)
	}
	return out
}

// TestSlowSyncIsNoFailure: a sync that takes longer than `every` but stays
// within its timeout is healthy: due runs meanwhile are not started, and
// nothing is reported as failed (only a sync given up at its deadline is).
func TestSlowSyncIsNoFailure(t *testing.T) {
	ctx := context.Background()
	var inFlight, most, syncs atomic.Int64
	data := []byte("apiVersion: vguard.dev/v1\nkind: Estate\nhypervisors: [{name: hv-1}]\n")
	factories := map[string]ConnectorFactory{"slow": func(ConnectorConfig) (Connector, error) {
		return slowConnector{inFlight: &inFlight, most: &most, syncs: &syncs, block: 300 * time.Millisecond, data: data}, nil
	}}
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "vguard.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inv", Kind: "slow", Every: time.Millisecond, Timeout: time.Minute}}}
	cfg.Validate()
	srv, err := New(ctx, cfg, Options{Store: st, Connectors: factories, Holder: "a", LeaseTTL: 60 * time.Millisecond, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	deadline := time.Now().Add(10 * time.Second)
	for syncs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syncs.Load() < 3 {
		t.Fatalf("only %d syncs", syncs.Load())
	}
	var m dto.Metric
	if err := srv.metrics.syncFail.WithLabelValues("inv").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 0 {
		t.Errorf("%v syncs reported failed while each took longer than every, within its timeout", n)
	}
}
