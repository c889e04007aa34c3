// Package pgtest gives each test its own real PostgreSQL database, cloned
// from a template that holds every migration, so database tests are fast,
// isolated and never mocked. Without a reachable server tests are skipped
// locally, but fail when CI=true or MIM_REQUIRE_DB=1 (the README's test
// command sets it), so CI can never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/secret"
	"github.com/mimwarehouse/mim/internal/warehouse"
	sqlfiles "github.com/mimwarehouse/mim/sql"
)

// DefaultAdminDSN is used when MIM_TEST_DATABASE_URL is unset; the README's
// setup creates this role (with CREATEDB) on the local server.
const DefaultAdminDSN = "postgres://mim:mim@127.0.0.1:5432/postgres?sslmode=disable"

// Environment is the ctl.deployment label of every test database.
const Environment = "test"

// DB is one test's database.
type DB struct {
	Name string
	DSN  secret.DSN
	Pool *pgxpool.Pool
}

// AdminDSN is the connection used to create and drop test databases.
func AdminDSN() string {
	if s := os.Getenv("MIM_TEST_DATABASE_URL"); s != "" {
		return s
	}
	return DefaultAdminDSN
}

// Required reports whether a missing database must fail tests instead of
// skipping them.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("MIM_REQUIRE_DB") == "1"
}

var (
	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
	tplMu     sync.Mutex
	tplReady  = map[string]bool{}
)

func adminPool() (*pgxpool.Pool, error) {
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, adminErr = warehouse.Open(ctx, secret.DSN(AdminDSN()), 4)
	})
	return admin, adminErr
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("no test PostgreSQL at %s: %v (run ./scripts/setup, or set MIM_TEST_DATABASE_URL)",
		secret.RedactDSN(AdminDSN()), err)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// New returns a fresh, fully migrated database labelled environment "test",
// dropped when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	return newDB(t, true)
}

// NewEmpty returns a fresh database with no migrations applied.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	return newDB(t, false)
}

func newDB(t testing.TB, migrated bool) *DB {
	t.Helper()
	ctx := context.Background()
	ap, err := adminPool()
	if err != nil {
		unavailable(t, err)
	}
	template := "template0"
	if migrated {
		if template, err = ensureTemplate(ctx, ap); err != nil {
			t.Fatalf("preparing the migrated template database: %v", err)
		}
	}
	name := "mim_t_" + randomHex(6)
	if err := createFrom(ctx, ap, name, template); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	dsn := secret.DSN(warehouse.WithDatabase(AdminDSN(), name))
	pool, err := warehouse.Open(ctx, dsn, 8)
	if err != nil {
		dropDatabase(ap, name)
		t.Fatalf("connecting to test database: %v", err)
	}
	if migrated {
		// A clone of the template is a copy of a labelled warehouse: its
		// label is bound to the template, so it is claimed, as an operator
		// would claim a restored copy.
		if _, err := warehouse.Claim(ctx, pool, Environment, "pgtest"); err != nil {
			pool.Close()
			dropDatabase(ap, name)
			t.Fatalf("claiming test database: %v", err)
		}
	}
	t.Cleanup(func() {
		// Dropping with FORCE first ends every session, so a test that failed
		// while holding a connection cannot hang the cleanup.
		dropDatabase(ap, name)
		closed := make(chan struct{})
		go func() { pool.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Errorf("test database %s: the test never released a pooled connection", name)
		}
	})
	return &DB{Name: name, DSN: dsn, Pool: pool}
}

// createFrom clones template, retrying while another backend briefly holds
// the template (PostgreSQL refuses to copy a database in use).
func createFrom(ctx context.Context, ap *pgxpool.Pool, name, template string) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = ap.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`,
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize()))
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func dropDatabase(ap *pgxpool.Pool, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = ap.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, pgx.Identifier{name}.Sanitize()))
}

// ensureTemplate creates, once per migration set, a database holding every
// migration. Its name carries a hash of the migration files, so a changed
// migration gets a new template and branches never share a stale one.
func ensureTemplate(ctx context.Context, ap *pgxpool.Pool) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	tplMu.Lock()
	defer tplMu.Unlock()
	if tplReady[name] {
		return name, nil
	}
	conn, err := ap.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	// Test binaries of several packages run at once: serialise creation.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, name); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtext($1))`, name)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		building := name + "_build"
		dropDatabase(ap, building)
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{building}.Sanitize()); err != nil {
			return "", err
		}
		if err := migrateTemplate(ctx, building); err != nil {
			dropDatabase(ap, building)
			return "", err
		}
		// Renamed only once complete, so a crash never leaves a half-built template.
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`,
			pgx.Identifier{building}.Sanitize(), pgx.Identifier{name}.Sanitize())); err != nil {
			return "", err
		}
	}
	tplReady[name] = true
	return name, nil
}

func migrateTemplate(ctx context.Context, db string) error {
	pool, err := warehouse.Open(ctx, secret.DSN(warehouse.WithDatabase(AdminDSN(), db)), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := warehouse.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	_, _, err = warehouse.EnsureDeployment(ctx, pool, Environment, "pgtest")
	return err
}

func templateName() (string, error) {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(sqlfiles.Migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(sqlfiles.Migrations, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return "mim_tpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewEncoded returns the DSN of a fresh, empty database of the given
// encoding (SQL_ASCII, LATIN1, ...), dropped when the test ends: a stand-in
// for a source database in a legacy character set, which can hold text that
// is not UTF-8.
func NewEncoded(t testing.TB, encoding string) secret.DSN {
	t.Helper()
	ap, err := adminPool()
	if err != nil {
		unavailable(t, err)
	}
	name := "mim_t_" + strings.ToLower(strings.ReplaceAll(encoding, "_", "")) + "_" + randomHex(6)
	if _, err := ap.Exec(context.Background(), `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` ENCODING `+
		quoteLiteral(encoding)+` LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`); err != nil {
		t.Fatalf("creating a %s database: %v", encoding, err)
	}
	t.Cleanup(func() { dropDatabase(ap, name) })
	return secret.DSN(warehouse.WithDatabase(AdminDSN(), name))
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
