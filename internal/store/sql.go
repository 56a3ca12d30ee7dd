package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
)

// dialect is what differs between the SQL databases; everything else is
// the one implementation below, so both behave alike by construction and
// the shared suite checks what does differ.
type dialect struct {
	name string
	// positional turns ? placeholders into $1, $2...
	positional bool
	// lock is run first in a transaction that must exclude other writers
	// of the same resource (a PostgreSQL advisory lock); empty when every
	// write transaction excludes the others already (SQLite's BEGIN
	// IMMEDIATE).
	lock func(resource int64) string
	// blob is the column type for uploaded bytes.
	blob string
}

// Advisory lock numbers (PostgreSQL).
const (
	lockMigrate int64 = 0x76677561 + iota // "vgua"
	lockAudit
)

// migrations are applied in order, each once, recorded in vguard_schema.
// Never edit one that has shipped: add another.
func migrations(d dialect) []string {
	return []string{
		`CREATE TABLE documents (
			kind TEXT NOT NULL, name TEXT NOT NULL, data ` + d.blob + ` NOT NULL, updated BIGINT NOT NULL,
			PRIMARY KEY (kind, name))`,
		`CREATE TABLE findings (
			fkey TEXT PRIMARY KEY, check_id TEXT NOT NULL, severity TEXT NOT NULL, pillar TEXT NOT NULL,
			subject TEXT NOT NULL, data TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
			resolved BIGINT NOT NULL)`,
		`CREATE INDEX findings_open ON findings (resolved)`,
		`CREATE TABLE tokens (
			id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
			created BIGINT NOT NULL, revoked BIGINT NOT NULL)`,
		`CREATE TABLE audit (
			seq BIGINT PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
			subject TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)`,
		`CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires BIGINT NOT NULL)`,
	}
}

type sqlStore struct {
	db *sql.DB
	d  dialect
}

func (s *sqlStore) q(query string) string {
	if !s.d.positional {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tx runs fn in a write transaction, holding lock resource when the
// dialect needs one.
func (s *sqlStore) tx(ctx context.Context, resource int64, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if s.d.lock != nil && resource != 0 {
		if _, err := tx.ExecContext(ctx, s.d.lock(resource)); err != nil {
			return fmt.Errorf("%s: lock: %w", s.d.name, err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", s.d.name, err)
	}
	return nil
}

// migrate applies the migrations not applied yet, under a lock so that
// replicas starting together do not race.
func (s *sqlStore) migrate(ctx context.Context) error {
	return s.tx(ctx, lockMigrate, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS vguard_schema (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("%s: schema table: %w", s.d.name, err)
		}
		var v sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM vguard_schema`).Scan(&v); err != nil {
			return fmt.Errorf("%s: schema version: %w", s.d.name, err)
		}
		ms := migrations(s.d)
		if int(v.Int64) > len(ms) {
			return fmt.Errorf("%s: the database is at schema version %d, newer than this vguard knows (%d): upgrade vguard", s.d.name, v.Int64, len(ms))
		}
		for i := int(v.Int64); i < len(ms); i++ {
			if _, err := tx.ExecContext(ctx, ms[i]); err != nil {
				return fmt.Errorf("%s: migration %d: %w", s.d.name, i+1, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO vguard_schema (version) VALUES (?)`), i+1); err != nil {
				return fmt.Errorf("%s: recording migration %d: %w", s.d.name, i+1, err)
			}
		}
		return nil
	})
}

// checkSchema is migrate's check without the migrations, for a store
// opened read-only.
func (s *sqlStore) checkSchema(ctx context.Context) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("%s: not a vguard store, or unreadable: %w", s.d.name, err)
	}
	if n := len(migrations(s.d)); v > n {
		return fmt.Errorf("%s: the database is at schema version %d, newer than this vguard knows (%d): upgrade vguard", s.d.name, v, n)
	}
	return nil
}

func (s *sqlStore) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM vguard_schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("%s: schema version: %w", s.d.name, err)
	}
	return int(v.Int64), nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *sqlStore) PutDocument(ctx context.Context, doc Document) error {
	return s.putDocument(ctx, s.db, doc)
}

func (s *sqlStore) putDocument(ctx context.Context, q querier, doc Document) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO documents (kind, name, data, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data, updated = excluded.updated`),
		doc.Kind, doc.Name, doc.Data, nanos(doc.Updated))
	if err != nil {
		return fmt.Errorf("%s: storing %s %s: %w", s.d.name, doc.Kind, doc.Name, err)
	}
	return nil
}

func (s *sqlStore) Document(ctx context.Context, kind, name string) (Document, error) {
	d := Document{Kind: kind, Name: name}
	var upd int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data, updated FROM documents WHERE kind = ? AND name = ?`), kind, name).Scan(&d.Data, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, fmt.Errorf("%s %s: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return Document{}, fmt.Errorf("%s: reading %s %s: %w", s.d.name, kind, name, err)
	}
	d.Updated = fromNanos(upd)
	return d, nil
}

func (s *sqlStore) Documents(ctx context.Context, kind string) ([]Document, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT name, data, updated FROM documents WHERE kind = ? ORDER BY name`), kind)
	if err != nil {
		return nil, fmt.Errorf("%s: listing %s documents: %w", s.d.name, kind, err)
	}
	defer rows.Close()
	var out []Document
	for rows.Next() {
		d := Document{Kind: kind}
		var upd int64
		if err := rows.Scan(&d.Name, &d.Data, &upd); err != nil {
			return nil, fmt.Errorf("%s: listing %s documents: %w", s.d.name, kind, err)
		}
		d.Updated = fromNanos(upd)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: listing %s documents: %w", s.d.name, kind, err)
	}
	return out, nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (s *sqlStore) DocumentsStamp(ctx context.Context) (string, error) {
	return s.stamp(ctx, s.db)
}

func (s *sqlStore) stamp(ctx context.Context, q querier) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT kind, name, updated, LENGTH(data) FROM documents ORDER BY kind, name`)
	if err != nil {
		return "", fmt.Errorf("%s: documents stamp: %w", s.d.name, err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var kind, name string
		var updated, size int64
		if err := rows.Scan(&kind, &name, &updated, &size); err != nil {
			return "", fmt.Errorf("%s: documents stamp: %w", s.d.name, err)
		}
		fmt.Fprintf(h, "%q %q %d %d\n", kind, name, updated, size)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%s: documents stamp: %w", s.d.name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *sqlStore) RecordFindings(ctx context.Context, at time.Time, current []Finding) error {
	// Under the write lock: two replicas recording at once would
	// interleave their opens and resolves.
	return s.tx(ctx, lockAudit, func(tx *sql.Tx) error { return s.recordFindings(ctx, tx, at, current) })
}

func (s *sqlStore) recordFindings(ctx context.Context, tx querier, at time.Time, current []Finding) error {
	now := nanos(at)
	{
		rows, err := tx.QueryContext(ctx, `SELECT fkey FROM findings WHERE resolved = 0`)
		if err != nil {
			return fmt.Errorf("%s: open findings: %w", s.d.name, err)
		}
		open := map[string]bool{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return fmt.Errorf("%s: open findings: %w", s.d.name, err)
			}
			open[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: open findings: %w", s.d.name, err)
		}
		up, err := tx.PrepareContext(ctx, s.q(`INSERT INTO findings
			(fkey, check_id, severity, pillar, subject, data, first_seen, last_seen, resolved)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (fkey) DO UPDATE SET check_id = excluded.check_id, severity = excluded.severity,
			pillar = excluded.pillar, subject = excluded.subject, data = excluded.data,
			last_seen = excluded.last_seen, resolved = 0`))
		if err != nil {
			return fmt.Errorf("%s: recording findings: %w", s.d.name, err)
		}
		defer up.Close()
		for _, f := range current {
			if _, err := up.ExecContext(ctx, f.Key, f.Check, f.Severity, f.Pillar, f.Subject, string(f.JSON), now, now); err != nil {
				return fmt.Errorf("%s: recording finding %s: %w", s.d.name, f.Key, err)
			}
			delete(open, f.Key)
		}
		res, err := tx.PrepareContext(ctx, s.q(`UPDATE findings SET resolved = ? WHERE fkey = ?`))
		if err != nil {
			return fmt.Errorf("%s: resolving findings: %w", s.d.name, err)
		}
		defer res.Close()
		for k := range open {
			if _, err := res.ExecContext(ctx, now, k); err != nil {
				return fmt.Errorf("%s: resolving finding %s: %w", s.d.name, k, err)
			}
		}
		return nil
	}
}

func (s *sqlStore) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"check_id", f.Check}, {"severity", f.Severity}, {"pillar", f.Pillar}, {"subject", f.Subject}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	switch f.State {
	case "", "open":
		where = append(where, "resolved = 0")
	case "resolved":
		where = append(where, "resolved <> 0")
	case "all":
	default:
		return nil, fmt.Errorf("finding state %q: want open, resolved or all", f.State)
	}
	query := `SELECT fkey, check_id, severity, pillar, subject, data, first_seen, last_seen, resolved FROM findings`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY fkey"), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: listing findings: %w", s.d.name, err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var x Finding
		var data string
		var first, last, resolved int64
		if err := rows.Scan(&x.Key, &x.Check, &x.Severity, &x.Pillar, &x.Subject, &data, &first, &last, &resolved); err != nil {
			return nil, fmt.Errorf("%s: listing findings: %w", s.d.name, err)
		}
		x.JSON = []byte(data)
		x.FirstSeen, x.LastSeen, x.Resolved = fromNanos(first), fromNanos(last), fromNanos(resolved)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: listing findings: %w", s.d.name, err)
	}
	return out, nil
}

func (s *sqlStore) CreateToken(ctx context.Context, t Token) error {
	return s.createToken(ctx, s.db, t)
}

func (s *sqlStore) createToken(ctx context.Context, q querier, t Token) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO tokens (id, name, role, hash, created, revoked) VALUES (?, ?, ?, ?, ?, 0)`),
		t.ID, t.Name, t.Role, t.Hash, nanos(t.Created))
	if err != nil {
		return fmt.Errorf("%s: storing token %s: %w", s.d.name, t.ID, err)
	}
	return nil
}

const tokenCols = `id, name, role, hash, created, revoked`

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var created, revoked int64
	err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &created, &revoked)
	t.Created, t.Revoked = fromNanos(created), fromNanos(revoked)
	return t, err
}

func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE hash = ? AND revoked = 0`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("%s: reading token: %w", s.d.name, err)
	}
	return t, nil
}

func (s *sqlStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return s.revokeToken(ctx, s.db, id, at)
}

func (s *sqlStore) revokeToken(ctx context.Context, q querier, id string, at time.Time) error {
	res, err := q.ExecContext(ctx, s.q(`UPDATE tokens SET revoked = ? WHERE id = ? AND revoked = 0`), nanos(at), id)
	if err != nil {
		return fmt.Errorf("%s: revoking token %s: %w", s.d.name, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: revoking token %s: %w", s.d.name, id, err)
	} else if n == 0 {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("%s: listing tokens: %w", s.d.name, err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: listing tokens: %w", s.d.name, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: listing tokens: %w", s.d.name, err)
	}
	return out, nil
}

func (s *sqlStore) AppendAudit(ctx context.Context, build func(audit.Head) ([]audit.Record, error)) error {
	return s.tx(ctx, lockAudit, func(tx *sql.Tx) error { return s.appendAudit(ctx, tx, build) })
}

func (s *sqlStore) appendAudit(ctx context.Context, tx querier, build func(audit.Head) ([]audit.Record, error)) error {
	{
		head := audit.Head{Hash: audit.Genesis}
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&head.Seq, &head.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: audit head: %w", s.d.name, err)
		}
		recs, err := build(head)
		if err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO audit (seq, at, kind, actor, subject, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return fmt.Errorf("%s: appending to the audit trail: %w", s.d.name, err)
		}
		defer ins.Close()
		for _, r := range recs {
			if _, err := ins.ExecContext(ctx, r.Seq, r.Time, r.Kind, r.Actor, r.Subject, string(r.Data), r.Prev, r.Hash); err != nil {
				return fmt.Errorf("%s: appending audit record %d: %w", s.d.name, r.Seq, err)
			}
		}
		return nil
	}
}

// Apply takes the same lock as AppendAudit (PostgreSQL; SQLite's BEGIN
// IMMEDIATE excludes every other writer anyway), so that the stamp it
// compares, the lease it checks and the chain head it extends cannot move
// until it commits.
func (s *sqlStore) Apply(ctx context.Context, c Change) (Applied, error) {
	var out Applied
	err := s.tx(ctx, lockAudit, func(tx *sql.Tx) error {
		if c.IfStamp != "" {
			cur, err := s.stamp(ctx, tx)
			if err != nil {
				return err
			}
			if cur != c.IfStamp {
				return ErrStale
			}
		}
		if c.Lease != nil {
			var holder string
			var expires int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT holder, expires FROM leases WHERE name = ?`), c.Lease.Name).Scan(&holder, &expires)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && (holder != c.Lease.Holder || expires <= time.Now().UnixNano())) {
				return fmt.Errorf("lease %s: %w", c.Lease.Name, ErrLeaseLost)
			}
			if err != nil {
				return fmt.Errorf("%s: lease %s: %w", s.d.name, c.Lease.Name, err)
			}
		}
		if c.Replace != nil {
			keep := map[string]bool{}
			for _, d := range c.Put {
				if d.Kind == c.Replace.Kind {
					keep[d.Name] = true
				}
			}
			rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM documents WHERE kind = ?`), c.Replace.Kind)
			if err != nil {
				return fmt.Errorf("%s: listing %s documents: %w", s.d.name, c.Replace.Kind, err)
			}
			var gone []string
			for rows.Next() {
				var name string
				if err := rows.Scan(&name); err != nil {
					rows.Close()
					return fmt.Errorf("%s: listing %s documents: %w", s.d.name, c.Replace.Kind, err)
				}
				if strings.HasPrefix(name, c.Replace.Prefix) && !keep[name] {
					gone = append(gone, name)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s: listing %s documents: %w", s.d.name, c.Replace.Kind, err)
			}
			for _, name := range gone {
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM documents WHERE kind = ? AND name = ?`), c.Replace.Kind, name); err != nil {
					return fmt.Errorf("%s: removing %s %s: %w", s.d.name, c.Replace.Kind, name, err)
				}
			}
		}
		for _, d := range c.Put {
			if err := s.putDocument(ctx, tx, d); err != nil {
				return err
			}
		}
		if c.Findings != nil {
			if err := s.recordFindings(ctx, tx, c.Findings.At, c.Findings.Current); err != nil {
				return err
			}
		}
		if c.CreateToken != nil {
			if err := s.createToken(ctx, tx, *c.CreateToken); err != nil {
				return err
			}
		}
		if c.RevokeToken != "" {
			if err := s.revokeToken(ctx, tx, c.RevokeToken, c.RevokedAt); err != nil {
				return err
			}
		}
		if len(c.Audit) > 0 {
			if err := s.appendAudit(ctx, tx, func(head audit.Head) ([]audit.Record, error) {
				recs := make([]audit.Record, len(c.Audit))
				copy(recs, c.Audit)
				for i := range recs {
					var err error
					if head, err = audit.Seal(&recs[i], head); err != nil {
						return nil, err
					}
				}
				out.Audit = recs
				return recs, nil
			}); err != nil {
				return err
			}
		}
		stamp, err := s.stamp(ctx, tx)
		out.Stamp = stamp
		return err
	})
	if err != nil {
		return Applied{}, err
	}
	return out, nil
}

func (s *sqlStore) AuditRecords(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, at, kind, actor, subject, data, prev, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the audit trail: %w", s.d.name, err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var r audit.Record
		var data string
		if err := rows.Scan(&r.Seq, &r.Time, &r.Kind, &r.Actor, &r.Subject, &data, &r.Prev, &r.Hash); err != nil {
			return nil, fmt.Errorf("%s: reading the audit trail: %w", s.d.name, err)
		}
		r.Data = []byte(data)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: reading the audit trail: %w", s.d.name, err)
	}
	return out, nil
}

func (s *sqlStore) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires < ?`),
		name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("%s: lease %s: %w", s.d.name, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: lease %s: %w", s.d.name, name, err)
	}
	return n == 1, nil
}

func (s *sqlStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("%s: releasing lease %s: %w", s.d.name, name, err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.db.Close() }
