package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/store"
)

// Config is the file `vguard serve --config FILE` reads (docs/serve.md).
// It is parsed strictly (unknown fields are errors) and validated before
// anything starts.
type Config struct {
	// Listen is the TCP address to serve on (default 127.0.0.1:8443).
	Listen string `yaml:"listen"`
	TLS    struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Store StoreConfig `yaml:"store"`
	// MaxBodyBytes bounds every request body (default 128 MiB: the 100k-VM
	// estate `vguard gen` writes is 69 MB of JSON; raise it for larger
	// estates, minding that loading one takes about seven times its size
	// in memory).
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// Judges is how many changes are judged at once, each by a judge with
	// its own copy of the estate (default: the number of CPUs).
	Judges int `yaml:"judges"`
	// Connectors (issue 6) run inside the server, on one replica at a time.
	Connectors []ConnectorConfig `yaml:"connectors"`
}

// StoreConfig chooses the store: SQLite (the default) or PostgreSQL.
type StoreConfig struct {
	// SQLite is the database file (default vguard.db beside the config).
	SQLite string `yaml:"sqlite"`
	// SQLiteSync is full (default) or normal; see store.SQLiteOptions.
	SQLiteSync string `yaml:"sqliteSync"`
	// Postgres is a connection URL or key=value string; it may hold a
	// password and is never printed whole.
	Postgres string `yaml:"postgres"`
}

// ConnectorConfig is one connector's entry. The server knows only these
// fields; Settings belong to the connector and are validated by its
// factory (see Connector).
type ConnectorConfig struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// Every is how often the connector syncs (default 5m; at least
	// MinEvery, how often the scheduler looks).
	Every time.Duration `yaml:"every,omitempty"`
	// Timeout bounds one sync (default Every, within 1m to 5m): a sync
	// that has not finished by then is given up and reported, so that a
	// platform that stopped answering fails alone.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Watch follows the platform's change feed instead of syncing every
	// Every (for kinds that can).
	Watch bool `yaml:"watch,omitempty"`
	// Remove takes a connector out for good: its stored documents are
	// removed when a replica takes the lease, and it runs nothing. A
	// connector merely missing from a replica's config keeps its
	// documents (replicas may briefly differ during a rolling change).
	Remove bool `yaml:"remove,omitempty"`
	// Settings are the connector's own; values under keys that name
	// secrets (password, token, secret, key) are redacted when printed.
	Settings map[string]any `yaml:"settings"`
	// Dir is the config file's directory: relative paths in Settings are
	// taken from it.
	Dir string `yaml:"-"`
}

// Defaults.
const (
	DefaultListen  = "127.0.0.1:8443"
	DefaultMaxBody = 128 << 20
	DefaultEvery   = 5 * time.Minute
	// MinEvery is how often the scheduler looks for a connector that is
	// due (DefaultLeaseTTL/3): a shorter every would be rounded up to it.
	MinEvery = DefaultLeaseTTL / 3
)

// every is how often c syncs (tests build configs by hand).
func (c ConnectorConfig) every() time.Duration {
	if c.Every == 0 {
		return DefaultEvery
	}
	return c.Every
}

// timeout is how long one sync of c may take.
func (c ConnectorConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return min(max(c.every(), time.Minute), 5*time.Minute)
}

// LoadConfig reads and validates the config file at path. Relative paths
// in it are taken from the file's directory.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses and validates a config file's contents.
func ParseConfig(path string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	dir := "."
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir = path[:i]
	}
	rel := func(p string) string {
		if p == "" || strings.HasPrefix(p, "/") {
			return p
		}
		return dir + "/" + p
	}
	c.TLS.Cert, c.TLS.Key, c.Store.SQLite = rel(c.TLS.Cert), rel(c.TLS.Key), rel(c.Store.SQLite)
	for i := range c.Connectors {
		c.Connectors[i].Dir = dir
	}
	if c.Store.SQLite == "" && c.Store.Postgres == "" {
		c.Store.SQLite = rel("vguard.db")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Validate checks c and fills in defaults; every problem is reported.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %v", err)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls: give both cert and key, or neither")
	}
	if c.Store.SQLite != "" && c.Store.Postgres != "" {
		bad("store: give sqlite or postgres, not both")
	}
	switch c.Store.SQLiteSync {
	case "", "full", "normal":
	default:
		bad("store.sqliteSync: %q: want full or normal", c.Store.SQLiteSync)
	}
	if c.Store.Postgres != "" {
		// The parser's own message may quote the string: only say that
		// it does not parse.
		if _, err := pgconn.ParseConfig(c.Store.Postgres); err != nil {
			bad("store.postgres: not a PostgreSQL connection string (URL or key=value)")
		}
	}
	if c.Store.Postgres != "" && c.Store.SQLiteSync != "" {
		bad("store.sqliteSync applies to sqlite only")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBody
	}
	if c.MaxBodyBytes < 1024 {
		bad("maxBodyBytes: %d is too small (at least 1024)", c.MaxBodyBytes)
	}
	if c.Judges < 0 || c.Judges > 256 {
		bad("judges: %d: want 0 (the number of CPUs) to 256", c.Judges)
	}
	seen := map[string]bool{}
	for i, cc := range c.Connectors {
		where := fmt.Sprintf("connectors[%d]", i)
		switch {
		case cc.Name == "":
			bad("%s.name: required", where)
		case seen[cc.Name]:
			bad("%s.name: %q is used twice", where, cc.Name)
		}
		seen[cc.Name] = true
		if cc.Remove {
			if cc.Watch || cc.Every != 0 || cc.Timeout != 0 || len(cc.Settings) > 0 {
				bad("%s: remove: true takes only the name (the connector runs nothing)", where)
			}
			continue
		}
		if cc.Kind == "" {
			bad("%s.kind: required", where)
		}
		switch {
		case cc.Watch && cc.Every != 0:
			bad("%s.every: does not apply with watch: true (a watch stores every change as it comes)", where)
		case cc.Watch && cc.Timeout != 0:
			bad("%s.timeout: does not apply with watch: true", where)
		case cc.Watch:
		case cc.Every < 0:
			bad("%s.every: must not be negative", where)
		case cc.Every > 0 && cc.Every < MinEvery:
			bad("%s.every: %v is below %v, how often the server looks for a connector that is due", where, cc.Every, MinEvery)
		case cc.Timeout < 0:
			bad("%s.timeout: must not be negative", where)
		default:
			// Filled in so that --print-config shows what is used.
			c.Connectors[i].Every = cc.every()
			c.Connectors[i].Timeout = cc.timeout()
		}
	}
	return errors.Join(errs...)
}

// CheckTLS loads the TLS key pair, so that a bad pair stops serve's start,
// not its first client. Only serve calls it: the commands that read the
// config for its store (audit verify and export, token) must work for an
// auditor who is rightly not given the server's private key.
func (c *Config) CheckTLS() error {
	if c.TLS.Cert == "" || c.TLS.Key == "" {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// secretKey tells whether a settings key names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "token", "secret", "key", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redacted returns c as YAML with every secret replaced by "REDACTED":
// the PostgreSQL password (in a URL or key=value form) and connector
// settings under secret-looking keys.
func (c *Config) Redacted() string {
	r := *c
	r.Store.Postgres = RedactDSN(c.Store.Postgres)
	r.Connectors = make([]ConnectorConfig, len(c.Connectors))
	for i, cc := range c.Connectors {
		cc.Settings = redactMap(cc.Settings)
		r.Connectors[i] = cc
	}
	out, err := yaml.Marshal(&r)
	if err != nil {
		return fmt.Sprintf("(config not printable: %v)", err)
	}
	return string(out)
}

func redactMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if secretKey(k) {
			out[k] = "REDACTED"
		} else {
			out[k] = redactValue(v)
		}
	}
	return out
}

// redactValue redacts inside maps and lists at any depth, and any string
// that holds a URL with a password.
func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return redactMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e)
		}
		return out
	case string:
		if u, err := url.Parse(x); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
				return u.String()
			}
		} else if err != nil && strings.Contains(x, "@") && strings.Contains(x, "://") {
			return "REDACTED"
		}
	}
	return v
}

// dsnSafe are the connection parameters shown when a DSN is printed;
// every other value (a password, a passfile, a bare word) is redacted.
var dsnSafe = map[string]bool{"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true,
	"sslmode": true, "connect_timeout": true, "application_name": true, "target_session_attrs": true}

// RedactDSN hides everything of a PostgreSQL connection string but its
// safe parameters (host, port, database, user, sslmode...).
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	u, err := url.Parse(dsn)
	isURL := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	if isURL && (err != nil || u.Opaque != "" || misreadUser(dsn, u)) {
		// A URL that does not parse, or parses other than its writer
		// meant, cannot be taken apart safely.
		return "REDACTED"
	}
	if err == nil && u.Scheme != "" && u.Opaque == "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		q := u.Query()
		for k := range q {
			if !dsnSafe[k] {
				q.Set(k, "REDACTED")
			}
		}
		u.RawQuery = q.Encode()
		u.Fragment, u.RawFragment = "", ""
		return u.String()
	}
	// key=value form. A quoted value may hold spaces (password='a b').
	fields := strings.Fields(dsn)
	var out []string
	for i := 0; i < len(fields); i++ {
		k, v, ok := strings.Cut(fields[i], "=")
		if strings.HasPrefix(v, "'") {
			for !(len(v) > 1 && strings.HasSuffix(v, "'") && !strings.HasSuffix(v, `\'`)) && i+1 < len(fields) {
				i++
				v += " " + fields[i]
			}
		}
		switch {
		case ok && dsnSafe[strings.ToLower(k)]:
			out = append(out, k+"="+v)
		case ok:
			out = append(out, k+"=REDACTED")
		default:
			out = append(out, "REDACTED")
		}
	}
	return strings.Join(out, " ")
}

// misreadUser tells whether a URL looks as if it held USER:PASSWORD@ but
// was parsed without a password (a '?', '#' or '/' in the password ends
// the authority early, and the password becomes a port, a path or a
// query).
func misreadUser(dsn string, u *url.URL) bool {
	_, rest, _ := strings.Cut(dsn, "://")
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return false
	}
	// The parser ends the authority at the first '/', '?' or '#'; an '@'
	// after that means a password holding one of them, unescaped, which
	// the parser read as host, path or query.
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && end < at {
		return true
	}
	if !strings.Contains(rest[:at], ":") {
		return false
	}
	_, has := u.User.Password()
	return !has
}

// OpenStoreReadOnly opens the store c names without writing to it: no
// migration (vguard audit verify and export read a copy, or a database a
// newer vguard uses, as it is).
func OpenStoreReadOnly(ctx context.Context, c StoreConfig) (store.Store, error) {
	if c.Postgres != "" {
		return store.OpenPostgresReadOnly(ctx, c.Postgres)
	}
	return store.OpenSQLite(ctx, c.SQLite, store.SQLiteOptions{ReadOnly: true})
}

// OpenStore opens the store c names, running its migrations.
func OpenStore(ctx context.Context, c StoreConfig) (store.Store, error) {
	if c.Postgres != "" {
		return store.OpenPostgres(ctx, c.Postgres)
	}
	return store.OpenSQLite(ctx, c.SQLite, store.SQLiteOptions{SyncNormal: c.SQLiteSync == "normal"})
}
