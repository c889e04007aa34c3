package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	// The pgx database/sql driver, registered as "pgx": a PostgreSQL-hosted
	// copy of the views (tests, the demo, a university that replicates SITS).
	"github.com/jackc/pgx/v5/stdlib"
	// Microsoft's pure-Go SQL Server driver, registered as "sqlserver":
	// PowerCampus-style student records on SQL Server.
	_ "github.com/microsoft/go-mssqldb"

	"github.com/mimwarehouse/mim/internal/secret"
)

// driver is what MIM knows about one database/sql driver.
type driver struct {
	// sqlName is the name the driver registers with database/sql.
	sqlName string
	// bind renders the n-th (1-based) parameter called name.
	bind func(n int, name string) string
	// arg wraps a parameter value for the driver.
	arg func(name string, v any) any
	// queryOptions are extra Query arguments (godror's fetch sizes).
	queryOptions func(fetchSize int) []any
	// unavailable, when set, says why the driver is not built in.
	unavailable string
	// open, when set, opens the database instead of sql.Open.
	open func(dsn string) (*sql.DB, error)
	// nullability, when set, tells which columns of a relation may be
	// NULL, for a driver whose column types do not say (pgx).
	nullability func(ctx context.Context, db *DB, schema, relation string) (map[string]bool, error)
}

// drivers are the drivers this binary can use, by their configuration name.
// godror is added by godror.go when the binary is built with cgo.
var drivers = map[string]driver{
	"pgx": {
		sqlName:      "pgx",
		bind:         func(n int, _ string) string { return fmt.Sprintf("$%d", n) },
		arg:          func(_ string, v any) any { return v },
		queryOptions: func(int) []any { return nil },
		nullability:  pgNullability,
		open:         openPG,
	},
	"sqlserver": {
		sqlName: "sqlserver",
		// go-mssqldb's positional form: @p1, @p2, ...
		bind:         func(n int, _ string) string { return fmt.Sprintf("@p%d", n) },
		arg:          func(_ string, v any) any { return v },
		queryOptions: func(int) []any { return nil },
	},
}

// Drivers lists the configuration names of the drivers built into this binary.
func Drivers() []string {
	var names []string
	for n, d := range drivers {
		if d.unavailable == "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// DB is an open source database and the dialect its driver speaks.
type DB struct {
	*sql.DB
	driverName string
	drv        driver
	password   string
}

// Driver is the configuration name of the driver ("pgx", "godror").
func (db *DB) Driver() string { return db.driverName }

// Open connects to a source database with the configured driver ("pgx",
// "godror" or "sqlserver") and checks the connection. Neither the returned error nor
// anything logged carries the DSN's password.
func Open(ctx context.Context, driverName string, dsn secret.DSN) (*DB, error) {
	drv, ok := drivers[driverName]
	switch {
	case !ok:
		return nil, fmt.Errorf("driver %q is not supported (built in: %s)", driverName, strings.Join(Drivers(), ", "))
	case drv.unavailable != "":
		return nil, errors.New(drv.unavailable)
	}
	pw := dsn.Password()
	open := func(dsn string) (*sql.DB, error) { return sql.Open(drv.sqlName, dsn) }
	if drv.open != nil {
		open = drv.open
	}
	sdb, err := open(dsn.Reveal())
	if err != nil {
		return nil, fmt.Errorf("opening %s with driver %s: %w", dsn, driverName, scrub(err, pw))
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sdb.PingContext(pingCtx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connecting to %s with driver %s: %w", dsn, driverName, scrub(err, pw))
	}
	return &DB{DB: sdb, driverName: driverName, drv: drv, password: pw}, nil
}

// scrubbed is an error whose text had a password removed; it keeps the
// original for errors.Is/As but never prints it.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub hides password in err's text. Drivers sometimes quote the connection
// string they were given.
func scrub(err error, password string) error {
	if err == nil {
		return err
	}
	msg := secret.ScrubPassword(err.Error(), password)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

var (
	schemaName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_$#]{0,127}$`)
	paramRef   = regexp.MustCompile(`:([a-z][a-z0-9_]*)`)
	// lineComment is a "--" comment: dropped before parameters are bound,
	// so a parameter named in a comment is not bound (the SELECTs have no
	// "--" inside string literals).
	lineComment = regexp.MustCompile(`--[^\n]*`)
)

// prepare renders an entity's SELECT for this driver: comments go,
// {{schema}} becomes the owner prefix ("SISMGR." or nothing) and each :name
// a bind parameter. It
// returns the SQL and its arguments in order.
func (db *DB) prepare(query, schema string, params map[string]any) (string, []any, error) {
	prefix := ""
	if schema != "" {
		if !schemaName.MatchString(schema) {
			return "", nil, fmt.Errorf("schema %q is not a plain identifier", schema)
		}
		prefix = schema + "."
	}
	query = lineComment.ReplaceAllString(query, "")
	query = strings.TrimSpace(strings.ReplaceAll(query, "{{schema}}", prefix))
	var (
		args    []any
		missing []string
	)
	query = paramRef.ReplaceAllStringFunc(query, func(m string) string {
		name := m[1:]
		v, ok := params[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		args = append(args, db.drv.arg(name, v))
		return db.drv.bind(len(args), name)
	})
	if len(missing) > 0 {
		return "", nil, fmt.Errorf("the query uses parameters with no value: %s", strings.Join(missing, ", "))
	}
	return query, args, nil
}

// pgNullability reads a PostgreSQL relation's nullability from the
// catalog (pgx's column types do not carry it); names come back upper case.
func pgNullability(ctx context.Context, db *DB, schema, relation string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT upper(a.attname), NOT a.attnotnull
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relname = lower($1)
		  AND n.nspname = CASE WHEN $2 = '' THEN current_schema() ELSE lower($2) END`, relation, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		var nullable bool
		if err := rows.Scan(&name, &nullable); err != nil {
			return nil, err
		}
		out[name] = nullable
	}
	return out, rows.Err()
}

// openPG opens a PostgreSQL-hosted copy asking for UTF-8 whatever the
// database's encoding, as MIM's Oracle connections ask for AL32UTF8: a
// LATIN1 copy of a WE8ISO8859P1 SITS then reads as the real one does
// (PostgreSQL's default client encoding is the database's own, which
// would hand Latin-1 bytes to MIM). A SQL_ASCII database has no encoding
// to convert from: its bytes come as stored and each row's text is
// checked for UTF-8 instead.
func openPG(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		if c.PgConn().ParameterStatus("server_encoding") == "SQL_ASCII" {
			return nil
		}
		_, err := c.Exec(ctx, "SET client_encoding TO 'UTF8'")
		return err
	})), nil
}
