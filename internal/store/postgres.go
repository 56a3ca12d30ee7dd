package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
)

// OpenPostgres connects to the PostgreSQL database at dsn (a URL or
// key=value string as libpq reads) and brings its schema up to date.
// Errors never repeat dsn, which may hold a password.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	s := &sqlStore{db: db, d: dialect{
		name:       "postgres",
		positional: true,
		blob:       "BYTEA",
		lock:       func(r int64) string { return fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", r) },
	}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
