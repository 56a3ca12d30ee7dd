package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/store"
)

// Connector reads an estate (or part of one) from an outside system: the
// seam for issue 6's connectors (builtin.go adapts vSphere and libvirt).
// The server calls Sync on the replica that holds the connector lease,
// every ConnectorConfig.Every, never twice at once for one connector.
type Connector interface {
	// Sync returns the connector's Estate documents as they are now. They
	// replace the documents its previous Sync returned, and are merged
	// with the other estate documents as documents.md says, but for what
	// they define exactly as another document does (one object; see
	// composeSources). A document named defaults.yaml holds the
	// connector's guesses: each of its definitions is used only where no
	// other document defines that name. Names are relative paths (side
	// files they name are relative to them). ctx ends when this replica
	// loses the lease, or at the connector's timeout.
	Sync(ctx context.Context) ([]load.Source, error)
}

// WatchingConnector is a connector that can also follow its platform's
// change feed (ConnectorConfig.Watch).
type WatchingConnector interface {
	Connector
	// Watch calls update with the connector's documents after each change
	// of the platform (and once at the start) until ctx ends (nil) or the
	// feed fails. An error from update ends the watch with that error.
	Watch(ctx context.Context, update func([]load.Source) error) error
}

// ConnectorFactory makes a connector from its config entry; it validates
// the entry's Settings and must not start anything.
type ConnectorFactory func(ConnectorConfig) (Connector, error)

type connector struct {
	cfg  ConnectorConfig
	c    Connector
	last time.Time // when the scheduler last started (or skipped) a sync
	// busy is set while a Sync call has not returned, also one given up
	// at its deadline: a platform that hangs is not asked again (and a
	// connection not opened again) until that call returns.
	busy atomic.Bool
	// abandoned is set while a Sync given up at its deadline has not
	// returned: only then is a due sync reported as not started. A healthy
	// sync still within its deadline is simply not started twice.
	abandoned atomic.Bool
}

// DefaultLeaseTTL is how long the connector lease lasts without renewal:
// the holder renews every TTL/3, and a replica that died is replaced
// within TTL.
const DefaultLeaseTTL = 30 * time.Second

const leaseName = "connectors"

// runConnectors takes the lease when it can and runs the connectors while
// it holds it.
func (s *Server) runConnectors(ctx context.Context) {
	tick := time.NewTicker(s.leaseTTL / 3)
	defer tick.Stop()
	for {
		held, err := s.st.AcquireLease(ctx, leaseName, s.holder, time.Now(), s.leaseTTL)
		if err != nil && ctx.Err() == nil {
			s.logger.Error("connector lease", "err", err)
		}
		if held {
			s.whileHeld(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// whileHeld runs the connectors until the lease is lost or ctx ends. A
// renewer keeps the lease and cancels the connectors' context the moment
// a renewal fails; every write is fenced by the lease besides (Apply
// refuses it once another replica holds the lease), so a sync that
// ignores its context still cannot write.
func (s *Server) whileHeld(ctx context.Context) {
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(s.leaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			ok, err := s.st.AcquireLease(lctx, leaseName, s.holder, time.Now(), s.leaseTTL)
			if !ok || err != nil {
				if lctx.Err() == nil {
					s.logger.Warn("connector lease lost; stopping the connectors", "err", err)
				}
				lost()
				return
			}
		}
	}()
	s.dropRemovedConnectors(lctx)
	for _, c := range s.connectors {
		if c.cfg.Watch {
			wg.Add(1)
			go func() { defer wg.Done(); s.watchConnector(lctx, c) }()
		}
	}
	tick := time.NewTicker(s.leaseTTL / 3)
	defer tick.Stop()
	for lctx.Err() == nil {
		// Each scheduled connector syncs in a goroutine of its own under
		// its deadline, so that one whose platform hangs fails alone.
		for _, c := range s.connectors {
			if c.cfg.Watch || c.cfg.Remove || time.Since(c.last) < c.cfg.every() || lctx.Err() != nil {
				continue
			}
			c.last = time.Now()
			if c.busy.Load() {
				if c.abandoned.Load() {
					s.syncFailed(lctx, c, fmt.Errorf("not started: the sync given up at its timeout (%v) has not returned yet; the platform does not answer", c.cfg.timeout()))
				}
				continue // else the last sync is still running within its deadline
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.syncConnector(lctx, c) }()
		}
		select {
		case <-lctx.Done():
		case <-tick.C:
		}
	}
	lost()
	wg.Wait()
	if ctx.Err() != nil {
		// Shutting down: let another replica take over at once.
		_ = s.st.ReleaseLease(context.WithoutCancel(ctx), leaseName, s.holder)
	}
}

// dropRemovedConnectors removes the documents of connectors the config
// marks remove: true (validated and audited as a sync that returned
// nothing). The documents of a connector that this replica's config merely
// lacks are kept, with a warning: replicas whose connector lists differ
// (a rolling config change, or a mistake) must not wipe each other's
// estates when the lease moves between them.
func (s *Server) dropRemovedConnectors(ctx context.Context) {
	docs, err := s.st.Documents(ctx, store.KindEstate)
	if err != nil {
		s.logger.Error("listing connector documents", "err", err)
		return
	}
	configured := map[string]*connector{}
	for _, c := range s.connectors {
		configured[c.cfg.Name] = c
	}
	seen := map[string]bool{}
	var unknown []string
	for _, d := range docs {
		rest, ok := strings.CutPrefix(d.Name, connectorPrefix)
		name, _, _ := strings.Cut(rest, "/")
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		c := configured[name]
		switch {
		case c == nil:
			unknown = append(unknown, name)
		case c.cfg.Remove:
			if err := s.storeSynced(ctx, c, nil, time.Now()); err != nil {
				s.syncFailed(ctx, c, fmt.Errorf("removing the documents of a connector marked remove: %w", err))
			}
		}
	}
	if len(unknown) > 0 {
		s.logger.Warn("the store holds documents of connectors not in this replica's config; they are kept "+
			"(replicas must share one connector list; to remove a connector's documents, list it with remove: true)",
			"connectors", unknown)
	}
}

// watchConnector follows a watching connector's feed, starting it again
// (after a pause) when it fails, until ctx ends.
func (s *Server) watchConnector(ctx context.Context, c *connector) {
	w := c.c.(WatchingConnector)
	for ctx.Err() == nil {
		start := time.Now()
		errc := make(chan error, 1)
		// In a goroutine of its own, so that a watch stuck on a platform
		// that stopped answering does not hold the server's shutdown.
		go func() {
			errc <- w.Watch(ctx, func(srcs []load.Source) error {
				if err := s.storeSynced(ctx, c, srcs, start); err != nil {
					if errors.Is(err, store.ErrLeaseLost) || ctx.Err() != nil {
						return err
					}
					// A platform state that does not load is reported and
					// the watch goes on: the next change may fix it.
					s.syncFailed(ctx, c, err)
				}
				start = time.Now()
				return nil
			})
		}()
		var err error
		select {
		case err = <-errc:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the watch ended")
		}
		s.syncFailed(ctx, c, err)
		select {
		case <-ctx.Done():
		case <-time.After(s.leaseTTL / 3):
		}
	}
}

// syncConnector runs one connector under its timeout and stores what it
// returns. A Sync that does not return by its deadline (one that ignores
// its context, stuck on a platform that accepts a connection and never
// answers) is given up: it is reported, and it holds neither the other
// connectors nor the server's shutdown; c.busy stays set until it returns.
func (s *Server) syncConnector(ctx context.Context, c *connector) {
	start := time.Now()
	timeout := c.cfg.timeout()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		srcs []load.Source
		err  error
	}
	done := make(chan result, 1)
	c.busy.Store(true)
	go func() {
		defer func() {
			c.abandoned.Store(false)
			c.busy.Store(false)
		}()
		srcs, err := c.c.Sync(sctx)
		done <- result{srcs, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-sctx.Done():
		// Set before looking, so that the goroutine's clearing, which
		// follows its send, always comes after.
		c.abandoned.Store(true)
		select {
		case r = <-done: // it returned just as its deadline passed
			c.abandoned.Store(false)
		default:
			r.err = sctx.Err()
		}
	}
	if r.err == nil {
		r.err = s.storeSynced(ctx, c, r.srcs, start)
	}
	if r.err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		r.err = fmt.Errorf("the sync did not finish within its timeout (%v): %w", timeout, r.err)
	}
	if r.err != nil {
		s.syncFailed(ctx, c, r.err)
	}
}

// syncFailed logs a failed sync and records it in the audit trail (a
// failure changes nothing, so the record may follow it).
func (s *Server) syncFailed(ctx context.Context, c *connector, err error) {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // the lease was lost or the server stops
	}
	s.logger.Error("connector sync", "connector", c.cfg.Name, "err", err)
	s.metrics.syncFailed(c.cfg.Name)
	msg := firstLine(err.Error())
	var fault *serverFault
	if errors.As(err, &fault) {
		// Viewers read the trail: a database error stays in the log.
		msg = "the store failed; the server's log has the cause"
	}
	entry := audit.Entry{Kind: audit.KindSync, Actor: "connector " + c.cfg.Name, Subject: c.cfg.Name,
		Data: map[string]any{"ok": false, "error": msg}}
	if _, aerr := s.audit.Append(context.WithoutCancel(ctx), entry); aerr != nil {
		s.logger.Error("audit", "err", aerr)
	}
}

// storeSynced replaces the connector's documents under connectors/NAME/
// with srcs, once the estate with them loads: the documents, the findings
// and the sync's audit record in one transaction, fenced by the lease and
// by the stamp of the documents it was validated against.
func (s *Server) storeSynced(ctx context.Context, c *connector, srcs []load.Source, start time.Time) error {
	name := c.cfg.Name
	prefix := "connectors/" + name + "/"
	var docs []store.Document
	h := sha256.New()
	for _, src := range srcs {
		clean := path.Clean("/" + src.Name)[1:]
		if clean == "" || strings.Contains(src.Name, "..") {
			return fmt.Errorf("connector %s returned a document named %q", name, src.Name)
		}
		docs = append(docs, store.Document{Kind: store.KindEstate, Name: prefix + clean, Data: src.Data, Updated: time.Now().UTC()})
		fmt.Fprintf(h, "%s %d\n", clean, len(src.Data))
		h.Write(src.Data)
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	for attempt := 0; ; attempt++ {
		st, err := s.loadState(ctx, &store.Prefix{Kind: store.KindEstate, Prefix: prefix}, docs...)
		if err != nil {
			return err
		}
		entry := audit.Entry{Kind: audit.KindSync, Actor: "connector " + name, Subject: name, Data: map[string]any{
			"ok": true, "documents": len(docs), "sha256": hex.EncodeToString(h.Sum(nil)),
			"seconds": time.Since(start).Seconds(), "findings": len(st.findings)}}
		_, err = s.commit(ctx, st, store.Change{Lease: &store.LeaseHold{Name: leaseName, Holder: s.holder},
			Put: docs, Replace: &store.Prefix{Kind: store.KindEstate, Prefix: prefix}}, entry)
		if errors.Is(err, store.ErrStale) && attempt < maxAttempts {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return &serverFault{err}
		}
		if err != nil {
			return err
		}
		s.metrics.synced(name, time.Now())
		return nil
	}
}

// maxAttempts bounds how often a change is validated again when another
// replica changed the documents in between.
const maxAttempts = 5

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
