// Package pgtest runs a PostgreSQL server of the test binary's own for
// tests of the store and of the server on PostgreSQL: initdb into a
// temporary directory, postgres on a private unix socket (no TCP port),
// a fresh database per test. TestMain must call Stop.
package pgtest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// A PostgreSQL server of the test binary's own, started on first use on a
// private unix socket (no TCP port) and stopped by TestMain.
var pg struct {
	once    sync.Once
	dir     string
	cmd     *exec.Cmd
	dsnBase string
	err     string
	n       atomic.Int64
}

// Stop stops the server, if one was started; call it from TestMain after
// m.Run.
func Stop() {
	if pg.cmd != nil && pg.cmd.Process != nil {
		_ = pg.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = pg.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = pg.cmd.Process.Kill()
		}
	}
	if pg.dir != "" {
		os.RemoveAll(pg.dir)
	}
}

func pgBin(name string) (string, bool) {
	if p, ok := testdeps.Look(name); ok {
		return p, true
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}

// startPostgres runs initdb and postgres, as the postgres user when the
// tests run as root (PostgreSQL refuses to run as root).
func startPostgres() string {
	initdb, ok1 := pgBin("initdb")
	postgres, ok2 := pgBin("postgres")
	if !ok1 || !ok2 {
		return "PostgreSQL (initdb, postgres) is not installed (./scripts/deps installs it)"
	}
	var cred *syscall.Credential
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "running as root and there is no postgres user to run PostgreSQL as"
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "vguard-pg-")
	if err != nil {
		return err.Error()
	}
	pg.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err.Error()
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err.Error()
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "vguard", "--auth=trust", "-E", "UTF8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Sprintf("initdb: %v\n%s", err, out)
	}
	// No TCP listener: the socket in dir is private to this test run.
	pg.cmd = exec.Command(postgres, "-D", data, "-k", dir, "-p", "5432", "-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "max_connections=100")
	pg.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	logf, _ := os.Create(filepath.Join(dir, "log"))
	pg.cmd.Stdout, pg.cmd.Stderr = logf, logf
	if err := pg.cmd.Start(); err != nil {
		return "postgres: " + err.Error()
	}
	pg.dsnBase = fmt.Sprintf("host=%s port=5432 user=vguard sslmode=disable", dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", pg.dsnBase+" dbname=postgres")
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return ""
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			return fmt.Sprintf("postgres did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewDB returns the DSN (key=value form, unix socket) of a fresh, empty
// database on the test binary's PostgreSQL server, starting the server on
// first use. Without PostgreSQL it skips t (fails it under scripts/test).
func NewDB(t testing.TB) string {
	t.Helper()
	pg.once.Do(func() { pg.err = startPostgres() })
	if pg.err != "" {
		if pg.cmd != nil {
			t.Fatal(pg.err) // installed but broken: never a skip
		}
		testdeps.Missing(t, pg.err)
	}
	name := fmt.Sprintf("t%d", pg.n.Add(1))
	db, err := sql.Open("pgx", pg.dsnBase+" dbname=postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return pg.dsnBase + " dbname=" + name
}
