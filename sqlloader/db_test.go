package sqlloader

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/kiwicache/kiwicache/internal/skipreport"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// pgURL is the throwaway PostgreSQL cluster that TestMain starts, or
// KIWICACHE_POSTGRES_URL; empty when there is none.
var pgURL string

func TestMain(m *testing.M) {
	pgURL = os.Getenv("KIWICACHE_POSTGRES_URL")
	stop := func() {}
	if pgURL == "" {
		var err error
		if pgURL, stop, err = startPostgres(); err != nil {
			fmt.Fprintln(os.Stderr, "sqlloader tests: no PostgreSQL:", err)
		}
	}
	code := m.Run()
	stop()
	skipreport.Report("github.com/kiwicache/kiwicache/sqlloader")
	os.Exit(code)
}

// startPostgres makes a cluster in a temporary directory and starts it on a
// free loopback port, as the user nobody when run as root (postgres refuses
// to run as root).
func startPostgres() (url string, stop func(), err error) {
	bin := postgresBin()
	if bin == "" {
		return "", nil, fmt.Errorf("initdb is not installed (apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("", "kiwicache-pg")
	if err != nil {
		return "", nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534} // nobody
		if err := os.Chown(dir, 65534, 65534); err != nil {
			return "", nil, err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	server := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "TimeZone=UTC", "-c", "fsync=off")
	if err := server.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() {
		server.Process.Signal(syscall.SIGINT) // fast shutdown
		server.Wait()
		os.RemoveAll(dir)
	}
	url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", url)
	if err != nil {
		stop()
		return "", nil, err
	}
	defer db.Close()
	for range 100 {
		if db.Ping() == nil {
			return url, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("postgres on port %d did not answer", port)
}

func postgresBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// openPostgres returns a fresh database of the test cluster, or skips.
func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	if pgURL == "" {
		skipreport.Skip(t, "PostgreSQL", "no initdb/postgres could be started (apt-get install postgresql) and KIWICACHE_POSTGRES_URL is unset")
	}
	admin, err := sql.Open("pgx", pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u := pgURL[:len(pgURL)-len("postgres?sslmode=disable")] + name + "?sslmode=disable"
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openSQLite returns a fresh embedded SQLite database.
func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec1(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
