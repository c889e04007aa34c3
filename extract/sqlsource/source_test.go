package sqlsource_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/extract/sqlsource/sqlsourcetest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
)

// exec runs statements against a test database through database/sql.
func exec(t *testing.T, dsn secret.DSN, stmts ...string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

var things = sqlsource.Entity{
	Name: "thing",
	SQL: `SELECT CODE, LABEL, PADDED, QTY, RATIO, SINCE, SINCE_TEXT, OPTIONAL
	      FROM {{schema}}THING WHERE :min_year = '0000' OR SUBSTR(YR, 1, 4) >= :min_year ORDER BY CODE`,
	Key:   []string{"code"},
	Types: map[string]sqlsource.Type{"qty": sqlsource.Number, "ratio": sqlsource.Number, "since": sqlsource.Date, "since_text": sqlsource.Date},
}

var others = sqlsource.Entity{
	Name: "other",
	SQL:  `SELECT A, B FROM {{schema}}OTHER ORDER BY A, B`,
	Key:  []string{"a", "b"},
}

func setupThings(t *testing.T) secret.DSN {
	t.Helper()
	db := pgtest.NewEmpty(t)
	exec(t, db.DSN,
		`CREATE SCHEMA srcx`,
		`CREATE TABLE srcx.thing (code varchar(12), label text, padded char(6), qty numeric, ratio float8,
		  since date, since_text varchar(20), optional varchar(10), yr varchar(12))`,
		`INSERT INTO srcx.thing VALUES
		  ('A1', 'Tomás Ó Briain', 'ab', 15.00, 0.5, DATE '2025-09-22', '2025-09-22', NULL, '2025'),
		  ('A2', 'quote " and \ slash', 'xyz   ', 7.5, 2, NULL, NULL, '', '2024/5'),
		  ('A3', 'Nguyễn', NULL, -0.250, NULL, DATE '2026-01-05', '2026-01-05 00:00:00', 'x', '2023')`,
		`CREATE TABLE srcx.other (a text, b text)`,
		`INSERT INTO srcx.other VALUES ('k', '1'), ('k', '2'), ('m', NULL)`,
	)
	return db.DSN
}

func newSource(t *testing.T, dsn secret.DSN, minYear string, opts extract.Options, entities ...sqlsource.Entity) *sqlsource.Source {
	t.Helper()
	src, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx", DSN: dsn, Schema: "SRCX",
		Params: map[string]any{"min_year": minYear}, MaxBadRowsPercent: 1}, entities, opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestExtractTypesValuesExplicitly(t *testing.T) {
	dsn := setupThings(t)
	var sink sqlsourcetest.Sink
	var progress sqlsourcetest.Progress
	src := newSource(t, dsn, "0000", extract.Options{Progress: &progress}, things, others)
	if err := src.Extract(context.Background(), &sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.Names(); !slices.Equal(got, []string{"thing", "other"}) {
		t.Errorf("entities %v", got)
	}
	e := sink.Get("thing")
	if !e.Committed || e.Aborted || !slices.Equal(e.Complete, []string{""}) || len(e.RowErrors) != 0 {
		t.Fatalf("thing: committed %v aborted %v complete %q errors %v", e.Committed, e.Aborted, e.Complete, e.RowErrors)
	}
	if e.ID != (extract.EntityID{Source: "testsrc", Instance: "testsrc", Entity: "thing"}) {
		t.Errorf("id %v", e.ID)
	}
	want := map[string]string{
		"A1": `{"code":"A1","label":"Tomás Ó Briain","padded":"ab","qty":15,"ratio":0.5,"since":"2025-09-22","since_text":"2025-09-22","optional":null}`,
		"A2": `{"code":"A2","label":"quote \" and \\ slash","padded":"xyz","qty":7.5,"ratio":2,"since":null,"since_text":null,"optional":null}`,
		"A3": `{"code":"A3","label":"Nguyễn","padded":null,"qty":-0.25,"ratio":null,"since":"2026-01-05","since_text":"2026-01-05","optional":"x"}`,
	}
	for _, r := range e.Records {
		if r.Scope != "" || string(r.Payload) != want[r.Key] {
			t.Errorf("%s (scope %q):\n got %s\nwant %s", r.Key, r.Scope, r.Payload, want[r.Key])
		}
		if !json.Valid(r.Payload) {
			t.Errorf("%s: invalid JSON", r.Key)
		}
	}
	if len(e.Records) != 3 {
		t.Errorf("%d records", len(e.Records))
	}
	if got := sink.Get("other").Keys(); !slices.Equal(got, []string{"k|1", "k|2", "m|"}) {
		t.Errorf("composite keys %q", got)
	}
	if exp, done := progress.Get("thing"); exp != 3 || done != 3 {
		t.Errorf("progress thing: expected %d done %d", exp, done)
	}
}

func TestMinYearAndEntityFilter(t *testing.T) {
	dsn := setupThings(t)
	var sink sqlsourcetest.Sink
	src := newSource(t, dsn, "2024", extract.Options{Entities: []string{"thing"}}, others, things)
	if err := src.Extract(context.Background(), &sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.Names(); !slices.Equal(got, []string{"thing"}) {
		t.Errorf("entities %v, want only thing", got)
	}
	if got := sink.Get("thing").Keys(); !slices.Equal(got, []string{"A1", "A2"}) {
		t.Errorf("min year 2024 kept %v (2023 must go, '2024/5' must stay)", got)
	}
	_, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx"}, []sqlsource.Entity{things, others},
		extract.Options{Entities: []string{"thing", "nope"}})
	if err == nil || !strings.Contains(err.Error(), `no entity "nope" (known: thing, other)`) {
		t.Errorf("unknown entity: %v", err)
	}
}

func TestBadRowsAreReportedAndCounted(t *testing.T) {
	db := pgtest.NewEmpty(t)
	// 200 good rows and 2 bad ones: a date that does not exist and a number
	// that is not one; plus a duplicate key.
	exec(t, db.DSN,
		`CREATE SCHEMA srcx`,
		`CREATE TABLE srcx.thing (code varchar(12), label text, padded char(6), qty text, ratio float8,
		  since date, since_text varchar(20), optional varchar(10), yr varchar(12))`,
		`INSERT INTO srcx.thing SELECT 'G' || lpad(i::text, 4, '0'), 'ok', 'p', i::text, 1, NULL, '2025-01-01', NULL, '2025' FROM generate_series(1, 200) i`,
		`INSERT INTO srcx.thing VALUES ('BAD1', 'x', 'p', '1', 1, NULL, '2025-02-30', NULL, '2025'),
		                             ('BAD2', 'x', 'p', 'twelve', 1, NULL, NULL, NULL, '2025'),
		                             ('G0001', 'again', 'p', '1', 1, NULL, NULL, NULL, '2025')`,
		`CREATE TABLE srcx.other (a text, b text)`,
		`INSERT INTO srcx.other VALUES ('k', '1')`,
	)
	run := func(maxPercent float64) (*sqlsourcetest.Sink, error) {
		var sink sqlsourcetest.Sink
		src, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx", DSN: db.DSN, Schema: "srcx",
			Params: map[string]any{"min_year": "0000"}, MaxBadRowsPercent: maxPercent}, []sqlsource.Entity{things, others}, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return &sink, src.Extract(context.Background(), &sink)
	}

	// 3 bad rows of 203 is 1.48%: within 2%, the good rows land.
	sink, err := run(2)
	if err != nil {
		t.Fatalf("within the limit: %v", err)
	}
	e := sink.Get("thing")
	if !e.Committed || len(e.Records) != 200 || len(e.RowErrors) != 3 {
		t.Fatalf("committed %v, %d records, %d row errors", e.Committed, len(e.Records), len(e.RowErrors))
	}
	got := map[string]string{}
	for _, re := range e.RowErrors {
		got[re.Key] = re.Err.Error()
	}
	for key, want := range map[string]string{
		"BAD1":  `column since_text: "2025-02-30" is not a valid date`,
		"BAD2":  `column qty: "twelve" is not a number`,
		"G0001": `duplicate key "G0001"`,
	} {
		if !strings.Contains(got[key], want) {
			t.Errorf("row error for %s = %q, want %q", key, got[key], want)
		}
	}
	if p := e.Payloads()["G0001"]; p["label"] != "ok" {
		t.Errorf("the first of a duplicate key must be kept: %v", p)
	}

	// Over 1%: the entity fails and lands nothing; the other entity still does.
	sink, err = run(1)
	var bre *sqlsource.BadRowsError
	if !errors.As(err, &bre) || bre.Bad != 3 || bre.Rows != 203 || !strings.Contains(err.Error(), "testsrc/thing") {
		t.Fatalf("over the limit: %v", err)
	}
	if e := sink.Get("thing"); e.Committed || !e.Aborted || e.Failed[""] == nil {
		t.Errorf("thing must be aborted with its scope failed: %+v", e)
	}
	if o := sink.Get("other"); !o.Committed || len(o.Records) != 1 {
		t.Errorf("other must still land: %+v", o)
	}
}

// A SITS copy in a SQL_ASCII database can hold bytes that are not UTF-8,
// as a legacy Oracle character set does; such a row is named and skipped.
func TestNonUTF8TextIsABadRow(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewEncoded(t, "SQL_ASCII")
	exec(t, dsn,
		`CREATE SCHEMA srcx`,
		`CREATE TABLE srcx.other (a text, b text)`,
		`INSERT INTO srcx.other SELECT 'r' || i, 'fine' FROM generate_series(1, 150) i`,
		`INSERT INTO srcx.other VALUES ('latin1', E'Jos\xe9')`,
	)
	var sink sqlsourcetest.Sink
	src, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx", DSN: dsn, Schema: "srcx", MaxBadRowsPercent: 1},
		[]sqlsource.Entity{others}, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Extract(ctx, &sink); err != nil {
		t.Fatal(err)
	}
	e := sink.Get("other")
	if len(e.Records) != 150 || len(e.RowErrors) != 1 {
		t.Fatalf("%d records, row errors %v", len(e.Records), e.RowErrors)
	}
	// The key carries the bad bytes made printable.
	if re := e.RowErrors[0]; re.Key != "latin1|Jos\uFFFD" || !strings.Contains(re.Err.Error(), "column b: not valid UTF-8 (byte 0xE9 at offset 3)") {
		t.Errorf("row error %q: %v", re.Key, re.Err)
	}
}

func TestSchemaMismatchFailsTheEntity(t *testing.T) {
	db := pgtest.NewEmpty(t)
	exec(t, db.DSN,
		`CREATE SCHEMA srcx`,
		// label is a number where the contract says text; there is no optional column.
		`CREATE TABLE srcx.thing (code varchar(12), label integer, padded char(6), qty numeric, ratio float8,
		  since date, since_text varchar(20), yr varchar(12))`,
		`CREATE TABLE srcx.other (a text, b date)`,
	)
	var sink sqlsourcetest.Sink
	src := newSource(t, db.DSN, "0000", extract.Options{}, things, others)
	err := src.Extract(context.Background(), &sink)
	if err == nil || !strings.Contains(err.Error(), "testsrc/thing") || !strings.Contains(err.Error(), `column "optional" does not exist`) {
		t.Errorf("missing column: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "testsrc/other") || !strings.Contains(err.Error(), "column b is DATE in the source but the contract reads it as text") {
		t.Errorf("wrong type: %v", err)
	}
	if e := sink.Get("thing"); !e.Aborted || e.Committed {
		t.Errorf("thing: %+v", e)
	}
	rep, cerr := src.Check(context.Background())
	if cerr != nil || rep.Entities["thing"] == nil || rep.Entities["other"] == nil || rep.OK() {
		t.Errorf("check: %+v %v", rep, cerr)
	}
}

func TestCheckPassesOnAGoodSchema(t *testing.T) {
	dsn := setupThings(t)
	rep, err := newSource(t, dsn, "2025", extract.Options{}, things, others).Check(context.Background())
	if err != nil || !rep.OK() || rep.Entities["thing"] != nil || rep.Entities["other"] != nil || len(rep.Entities) != 2 {
		t.Errorf("check: %+v %v", rep, err)
	}
}

func TestUnreachableSourceFailsEveryEntityWithoutThePassword(t *testing.T) {
	dsn := secret.DSN("postgres://mim:Sup3rS3cret@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2")
	var sink sqlsourcetest.Sink
	src := newSource(t, dsn, "0000", extract.Options{}, things, others)
	err := src.Extract(context.Background(), &sink)
	if err == nil || strings.Contains(err.Error(), "Sup3rS3cret") || !strings.Contains(err.Error(), "xxxxx") {
		t.Fatalf("error %v", err)
	}
	for _, name := range []string{"thing", "other"} {
		if e := sink.Get(name); e == nil || !e.Aborted || e.Failed[""] == nil {
			t.Errorf("%s must be recorded as failed: %+v", name, e)
		}
	}
	if _, err := sqlsource.Open(context.Background(), "mysql", dsn); err == nil || !strings.Contains(err.Error(), `driver "mysql" is not supported`) {
		t.Errorf("unknown driver: %v", err)
	}
}

// SQL Server cannot run here: the driver is built in, chosen by
// configuration, and fails as itself without printing the password, in
// the DSN forms SQL Server users write.
func TestSQLServerIsBuiltInAndNeverPrintsThePassword(t *testing.T) {
	if !slices.Contains(sqlsource.Drivers(), "sqlserver") || !slices.Contains(sql.Drivers(), "sqlserver") {
		t.Fatalf("sqlserver is not registered: %v", sqlsource.Drivers())
	}
	for _, dsn := range []string{
		"sqlserver://mim_reader:Sq1Secret@127.0.0.1:1?database=Campus6&dial+timeout=2",
		"server=127.0.0.1;port=1;user id=mim_reader;password=Sq1 Secret;database=Campus6;dial timeout=2",
		"odbc:server=127.0.0.1;port=1;uid=mim_reader;pwd={Sq1;Secret};database=Campus6;dial timeout=2",
	} {
		_, err := sqlsource.Open(context.Background(), "sqlserver", secret.DSN(dsn))
		if err == nil {
			t.Fatalf("%s: connecting to port 1 succeeded", secret.RedactDSN(dsn))
		}
		msg := err.Error()
		if strings.Contains(msg, "Sq1") || !strings.Contains(msg, "with driver sqlserver") {
			t.Errorf("%s", msg)
		}
		var sink sqlsourcetest.Sink
		src, err := sqlsource.New(sqlsource.Config{Source: "sits", Driver: "sqlserver", DSN: secret.DSN(dsn), Schema: "dbo"},
			[]sqlsource.Entity{{Name: "x", SQL: "SELECT A FROM {{schema}}V", Key: []string{"a"}}}, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Extract(context.Background(), &sink); err == nil || strings.Contains(err.Error(), "Sq1") {
			t.Errorf("extract: %v", err)
		}
	}
}

// Oracle's quirks, reproduced on the PostgreSQL stand-in, each read the way
// MIM reads it from Oracle.
func TestOracleBehaviourOnTheStandIn(t *testing.T) {
	// WE8ISO8859P1: a LATIN1 database, read by a UTF-8 client, as MIM's
	// AL32UTF8 connection reads SITS: accents arrive intact, and the
	// Windows-1252 punctuation such a database really holds (bytes 0x80 to
	// 0x9F, converted to C1 controls) is read as the characters typed.
	dsn := pgtest.NewEncoded(t, "LATIN1")
	// The fixture is written by a UTF-8 client, as SITS's users write
	// through theirs; MIM's connection asks for UTF-8 itself.
	exec(t, dsn+"&client_encoding=UTF8",
		`CREATE SCHEMA srcx`,
		// Oracle DATE carries a time: PostgreSQL timestamp(0) is the same
		// type; NUMBER may be fractional and wider than a float64.
		`CREATE TABLE srcx.thing (code varchar(12) NOT NULL, label varchar(60), qty numeric, since timestamp(0), optional varchar(10))`,
		`INSERT INTO srcx.thing VALUES
		  ('A1', 'José Ñúñez', 15.00, '2025-09-22 00:00:00', ''),
		  ('A2', convert_from('\x4f92427269656e'::bytea, 'LATIN1'), 12345678901234567890.125, '2025-09-22 00:00:00', NULL),
		  ('A3', 'Straße', 0.000, '2025-09-22 13:45:00', 'x'),
		  ('A4', convert_from('\x9371756f746573942080'::bytea, 'LATIN1'), -7.50, NULL, 'y')`,
	)
	e := sqlsource.Entity{Name: "thing", SQL: "SELECT CODE, LABEL, QTY, SINCE, OPTIONAL FROM {{schema}}THING ORDER BY CODE", Key: []string{"code"},
		Types: map[string]sqlsource.Type{"qty": sqlsource.Number, "since": sqlsource.Date}}
	src, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx", DSN: dsn, Schema: "srcx", MaxBadRowsPercent: 50},
		[]sqlsource.Entity{e}, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sink sqlsourcetest.Sink
	err = src.Extract(context.Background(), &sink)
	for _, re := range sink.Get("thing").RowErrors {
		t.Logf("row error %s: %v", re.Key, re.Err)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range sink.Get("thing").Records {
		got[r.Key] = string(r.Payload)
	}
	want := map[string]string{
		// '' is NULL, as Oracle stores it; 15.00 is 15.
		"A1": `{"code":"A1","label":"José Ñúñez","qty":15,"since":"2025-09-22","optional":null}`,
		// 0x92 typed on Windows is an apostrophe; a NUMBER wider than a
		// float64 arrives exactly.
		"A2": `{"code":"A2","label":"O’Brien","qty":12345678901234567890.125,"since":"2025-09-22","optional":null}`,
		"A4": `{"code":"A4","label":"“quotes” €","qty":-7.5,"since":null,"optional":"y"}`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	// A DATE with a time of day is not silently cut to its day: the row is
	// named with its column, and the rest lands.
	re := sink.Get("thing").RowErrors
	if len(re) != 1 || re[0].Key != "A3" || !strings.Contains(re[0].Err.Error(), "column since: date 2025-09-22 13:45:00 has a time of day") {
		t.Errorf("row errors %v", re)
	}
}
