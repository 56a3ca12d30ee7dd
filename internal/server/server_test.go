package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/api"
	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/report"
	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/token"
)

const examples = "../../examples/changes"

type testServer struct {
	dbPath string
	t      testing.TB
	srv    *Server
	st     store.Store
	url    string
	tokens map[token.Role]string
}

func newTestServer(t testing.TB, mutate func(*Config)) *testServer {
	t.Helper()
	return newTestServerOpts(t, mutate, Options{})
}

// newTestServerOpts is newTestServer with options (o.Store is set here).
func newTestServerOpts(t testing.TB, mutate func(*Config), o Options) *testServer {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "vguard.db")
	st, err := store.OpenSQLite(ctx, dbPath, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &Config{Judges: 2}
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o.Store = st
	srv, err := New(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	ts := &testServer{t: t, srv: srv, st: st, url: hs.URL, tokens: map[token.Role]string{}, dbPath: dbPath}
	for _, r := range []token.Role{token.Viewer, token.Operator, token.Admin} {
		_, secret, err := CreateToken(ctx, st, "test-"+r.String(), r.String(), "test")
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[r] = secret
	}
	return ts
}

// do sends a request as role (None: no token) and returns status and body.
func (ts *testServer) do(role token.Role, method, path string, body []byte) (int, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if role != token.None {
		req.Header.Set("Authorization", "Bearer "+ts.tokens[role])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	ts.checkDeclared(req, resp)
	return resp.StatusCode, out
}

// openAPIResponses is api/openapi.json's responses: "METHOD /path" (the
// document's path template) → status code → the headers declared for it.
var openAPIResponses = sync.OnceValues(func() (map[string]map[string]map[string]bool, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]json.RawMessage `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		return nil, err
	}
	out := map[string]map[string]map[string]bool{}
	for p, ops := range doc.Paths {
		for method, op := range ops {
			codes := map[string]map[string]bool{}
			for code, r := range op.Responses {
				codes[code] = map[string]bool{}
				for h := range r.Headers {
					codes[code][http.CanonicalHeaderKey(h)] = true
				}
			}
			out[strings.ToUpper(method)+" "+p] = codes
		}
	}
	return out, nil
})

// checkDeclared holds api/openapi.json to what the server does: every
// answer a test gets from a route of the table must have a status code
// the document declares for that route, and each Vguard-* header in it
// must be declared for that code. So every request of these tests checks
// the document, the error paths included.
func (ts *testServer) checkDeclared(req *http.Request, resp *http.Response) {
	ts.t.Helper()
	_, pattern := ts.srv.mux.Handler(req)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return // the catch-all 404, not a route of the table
	}
	doc, err := openAPIResponses()
	if err != nil {
		ts.t.Fatalf("api/openapi.json: %v", err)
	}
	op := method + " " + strings.ReplaceAll(path, "...}", "}")
	codes, ok := doc[op]
	if !ok {
		return // TestOpenAPICoversRoutes reports it
	}
	code := strconv.Itoa(resp.StatusCode)
	headers, ok := codes[code]
	if !ok {
		ts.t.Errorf("%s answered %d, which api/openapi.json does not declare for %s", req.URL.Path, resp.StatusCode, op)
		return
	}
	for h := range resp.Header {
		if strings.HasPrefix(h, "Vguard-") && !headers[h] {
			ts.t.Errorf("%s answered %d with header %s, which api/openapi.json does not declare for %s", req.URL.Path, resp.StatusCode, h, op)
		}
	}
}

func (ts *testServer) must(role token.Role, method, path string, body []byte, want int) []byte {
	ts.t.Helper()
	code, out := ts.do(role, method, path, body)
	if code != want {
		ts.t.Fatalf("%s %s: %d %s; want %d", method, path, code, out, want)
	}
	return out
}

// upload puts every document of an example directory: estate and policy
// files, then manifests.
func (ts *testServer) upload(dir string) {
	ts.t.Helper()
	side, _ := filepath.Glob(filepath.Join(dir, "manifests", "*.json"))
	for _, f := range side {
		ts.must(token.Operator, "PUT", "/api/v1/manifests/manifests/"+filepath.Base(f), read(ts.t, f), 200)
	}
	if _, err := os.Stat(filepath.Join(dir, "policy.yaml")); err == nil {
		ts.must(token.Admin, "PUT", "/api/v1/policy", read(ts.t, filepath.Join(dir, "policy.yaml")), 200)
	}
	ts.must(token.Admin, "PUT", "/api/v1/estate?name=estate.yaml", read(ts.t, filepath.Join(dir, "estate.yaml")), 200)
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// cliVerdict is what `vguard plan --format json` prints for the example.
func cliVerdict(t *testing.T, dir string) []byte {
	t.Helper()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	res, err := load.Paths([]string{"."}, load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }})
	if err != nil {
		t.Fatal(err)
	}
	chg, err := change.Load("change.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := change.NewJudge(estate.NewIndex(res.Estate), res.Policy, check.NewDiskFiles())
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Judge(chg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.WritePlan(&b, report.JSON, &report.PlanReport{Decision: string(v.Decision), Introduced: v.Introduced, Resolved: v.Resolved, Unchanged: v.Unchanged}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAccess walks the router's whole route table: without a token every
// route but /healthz is refused (401), and with a token of a lesser role
// than the route's, 403. A route added to the table is walked too.
func TestAccess(t *testing.T) {
	ts := newTestServer(t, nil)
	routes := ts.srv.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes", len(routes))
	}
	param := regexp.MustCompile(`\{[a-z]+(\.\.\.)?\}`)
	_, revoked, err := CreateToken(context.Background(), ts.st, "gone", "admin", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := RevokeToken(context.Background(), ts.st, tokenID(revoked), "test"); err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		path := param.ReplaceAllString(rt.Path, "x")
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if rt.Role == token.None {
				if rt.Path != "/healthz" {
					t.Fatalf("%s is open to anyone", rt.Path)
				}
				ts.must(token.None, rt.Method, path, nil, 200)
				return
			}
			code, body := ts.do(token.None, rt.Method, path, nil)
			if code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s", code, body)
			}
			// A wrong token, and a revoked one, are refused alike.
			for _, bad := range []string{"vgt_00000000_forged", revoked} {
				req, _ := http.NewRequest(rt.Method, ts.url+path, nil)
				req.Header.Set("Authorization", "Bearer "+bad)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("token %s: %d", token.Redact(bad), resp.StatusCode)
				}
			}
			for r := token.Viewer; r < rt.Role; r++ {
				if code, body := ts.do(r, rt.Method, path, nil); code != http.StatusForbidden {
					t.Errorf("%s: %d %s", r, code, body)
				}
			}
			// The route's own role gets past the check (whatever the
			// handler then says of an empty request).
			if code, body := ts.do(rt.Role, rt.Method, path, nil); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s: %d %s", rt.Role, code, body)
			}
		})
	}
}

// TestOnlyBuildRoutesTouchesTheMux: TestAccess walks the route table, so
// nothing but buildRoutes may put a handler on the mux.
func TestOnlyBuildRoutesTouchesTheMux(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		text := string(read(t, f))
		n += strings.Count(text, "mux.Handle")
		if f != "routes.go" && strings.Contains(text, "mux.Handle") {
			t.Errorf("%s puts a handler on the mux outside buildRoutes", f)
		}
	}
	if n != 2 { // the table's routes and the catch-all 404
		t.Errorf("%d mux.Handle calls; want 2, both in buildRoutes", n)
	}
}

func TestJudgeLikePlan(t *testing.T) {
	for _, name := range []string{"night-patch", "vlan-typo", "hr-clone", "hr-clone-sanitized", "double-writer"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(examples, name)
			ts := newTestServer(t, nil)
			// Before an estate: a clear refusal.
			ts.must(token.Operator, "POST", "/api/v1/judge", read(t, filepath.Join(dir, "change.yaml")), http.StatusConflict)
			ts.upload(dir)
			got := ts.must(token.Operator, "POST", "/api/v1/judge?name=change.yaml", read(t, filepath.Join(dir, "change.yaml")), 200)
			if want := cliVerdict(t, dir); !bytes.Equal(got, want) {
				t.Fatalf("server verdict:\n%s\nvguard plan:\n%s", got, want)
			}
			var v struct{ Decision string }
			json.Unmarshal(got, &v)
			recs, err := ts.st.AuditRecords(context.Background(), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1]
			var data map[string]any
			json.Unmarshal(last.Data, &data)
			if last.Kind != audit.KindJudge || data["decision"] != v.Decision || last.Actor != "test-operator ("+tokenID(ts.tokens[token.Operator])+")" {
				t.Fatalf("last audit record %+v", last)
			}
		})
	}
}

func tokenID(secret string) string { return secret[4:12] }

func TestBadInput(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	ts.upload(filepath.Join(examples, "vlan-typo"))
	bad := []byte("apiVersion: vguard.dev/v1\nkind: Estate\nmetadata: {name: x}\nvms:\n  - name: a\n    hypervisr: h\n")
	code, body := ts.do(token.Admin, "PUT", "/api/v1/estate?name=prod.yaml", bad)
	if code != 400 || !strings.Contains(string(body), "prod.yaml:6") {
		t.Fatalf("malformed estate: %d %s", code, body)
	}
	// Nothing changed: the earlier estate still judges.
	ts.must(token.Operator, "POST", "/api/v1/judge", read(t, filepath.Join(examples, "vlan-typo", "change.yaml")), 200)
	code, body = ts.do(token.Operator, "POST", "/api/v1/judge?name=chg.yaml", []byte("apiVersion: vguard.dev/v1\nkind: Change\noperations:\n  - {op: migrate, vm: nope, to: h}\n"))
	if code != 400 || !strings.Contains(string(body), "chg.yaml:4") {
		t.Fatalf("bad change: %d %s", code, body)
	}
	code, body = ts.do(token.Operator, "POST", "/api/v1/judge", bytes.Repeat([]byte("#"), 65<<10))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body: %d %s", code, body)
	}
	for _, name := range []string{"../x.yaml", "/etc/passwd", "a//b.yaml", "connectors/x.yaml"} {
		if code, body := ts.do(token.Admin, "PUT", "/api/v1/estate?name="+name, bad); code != 400 {
			t.Errorf("name %q: %d %s", name, code, body)
		}
	}
	// The hint for a missing name shows a path of the endpoint's own kind.
	for path, hint := range map[string]string{"/api/v1/scans/": "/api/v1/scans/scans/web-1.json", "/api/v1/manifests/": "/api/v1/manifests/manifests/web-1.json"} {
		if code, body := ts.do(token.Operator, "PUT", path, read(t, filepath.Join(examples, "vlan-typo", "estate.yaml"))); code != 400 || !strings.Contains(string(body), hint) {
			t.Errorf("PUT %s (no name): %d %s; want 400 with %s", path, code, body, hint)
		}
	}
	code, body = ts.do(token.Operator, "PUT", "/api/v1/scans/scans/x.json", []byte(`{"image": 3}`))
	if code != 400 || !strings.Contains(string(body), "scans/x.json") {
		t.Fatalf("bad scan report: %d %s", code, body)
	}
	code, _ = ts.do(token.Viewer, "GET", "/api/v1/findings?severity=huge", nil)
	if code != 400 {
		t.Fatalf("bad filter: %d", code)
	}
}

func TestFindingsHistory(t *testing.T) {
	ts := newTestServer(t, nil)
	dir := filepath.Join(examples, "vlan-typo")
	ts.upload(dir)
	var open struct {
		Findings []map[string]any
		Count    int
	}
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings", nil, 200), &open)
	if open.Count != 0 {
		t.Fatalf("the example's estate before the typo has findings: %+v", open)
	}
	// The estate after the typo: VG101 and VG102 open.
	after := read(t, filepath.Join(dir, "estate.yaml"))
	after = bytes.Replace(after, []byte("network: vlan4"), []byte("network: vlan5"), 1)
	if bytes.Equal(after, read(t, filepath.Join(dir, "estate.yaml"))) {
		t.Fatal("the example changed: no vlan4 NIC to move; update this test")
	}
	ts.must(token.Admin, "PUT", "/api/v1/estate", after, 200)
	// The state published by the upload is known to be the stored
	// documents: the next poll does not load them again.
	if stamp, _ := ts.st.DocumentsStamp(context.Background()); ts.srv.state.Load().stamp != stamp {
		t.Fatalf("state stamp %q, store %q", ts.srv.state.Load().stamp, stamp)
	}
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings?pillar=confidentiality", nil, 200), &open)
	if open.Count == 0 {
		t.Fatal("no confidentiality finding after the typo")
	}
	f := open.Findings[0]
	if f["firstSeen"] == nil || f["lastSeen"] == nil || f["resolved"] != nil || f["check"] == nil || f["remediation"] == nil {
		t.Fatalf("finding %v", f)
	}
	check := f["check"].(string)
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings?check="+check+"&severity="+f["severity"].(string), nil, 200), &open)
	if open.Count != 1 {
		t.Fatalf("filter by check and severity: %+v", open)
	}
	// Fixed again: resolved, with its first sighting kept.
	ts.must(token.Admin, "PUT", "/api/v1/estate", read(t, filepath.Join(dir, "estate.yaml")), 200)
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings?state=resolved&check="+check, nil, 200), &open)
	if open.Count != 1 || open.Findings[0]["resolved"] == nil || open.Findings[0]["firstSeen"] != f["firstSeen"] {
		t.Fatalf("resolved: %+v", open)
	}
}

func TestTokensAuditAndReports(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.upload(filepath.Join(examples, "night-patch"))
	var created struct{ ID, Token, Role string }
	json.Unmarshal(ts.must(token.Admin, "POST", "/api/v1/tokens", []byte(`{"name":"ci","role":"operator"}`), 201), &created)
	if created.Role != "operator" || !strings.HasPrefix(created.Token, "vgt_"+created.ID) {
		t.Fatalf("created %+v", created)
	}
	ts.must(token.Admin, "POST", "/api/v1/tokens", []byte(`{"name":"ci","role":"root"}`), 400)
	ts.tokens[99] = created.Token
	ts.must(99, "POST", "/api/v1/judge", read(t, filepath.Join(examples, "night-patch", "change.yaml")), 200)
	list := ts.must(token.Admin, "GET", "/api/v1/tokens", nil, 200)
	if bytes.Contains(list, []byte(created.Token)) || bytes.Contains(list, []byte(token.Hash(created.Token))) {
		t.Fatal("the token list shows a secret or a hash")
	}
	ts.must(token.Admin, "DELETE", "/api/v1/tokens/"+created.ID, nil, 200)
	ts.must(99, "POST", "/api/v1/judge", nil, 401)
	ts.must(token.Admin, "DELETE", "/api/v1/tokens/"+created.ID, nil, 404)

	var v struct {
		OK      bool
		Records int
	}
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/audit/verify", nil, 200), &v)
	if !v.OK || v.Records < 10 {
		t.Fatalf("verify: %+v", v)
	}
	var recs struct{ Records []audit.Record }
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/audit?after=0&limit=1000", nil, 200), &recs)
	kinds := map[string]int{}
	for _, r := range recs.Records {
		kinds[r.Kind]++
	}
	for _, k := range []string{audit.KindTokenCreate, audit.KindTokenRevoke, audit.KindEstate, audit.KindPolicy, audit.KindFile, audit.KindJudge} {
		if kinds[k] == 0 {
			t.Errorf("no %s record in %v", k, kinds)
		}
	}
	// Tampering shows through the API too.
	db := ts.st
	if err := db.AppendAudit(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		r := audit.Record{Seq: h.Seq + 1, Time: "2026-01-01T00:00:00.000000000Z", Kind: "forged", Data: []byte("{}"), Prev: h.Hash, Hash: strings.Repeat("0", 64)}
		return []audit.Record{r}, nil
	}); err != nil {
		t.Fatal(err)
	}
	var broken struct {
		OK     bool
		Broken struct{ Seq int64 }
	}
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/audit/verify", nil, 200), &broken)
	if broken.OK || broken.Broken.Seq != int64(v.Records+1) {
		t.Fatalf("forged record not found: %+v", broken)
	}

	var br struct{ Scenarios []map[string]any }
	json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/blast-radius?top=2", nil, 200), &br)
	if len(br.Scenarios) == 0 {
		t.Fatal("no blast-radius scenario")
	}
	ts.must(token.Viewer, "GET", "/api/v1/blast-radius?fail=nope", nil, 400)
	code, body := ts.do(token.Viewer, "GET", "/api/v1/rollout?service=shop-web&to=web-master@4", nil)
	if code != 200 && code != 409 {
		t.Fatalf("rollout: %d %s", code, body)
	}
	if !bytes.Contains(body, []byte(`"web-master@4"`)) {
		t.Fatalf("rollout: %s", body)
	}
	metrics := string(ts.must(token.Viewer, "GET", "/metrics", nil, 200))
	for _, m := range []string{"vguard_http_requests_total", "vguard_judge_duration_seconds_count 1", "vguard_http_request_duration_seconds_bucket", "vguard_findings{severity=\"high\"}", "vguard_estate_age_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/openapi.json", nil, 200), &doc); err != nil || doc["openapi"] == nil {
		t.Fatalf("openapi: %v %v", err, doc["openapi"])
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "serve.yaml")
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	c, err := LoadConfig(write("store: {postgres: \"postgres://vg:s3cr%21t@db/vguard?sslmode=require\"}\nconnectors:\n  - {name: vc, kind: vsphere, every: 5m, settings: {url: https://vc, password: hunter2, nested: {apiToken: abc}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	for _, secret := range []string{"s3cr", "hunter2", "abc"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed config shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "https://vc") || c.Listen != DefaultListen || c.MaxBodyBytes != DefaultMaxBody {
		t.Errorf("config %+v\n%s", c, out)
	}
	if got := RedactDSN("host=db user=vg password='a b c' dbname=x"); strings.Contains(got, "b c") || !strings.Contains(got, "dbname=x") {
		t.Errorf("key=value DSN: %s", got)
	}
	// URLs that do not parse are redacted whole, and refused before start.
	for _, dsn := range []string{"postgres://vg:pa%zzword@db/vguard?sslmode=require", "postgresql://vg:hunter2@[::1/vguard?sslmode=disable"} {
		if got := RedactDSN(dsn); strings.Contains(got, "zzword") || strings.Contains(got, "hunter2") {
			t.Errorf("%s printed as %s", dsn, got)
		}
		_, err := LoadConfig(write("store: {postgres: \"" + dsn + "\"}\n"))
		if err == nil || !strings.Contains(err.Error(), "store.postgres") || strings.Contains(err.Error(), "zzword") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", dsn, err)
		}
	}
	// A '?' in the password ends the authority early: the rest is not a
	// port or a query to show.
	if got := RedactDSN("postgres://vg:12?wxyz@db/vguard"); strings.Contains(got, "wxyz") || strings.Contains(got, "12") {
		t.Errorf("misread URL printed as %s", got)
	}
	// Secrets in lists of settings, and URLs with a password, are
	// redacted at any depth.
	c, err = LoadConfig(write("connectors:\n  - {name: x, kind: y, settings: {hosts: [{password: p1}, [{apiKey: p2}]], uris: [\"qemu+ssh://root:p3@hv/system\"]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out = c.Redacted()
	for _, secret := range []string{"p1", "p2", "p3"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed config shows %q:\n%s", secret, out)
		}
	}
	// A TLS pair that does not load stops serve's start (CheckTLS), but
	// not the commands that only read the store: an auditor need not be
	// able to read the key.
	os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("not a certificate"), 0o600)
	c, err = LoadConfig(write("tls: {cert: bad.pem, key: no-such-key.pem}\n"))
	if err != nil {
		t.Errorf("a config whose key cannot be read: %v", err)
	} else if err := c.CheckTLS(); err == nil || !strings.Contains(err.Error(), "tls:") {
		t.Errorf("a bad TLS pair: %v", err)
	}
	// The schedule as used: every and timeout filled in, what would be
	// rounded up or ignored refused.
	c, err = LoadConfig(write("connectors:\n  - {name: a, kind: x}\n  - {name: b, kind: x, every: 30s}\n  - {name: c, kind: x, watch: true}\n  - {name: d, remove: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out = c.Redacted()
	for _, want := range []string{"every: 5m0s\n      timeout: 5m0s", "every: 30s\n      timeout: 1m0s", "watch: true", "remove: true"} {
		if !strings.Contains(out, want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "every:") != 2 {
		t.Errorf("printed config shows every for a watch or a removed connector:\n%s", out)
	}
	for text, want := range map[string]string{
		"listen: nope\n":                                               "listen",
		"tls: {cert: a.pem}\n":                                         "both cert and key",
		"store: {sqlite: a.db, postgres: x}\n":                         "not both",
		"maxBodyBytes: 10\n":                                           "too small",
		"bogus: 1\n":                                                   "bogus",
		"connectors: [{kind: x}, {name: a}]\n":                         "name: required",
		"store: {sqliteSync: sometimes}\n":                             "sqliteSync",
		"connectors: [{name: a, kind: x}, {name: a, kind: x}]\n":       "used twice",
		"connectors: [{name: a, kind: x, every: 5s}]\n":                "below 10s",
		"connectors: [{name: a, kind: x, every: 1m, watch: true}]\n":   "does not apply with watch",
		"connectors: [{name: a, kind: x, timeout: 1m, watch: true}]\n": "does not apply with watch",
		"connectors: [{name: a, remove: true, every: 1m}]\n":           "takes only the name",
	} {
		if _, err := LoadConfig(write(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", text, err, want)
		}
	}
	// A connector kind this build does not have is refused at start, and
	// so are built-in connectors' bad settings, without the password.
	st, _ := store.OpenSQLite(context.Background(), filepath.Join(dir, "x.db"), store.SQLiteOptions{})
	defer st.Close()
	t.Setenv("VG_TEST_PW", "hunter2")
	for _, cc := range []struct {
		kind     string
		settings map[string]any
		want     string
	}{
		{"hyperv", nil, "not available"},
		{"vsphere", map[string]any{"url": "https://u:hunter2@vc/sdk", "passwordEnv": "VG_TEST_PW"}, "must not hold the password"},
		{"vsphere", map[string]any{"url": "https://vc/sdk", "user": "u", "passwordEnv": "VG_NO_SUCH_VAR"}, "not set"},
		{"vsphere", map[string]any{"url": "https://vc/sdk", "user": "u", "passwordEnv": "VG_TEST_PW", "password": "hunter2"}, "exactly one"},
		{"vsphere", map[string]any{"url": "https://vc/sdk", "user": "u", "passwordEnv": "VG_TEST_PW", "bogus": 1}, "bogus"},
		{"vsphere", map[string]any{"url": "https://vc/sdk", "passwordEnv": "VG_TEST_PW"}, "user: required"},
	} {
		cfg := &Config{Connectors: []ConnectorConfig{{Name: "vc", Kind: cc.kind, Settings: cc.settings}}}
		cfg.Validate()
		_, err := New(context.Background(), cfg, Options{Store: st, Connectors: BuiltinConnectors()})
		if err == nil || !strings.Contains(err.Error(), cc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s %v: %v; want %q", cc.kind, cc.settings, err, cc.want)
		}
	}
	// A kind that cannot watch is refused with watch: true.
	cfg := &Config{Connectors: []ConnectorConfig{{Name: "s", Kind: "static", Watch: true}}}
	cfg.Validate()
	static := map[string]ConnectorFactory{"static": func(ConnectorConfig) (Connector, error) { return staticConnector{}, nil }}
	if _, err := New(context.Background(), cfg, Options{Store: st, Connectors: static}); err == nil || !strings.Contains(err.Error(), "cannot watch") {
		t.Errorf("watch on a kind without a watch: %v", err)
	}
}

// TestOpenAPICoversRoutes keeps the OpenAPI document and the route table
// in step: every route is documented with its role, and nothing else is.
func TestOpenAPICoversRoutes(t *testing.T) {
	ts := newTestServer(t, nil)
	var doc struct {
		Paths map[string]map[string]struct {
			Role string `json:"x-vguard-role"`
		}
	}
	if err := json.Unmarshal(ts.must(token.Viewer, "GET", "/api/openapi.json", nil, 200), &doc); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, rt := range ts.srv.Routes() {
		p := strings.ReplaceAll(rt.Path, "...}", "}")
		op, ok := doc.Paths[p][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s is not in api/openapi.json", rt.Method, p)
			continue
		}
		if op.Role != rt.Role.String() {
			t.Errorf("%s %s: openapi says role %s, the router %s", rt.Method, p, op.Role, rt.Role)
		}
		seen++
	}
	total := 0
	for _, ops := range doc.Paths {
		total += len(ops)
	}
	if total != seen {
		t.Errorf("api/openapi.json documents %d operations, the router has %d", total, seen)
	}
}

// TestReplicasCatchUp: two servers on one store (as two replicas on one
// PostgreSQL would be): an upload to one is judged by the other within a
// poll.
func TestReplicasCatchUp(t *testing.T) {
	ctx := context.Background()
	a := newTestServer(t, nil)
	st, err := store.OpenSQLite(ctx, a.dbPath, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &Config{Judges: 1}
	cfg.Validate()
	srvB, err := New(ctx, cfg, Options{Store: st, ReloadEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srvB.Handler())
	t.Cleanup(func() { hs.Close(); srvB.Close() })
	b := &testServer{t: t, srv: srvB, st: st, url: hs.URL, tokens: a.tokens}

	dir := filepath.Join(examples, "vlan-typo")
	chg := read(t, filepath.Join(dir, "change.yaml"))
	b.must(token.Operator, "POST", "/api/v1/judge", chg, http.StatusConflict) // no estate yet
	a.upload(dir)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := b.do(token.Operator, "POST", "/api/v1/judge", chg)
		if code == 200 {
			if !bytes.Contains(body, []byte(`"decision": "deny"`)) {
				t.Fatalf("replica b: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b never saw the upload: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A judge that panics goes back to the pool, and a request that ends
// while waiting for a judge stops waiting.
func TestJudgePool(t *testing.T) {
	s := &Server{metrics: newMetrics(&Server{})}
	st := &state{judges: make(chan *change.Judge, 1)}
	st.judges <- nil // a nil judge panics when used
	func() {
		defer func() { recover() }()
		s.judgeWith(context.Background(), st, &change.Change{})
		t.Fatal("no panic")
	}()
	if len(st.judges) != 1 {
		t.Fatal("the judge that panicked was lost")
	}
	<-st.judges
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.judgeWith(ctx, st, &change.Change{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a judge: %v", err)
	}
}

// slowLookup is a real store whose token lookups wait for a signal.
type slowLookup struct {
	store.Store
	started, release chan struct{}
}

func (s slowLookup) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	tok, err := s.Store.TokenByHash(ctx, hash)
	s.started <- struct{}{}
	<-s.release
	return tok, err
}

// A lookup that read the token before it was revoked through the API
// does not put it back into the cache afterwards.
func TestRevokeRacesLookup(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	_, secret, err := CreateToken(ctx, ts.st, "racer", "viewer", "test")
	if err != nil {
		t.Fatal(err)
	}
	sl := slowLookup{Store: ts.st, started: make(chan struct{}), release: make(chan struct{})}
	tc := &tokenCache{st: sl}
	req := httptest.NewRequest("GET", "/", nil)
	done := make(chan error)
	go func() { _, err := tc.lookup(req, token.Hash(secret)); done <- err }()
	<-sl.started // the lookup has read the valid token
	if err := RevokeToken(ctx, ts.st, tokenID(secret), "test"); err != nil {
		t.Fatal(err)
	}
	tc.forget(tokenID(secret))
	close(sl.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tc.st = ts.st
	if _, err := tc.lookup(req, token.Hash(secret)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the revoked token is still accepted: %v", err)
	}
}
