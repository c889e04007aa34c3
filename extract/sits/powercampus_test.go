package sits_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource/sqlsourcetest"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/transform"
)

// powerCampus writes a small PowerCampus (Campus6) into schema campus6 of
// the test database, with the tables and columns docs/sources.md names:
// two courses of Winter 2021 with sections 01 and 02, one of Fall 2020,
// students added, waiting and dropped.
func powerCampus(t *testing.T, db *pgtest.DB) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE SCHEMA campus6`,
		`CREATE TABLE campus6.people (people_code_id varchar(10) NOT NULL, people_id varchar(9) NOT NULL, personid int,
			first_name varchar(60), last_name varchar(60), primaryemailid int)`,
		`CREATE TABLE campus6.emailaddress (emailaddressid int NOT NULL, email varchar(100))`,
		`CREATE TABLE campus6.personuser (personid int NOT NULL, username varchar(50))`,
		`CREATE TABLE campus6.academic (people_code_id varchar(10) NOT NULL, academic_year varchar(4) NOT NULL,
			academic_term varchar(10) NOT NULL, academic_session varchar(10), primary_flag varchar(1),
			enroll_separation varchar(4), advisor varchar(10))`,
		`CREATE TABLE campus6.sections (academic_year varchar(4) NOT NULL, academic_term varchar(10) NOT NULL,
			academic_session varchar(10), event_id varchar(15) NOT NULL, event_sub_type varchar(4), section varchar(4) NOT NULL,
			event_long_name varchar(255), start_date timestamp(3), end_date timestamp(3), credits numeric(6,2))`,
		`CREATE TABLE campus6.sectionper (academic_year varchar(4) NOT NULL, academic_term varchar(10) NOT NULL,
			academic_session varchar(10), event_id varchar(15) NOT NULL, event_sub_type varchar(4), section varchar(4) NOT NULL,
			person_code_id varchar(10) NOT NULL)`,
		`CREATE TABLE campus6.transcriptdetail (people_code_id varchar(10) NOT NULL, academic_year varchar(4) NOT NULL,
			academic_term varchar(10) NOT NULL, academic_session varchar(10), event_id varchar(15) NOT NULL,
			event_sub_type varchar(4), section varchar(4) NOT NULL, add_drop_wait varchar(1))`,
		`INSERT INTO campus6.people VALUES
			('P000000101', '000000101', 1, 'Ana', 'Lima', 11), ('P000000102', '000000102', 2, 'Ben', 'Okoro', NULL),
			('P000000103', '000000103', 3, 'Cy', 'Park', 13), ('P000000104', '000000104', 4, 'Di', 'Ruiz', NULL),
			('P000000900', '000000900', 9, 'Prof', 'Teach', NULL)`,
		`INSERT INTO campus6.emailaddress VALUES (11, 'ana@example.edu'), (13, 'cy@example.edu')`,
		`INSERT INTO campus6.personuser VALUES (1, 'alima'), (2, 'bokoro'), (3, 'cpark'), (4, 'druiz')`,
		`INSERT INTO campus6.academic VALUES
			('P000000101', '2021', 'WINTER', 'MAIN', 'Y', 'ENRL', 'P000000900'),
			('P000000101', '2020', 'FALL', 'MAIN', 'Y', 'ENRL', NULL),
			('P000000102', '2021', 'WINTER', 'MAIN', 'Y', 'ENRL', NULL),
			('P000000103', '2021', 'WINTER', 'MAIN', 'Y', 'WDRN', NULL),
			('P000000104', '2021', 'WINTER', 'MAIN', 'Y', 'ENRL', NULL)`,
		`INSERT INTO campus6.sections VALUES
			('2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '01', 'Counselling Theory', '2021-01-04', '2021-03-20', 3),
			('2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '02', 'Counselling Theory', '2021-01-04', '2021-03-20', 3),
			('2021', 'WINTER', 'MAIN', 'COUN8552', 'LEC', '02', 'Counselling Theory (grad)', '2021-01-04', '2021-03-20', 3.5),
			('2020', 'FALL', 'MAIN', 'COUN6552', 'LEC', '02', 'Counselling Theory', '2020-09-07', '2020-12-12', 3)`,
		`INSERT INTO campus6.sectionper VALUES ('2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '02', 'P000000900')`,
		`INSERT INTO campus6.transcriptdetail VALUES
			('P000000101', '2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '02', 'A'),
			('P000000102', '2021', 'WINTER', 'MAIN', 'COUN8552', 'LEC', '02', 'A'),
			('P000000103', '2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '02', 'A'),
			('P000000104', '2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '02', 'W'),
			('P000000102', '2021', 'WINTER', 'MAIN', 'COUN6552', 'LEC', '01', 'A'),
			('P000000101', '2021', 'WINTER', 'MAIN', 'COUN8552', 'LEC', '02', 'D'),
			('P000000101', '2020', 'FALL', 'MAIN', 'COUN6552', 'LEC', '02', 'A')`,
	} {
		if _, err := db.Pool.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// A PowerCampus source reads the Campus6 tables into the SITS entities,
// and a PowerCampus-style section mapping (courses COUN6552 and COUN8552,
// section 02) enrols exactly the students added to those sections.
func TestPowerCampusOnThePostgreSQLStandIn(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	powerCampus(t, db)
	cfg, err := config.Parse([]byte(`environment: test
sources:
  sits: {driver: pgx, dsn: "${DSN}", system: powercampus, schema: campus6, min_year: 2021, term: WINTER}
moodle:
  - {name: main, url: "https://moodle.example.edu", token: t, environment: test}
`), func(k string) (string, bool) { return db.DSN.Reveal(), k == "DSN" })
	if err != nil {
		t.Fatal(err)
	}
	src, err := wire.NewSITS(cfg.Sources.SITS, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Entities(); !slices.Equal(got, []string{"student", "module_inst", "module_struc", "student_enrl"}) {
		t.Fatalf("entities %v", got)
	}
	rep, err := src.Check(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("check: %+v %v", rep, err)
	}
	var sink sqlsourcetest.Sink
	if err := src.Extract(ctx, &sink); err != nil {
		t.Fatal(err)
	}
	students := sink.Get("student").Payloads()
	if len(students) != 4 {
		t.Errorf("%d students (the Winter 2021 ones): %v", len(students), students)
	}
	ana := students["000000101"]
	if ana["username"] != "alima" || ana["email"] != "ana@example.edu" || ana["personal_tutor"] != "000000900" ||
		ana["enrolment_status"] != "ENRL" || ana["student_name"] != "Ana Lima" || ana["course_join_status"] != "O" {
		t.Errorf("student 000000101: %v", ana)
	}
	if students["000000102"]["email"] != nil {
		t.Errorf("no e-mail is null: %v", students["000000102"])
	}
	occ := sink.Get("module_struc").Payloads()
	sec := occ["COUN6552|LEC|02|2021|WINTER|MAIN"]
	if len(occ) != 3 || sec["mod_code"] != "COUN6552" || sec["mod_occ_mav"] != "02" || sec["mod_occ_psl_code"] != "WINTER" ||
		sec["mod_occ_start_date"] != "2021-01-04" || sec["mod_inst_bdo_id"] != "COUN6552|2021|WINTER" {
		t.Errorf("sections: %v", occ)
	}
	inst := sink.Get("module_inst").Payloads()
	if i := inst["COUN8552|2021|WINTER"]; len(inst) != 2 || i["mod_credits"] != "3.5" && i["mod_credits"] == nil {
		t.Errorf("courses: %v", inst)
	}
	if i := inst["COUN6552|2021|WINTER"]; i["mod_leader_upi"] != "000000900" {
		t.Errorf("leader: %v", i)
	}
	if keys := sink.Get("student_enrl").Keys(); len(keys) != 6 || !slices.Contains(keys, "000000104|COUN6552|LEC|02|2021|WINTER|MAIN|") {
		t.Errorf("registrations %v", keys)
	}

	// Landed, mapped as the seed's JSON file maps it (section 02 of both
	// courses), and transformed: the target is the students added to
	// section 02 whose enrolment enrols.
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Extract(ctx, load.New(db.Pool, run))
	_ = run.Finish(ctx, ledger.Outcome(err), 0, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"COUN6552", "COUN8552"} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, academic_year,
				section, created_by, updated_by) VALUES ('main', 'COUN6552COUN855202Winter2021', 'section', $1, '2021', '02', 'test', 'test')`, key); err != nil {
			t.Fatal(err)
		}
	}
	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Run(ctx, db.Pool, p, transform.Options{StatementTimeout: time.Minute, LockTimeout: time.Minute,
		Hooks: []transform.Hook{wire.MartConfigHook(cfg)}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := db.Pool.Query(ctx, `SELECT person_code FROM mart.fct_enrolment_target
		WHERE instance = 'main' AND course_idnumber = 'COUN6552COUN855202Winter2021' AND role = 'student' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	rows.Close()
	// 101 added to COUN6552-02 (dropped from COUN8552-02: still in via the
	// other course); 102 added to COUN8552-02 (its COUN6552 section is 01);
	// 103 withdrawn (WDRN does not enrol); 104 only waiting.
	if want := []string{"000000101", "000000102"}; !slices.Equal(got, want) {
		t.Errorf("target %v, want %v", got, want)
	}
}
