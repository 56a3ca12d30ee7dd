package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go
)

// SQLiteOptions tune the embedded store.
type SQLiteOptions struct {
	// SyncNormal trades durability against power loss for speed: in WAL
	// mode with synchronous=NORMAL a commit survives the process being
	// killed but not the machine losing power. The default, FULL, syncs
	// the log on every commit (group commit in the audit log makes that
	// affordable).
	SyncNormal bool
	// ReadOnly opens the database without writing to it: no migration
	// (a schema newer than this vguard knows is refused, an older one is
	// read as it is), no journal change. For reading the audit trail of
	// a copy, or of a database a newer vguard serve uses.
	ReadOnly bool
}

// uriPath escapes what a file: URI's path cannot hold as it is: SQLite
// decodes %XX in it, the driver takes everything after the first ? as
// options, and # starts a fragment. Unescaped, "prod#1.db" would open
// "prod", and "a%41b.db" "aAb.db".
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// OpenSQLite opens (creating it if needed) the SQLite database at path in
// WAL mode and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string, o SQLiteOptions) (Store, error) {
	sync := "FULL"
	if o.SyncNormal {
		sync = "NORMAL"
	}
	q := url.Values{}
	if o.ReadOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "busy_timeout(10000)")
		db, err := sql.Open("sqlite", "file:"+uriPath.Replace(path)+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", path, err)
		}
		s := &sqlStore{db: db, d: dialect{name: "sqlite " + path, blob: "BLOB"}}
		if err := s.checkSchema(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "busy_timeout(10000)")
	// Every write transaction takes the write lock at BEGIN, so that two
	// processes cannot both read the audit head and then collide.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+uriPath.Replace(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	s := &sqlStore{db: db, d: dialect{name: "sqlite " + path, blob: "BLOB"}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
