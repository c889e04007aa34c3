package sqlsource_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

const thingContract = `
### THING
| column | type | null |
| --- | --- | --- |
| CODE | text | no |
| LABEL | text | ? |
| QTY | number | yes |
| SINCE | date | yes |
| GONE | text | ? |
`

func TestParseContractRefusesARowItCannotRead(t *testing.T) {
	c, err := sqlsource.ParseContract([]byte(thingContract))
	if err != nil || len(c["THING"].Columns) != 5 {
		t.Fatalf("%v %+v", err, c)
	}
	if col, ok := c.Column("thing", "qty"); !ok || col.Type != sqlsource.Number || col.Null != "yes" {
		t.Errorf("qty: %+v %v", col, ok)
	}
	for _, bad := range []string{"### T\n| A | txt | no |\n", "### T\n| A | text | maybe |\n", "### T\n### T\n"} {
		if _, err := sqlsource.ParseContract([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Describing a relation names every missing and every retyped column,
// before any row is read, and notes a key column the source lets be NULL.
func TestCheckNamesMissingAndRetypedColumns(t *testing.T) {
	db := pgtest.NewEmpty(t)
	exec(t, db.DSN,
		`CREATE SCHEMA srcx`,
		// qty is text where the contract says number; gone is missing;
		// code may be NULL; extra is not in the contract.
		`CREATE TABLE srcx.thing (code varchar(12), label text, qty varchar(10), since timestamp(0), extra int)`,
	)
	c, err := sqlsource.ParseContract([]byte(thingContract))
	if err != nil {
		t.Fatal(err)
	}
	e := sqlsource.Entity{Name: "thing", SQL: "SELECT CODE, LABEL, QTY FROM {{schema}}THING", Key: []string{"code"},
		Types: map[string]sqlsource.Type{"qty": sqlsource.Number}, Reads: []string{"THING"}}
	src, err := sqlsource.New(sqlsource.Config{Source: "testsrc", Driver: "pgx", DSN: db.DSN, Schema: "SRCX", Contract: c},
		[]sqlsource.Entity{e}, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := src.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Relations) != 1 {
		t.Fatalf("%+v", rep)
	}
	rc := rep.Relations[0]
	all := strings.Join(rc.Problems, "\n")
	for _, want := range []string{"column QTY is VARCHAR in the source, the contract reads it as number",
		"column GONE is missing (the contract reads it as text)"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if len(rc.Problems) != 2 {
		t.Errorf("exactly the two differences: %q", rc.Problems)
	}
	notes := strings.Join(rc.Notes, "\n")
	if !strings.Contains(notes, "CODE may be NULL") || !strings.Contains(notes, "1 more column") {
		t.Errorf("notes %q", rc.Notes)
	}
	// The SELECT itself still runs: a text column read as a number is
	// parsed row by row, so only the contract check catches the retyping.
	if rep.Entities["thing"] != nil {
		t.Errorf("entity: %v", rep.Entities["thing"])
	}

	// Fixed: NOT NULL key, the right types, the column back.
	exec(t, db.DSN, `ALTER TABLE srcx.thing ALTER COLUMN code SET NOT NULL, ALTER COLUMN qty TYPE numeric USING qty::numeric, ADD COLUMN gone text`)
	rep, err = src.Check(context.Background())
	if err != nil || !rep.OK() || len(rep.Relations[0].Problems) != 0 || strings.Contains(strings.Join(rep.Relations[0].Notes, ""), "NULL") {
		t.Errorf("after the fix: %+v %v", rep, err)
	}
}
