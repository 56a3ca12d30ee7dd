package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vguard-dev/vguard/api"
	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/blast"
	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/report"
	"github.com/vguard-dev/vguard/internal/rollout"
	"github.com/vguard-dev/vguard/internal/scanreport"
	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/syntax"
	"github.com/vguard-dev/vguard/internal/token"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if _, err := s.st.SchemaVersion(r.Context()); err != nil {
		return &httpError{status: http.StatusServiceUnavailable, msg: "the store is unavailable", cause: err}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *caller) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(api.OpenAPI)
	return nil
}

func (s *Server) getEstate(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	st := s.state.Load()
	out := struct {
		Version   int64          `json:"version"`
		Loaded    time.Time      `json:"loaded"`
		Documents []docInfo      `json:"documents"`
		Estate    *report.Stats  `json:"estate"`
		Findings  report.Summary `json:"findings"`
	}{Version: st.version, Loaded: st.loaded, Documents: st.docs, Findings: report.Summarize(st.findings)}
	if out.Documents == nil {
		out.Documents = []docInfo{}
	}
	if st.res != nil {
		stats := report.StatsOf(st.res.Estate)
		out.Estate = &stats
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// readBody reads the request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, userError(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return data, nil
}

// docName checks a document name given by a client: a relative path, as
// the estate's documents name their side files.
func docName(name, def string) (string, error) {
	if name == "" {
		return def, nil
	}
	clean := path.Clean(name)
	if clean != name || strings.HasPrefix(name, "/") || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." ||
		strings.ContainsAny(name, "\\\x00") || len(name) > 512 {
		return "", userError(http.StatusBadRequest, "name %q: want a clean relative path such as estate.yaml or scans/web-1.json", name)
	}
	return name, nil
}

// inputError turns load or parse problems into a 400 that lists them as
// the CLI prints them (file:line: field: message).
func inputError(what string, err error) error {
	var lerrs load.Errors
	var serr *syntax.Error
	he := &httpError{status: http.StatusBadRequest, msg: what}
	switch {
	case errors.As(err, &lerrs):
		for _, e := range lerrs {
			he.problems = append(he.problems, e.Error())
		}
	case errors.As(err, &serr):
		he.problems = []string{serr.Error()}
	default:
		// Evaluation problems (a missing side file) are about the input
		// too, and name only paths the client sent.
		for _, line := range strings.Split(err.Error(), "\n") {
			he.problems = append(he.problems, line)
		}
	}
	return he
}

// putDocument replaces an estate or policy document: the estate with it
// must load and evaluate, or nothing changes.
func (s *Server) putDocument(kind, def string) handler {
	auditKind := audit.KindEstate
	if kind == store.KindPolicy {
		auditKind = audit.KindPolicy
	}
	return func(w http.ResponseWriter, r *http.Request, c *caller) error {
		name, err := docName(r.URL.Query().Get("name"), def)
		if err != nil {
			return err
		}
		if strings.HasPrefix(name, "connectors/") {
			return userError(http.StatusBadRequest, "name %q: connectors/ is kept for the connectors' documents", name)
		}
		data, err := readBody(r)
		if err != nil {
			return err
		}
		if err := checkKind(kind, name, data); err != nil {
			return inputError(fmt.Sprintf("the %s does not load; nothing was changed", kind), err)
		}
		doc := store.Document{Kind: kind, Name: name, Data: data, Updated: time.Now().UTC()}
		return s.update(w, r, c, doc, auditKind)
	}
}

// checkKind refuses documents of another kind than the endpoint's (an
// Estate sent to /api/v1/policy): stored under the wrong kind, an estate
// would load but not count as uploaded, and the audit record would name the
// wrong kind of update. Documents without a kind, or that do not parse,
// are left to the loader, which says what is wrong with them.
func checkKind(kind, name string, data []byte) error {
	want, other := "Estate", "policy"
	if kind == store.KindPolicy {
		want, other = "Policy", "estate"
	}
	docs, perr := load.ParseDocuments(name, data)
	if perr != nil {
		return nil
	}
	var errs load.Errors
	for _, d := range docs {
		k := d.Get("kind")
		if k == nil || k.Kind != syntax.ScalarNode || k.Value == want {
			continue
		}
		msg := fmt.Sprintf("kind %s does not go to /api/v1/%s (want kind: %s)", k.Value, kind, want)
		if k.Value == "Estate" || k.Value == "Policy" {
			msg += fmt.Sprintf("; PUT it to /api/v1/%s", other)
		}
		errs = append(errs, &syntax.Error{File: name, Line: k.Line, Path: "kind", Msg: msg})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// withFile names file in a parse error that does not name its file yet, so
// that it reads as the CLI prints it (file:line: field: message).
func withFile(file string, err error) error {
	var serr *syntax.Error
	if errors.As(err, &serr) && serr.File == "" {
		e := *serr
		e.File = file
		return &e
	}
	return fmt.Errorf("%s: %w", file, err)
}

// putSideFile stores a scan report or manifest after parsing it.
func (s *Server) putSideFile(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request, c *caller) error {
		name, err := docName(r.PathValue("path"), "")
		if err != nil {
			return err
		}
		if name == "" {
			// The name is the path the estate gives the file by, which
			// for the usual layout repeats the kind: /api/v1/scans/scans/web-1.json.
			return userError(http.StatusBadRequest, "give the %s's name in the path, e.g. /api/v1/%ss/%ss/web-1.json", kind, kind, kind)
		}
		data, err := readBody(r)
		if err != nil {
			return err
		}
		switch kind {
		case store.KindScan:
			_, err = scanreport.Parse(data)
		default:
			_, err = manifest.Parse(data)
		}
		if err != nil {
			return inputError(fmt.Sprintf("%s %s is not valid", kind, name), withFile(name, err))
		}
		doc := store.Document{Kind: kind, Name: name, Data: data, Updated: time.Now().UTC()}
		return s.update(w, r, c, doc, audit.KindFile)
	}
}

// update validates doc against the rest of the stored documents and
// stores it with its audit record and the findings' history in one
// transaction, which holds only if no other process or replica changed the
// documents since they were read (else it is validated again); then it is
// current.
func (s *Server) update(w http.ResponseWriter, r *http.Request, c *caller, doc store.Document, kind string) error {
	ctx := r.Context()
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	for attempt := 0; ; attempt++ {
		st, err := s.loadState(ctx, nil, doc)
		var fault *serverFault
		if errors.As(err, &fault) {
			return internalError("could not read the stored documents; nothing was changed", err)
		}
		if err != nil {
			return inputError(fmt.Sprintf("the %s does not load; nothing was changed", doc.Kind), err)
		}
		sum := sha256.Sum256(doc.Data)
		data := map[string]any{"documentKind": doc.Kind, "bytes": len(doc.Data), "sha256": hex.EncodeToString(sum[:]),
			"findings": len(st.findings), "tokenId": c.tok.ID}
		if st.res != nil {
			data["vms"] = len(st.res.Estate.VMs)
		}
		// Once validated, a client that goes away does not undo the
		// change halfway.
		recs, err := s.commit(context.WithoutCancel(ctx), st, store.Change{Put: []store.Document{doc}},
			audit.Entry{Kind: kind, Actor: c.actor(), Subject: doc.Name, Data: data})
		if errors.Is(err, store.ErrStale) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return internalError("the update could not be stored with its audit record; nothing was changed", err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": doc.Kind, "name": doc.Name, "version": st.version,
			"findings": report.Summarize(st.findings), "audit": recs[0].Seq})
		return nil
	}
}

// findingJSON is a finding as the reports write it (cli.md).
func findingJSON(f *check.Finding) ([]byte, error) {
	g := *f
	if g.Related == nil {
		g.Related = []string{}
	}
	if g.Evidence == nil {
		g.Evidence = map[string]any{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&g); err != nil {
		return nil, fmt.Errorf("encoding finding %s: %w", f.Key(), err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func (s *Server) getFindings(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	f := store.FindingFilter{Check: q.Get("check"), Severity: q.Get("severity"), Pillar: q.Get("pillar"), Subject: q.Get("subject"), State: q.Get("state")}
	if f.Severity != "" {
		if _, err := estate.ParseSeverity(f.Severity); err != nil {
			return userError(http.StatusBadRequest, "severity: %v", err)
		}
	}
	switch f.State {
	case "", "open", "resolved", "all":
	default:
		return userError(http.StatusBadRequest, "state %q: want open, resolved or all", f.State)
	}
	if f.Check != "" {
		// Check IDs are taken in any case, as by the CLI's --only.
		f.Check = strings.ToUpper(strings.TrimSpace(f.Check))
		if check.Lookup(f.Check) == nil {
			return userError(http.StatusBadRequest, "check %q: no such check (vguard checks lists them)", q.Get("check"))
		}
	}
	switch check.Pillar(f.Pillar) {
	case "", check.Confidentiality, check.Integrity, check.Availability:
	default:
		return userError(http.StatusBadRequest, "pillar %q: want %s, %s or %s", f.Pillar, check.Confidentiality, check.Integrity, check.Availability)
	}
	// about selects the findings that concern an object, as their subject
	// or among their related objects (a clone's VG201 names its source as
	// related): what the libvirt hook refuses a starting domain for.
	about := q.Get("about")
	if about != "" && f.Subject != "" {
		return userError(http.StatusBadRequest, "give subject or about, not both")
	}
	fs, err := s.st.Findings(r.Context(), f)
	if err != nil {
		return internalError("could not read the findings", err)
	}
	if about != "" {
		fs = slices.DeleteFunc(fs, func(x store.Finding) bool {
			if x.Subject == about {
				return false
			}
			var rel struct {
				Related []string `json:"related"`
			}
			return json.Unmarshal(x.JSON, &rel) != nil || !slices.Contains(rel.Related, about)
		})
	}
	// Each finding as the reports write it, with its history added.
	var b bytes.Buffer
	b.WriteString(`{"findings":[`)
	for i, x := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		js := bytes.TrimSuffix(x.JSON, []byte("}"))
		b.Write(js)
		fmt.Fprintf(&b, `,"firstSeen":%q,"lastSeen":%q`, x.FirstSeen.Format(time.RFC3339Nano), x.LastSeen.Format(time.RFC3339Nano))
		if !x.Resolved.IsZero() {
			fmt.Fprintf(&b, `,"resolved":%q`, x.Resolved.Format(time.RFC3339Nano))
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(&b, "],\"count\":%d}\n", len(fs))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
	return nil
}

// noEstate is the answer while no estate has been uploaded.
var noEstate = userError(http.StatusConflict, "no estate has been uploaded yet (PUT /api/v1/estate)")

// judge judges a Change document as `vguard plan` does, records the
// verdict in the audit trail and only then answers: a verdict a client
// has seen is always in the trail.
func (s *Server) judge(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := docName(r.URL.Query().Get("name"), "change.yaml")
	if err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	chg, err := change.Parse(name, data)
	if err != nil {
		return inputError("the change is not valid", err)
	}
	st := s.state.Load()
	if st.empty {
		return noEstate
	}
	v, release, err := s.judgeWith(r.Context(), st, chg)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return userError(http.StatusServiceUnavailable, "the request ended while waiting for a judge")
	}
	if err != nil {
		return inputError("the change cannot be judged against this estate; nothing was judged", err)
	}
	ops := make([]string, len(chg.Operations))
	for i, op := range chg.Operations {
		ops[i] = op.String()
	}
	blocking := change.Blocking(st.res.Policy.Change.BlockAt, v.Introduced, v.Worsened)
	var buf bytes.Buffer
	werr := report.WritePlan(&buf, report.JSON, &report.PlanReport{Decision: string(v.Decision),
		Introduced: v.Introduced, Resolved: v.Resolved, Worsened: v.Worsened, Unchanged: v.Unchanged})
	decision, introduced, resolved, worsened := v.Decision, len(v.Introduced), len(v.Resolved), len(v.Worsened)
	release() // the verdict is in buf: its findings go back to the judge
	if werr != nil {
		return internalError("could not write the verdict", werr)
	}
	sum := sha256.Sum256(data)
	subject := chg.Meta.Name
	if subject == "" {
		subject = name
	}
	rec, err := s.audit.Append(context.WithoutCancel(r.Context()), audit.Entry{Kind: audit.KindJudge, Actor: c.actor(), Subject: subject, Data: map[string]any{
		"decision": string(decision), "introduced": introduced, "worsened": worsened, "blocking": blocking, "resolved": resolved,
		"operations": ops, "changeSha256": hex.EncodeToString(sum[:]), "estateVersion": st.version, "tokenId": c.tok.ID,
	}})
	if err != nil {
		return internalError("the verdict could not be recorded in the audit trail, so it is not given", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vguard-Audit-Seq", strconv.FormatInt(rec.Seq, 10))
	w.Header().Set("Vguard-Decision", string(decision))
	w.Header().Set("Vguard-Block-At", st.res.Policy.Change.BlockAt.String())
	_, _ = w.Write(buf.Bytes())
	return nil
}

// judgeWith judges chg with a judge of st's pool, waiting for one no
// longer than ctx lasts; the judge goes back to the pool even if judging
// panics. release gives the verdict's findings back to that judge for its
// next judgement (Judge.Release); call it once the verdict is written out.
func (s *Server) judgeWith(ctx context.Context, st *state, chg *change.Change) (v *change.Verdict, release func(), err error) {
	var j *change.Judge
	select {
	case j = <-st.judges:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { st.judges <- j }()
	start := time.Now()
	defer func() { s.metrics.judging.Observe(time.Since(start).Seconds()) }()
	v, err = j.Judge(chg)
	// Release only touches the judge's buffers, which are safe to use
	// while another request holds the judge.
	return v, func() { j.Release(v) }, err
}

// defaultPairs is how many pairs blast-radius?k=2 gives when top is not
// given: the CLI's --top default.
const defaultPairs = 20

func (s *Server) blastRadius(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	st := s.state.Load()
	if st.empty {
		return noEstate
	}
	unit := blast.Unit(q.Get("unit"))
	if unit == "" {
		unit = blast.ByHypervisor
	}
	if unit != blast.ByHypervisor && unit != blast.ByFailureDomain {
		return userError(http.StatusBadRequest, "unit: unknown unit %q (want hypervisor or failureDomain)", unit)
	}
	k, top := 1, 0
	var err error
	if v := q.Get("k"); v != "" {
		if k, err = strconv.Atoi(v); err != nil || (k != 1 && k != 2) {
			return userError(http.StatusBadRequest, "k: want 1 or 2")
		}
	}
	if k == 2 {
		// As `vguard blast-radius --k 2 --format json`: the worst pairs,
		// --top 20 unless told.
		top = defaultPairs
	}
	if v := q.Get("top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil || top < 0 {
			return userError(http.StatusBadRequest, "top: want a number, at least 0")
		}
	}
	var fail []string
	if v := q.Get("fail"); v != "" {
		fail = strings.Split(v, ",")
	}
	if len(fail) > 0 && k != 1 {
		return userError(http.StatusBadRequest, "fail and k=2 do not go together")
	}
	st.readMu.Lock()
	defer st.readMu.Unlock()
	a := blast.New(st.read, unit)
	var scs []blast.Scenario
	switch {
	case len(fail) > 0:
		for _, u := range fail {
			if !a.Known(u) {
				return userError(http.StatusBadRequest, "fail: unknown %s %q", unit, u)
			}
		}
		scs = []blast.Scenario{a.Fail(fail...)}
	case k == 2:
		scs = a.Pairs(max(top, 1))
	default:
		scs = a.EachUnit()
		if top > 0 && len(scs) > top {
			scs = scs[:top]
		}
	}
	writeJSON(w, http.StatusOK, blast.Report{Scenarios: scs})
	return nil
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	st := s.state.Load()
	if st.empty {
		return noEstate
	}
	svc, toText := q.Get("service"), q.Get("to")
	if svc == "" || toText == "" {
		return userError(http.StatusBadRequest, "service and to are required")
	}
	var to estate.ImageRef
	if err := to.UnmarshalText([]byte(toText)); err != nil {
		return userError(http.StatusBadRequest, "to: %v", err)
	}
	allow := q.Get("allowDrift") == "true"
	st.readMu.Lock()
	defer st.readMu.Unlock()
	p, err := rollout.Make(st.read, svc, to, st.files, allow)
	switch {
	case errors.Is(err, rollout.ErrImpossible):
		return userError(http.StatusConflict, "rollout refused: %v", err)
	case errors.Is(err, rollout.ErrDrift):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "rollout refused: members differ from their master (allowDrift=true overrides)", "plan": p})
		return nil
	case err != nil:
		return userError(http.StatusBadRequest, "%v", err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	after, limit := int64(0), 100
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return userError(http.StatusBadRequest, "after: want a record number")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return userError(http.StatusBadRequest, "limit: want 1 to 1000")
		}
	}
	recs, err := s.st.AuditRecords(r.Context(), after, limit)
	if err != nil {
		return internalError("could not read the audit trail", err)
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
	return nil
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, _ *caller) error {
	n, err := audit.Verify(r.Context(), s.st)
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "records": n, "broken": map[string]any{"seq": p.Seq, "reason": p.Reason}})
	case err != nil:
		return internalError("could not read the audit trail", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "records": n})
	}
	return nil
}

type tokenView struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	Token   string     `json:"token,omitempty"` // only when created
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *caller) error {
	ts, err := s.st.Tokens(r.Context())
	if err != nil {
		return internalError("could not list the tokens", err)
	}
	out := make([]tokenView, len(ts))
	for i, t := range ts {
		out[i] = tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created}
		if !t.Revoked.IsZero() {
			out[i].Revoked = &ts[i].Revoked
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return userError(http.StatusBadRequest, "want {\"name\": \"...\", \"role\": \"viewer|operator|admin\"}: %v", err)
	}
	if _, err := token.ParseRole(req.Role); err != nil {
		return userError(http.StatusBadRequest, "role: %v", err)
	}
	if err := token.CheckName(req.Name); err != nil {
		return userError(http.StatusBadRequest, "name: %v", err)
	}
	t, secret, err := CreateToken(context.WithoutCancel(r.Context()), s.st, req.Name, req.Role, c.actor())
	if err != nil {
		return internalError("could not create the token", err)
	}
	writeJSON(w, http.StatusCreated, tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created, Token: secret})
	return nil
}

// CreateToken makes a token and stores its hash with its audit record, in
// one transaction: a token never works without its record. It returns the
// secret, which is never stored.
func CreateToken(ctx context.Context, st store.Store, name, role, actor string) (store.Token, string, error) {
	if err := token.CheckName(name); err != nil {
		return store.Token{}, "", err
	}
	secret, id, hash, err := token.New()
	if err != nil {
		return store.Token{}, "", err
	}
	t := store.Token{ID: id, Name: name, Role: role, Hash: hash, Created: time.Now().UTC()}
	rec, err := audit.NewRecord(audit.Entry{Kind: audit.KindTokenCreate, Actor: actor, Subject: id,
		Data: map[string]any{"name": name, "role": role}}, t.Created)
	if err != nil {
		return store.Token{}, "", err
	}
	if _, err := st.Apply(ctx, store.Change{CreateToken: &t, Audit: []audit.Record{rec}}); err != nil {
		return store.Token{}, "", err
	}
	return t, secret, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	id := r.PathValue("id")
	err := RevokeToken(context.WithoutCancel(r.Context()), s.st, id, c.actor())
	if errors.Is(err, store.ErrNotFound) {
		return userError(http.StatusNotFound, "no valid token %q", id)
	}
	if err != nil {
		return internalError("could not revoke the token", err)
	}
	s.tokens.forget(id)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
	return nil
}

// RevokeToken revokes the token id with its audit record, in one
// transaction; store.ErrNotFound when there is no valid token id.
func RevokeToken(ctx context.Context, st store.Store, id, actor string) error {
	now := time.Now().UTC()
	rec, err := audit.NewRecord(audit.Entry{Kind: audit.KindTokenRevoke, Actor: actor, Subject: id}, now)
	if err != nil {
		return err
	}
	_, err = st.Apply(ctx, store.Change{RevokeToken: id, RevokedAt: now, Audit: []audit.Record{rec}})
	return err
}
