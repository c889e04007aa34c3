package moodle_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/mysqltest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/transform"
)

// dbNow is the clock of the equivalence tests: the simulator, the tables
// written from it and the database read all judge enrolment dates by it.
var dbNow = time.Unix(1760500000, 0) // 2025-10-15

// moodleDB is a Moodle database a test writes a site into.
type moodleDB struct {
	driver  string
	dialect moodletest.Dialect
	dsn     secret.DSN
	db      *sql.DB
}

// newMoodleDB gives a fresh, empty database of the kind a Moodle site runs
// on: PostgreSQL (pgx) or MariaDB (mysql).
func newMoodleDB(t testing.TB, driver string) *moodleDB {
	t.Helper()
	switch driver {
	case "pgx":
		pg := pgtest.NewEmpty(t)
		db, err := sql.Open("pgx", pg.DSN.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return &moodleDB{driver: driver, dialect: moodletest.Postgres, dsn: pg.DSN, db: db}
	case "mysql":
		my := mysqltest.New(t)
		return &moodleDB{driver: driver, dialect: moodletest.MySQL, dsn: secret.DSN(my.DSN), db: my.DB}
	}
	t.Fatalf("no Moodle database for driver %s", driver)
	return nil
}

// exec runs Moodle-style SQL ({table} with the mdl_ prefix) on the site's
// database: what the web services cannot see, written behind their back.
func (m *moodleDB) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		s = strings.NewReplacer("{", "mdl_", "}", "").Replace(s)
		if _, err := m.db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// equivalenceState is the test university with every state an enrolment can
// be in: a disabled enrolment method, ended, future and open dates, a
// suspended account, and completion tracked in two courses.
func equivalenceState() moodletest.State {
	st := testState("main")
	past, future := dbNow.Add(-48*time.Hour).Unix(), dbNow.Add(48*time.Hour).Unix()
	for i := range st.Enrolments {
		e := &st.Enrolments[i]
		switch {
		case e.CourseID == courseB1 && e.UserID == 113:
			e.TimeEnd = past
		case e.CourseID == courseB1 && e.UserID == 114:
			e.TimeStart = future
		case e.CourseID == courseB1 && e.UserID == 115:
			e.TimeStart, e.TimeEnd = past, future
		case e.CourseID == courseB1 && e.UserID == 112:
			e.Suspended = true
		}
	}
	// Self enrolment is disabled in B1: 111 holds only that enrolment, 112
	// that and a suspended manual one, 110 that and an active manual one.
	st.DisabledMethods = []moodletest.CourseMethod{{CourseID: courseB1, Method: "self"}}
	for _, u := range []int64{110, 111, 112} {
		st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: courseB1, UserID: u, RoleIDs: []int64{5}, Method: "self"})
	}
	for i := range st.Enrolments {
		if e := &st.Enrolments[i]; e.CourseID == courseB1 && e.UserID == 111 && e.Method == "" {
			st.Enrolments = append(st.Enrolments[:i], st.Enrolments[i+1:]...)
			break
		}
	}
	for i := range st.Users {
		if st.Users[i].ID == 105 {
			st.Users[i].Suspended = true
		}
	}
	return st
}

// hiddenFromWebServices are rows a real Moodle can hold that no web
// service shows: a deleted account (with an enrolment and a role left
// behind), roles assigned in a category and in the system context, a role
// in a course without an enrolment, and the guest account enrolled.
var hiddenFromWebServices = []string{
	`INSERT INTO {user} (id, auth, confirmed, deleted, mnethostid, username, idnumber, firstname, lastname, email, timemodified)
		VALUES (300, 'saml2', 1, 1, 1, 'gone@example.ac.uk.1700000000', '', 'Gone', 'Away', 'f0e4c2f76c58916ec258f246851bea09', 1700000000)`,
	`INSERT INTO {user_enrolments} (id, status, enrolid, userid, timestart, timeend) SELECT 9001, 0, MIN(id), 300, 0, 0 FROM {enrol} WHERE courseid = 10`,
	`INSERT INTO {role_assignments} (id, roleid, contextid, userid) VALUES (9001, 5, 1200, 300)`,
	`INSERT INTO {role_assignments} (id, roleid, contextid, userid) VALUES (9002, 1, 1000000002, 100)`,
	`INSERT INTO {role_assignments} (id, roleid, contextid, userid) VALUES (9003, 1, 1, 200)`,
	`INSERT INTO {role_assignments} (id, roleid, contextid, userid) VALUES (9004, 4, 1200, 119)`,
	`INSERT INTO {user_enrolments} (id, status, enrolid, userid, timestart, timeend) SELECT 9002, 0, MIN(id), 1, 0, 0 FROM {enrol} WHERE courseid = 10`,
}

// TestDBReadEquivalence reads one site through its web services and
// through its database (on PostgreSQL and on MariaDB) and requires the same
// raw records, byte for byte, and the same staging rows built by the real
// staging models.
func TestDBReadEquivalence(t *testing.T) {
	for _, driver := range []string{"pgx", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			st := equivalenceState()
			configure := func(s *moodlex.Site) {
				s.Grades = moodlex.Optional{Enabled: true}
				s.Completion = moodlex.Optional{Enabled: true, Categories: []string{"FACA", "FACB"}}
			}
			web, dbw := compareReads(t, driver, st, configure, everyStaging, hiddenFromWebServices...)
			// The planted states came through as the web services show them.
			for key, want := range map[string]string{
				"12:110": "false", "12:111": "true", "12:112": "true", "12:113": "true", "12:114": "true", "12:115": "false",
				"10:103": "true", "10:105": "false",
			} {
				got := text(t, dbw, `SELECT payload->>'mim_suspended' FROM raw.record WHERE entity = 'enrolments' AND key = $1`, key)
				if got != want {
					t.Errorf("enrolment %s: mim_suspended %s, want %s", key, got, want)
				}
			}
			if n := count(t, dbw, `SELECT count(*) FROM raw.record WHERE entity = 'users' AND key = '300'`); n != 0 {
				t.Error("the deleted account was read")
			}
			if n := count(t, dbw, `SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND key IN ('10:300', '10:1', '10:119')`); n != 0 {
				t.Error("a deleted account, the guest or a user with a role but no enrolment was read as enrolled")
			}
			if got := text(t, dbw, `SELECT payload->'roles'::text FROM raw.record WHERE entity = 'enrolments' AND key = '10:100'`); strings.Contains(got, "manager") {
				t.Errorf("a role assigned in the category shows in the course: %s", got)
			}
			for _, e := range []string{"grades", "grade_items", "completion"} {
				if live(t, web, "main", e) == 0 {
					t.Errorf("the web-service read landed no %s: the comparison proves nothing about them", e)
				}
			}
		})
	}
}

// TestDBReadEquivalenceSynthetic compares the two reads on every site of
// the synthetic institution (scale small), on both databases.
func TestDBReadEquivalenceSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("the synthetic institution takes a few seconds")
	}
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range []string{"pgx", "mysql"} {
		for _, site := range in.Sites {
			t.Run(driver+"/"+site.Name, func(t *testing.T) {
				t.Parallel()
				var nonEmpty []string
				if site.Name == "main" {
					nonEmpty = defaultStaging
				}
				web, _ := compareReads(t, driver, *site.State, nil, nonEmpty)
				if n := live(t, web, "main", "enrolments"); n < 100 {
					t.Errorf("only %d enrolments were read: the comparison proves little", n)
				}
			})
		}
	}
}

// The staging models a read of the default entities fills, and those of
// every entity.
var (
	defaultStaging = []string{"stg.moodle_category", "stg.moodle_course", "stg.moodle_user", "stg.moodle_user_field",
		"stg.moodle_profile_field", "stg.moodle_enrolment", "stg.moodle_enrolment_role", "stg.moodle_group_member",
		"stg.moodle_role", "stg.moodle_group", "stg.moodle_grouping", "stg.moodle_grouping_group"}
	everyStaging = append(slices.Clone(defaultStaging), "stg.moodle_grade_item", "stg.moodle_grade", "stg.moodle_completion")
)

// compareReads serves st from the simulator and writes it into a Moodle
// database, runs extra (hidden) SQL there, reads the site both ways into
// two warehouses, and fails on any difference in raw or staging.
func compareReads(t *testing.T, driver string, st moodletest.State, configure func(*moodlex.Site), nonEmpty []string,
	extra ...string) (web, db *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	clock := moodletest.WithClock(func() time.Time { return dbNow })
	const token = "tokmainmainmainmain0123456789abcdef"
	sim := moodletest.NewServer(t, st, moodletest.WithToken(token), clock)
	ws := &testSite{sim: sim, token: token, logger: slog.New(slog.DiscardHandler),
		cfg: &moodlex.Site{Name: "main", URL: sim.URL(), Environment: "test", Concurrency: 4, PageSize: 50,
			Entities: append([]string(nil), moodlex.DefaultEntityNames...)}}
	if configure != nil {
		configure(ws.cfg)
	}
	mdb := newMoodleDB(t, driver)
	// The simulator sorts group names byte by byte; so does the database here.
	if err := sim.WriteTables(ctx, mdb.db, mdb.dialect, moodletest.TableOptions{BinaryCollation: true}); err != nil {
		t.Fatal(err)
	}
	mdb.exec(t, extra...)

	webWH, dbWH := pgtest.New(t), pgtest.New(t)
	if _, _, err := extractRun(t, webWH, ws.source(t, webWH.Pool, extract.Options{})); err != nil {
		t.Fatalf("web-service read: %v", err)
	}
	dcfg := *ws.cfg
	dcfg.Database = &moodlex.Database{Driver: driver, DSN: mdb.dsn, Prefix: "mdl_", MaxLag: time.Hour}
	src, err := moodlex.NewDB(&dcfg, extract.Options{}, moodlex.WithClock(func() time.Time { return dbNow }))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := extractRun(t, dbWH, src); err != nil {
		t.Fatalf("database read: %v", err)
	}

	// Enrolment methods differ by design: the web services list only the
	// enabled self-describing instances, the database every one
	// (TestDBReadEnrolMethods).
	rawSQL := `SELECT entity || ' ' || key || ' [' || scope || '] ' || payload::text FROM raw.record
		WHERE deleted_run IS NULL AND entity NOT IN ('site_info', 'enrol_methods') ORDER BY entity, key`
	diff(t, "raw", lines(t, webWH.Pool, rawSQL), lines(t, dbWH.Pool, rawSQL))

	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, wh := range []*pgtest.DB{webWH, dbWH} {
		if _, err := transform.Run(ctx, wh.Pool, p, transform.Options{Select: []string{"stg.moodle_*"}}); err != nil {
			t.Fatalf("staging: %v", err)
		}
	}
	models, err := p.Select([]string{"stg.moodle_*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		if m.Name == "stg.moodle_enrol_method" {
			continue // as for raw
		}
		q := "SELECT t::text FROM " + m.Name + " t ORDER BY 1"
		if m.Name == "stg.moodle_site" {
			// The web-service user and its functions exist only for a token.
			q = "SELECT (instance, siteurl, sitename, release, version, site_course_id)::text FROM stg.moodle_site ORDER BY 1"
		}
		w, d := lines(t, webWH.Pool, q), lines(t, dbWH.Pool, q)
		if len(w) == 0 && slices.Contains(nonEmpty, m.Name) {
			t.Errorf("%s is empty: the comparison proves nothing there", m.Name)
		}
		diff(t, m.Name, w, d)
	}
	return webWH.Pool, dbWH.Pool
}

func lines(t *testing.T, db *pgxpool.Pool, q string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diff reports the lines only one side has, a few of each.
func diff(t *testing.T, what string, web, db []string) {
	t.Helper()
	in := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	w, d := in(web), in(db)
	var onlyWeb, onlyDB []string
	for _, s := range web {
		if !d[s] {
			onlyWeb = append(onlyWeb, s)
		}
	}
	for _, s := range db {
		if !w[s] {
			onlyDB = append(onlyDB, s)
		}
	}
	if len(onlyWeb)+len(onlyDB) == 0 {
		return
	}
	show := func(l []string) string {
		if len(l) > 4 {
			l = append(l[:4:4], fmt.Sprintf("... and %d more", len(l)-4))
		}
		return strings.Join(l, "\n  ")
	}
	t.Errorf("%s differs (%d rows over web services, %d from the database)\nonly over web services:\n  %s\nonly from the database:\n  %s",
		what, len(web), len(db), show(onlyWeb), show(onlyDB))
}

// siteDB writes st, as of clock, into a fresh Moodle database and returns
// a moodle-db site configuration reading it.
func siteDB(t *testing.T, driver string, st moodletest.State, clock time.Time, maxLag time.Duration) *moodlex.Site {
	t.Helper()
	sim, err := moodletest.New(st, moodletest.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	mdb := newMoodleDB(t, driver)
	if err := sim.WriteTables(context.Background(), mdb.db, mdb.dialect, moodletest.TableOptions{BinaryCollation: true}); err != nil {
		t.Fatal(err)
	}
	return &moodlex.Site{Name: "main", URL: "https://moodle.example.ac.uk", Environment: "test",
		Entities: append([]string(nil), moodlex.DefaultEntityNames...),
		Database: &moodlex.Database{Driver: driver, DSN: mdb.dsn, Prefix: "mdl_", MaxLag: maxLag, Timeout: time.Minute}}
}

func dbSource(t *testing.T, site *moodlex.Site) *moodlex.DBSource {
	t.Helper()
	src, err := moodlex.NewDB(site, extract.Options{}, moodlex.WithClock(func() time.Time { return dbNow }))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// A replica whose newest activity is older than max_lag is not read:
// every entity fails, raw keeps the last state, and the error says why.
// The same replica is read once the lag allowed covers it.
func TestDBReadRefusesALaggingReplica(t *testing.T) {
	wh := pgtest.New(t)
	st := testState("main")
	if _, _, err := extractRun(t, wh, dbSource(t, siteDB(t, "pgx", st, dbNow, time.Hour))); err != nil {
		t.Fatal(err)
	}
	before := versions(t, wh.Pool)
	enrolled := live(t, wh.Pool, "main", "enrolments")

	// Three hours behind, and meanwhile course DA1 lost its enrolments:
	// taken for today's state, that would unenrol its students.
	behind := testState("main")
	behind.Enrolments = slices.DeleteFunc(behind.Enrolments, func(e moodletest.Enrolment) bool { return e.CourseID == courseDA1 })
	behind.Groups = slices.DeleteFunc(behind.Groups, func(g moodletest.Group) bool { return g.CourseID == courseDA1 })
	behind.Groupings = nil
	lagging := siteDB(t, "mysql", behind, dbNow.Add(-3*time.Hour), time.Hour)
	_, reports, err := extractRun(t, wh, dbSource(t, lagging))
	var lagErr *moodlex.LagError
	if !errors.As(err, &lagErr) {
		t.Fatalf("a replica 3h behind with max_lag 1h: err = %v, want a *LagError", err)
	}
	if lagErr.Age < 3*time.Hour || lagErr.MaxLag != time.Hour || !strings.Contains(err.Error(), "max_lag 1h0m0s") {
		t.Errorf("LagError %+v: %v", lagErr, err)
	}
	if got := versions(t, wh.Pool); got != before {
		t.Error("a refused read changed raw")
	}
	for _, e := range []string{"site_info", "users", "enrolments", "groups"} {
		if r := report(t, reports, "main", e); r.Status != "failed" {
			t.Errorf("%s: status %s, want failed", e, r.Status)
		}
	}

	// Within max_lag the read is believed, but its groupings came back
	// empty: the completeness guard wants that accepted deliberately.
	if _, err := settings.Set(context.Background(), wh.Pool, "completeness_override", "true", "test",
		"the replica really lost its groupings", nil); err != nil {
		t.Fatal(err)
	}
	lagging.Database.MaxLag = 4 * time.Hour
	if _, _, err := extractRun(t, wh, dbSource(t, lagging)); err != nil {
		t.Fatal(err)
	}
	if got := live(t, wh.Pool, "main", "enrolments"); got >= enrolled {
		t.Errorf("read within max_lag: %d enrolments, want fewer than %d (DA1's are gone)", got, enrolled)
	}
}

// A course deleted from the site leaves no scope to declare: the loader
// says which scopes hold rows, and the read closes the gone ones, so the
// course's enrolments, groups and groupings are marked deleted.
func TestDBReadClosesDeletedCourses(t *testing.T) {
	wh := pgtest.New(t)
	if _, _, err := extractRun(t, wh, dbSource(t, siteDB(t, "pgx", testState("main"), dbNow, time.Hour))); err != nil {
		t.Fatal(err)
	}
	inB2 := count(t, wh.Pool, `SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND scope = $1 AND deleted_run IS NULL`,
		fmt.Sprint(courseB2))
	if inB2 == 0 {
		t.Fatal("course B2 has no enrolments to lose")
	}
	st := testState("main")
	st.Courses = slices.DeleteFunc(st.Courses, func(c moodletest.Course) bool { return c.ID == courseB2 })
	st.Enrolments = slices.DeleteFunc(st.Enrolments, func(e moodletest.Enrolment) bool { return e.CourseID == courseB2 })
	if _, _, err := extractRun(t, wh, dbSource(t, siteDB(t, "pgx", st, dbNow, time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, wh.Pool, `SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND scope = $1 AND deleted_run IS NULL`,
		fmt.Sprint(courseB2)); n != 0 {
		t.Errorf("%d enrolments of the deleted course are still current", n)
	}
	if n := count(t, wh.Pool, `SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND deleted_run IS NULL`); n == 0 {
		t.Error("every enrolment was deleted")
	}
}

// A database that cannot be reached lands nothing and names the site's
// database without its password.
func TestDBReadUnreachable(t *testing.T) {
	wh := pgtest.New(t)
	site := &moodlex.Site{Name: "main", URL: "https://moodle.example.ac.uk", Environment: "test",
		Entities: []string{"users", "enrolments"},
		Database: &moodlex.Database{Driver: "mysql", DSN: "reader:s3cret@tcp(127.0.0.1:1)/moodle", Prefix: "mdl_",
			MaxLag: time.Hour, Timeout: 10 * time.Second}}
	_, reports, err := extractRun(t, wh, dbSource(t, site))
	if err == nil || !strings.Contains(err.Error(), "connecting to the Moodle database reader:xxxxx@tcp(127.0.0.1:1)/moodle") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error carries the password: %v", err)
	}
	for _, e := range []string{"users", "enrolments"} {
		if r := report(t, reports, "main", e); r.Status != "failed" {
			t.Errorf("%s: %s, want failed", e, r.Status)
		}
	}
}

// Enrolment methods read from the database are every instance of a course,
// disabled ones included, with the payload docs/contracts.md gives; the
// web services show only the enabled self-describing ones.
func TestDBReadEnrolMethods(t *testing.T) {
	st := equivalenceState()
	configure := func(s *moodlex.Site) { s.Entities = []string{"site_info", "courses", "enrol_methods"} }
	web, dbw := compareReads(t, "pgx", st, configure, nil)
	if n := count(t, dbw, `SELECT count(*) FROM raw.record WHERE entity = 'enrol_methods' AND payload->>'type' = 'self'
		AND payload->>'courseid' = '12' AND NOT (payload->>'status')::boolean AND payload->>'mim_source' = 'database'`); n != 1 {
		t.Errorf("the disabled self instance of B1 read from the database: %d", n)
	}
	if n := count(t, dbw, `SELECT count(*) FROM raw.record WHERE entity = 'enrol_methods' AND payload->>'type' = 'manual'`); n == 0 {
		t.Error("no manual instance read from the database")
	}
	if n := count(t, web, `SELECT count(*) FROM raw.record WHERE entity = 'enrol_methods' AND payload->>'courseid' = '12'`); n != 0 {
		t.Errorf("the web services listed %d instances of B1, whose only self instance is disabled", n)
	}
}
