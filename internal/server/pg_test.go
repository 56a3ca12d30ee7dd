package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/store/pgtest"
	"github.com/vguard-dev/vguard/internal/token"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// TestReplicasOnPostgres: two replicas on one PostgreSQL database receive
// uploads at the same moment that each load with the stored documents but
// not together (both define the same VM). Each upload is validated and
// stored under the store's lock, so exactly one is taken and the other is
// refused after validating again; the stored documents always load, and
// the findings' history is the one both replicas read.
func TestReplicasOnPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	var replicas []*testServer
	for _, holder := range []string{"a", "b"} {
		st, err := store.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := &Config{Judges: 1}
		cfg.Validate()
		srv, err := New(ctx, cfg, Options{Store: st, Holder: holder, ReloadEvery: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { hs.Close(); srv.Close() })
		replicas = append(replicas, &testServer{t: t, srv: srv, st: st, url: hs.URL, tokens: map[token.Role]string{}})
	}
	a, b := replicas[0], replicas[1]
	_, secret, err := CreateToken(ctx, a.st, "admin", "admin", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		r.tokens[token.Admin], r.tokens[token.Viewer] = secret, secret
	}
	a.upload(filepath.Join(examples, "vlan-typo"))
	for round := range 4 {
		vm := fmt.Sprintf("twin-%d", round)
		doc := []byte("apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: " + vm + ", hypervisor: esx-core-1, owner: x, app: x, securityLevel: low, homeZone: office, nics: [{network: vlan20}]}\n")
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = r.do(token.Admin, "PUT", fmt.Sprintf("/api/v1/estate?name=%s-%d.yaml", vm, i), doc)
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 400 || codes[0] == 400 && codes[1] == 200) {
			t.Fatalf("round %d: replicas answered %v; want one 200 and one 400", round, codes)
		}
	}
	// What is stored loads (a replica starting now would serve it), and
	// both replicas end up on it.
	cfg := &Config{Judges: 1}
	cfg.Validate()
	srv, err := New(ctx, cfg, Options{Store: a.st, ReloadEvery: -1})
	if err != nil {
		t.Fatalf("the stored documents do not load: %v", err)
	}
	want := srv.state.Load().stamp
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for a.srv.state.Load().stamp != want || b.srv.state.Load().stamp != want {
		if time.Now().After(deadline) {
			t.Fatal("the replicas did not converge on the stored documents")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The findings' history is shared: the same on both.
	fa := a.must(token.Viewer, "GET", "/api/v1/findings?state=all", nil, 200)
	fb := b.must(token.Viewer, "GET", "/api/v1/findings?state=all", nil, 200)
	if string(fa) != string(fb) {
		t.Fatalf("findings differ between replicas:\n%s\n%s", fa, fb)
	}
}
