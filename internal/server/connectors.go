package server

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/store"
)

// Connector reads an estate (or part of one) from an outside system: the
// seam for issue 6's connectors. The server calls Sync on the replica that
// holds the connector lease, every ConnectorConfig.Every, never twice at
// once for one connector.
type Connector interface {
	// Sync returns the connector's Estate documents as they are now. They
	// replace the documents its previous Sync returned, and are merged
	// with the other estate documents as documents.md says. Names are
	// relative paths (side files they name are relative to them).
	Sync(ctx context.Context) ([]load.Source, error)
}

// ConnectorFactory makes a connector from its config entry; it validates
// the entry's Settings and must not start anything.
type ConnectorFactory func(ConnectorConfig) (Connector, error)

type connector struct {
	cfg  ConnectorConfig
	c    Connector
	last time.Time
}

// Lease timing: the holder renews every leaseTTL/3 and a replica that died
// is replaced within leaseTTL.
const (
	leaseName = "connectors"
	leaseTTL  = 30 * time.Second
)

// runConnectors holds the lease when it can and runs the connectors that
// are due while it does.
func (s *Server) runConnectors(ctx context.Context) {
	tick := time.NewTicker(leaseTTL / 3)
	defer tick.Stop()
	for {
		held, err := s.st.AcquireLease(ctx, leaseName, s.holder, time.Now(), leaseTTL)
		if err != nil && ctx.Err() == nil {
			s.logger.Error("connector lease", "err", err)
		}
		if held {
			for _, c := range s.connectors {
				every := c.cfg.Every
				if every == 0 {
					every = 5 * time.Minute
				}
				if time.Since(c.last) >= every {
					s.syncConnector(ctx, c)
				}
			}
		}
		select {
		case <-ctx.Done():
			if held {
				_ = s.st.ReleaseLease(context.Background(), leaseName, s.holder)
			}
			return
		case <-tick.C:
		}
	}
}

// syncConnector runs one connector and loads what it returns.
func (s *Server) syncConnector(ctx context.Context, c *connector) {
	start := time.Now()
	c.last = start
	srcs, err := c.c.Sync(ctx)
	entry := audit.Entry{Kind: audit.KindSync, Actor: "connector " + c.cfg.Name, Subject: c.cfg.Name}
	if err == nil {
		err = s.storeSynced(ctx, c.cfg.Name, srcs)
	}
	if err != nil {
		s.logger.Error("connector sync", "connector", c.cfg.Name, "err", err)
		entry.Data = map[string]any{"ok": false, "error": firstLine(err.Error())}
	} else {
		s.metrics.synced(c.cfg.Name, time.Now())
		entry.Data = map[string]any{"ok": true, "documents": len(srcs), "seconds": time.Since(start).Seconds()}
	}
	if _, aerr := s.audit.Append(ctx, entry); aerr != nil {
		s.logger.Error("audit", "err", aerr)
	}
}

// storeSynced stores a connector's documents under connectors/NAME/ and
// reloads the estate; the documents are kept only if the estate loads.
func (s *Server) storeSynced(ctx context.Context, name string, srcs []load.Source) error {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	prefix := "connectors/" + name + "/"
	var docs []store.Document
	for _, src := range srcs {
		clean := path.Clean("/" + src.Name)[1:]
		if clean == "" || strings.Contains(src.Name, "..") {
			return fmt.Errorf("connector %s returned a document named %q", name, src.Name)
		}
		docs = append(docs, store.Document{Kind: store.KindEstate, Name: prefix + clean, Data: src.Data, Updated: time.Now().UTC()})
	}
	// The documents are stored only once the estate with them loads.
	st, err := s.loadState(ctx, docs...)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := s.st.PutDocument(ctx, d); err != nil {
			return err
		}
	}
	s.publish(st)
	return s.recordFindings(ctx, st)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
