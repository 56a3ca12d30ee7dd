package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/store/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func TestPostgres(t *testing.T) {
	runSuite(t, func(t *testing.T) func(t *testing.T) Store {
		dsn := pgtest.NewDB(t)
		return func(t *testing.T) Store {
			s, err := OpenPostgres(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

func TestSQLite(t *testing.T) {
	runSuite(t, func(t *testing.T) func(t *testing.T) Store {
		path := filepath.Join(t.TempDir(), "vguard.db")
		return func(t *testing.T) Store {
			s, err := OpenSQLite(context.Background(), path, SQLiteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

// TestReadOnly: a store opened read-only reads the audit trail of a
// database at an older schema without upgrading it, writes nothing, and
// refuses a newer schema.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var open, openRO func() (Store, error)
			if kind == "sqlite" {
				path := filepath.Join(t.TempDir(), "vguard.db")
				open = func() (Store, error) { return OpenSQLite(ctx, path, SQLiteOptions{}) }
				openRO = func() (Store, error) { return OpenSQLite(ctx, path, SQLiteOptions{ReadOnly: true}) }
			} else {
				dsn := pgtest.NewDB(t)
				open = func() (Store, error) { return OpenPostgres(ctx, dsn) }
				openRO = func() (Store, error) { return OpenPostgresReadOnly(ctx, dsn) }
			}
			rw, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer rw.Close()
			l := audit.NewLog(rw)
			if _, err := l.Append(ctx, audit.Entry{Kind: audit.KindSync}); err != nil {
				t.Fatal(err)
			}
			l.Close()
			sq := rw.(*sqlStore)
			n := len(migrations(sq.d))
			// As an older vguard left it.
			if _, err := sq.db.Exec(sq.q(`DELETE FROM vguard_schema WHERE version = ?`), n); err != nil {
				t.Fatal(err)
			}
			ro, err := openRO()
			if err != nil {
				t.Fatal(err)
			}
			if recs, err := audit.Verify(ctx, ro); err != nil || recs != 1 {
				t.Fatalf("verify read-only: %d %v", recs, err)
			}
			if err := ro.PutDocument(ctx, Document{Kind: KindEstate, Name: "x", Data: []byte("x")}); err == nil {
				t.Error("a read-only store wrote a document")
			}
			ro.Close()
			if v, err := rw.SchemaVersion(ctx); err != nil || v != n-1 {
				t.Fatalf("schema version after a read-only open: %d %v; want %d (not upgraded)", v, err, n-1)
			}
			if _, err := sq.db.Exec(sq.q(`INSERT INTO vguard_schema (version) VALUES (?), (?)`), n, n+1); err != nil {
				t.Fatal(err)
			}
			if _, err := openRO(); err == nil || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("a newer schema read-only: %v", err)
			}
		})
	}
}
