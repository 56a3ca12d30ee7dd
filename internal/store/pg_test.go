package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
