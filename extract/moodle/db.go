package moodle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/secret"
)

// DBSource extracts one Moodle site from its database (kind moodle-db):
// a read-only connection, usually to a replica, read in one consistent
// snapshot with a handful of queries instead of a request per course and
// user. It lands the same raw entities, keys, scopes and payloads as the
// web-service Source reading the site with an administrator's token
// (docs/contracts.md §1), so nothing after extraction can tell them apart;
// site_info, which names the web-service user and its functions, is the
// exception: it carries what the database holds and mim_read "database".
// It implements extract.Source, and writes nothing to the site.
type DBSource struct {
	*Source
	db      *Database
	queries atomic.Int64
}

// Queries is how many SQL queries the last Extract ran: what reading the
// site cost its database.
func (s *DBSource) Queries() int64 { return s.queries.Load() }

var _ extract.Source = (*DBSource)(nil)

// WithClock sets the clock a database read judges enrolments' dates and
// the replica's lag by (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Source) { s.now = now } }

// NewDB builds the database source of site, whose Kind is moodle-db.
// opts.Entities narrows the entities as for New. It dials nothing until
// Extract.
func NewDB(site *Site, opts extract.Options, options ...Option) (*DBSource, error) {
	if site == nil || site.Database == nil {
		return nil, errors.New("extract/moodle: NewDB needs a site with a database")
	}
	land, err := selection(site, opts)
	if err != nil {
		return nil, err
	}
	for _, c := range site.UserCriteria {
		if !userCriterionKeys[c.Key] {
			return nil, &SelectionError{Msg: fmt.Sprintf("user_criteria key %q is not one %s searches on (id, idnumber, username, email, auth, firstname, lastname)",
				c.Key, fnUsers)}
		}
	}
	s := &Source{site: site, land: land, progress: opts.Progress}
	for _, o := range options {
		o(s)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return &DBSource{Source: s, db: site.Database}, nil
}

// userCriterionKeys are the keys core_user_get_users searches on.
var userCriterionKeys = map[string]bool{"id": true, "idnumber": true, "username": true, "email": true, "auth": true,
	"firstname": true, "lastname": true}

// LagError says the site's database is older than the configured lag
// allows: a replica that fell behind would show yesterday's enrolments as
// today's. Nothing is landed; raw keeps the last state.
type LagError struct {
	Newest time.Time     // the newest activity the database holds
	Age    time.Duration // how old it was when read
	MaxLag time.Duration
}

func (e *LagError) Error() string {
	return fmt.Sprintf("the database's newest activity is from %s, %s old, more than max_lag %s: a replica this far behind is not read "+
		"(check its replication; Moodle's cron, which runs every minute, keeps a healthy site's activity recent)",
		e.Newest.UTC().Format(time.RFC3339), e.Age.Round(time.Second), e.MaxLag)
}

// Extract reads the site's database in one read-only snapshot and streams
// the entities to sink, each committed as soon as it is complete. A
// database that cannot be reached, or whose newest activity is older than
// max_lag, lands nothing: every selected entity is aborted, so raw keeps
// the last state and the run sees the site as not read. A query that fails
// aborts what is still open.
func (s *DBSource) Extract(ctx context.Context, sink extract.Sink) error {
	x := &extraction{Source: s.Source, sink: sink, out: map[string]*entityOut{}}
	// The timeout bounds the site's whole extraction, its entities' commits
	// (which go on in the background) included.
	if s.db.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.db.Timeout)
		defer cancel()
	}
	if err := s.read(ctx, x); err != nil {
		x.abortAll(ctx, err)
	}
	return x.finish(ctx, s.Name()+" from its database")
}

// abortAll aborts every selected entity not yet committed with err, opening
// those not opened yet so that the ledger shows each one did not run, and
// reports err once.
func (x *extraction) abortAll(ctx context.Context, err error) {
	for _, e := range x.Entities() {
		if o := x.open(ctx, e); o != nil {
			o.abort(err, false)
		}
	}
	x.fail(err)
}

func (s *DBSource) read(ctx context.Context, x *extraction) error {
	conn, err := OpenDB(ctx, s.db.Driver, s.db.DSN)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One snapshot for every query, so enrolments, roles and groups agree
	// with each other and with the course list. Moodle writes nothing here.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("starting a read-only transaction: %w", err)
	}
	defer tx.Rollback()
	r := &dbRead{x: x, q: &querier{tx: tx, d: dialectOf(s.db.Driver), prefix: s.db.Prefix}, now: s.now().Unix()}
	defer func() { s.queries.Store(int64(r.q.queries)) }()
	return r.run(ctx)
}

// OpenDB opens a read-only connection to a Moodle database with driver pgx
// (PostgreSQL) or mysql (MySQL, MariaDB) and checks it. On PostgreSQL every
// transaction is read-only by default; on MySQL each read runs in a
// read-only transaction. Neither the error nor anything logged carries the
// DSN's password.
func OpenDB(ctx context.Context, driver string, dsn secret.DSN) (*sql.DB, error) {
	var (
		db       *sql.DB
		password string
	)
	switch driver {
	case "pgx":
		cfg, err := pgx.ParseConfig(dsn.Reveal())
		if err != nil {
			return nil, fmt.Errorf("reading the Moodle database DSN %s: %w", dsn, errors.New("not a PostgreSQL connection string"))
		}
		password = cfg.Password
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
		cfg.RuntimeParams["application_name"] = "mim"
		db = stdlib.OpenDB(*cfg)
	case "mysql":
		cfg, err := mysql.ParseDSN(dsn.Reveal())
		if err != nil {
			return nil, fmt.Errorf("reading the Moodle database DSN %s: not a go-sql-driver DSN (user:password@tcp(host:3306)/moodle)", dsn)
		}
		password = cfg.Passwd
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("reading the Moodle database DSN %s: %w", dsn, scrubPassword(err, password))
		}
		db = sql.OpenDB(conn)
	default:
		return nil, fmt.Errorf("driver %q is not supported for a Moodle database (use pgx or mysql)", driver)
	}
	db.SetMaxOpenConns(2)
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the Moodle database %s: %w", dsn, scrubPassword(err, password))
	}
	return db, nil
}

// passwordHidden is an error whose text had a password taken out.
type passwordHidden struct {
	msg string
	err error
}

func (e *passwordHidden) Error() string { return e.msg }
func (e *passwordHidden) Unwrap() error { return e.err }

func scrubPassword(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &passwordHidden{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

// dialect is what differs between the SQL of PostgreSQL and MySQL here.
type dialect struct {
	dollar bool // parameters are $1, $2 (PostgreSQL), not ?
	// schema is the expression naming the connection's schema in
	// information_schema.
	schema string
}

func dialectOf(driver string) dialect {
	if driver == "pgx" {
		return dialect{dollar: true, schema: "current_schema()"}
	}
	return dialect{schema: "DATABASE()"}
}

// querier runs Moodle-style SQL ({table} names, ? parameters) in the
// snapshot, counting the queries.
type querier struct {
	tx      *sql.Tx
	d       dialect
	prefix  string
	queries int
}

func (q *querier) sql(query string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		switch c := query[i]; c {
		case '{':
			end := strings.IndexByte(query[i:], '}')
			b.WriteString(q.prefix + query[i+1:i+end])
			i += end
		case '?':
			n++
			if q.d.dollar {
				b.WriteString("$" + strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// query runs a SELECT; what names the read in errors.
func (q *querier) query(ctx context.Context, what, query string, args ...any) (*sql.Rows, error) {
	q.queries++
	rows, err := q.tx.QueryContext(ctx, q.sql(query), args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return rows, nil
}

// each runs a SELECT and calls fn after scanning each row into dest.
func (q *querier) each(ctx context.Context, what, query string, args []any, dest []any, fn func() error) error {
	rows, err := q.query(ctx, what, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		if err := fn(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

// DBTables are the tables (without prefix) a database read of site uses;
// the optional ones only sharpen the lag check. `mim check` checks them.
func DBTables(site *Site) (required, optional []string) {
	required = []string{"config", "context", "course", "course_categories", "course_sections", "course_format_options",
		"user", "user_info_field", "user_info_category", "user_info_data", "enrol", "user_enrolments", "role",
		"role_assignments", "groups", "groups_members", "groupings", "groupings_groups"}
	land, _ := selection(site, extract.Options{})
	if land[entGrades] || land[entGradeItems] {
		required = append(required, "grade_items", "grade_grades")
	}
	if land[entCompletion] {
		required = append(required, "course_completions", "course_completion_criteria", "course_modules",
			"course_modules_completion", "user_lastaccess", "favourite", "user_preferences")
	}
	return required, []string{"logstore_standard_log", "task_scheduled"}
}

// CheckDB dials a moodle-db site's database and checks that every table a
// read needs exists with the configured prefix and can be selected from.
// It returns the tables missing (or unreadable) and how many were checked.
func CheckDB(ctx context.Context, site *Site) (missing []string, checked int, err error) {
	if site.Database == nil {
		return nil, 0, errors.New("the site has no database configured")
	}
	conn, err := OpenDB(ctx, site.Database.Driver, site.Database.DSN)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	required, _ := DBTables(site)
	for _, t := range required {
		var n int
		// A SELECT proves both that the table exists and that the grant covers it.
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM "+site.Database.Prefix+t+" WHERE 1 = 0) x").Scan(&n)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			missing = append(missing, site.Database.Prefix+t)
		}
	}
	return missing, len(required), nil
}
