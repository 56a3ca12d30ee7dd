package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

// pgServer is newTestServer on a fresh PostgreSQL database.
func pgServer(t *testing.T) *testServer {
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &Config{Judges: 2}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, cfg, Options{Store: st, ReloadEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	ts := &testServer{t: t, srv: srv, st: st, url: hs.URL, tokens: map[token.Role]string{}}
	for _, r := range []token.Role{token.Viewer, token.Operator, token.Admin} {
		_, secret, err := CreateToken(ctx, st, "test-"+r.String(), r.String(), "test")
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[r] = secret
	}
	return ts
}

// TestNULNamesOnPostgres: a change or token named with a NUL (YAML "\0",
// JSON "\u0000"), which PostgreSQL cannot store in TEXT, is refused as bad
// input; changes sent at the same time as such ones are all judged and
// recorded (once, one NUL failed the whole group commit, and every verdict
// in it was refused with 500).
func TestNULNamesOnPostgres(t *testing.T) {
	ts := pgServer(t)
	dir := filepath.Join(examples, "night-patch")
	ts.upload(dir)
	good := string(read(t, filepath.Join(dir, "change.yaml")))
	bad := strings.Replace(good, "name: CHG-5120", `name: "CHG\0x"`, 1)
	if bad == good {
		t.Fatal("the example's change name moved")
	}
	code, body := ts.do(token.Operator, "POST", "/api/v1/judge", []byte(bad))
	if code != 400 || !strings.Contains(string(body), "metadata.name: control character U+0000") {
		t.Fatalf("NUL in a change's name: %d %s", code, body)
	}
	const n = 60
	var wg sync.WaitGroup
	codes := make([]int, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := good
			if i%2 == 1 {
				body = bad
			}
			codes[i], _ = ts.do(token.Operator, "POST", "/api/v1/judge", []byte(body))
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if want := []int{200, 400}[i%2]; c != want {
			t.Errorf("judge %d: %d, want %d", i, c, want)
		}
	}
	code, body = ts.do(token.Admin, "POST", "/api/v1/tokens", []byte(`{"name":"a\u0000b","role":"viewer"}`))
	if code != 400 || !strings.Contains(string(body), "control character U+0000") {
		t.Fatalf("NUL in a token's name: %d %s", code, body)
	}
	var v struct {
		OK      bool
		Records int
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/audit/verify", nil, 200), &v); err != nil || !v.OK || v.Records < n {
		t.Fatalf("audit verify: %+v %v", v, err)
	}
}
