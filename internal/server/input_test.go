package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/blast"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/token"
)

// syncBuffer is a log the server writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems"`
}

func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return e
}

// TestStoreErrorDuringUpload: a database failure while an upload is
// validated is the server's (500, logged), not a problem of the document
// (it once came back as 400 "does not load" with the database error and
// its path in problems).
func TestStoreErrorDuringUpload(t *testing.T) {
	var log syncBuffer
	ts := newTestServerOpts(t, nil, Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), ReloadEvery: -1})
	ts.upload(filepath.Join(examples, "night-patch"))
	ts.st.Close()
	code, body := ts.do(token.Admin, "PUT", "/api/v1/policy", read(t, filepath.Join(examples, "night-patch", "policy.yaml")))
	e := decodeError(t, body)
	if code != 500 || len(e.Problems) > 0 || strings.Contains(string(body), "sqlite") || strings.Contains(string(body), ts.dbPath) {
		t.Fatalf("PUT with the store closed: %d %s; want 500 without the database's error", code, body)
	}
	if !strings.Contains(log.String(), "database is closed") {
		t.Fatalf("the cause was not logged:\n%s", log.String())
	}
}

// TestStoreDown: with the store gone, /healthz says so (503, what a
// liveness probe looks for) and a judge gives no verdict it cannot record
// (500). Both codes are checked against api/openapi.json by ts.do.
func TestStoreDown(t *testing.T) {
	ts := newTestServerOpts(t, nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReloadEvery: -1})
	ts.upload(filepath.Join(examples, "night-patch"))
	chg := read(t, filepath.Join(examples, "night-patch", "change.yaml"))
	ts.must(token.Operator, "POST", "/api/v1/judge", chg, 200)
	ts.st.Close()
	ts.must(token.None, "GET", "/healthz", nil, http.StatusServiceUnavailable)
	if body := ts.must(token.Operator, "POST", "/api/v1/judge", chg, http.StatusInternalServerError); bytes.Contains(body, []byte("decision")) {
		t.Fatalf("a verdict that was not recorded was given: %s", body)
	}
}

// failingApply is the real store but for Apply, which fails as a database
// would, naming its file.
type failingApply struct{ store.Store }

func (failingApply) Apply(context.Context, store.Change) (store.Applied, error) {
	return store.Applied{}, errors.New("sqlite /srv/secret/vguard.db: disk I/O error")
}

// TestSyncStoreErrorNotInTrail: a sync that fails in the store is logged
// with its cause, and its audit record, which viewers read, says only
// that the store failed.
func TestSyncStoreErrorNotInTrail(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "vguard.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := read(t, filepath.Join(examples, "vlan-typo", "estate.yaml"))
	var syncs atomic.Int64
	factories := map[string]ConnectorFactory{"static": func(ConnectorConfig) (Connector, error) {
		return staticConnector{syncs: &syncs, data: data}, nil
	}}
	cfg := &Config{Judges: 1, Connectors: []ConnectorConfig{{Name: "inv", Kind: "static", Every: time.Hour}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	srv, err := New(ctx, cfg, Options{Store: failingApply{st}, Connectors: factories, ReloadEvery: -1,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for deadline := time.Now().Add(10 * time.Second); len(recs) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no sync was recorded")
		}
		time.Sleep(10 * time.Millisecond)
		if recs, err = st.AuditRecords(ctx, 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	var d struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(recs[0].Data, &d); err != nil || recs[0].Kind != audit.KindSync || d.OK {
		t.Fatalf("record %+v: %v", recs[0], err)
	}
	if strings.Contains(d.Error, "secret") || !strings.Contains(d.Error, "store failed") {
		t.Fatalf("the trail says %q; want no database error in it", d.Error)
	}
	if !strings.Contains(log.String(), "/srv/secret/vguard.db: disk I/O error") {
		t.Fatalf("the cause was not logged:\n%s", log.String())
	}
}

// TestSideFileErrorsNameTheFile: a scan report or manifest that does not
// parse is refused with the CLI's file:line: field: message.
func TestSideFileErrorsNameTheFile(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, c := range []struct{ path, body, want string }{
		{"/api/v1/scans/scans/x.json", "{\n\"image\": \n", `^scans/x\.json:3: `},
		{"/api/v1/scans/scans/x.json", "{\n\"image\": 3}\n", `^scans/x\.json:2: image: `},
		{"/api/v1/manifests/m/web-1.json", "{\n\"files\": [1,\n", `^m/web-1\.json:\d+: `},
		{"/api/v1/manifests/m/web-1.json", "[1]", `^m/web-1\.json:1: `},
	} {
		code, body := ts.do(token.Operator, "PUT", c.path, []byte(c.body))
		e := decodeError(t, body)
		if code != 400 || len(e.Problems) != 1 || !regexp.MustCompile(c.want).MatchString(e.Problems[0]) {
			t.Errorf("PUT %s %q: %d %s; want a problem matching %s", c.path, c.body, code, body, c.want)
		}
	}
}

// TestBlastRadiusPairsDefault: k=2 without top gives what
// `vguard blast-radius --k 2 --format json` gives: up to 20 pairs.
func TestBlastRadiusPairsDefault(t *testing.T) {
	dir := filepath.Join(examples, "night-patch")
	ts := newTestServer(t, nil)
	ts.upload(dir)
	res, err := load.Paths([]string{filepath.Join(dir, "estate.yaml"), filepath.Join(dir, "policy.yaml")},
		load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }, SideFile: func(string, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	cli, _ := json.Marshal(blast.Report{Scenarios: blast.New(estate.NewIndex(res.Estate), blast.ByHypervisor).Pairs(20)})
	var want, got struct {
		Scenarios []any `json:"scenarios"`
	}
	if err := json.Unmarshal(cli, &want); err != nil || len(want.Scenarios) < 2 {
		t.Fatalf("the CLI's pairs: %d, %v; the example should have several", len(want.Scenarios), err)
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/blast-radius?k=2", nil, 200), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("k=2: %d scenarios, the CLI %d:\n%v\n%v", len(got.Scenarios), len(want.Scenarios), got, want)
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/blast-radius?k=2&top=1", nil, 200), &got); err != nil || len(got.Scenarios) != 1 {
		t.Fatalf("k=2&top=1: %d scenarios, %v", len(got.Scenarios), err)
	}
}

// TestDocumentKindPerEndpoint: an Estate sent to /api/v1/policy (or a
// Policy to /api/v1/estate) is refused naming the kind's line, and nothing
// is stored.
func TestDocumentKindPerEndpoint(t *testing.T) {
	dir := filepath.Join(examples, "night-patch")
	ts := newTestServer(t, nil)
	for _, c := range []struct{ path, file, want string }{
		{"/api/v1/policy?name=estate.yaml", "estate.yaml", `^estate\.yaml:\d+: kind: kind Estate does not go to /api/v1/policy .*PUT it to /api/v1/estate$`},
		{"/api/v1/estate?name=policy.yaml", "policy.yaml", `^policy\.yaml:\d+: kind: kind Policy does not go to /api/v1/estate .*PUT it to /api/v1/policy$`},
		{"/api/v1/estate?name=change.yaml", "change.yaml", `^change\.yaml:\d+: kind: kind Change does not go to /api/v1/estate \(want kind: Estate\)$`},
	} {
		code, body := ts.do(token.Admin, "PUT", c.path, read(t, filepath.Join(dir, c.file)))
		e := decodeError(t, body)
		if code != 400 || len(e.Problems) != 1 || !regexp.MustCompile(c.want).MatchString(e.Problems[0]) {
			t.Errorf("PUT %s: %d %s; want a problem matching %s", c.path, code, body, c.want)
		}
	}
	if docs := ts.srv.state.Load().docs; len(docs) != 0 {
		t.Fatalf("stored after refusals: %+v", docs)
	}
	// A document without a kind is left to the loader's message.
	code, body := ts.do(token.Admin, "PUT", "/api/v1/estate?name=e.yaml", []byte("apiVersion: vguard.dev/v1\nzones: []\n"))
	if code != 400 || !strings.Contains(string(body), "e.yaml:1: kind: missing kind") {
		t.Fatalf("no kind: %d %s", code, body)
	}
	ts.upload(dir) // the right endpoints still take them
}

// TestFindingsFilters: pillar and check are checked (a typo is a 400, not
// an empty list); check IDs are taken in any case, as by the CLI.
func TestFindingsFilters(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.must(token.Admin, "PUT", "/api/v1/estate", read(t, filepath.Join(examples, "..", "01-vlan-typo", "estate.yaml")), 200)
	var all struct {
		Findings []check.Finding `json:"findings"`
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings", nil, 200), &all); err != nil || len(all.Findings) == 0 {
		t.Fatalf("findings: %d %v", len(all.Findings), err)
	}
	id, pillar := all.Findings[0].Check, string(all.Findings[0].Pillar)
	want := ts.must(token.Viewer, "GET", "/api/v1/findings?check="+id+"&pillar="+pillar, nil, 200)
	if !bytes.Contains(want, []byte(`"check":"`+id+`"`)) {
		t.Fatalf("check=%s: %s", id, want)
	}
	if got := ts.must(token.Viewer, "GET", "/api/v1/findings?check="+strings.ToLower(id), nil, 200); !bytes.Equal(got, ts.must(token.Viewer, "GET", "/api/v1/findings?check="+id, nil, 200)) {
		t.Fatalf("check=%s differs from check=%s:\n%s", strings.ToLower(id), id, got)
	}
	for _, q := range []string{"pillar=confidentialty", "pillar=Confidentiality", "check=VG9999", "check=nonsense"} {
		code, body := ts.do(token.Viewer, "GET", "/api/v1/findings?"+q, nil)
		if code != 400 {
			t.Errorf("%s: %d %s; want 400", q, code, body)
		}
	}
}

// TestFindingsAbout: about=vm/NAME gives the findings that concern the VM
// as subject or as a related object (the libvirt hook asks this way for
// what a starting domain carries): a clone's VG201 names one copy as its
// subject and the other as related.
func TestFindingsAbout(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.must(token.Admin, "PUT", "/api/v1/estate", []byte(`apiVersion: vguard.dev/v1
kind: Estate
hypervisors: [{name: hv-1}, {name: hv-2}]
vms:
  - {name: app-0, hypervisor: hv-1, identity: {uuid: 6695eb01-f6a4-8304-79aa-97f2502e1931}}
  - {name: app-1, hypervisor: hv-2, identity: {uuid: 6695eb01-f6a4-8304-79aa-97f2502e1931}}
`), 200)
	var got struct {
		Findings []check.Finding `json:"findings"`
	}
	for _, vm := range []string{"app-0", "app-1"} {
		if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings?state=open&about=vm/"+vm, nil, 200), &got); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(got.Findings, func(f check.Finding) bool { return f.Check == "VG201" }) {
			t.Errorf("about=vm/%s: no VG201 among %v", vm, got.Findings)
		}
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings?about=vm/nobody", nil, 200), &got); err != nil || len(got.Findings) != 0 {
		t.Errorf("about=vm/nobody: %v %v", got.Findings, err)
	}
	if code, body := ts.do(token.Viewer, "GET", "/api/v1/findings?about=vm/app-0&subject=vm/app-0", nil); code != 400 {
		t.Errorf("subject and about: %d %s; want 400", code, body)
	}
}
