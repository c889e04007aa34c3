package load_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/load"
)

// A COPY of AppendCopyRecord's lines into a reference table holds exactly
// what the loader stored for the same records (key, scope, canonical
// payload, hash), with a tab, a newline and a backslash in a payload; and
// ForgetSource leaves nothing of the source in the raw store.
func TestReferenceCopyMatchesTheLoader(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := courses(2, 3)
	p.records = append(p.records, rec(1, 9, `,"note":"a\tb\nc\\d"`))
	run, _ := e.mustLoad(enrolments, p)

	if _, err := e.db.Pool.Exec(ctx, `CREATE SCHEMA mim_ref`); err != nil {
		t.Fatal(err)
	}
	if err := load.CreateReferenceTable(ctx, e.db.Pool, pgx.Identifier{"mim_ref", "record"}); err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for _, r := range p.records {
		var err error
		if lines, err = load.AppendCopyRecord(lines, enrolments, r, run); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(lines),
		`COPY mim_ref.record (`+strings.Join(load.CopyColumns, ", ")+`) FROM STDIN`)
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM mim_ref.record`); n != int64(len(p.records)) {
		t.Fatalf("%d rows copied, want %d", n, len(p.records))
	}
	if n := e.count(`SELECT count(*) FROM mim_ref.record c JOIN raw.record r USING (source, instance, entity, key)
		WHERE r.scope = c.scope AND r.payload = c.payload AND r.hash = c.hash
		  AND (c.first_run, c.changed_run, c.seen_run) = (r.first_run, r.changed_run, r.seen_run)`); n != int64(len(p.records)) {
		t.Errorf("%d of %d copied rows are as the loader stored them", n, len(p.records))
	}

	if err := load.ForgetSource(ctx, e.db.Pool, enrolments.Source); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"raw.record", "raw.record_history", "raw.scope_read"} {
		if n := e.count(`SELECT count(*) FROM `+table+` WHERE source = $1`, enrolments.Source); n != 0 {
			t.Errorf("%s keeps %d rows of the forgotten source", table, n)
		}
	}
}
