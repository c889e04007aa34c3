// Package mysqltest gives a test its own real MariaDB (or MySQL) database,
// for what MIM reads from a Moodle site running on one. Like pgtest, it
// skips a test locally when no server answers, and fails it when CI=true or
// MIM_REQUIRE_DB=1 (the README's test command sets it); ./scripts/setup
// installs and starts Debian's mariadb-server and creates the role.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
)

// DefaultAdminDSN is used when MIM_TEST_MYSQL_URL is unset; ./scripts/setup
// creates this user, who may create and drop the databases named mim_*.
const DefaultAdminDSN = "mim:mim@tcp(127.0.0.1:3306)/"

// AdminDSN is the connection (go-sql-driver form) used to create and drop
// test databases.
func AdminDSN() string {
	if s := os.Getenv("MIM_TEST_MYSQL_URL"); s != "" {
		return s
	}
	return DefaultAdminDSN
}

// DB is one test's database.
type DB struct {
	Name string
	// DSN reaches the database (go-sql-driver form), for code that opens
	// its own connection.
	DSN string
	DB  *sql.DB
}

var (
	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

func adminDB() (*sql.DB, error) {
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("mysql", AdminDSN())
		if adminErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adminErr = admin.PingContext(ctx)
	})
	return admin, adminErr
}

// New returns a fresh, empty database (utf8mb4, Moodle's collation),
// dropped when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	ad, err := adminDB()
	if err != nil {
		msg := fmt.Sprintf("no test MariaDB at %s: %v (run ./scripts/setup, or set MIM_TEST_MYSQL_URL)",
			secret.RedactDSN(AdminDSN()), err)
		if pgtest.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "mim_t_" + hex.EncodeToString(b)
	if _, err := ad.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	cfg, err := mysql.ParseDSN(AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := ad.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	return &DB{Name: name, DSN: dsn, DB: db}
}
