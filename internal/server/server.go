// Package server is vguard serve: an HTTP API over one estate that answers
// "may I make this change?" for every tool that asks, keeps the findings'
// history and appends everything it decides or is told to the audit chain
// (package audit) in the store (package store).
//
// Every route is declared once in the table of routes.go with the least
// role that may call it; the table is the only way onto the mux, so a route
// cannot be added without an access rule, and the tests walk it.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/store"
)

// Options are what New needs beside the config.
type Options struct {
	Store  store.Store
	Logger *slog.Logger // default: discard
	// Connectors builds connectors by kind (issue 6); a config naming a
	// kind not here is refused.
	Connectors map[string]ConnectorFactory
	// Holder names this replica in the connector lease (default
	// hostname:pid:random, unique even for containers that all run as
	// pid 1 under one host name).
	Holder string
	// LeaseTTL is how long the connector lease lasts unrenewed (default
	// DefaultLeaseTTL).
	LeaseTTL time.Duration
	// ReloadEvery is how often the store is polled for documents another
	// process or replica put (default 2 s; negative: never).
	ReloadEvery time.Duration
}

// Server is a running vguard serve, minus its listener: Handler serves
// the API.
type Server struct {
	cfg     *Config
	st      store.Store
	audit   *audit.Log
	logger  *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
	routes  []route
	tokens  tokenCache

	state    atomic.Pointer[state]
	updateMu sync.Mutex // one state rebuild at a time

	connectors []*connector
	holder     string
	leaseTTL   time.Duration
	stop       context.CancelFunc
	done       sync.WaitGroup
}

// state is one loaded estate with everything derived from it. It is
// immutable once published, but for the judges' indexes (each judge owns
// one; the pool hands a judge to one request at a time) and the read index
// (behind readMu: its lookups are built on first use).
type state struct {
	version int64
	// base is store.DocumentsStamp when the documents were read: a change
	// validated on this state is applied only if it is still current.
	base string
	// stamp is the stamp of the documents this state is made of ("" when
	// they were never all stored: an upload being validated).
	stamp    string
	loaded   time.Time
	docs     []docInfo
	empty    bool // no estate uploaded yet
	res      *load.Result
	files    *sideFiles
	findings []check.Finding
	judges   chan *change.Judge

	readMu sync.Mutex
	read   *estate.Index
}

type docInfo struct {
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Bytes   int       `json:"bytes"`
	SHA256  string    `json:"sha256"`
	Updated time.Time `json:"updated"`
}

// New builds a Server on o.Store: it loads the stored documents and judges
// the estate (a stored estate that no longer loads is an error), and starts
// the audit log and the connector loop. Close stops them.
func New(ctx context.Context, cfg *Config, o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: no store")
	}
	if cfg.Judges == 0 {
		cfg.Judges = runtime.GOMAXPROCS(0)
	}
	s := &Server{cfg: cfg, st: o.Store, logger: o.Logger, holder: o.Holder, leaseTTL: o.LeaseTTL}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.holder == "" {
		host, _ := os.Hostname()
		s.holder = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), rand.Text()[:8])
	}
	for _, cc := range cfg.Connectors {
		if cc.Remove {
			s.connectors = append(s.connectors, &connector{cfg: cc})
			continue
		}
		f := o.Connectors[cc.Kind]
		if f == nil {
			return nil, fmt.Errorf("connector %s: kind %q is not available in this build", cc.Name, cc.Kind)
		}
		c, err := f(cc)
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", cc.Name, err)
		}
		if _, ok := c.(WatchingConnector); cc.Watch && !ok {
			return nil, fmt.Errorf("connector %s: kind %q cannot watch; use every", cc.Name, cc.Kind)
		}
		s.connectors = append(s.connectors, &connector{cfg: cc, c: c})
	}
	s.metrics = newMetrics(s)
	s.tokens.st = o.Store
	if err := s.buildRoutes(); err != nil {
		return nil, err
	}
	st, err := s.loadState(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("the stored estate: %w", err)
	}
	s.publish(st)
	s.audit = audit.NewLog(o.Store)
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if len(s.connectors) > 0 {
		s.done.Add(1)
		go func() { defer s.done.Done(); s.runConnectors(runCtx) }()
	}
	if o.ReloadEvery == 0 {
		o.ReloadEvery = 2 * time.Second
	}
	if o.ReloadEvery > 0 {
		s.done.Add(1)
		go func() { defer s.done.Done(); s.reloadLoop(runCtx, o.ReloadEvery) }()
	}
	return s, nil
}

// Close stops the connectors and the audit log (after queued records are
// written). The store stays open: it is the caller's.
func (s *Server) Close() {
	s.stop()
	s.done.Wait()
	s.audit.Close()
}

// Handler returns the API.
func (s *Server) Handler() http.Handler { return s.mux }

// loadState reads the stored documents, with overrides in place of the
// stored ones of their kind and name (an upload being validated) and,
// when replace is set, without the stored documents it names that are not
// in overrides (a connector's sync), and builds the state: loads and
// judges the estate. Load problems come back as load.Errors; problems
// evaluating it (a missing side file) as errors; the store's failures as a
// *serverFault.
func (s *Server) loadState(ctx context.Context, replace *store.Prefix, overrides ...store.Document) (*state, error) {
	var srcs []load.Source
	st := &state{loaded: time.Now().UTC(), files: newSideFiles()}
	// Read before the documents: a put that lands in between makes the
	// next poll reload, never the reverse.
	stamp, err := s.st.DocumentsStamp(ctx)
	if err != nil {
		return nil, &serverFault{err}
	}
	st.base = stamp
	if len(overrides) == 0 && replace == nil {
		st.stamp = stamp
	}
	hasEstate := false
	for _, kind := range []string{store.KindEstate, store.KindPolicy, store.KindScan, store.KindManifest} {
		docs, err := s.st.Documents(ctx, kind)
		if err != nil {
			return nil, &serverFault{err}
		}
		if replace != nil && replace.Kind == kind {
			docs = slices.DeleteFunc(docs, func(d store.Document) bool { return strings.HasPrefix(d.Name, replace.Prefix) })
		}
		for _, o := range overrides {
			if o.Kind != kind {
				continue
			}
			if i := slices.IndexFunc(docs, func(d store.Document) bool { return d.Name == o.Name }); i >= 0 {
				docs[i] = o
			} else {
				docs = append(docs, o)
				slices.SortFunc(docs, func(a, b store.Document) int { return compare(a.Name, b.Name) })
			}
		}
		for _, d := range docs {
			sum := sha256.Sum256(d.Data)
			st.docs = append(st.docs, docInfo{Kind: kind, Name: d.Name, Bytes: len(d.Data), SHA256: hex.EncodeToString(sum[:]), Updated: d.Updated})
			switch kind {
			case store.KindEstate, store.KindPolicy:
				hasEstate = hasEstate || kind == store.KindEstate
				srcs = append(srcs, load.Source{Name: d.Name, Data: d.Data})
			case store.KindScan:
				st.files.scans[d.Name] = d.Data
			case store.KindManifest:
				st.files.manifests[d.Name] = d.Data
			}
		}
	}
	if srcs, err = composeSources(srcs); err != nil {
		return nil, err
	}
	opts := load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }, AllowEmpty: true, SideFile: st.files.exists}
	if !hasEstate {
		// A policy alone is checked, then kept for the estate to come.
		if _, err := load.Sources(srcs, opts); err != nil {
			return nil, err
		}
		st.empty = true
		return st, nil
	}
	res, err := load.Sources(srcs, opts)
	if err != nil {
		return nil, err
	}
	st.res = res
	st.read = estate.NewIndex(res.Estate)
	// Each judge owns an estate of its own: judging mutates the index
	// (and undoes it), so judges cannot share one. Loading again is
	// cheaper than a deep copy would be to get right.
	st.judges = make(chan *change.Judge, s.cfg.Judges)
	for i := range s.cfg.Judges {
		r := res
		if i > 0 {
			if r, err = load.Sources(srcs, opts); err != nil {
				return nil, err
			}
		}
		j, err := change.NewJudge(estate.NewIndex(r.Estate), r.Policy, st.files)
		if err != nil {
			return nil, err
		}
		j.SetSideFileCheck(st.files.exists)
		if i == 0 {
			st.findings = j.Before()
		}
		st.judges <- j
	}
	return st, nil
}

// serverFault is a failure of the server or its store (a database error)
// where a problem of the input could also come back: the client gets a 5xx
// and the cause goes to the log, never to the client, nor into the audit
// trail that viewers read.
type serverFault struct{ err error }

func (e *serverFault) Error() string { return e.err.Error() }
func (e *serverFault) Unwrap() error { return e.err }

// reloadLoop notices documents put by another process or replica (an
// upload to another replica, a connector's sync there) and loads them.
// That replica recorded the change in the audit trail and the findings'
// history; this one only catches up.
func (s *Server) reloadLoop(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	failed := "" // the stamp of documents that did not load: retried only once they change
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		stamp, err := s.st.DocumentsStamp(ctx)
		if err != nil || stamp == s.state.Load().stamp || stamp == failed {
			if err != nil && ctx.Err() == nil {
				s.logger.Error("polling the store for new documents", "err", err)
			}
			continue
		}
		s.updateMu.Lock()
		st, err := s.loadState(ctx, nil)
		if err == nil {
			s.publish(st)
			failed = ""
		} else if ctx.Err() == nil {
			s.logger.Error("loading documents put elsewhere", "err", err)
			failed = stamp
		}
		s.updateMu.Unlock()
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var stateVersion atomic.Int64

func (s *Server) publish(st *state) {
	st.version = stateVersion.Add(1)
	s.state.Store(st)
	s.metrics.setFindings(st)
}

// commit applies c (validated as st) together with the findings of st and
// the audit records of entries, in one transaction that holds only if the
// documents are still those st was built on; then st becomes current. It
// returns the sealed records; store.ErrStale means: validate again.
func (s *Server) commit(ctx context.Context, st *state, c store.Change, entries ...audit.Entry) ([]audit.Record, error) {
	fs, err := findingsOf(st)
	if err != nil {
		return nil, err
	}
	c.Findings = &store.FindingsAt{At: st.loaded, Current: fs}
	now := time.Now()
	for _, e := range entries {
		r, err := audit.NewRecord(e, now)
		if err != nil {
			return nil, err
		}
		c.Audit = append(c.Audit, r)
	}
	c.IfStamp = st.base
	done, err := s.st.Apply(ctx, c)
	if err != nil {
		return nil, err
	}
	// The state is now the stored documents: the next poll need not
	// load them again.
	st.stamp = done.Stamp
	s.publish(st)
	return done.Audit, nil
}

// findingsOf is the findings' history entries of st.
func findingsOf(st *state) ([]store.Finding, error) {
	fs := make([]store.Finding, 0, len(st.findings))
	seen := map[string]bool{}
	for i := range st.findings {
		f := &st.findings[i]
		k := f.Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		data, err := findingJSON(f)
		if err != nil {
			return nil, err
		}
		fs = append(fs, store.Finding{Key: k, Check: f.Check, Severity: f.Severity.String(), Pillar: string(f.Pillar), Subject: f.Subject, JSON: data})
	}
	return fs, nil
}
