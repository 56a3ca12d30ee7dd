package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the database/sql driver "pgx"
)

// OpenPostgres connects to the PostgreSQL database at dsn (a URL or
// key=value string as libpq reads) and brings its schema up to date.
// Errors never repeat dsn, which may hold a password.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	return openPostgres(ctx, dsn, false)
}

// OpenPostgresReadOnly connects without writing: every transaction is
// read-only and no migration runs (a schema newer than this vguard knows
// is refused).
func OpenPostgresReadOnly(ctx context.Context, dsn string) (Store, error) {
	return openPostgres(ctx, dsn, true)
}

func openPostgres(ctx context.Context, dsn string, readOnly bool) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, which may hold a password.
		return nil, errors.New("postgres: not a PostgreSQL connection string (URL or key=value)")
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := stdlib.OpenDB(*cfg)
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
	check := s.migrate
	if readOnly {
		check = s.checkSchema
	}
	if err := check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
