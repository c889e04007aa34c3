package feeds

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/csvfeed"
	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/export/ims"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/notify/smtptest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
)

// env is one test's warehouse, configuration and directories.
type env struct {
	t    *testing.T
	db   *pgtest.DB
	pool *pgxpool.Pool
	cfg  *config.Config
	dir  string // exports.dir
	smtp *smtptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t)
	dir := t.TempDir()
	cfg := &config.Config{
		Environment: pgtest.Environment,
		Moodle: []config.MoodleSite{
			{Name: "main", URL: "https://moodle.example.ac.uk", Environment: pgtest.Environment, IMSTarget: "moodle-main",
				KnownProfileFields: []string{"studentno", "progcode", "ugpg"}},
		},
		Exports: config.Exports{Dir: dir, IMSRoles: map[string]string{"student": "01", "editingteacher": "02", "teacher": "08"},
			ProfileFields: []config.ProfileField{
				{Column: "student_number", Shortname: "studentno", Required: true},
				{Column: "programme_code", Shortname: "progcode"},
				{Column: "ug_pg", Shortname: "ugpg", Type: "menu", Options: []string{"UG", "PG"}},
			}},
	}
	e := &env{t: t, db: db, pool: db.Pool, cfg: cfg, dir: dir}
	// Every mart exists, empty, unless a test fills it.
	feedstest.FillMemberships(t, db.Pool, nil)
	return e
}

// mail starts an SMTP server and points the guards' mail at it.
func (e *env) mail() notify.Mailer {
	e.t.Helper()
	e.smtp = smtptest.Start(e.t)
	m, err := notify.NewSMTP(notify.Relay{Host: e.smtp.Host, Port: e.smtp.Port, From: "mim@example.ac.uk"}, []string{"lama@example.ac.uk"})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) exporter(opts ...Option) *Exporter {
	return New(e.pool, feedsConfig(e.cfg), append([]Option{WithOperator("test")}, opts...)...)
}

// feedsConfig is the exporter's setup from a configuration, as
// wire.Feeds makes it (feeds' own tests cannot import wire, which imports
// feeds; wire's tests check that every field is carried over).
func feedsConfig(cfg *config.Config) *Config {
	out := &Config{Environment: cfg.Environment, IMSRoles: cfg.Exports.IMSRoles, CarryIDNumber: cfg.Exports.Merge.Carry(),
		Deliver: deliver.Options{Dir: cfg.Exports.Dir, Deliver: cfg.Exports.Deliver, SFTP: deliver.SFTPAuth{
			KnownHosts: cfg.Exports.SFTP.KnownHosts, KeyFile: cfg.Exports.SFTP.KeyFile, Password: cfg.Exports.SFTP.Password}}}
	for _, p := range cfg.Exports.ProfileFields {
		out.ProfileFields = append(out.ProfileFields, ProfileField{Column: p.Column,
			Field: csvfeed.Field{Shortname: p.Shortname, Type: csvfeed.Type(p.Type), Options: p.Options, Required: p.Required}})
	}
	for i := range cfg.Moodle {
		s := &cfg.Moodle[i]
		feed := IMS
		if s.EnrolmentFeed == config.EnrolmentFlatfile {
			feed = Flatfile
		}
		out.Sites = append(out.Sites, Site{Name: s.Name, URL: s.URL, Environment: s.Environment, IMSTarget: s.IMSTarget,
			EnrolmentFeed: feed, IMSPersons: s.IMSPersons, OneRoster: s.OneRoster, Location: s.Location(),
			KnownProfileFields: s.KnownProfileFields})
	}
	return out
}

// export runs one export under its own ledger run.
func (e *env) export(x *Exporter, opts Options) *Summary {
	e.t.Helper()
	return e.exportCtx(context.Background(), x, opts)
}

func (e *env) exportCtx(ctx context.Context, x *Exporter, opts Options) *Summary {
	e.t.Helper()
	var run *ledger.Run
	if !opts.DryRun {
		var err error
		run, err = ledger.Begin(context.Background(), e.pool, "export", pgtest.Environment, "test", nil)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	sum, err := x.Run(ctx, run, opts)
	if run != nil {
		_ = run.Finish(context.Background(), ledger.Outcome(sum.Err()), 0, sum.Err())
	}
	if err != nil && ctx.Err() == nil {
		e.t.Fatalf("export: %v", err)
	}
	return sum
}

func (e *env) result(sum *Summary, instance string, f Feed) *Result {
	e.t.Helper()
	for _, r := range sum.Results {
		if r.Instance == instance && r.Feed == f {
			return r
		}
	}
	e.t.Fatalf("no result for %s/%s", instance, f)
	return nil
}

func (e *env) set(key, value string) {
	e.t.Helper()
	if _, err := settings.Set(context.Background(), e.pool, key, value, "test", "test", nil); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) setting(key string) string {
	e.t.Helper()
	v, err := settings.Text(context.Background(), e.pool, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) count(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// steps counts the ledger steps of run that match.
func (e *env) steps(runID int64, match func(ledger.StepSummary) bool) int {
	e.t.Helper()
	steps, err := ledger.Steps(context.Background(), e.pool, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, s := range steps {
		if match(s) {
			n++
		}
	}
	return n
}

// published returns ctl.published_membership of a site as "course user roletype status" lines.
func (e *env) published(instance string) []string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT course_idnumber, user_idnumber, roletype, status,
		coalesce(timeframe_begin::text, '-'), coalesce(timeframe_end::text, '-')
		FROM ctl.published_membership WHERE instance = $1 ORDER BY 1, 2, 3`, instance)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c, u, r, b, en string
		var s int
		if err := rows.Scan(&c, &u, &r, &s, &b, &en); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s %d %s %s", c, u, r, s, b, en))
	}
	return out
}

// fileState is a file's content and mtime, or absence.
type fileState struct {
	exists bool
	data   []byte
	mtime  time.Time
}

func stat(t *testing.T, path string) fileState {
	t.Helper()
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{true, b, st.ModTime()}
}

func (f fileState) same(g fileState) bool {
	return f.exists == g.exists && bytes.Equal(f.data, g.data) && f.mtime.Equal(g.mtime)
}

// members reads an IMS file the way Moodle does: "course user roletype enrol|drop [begin end] [cohort]".
func members(t *testing.T, data []byte) []string {
	t.Helper()
	if _, err := ims.ValidateBytes(data); err != nil {
		t.Fatalf("the IMS file is not valid: %v", err)
	}
	sc := ims.NewScanner(bytes.NewReader(data))
	var out []string
	for sc.Scan() {
		ms, ok := sc.Element().(*ims.MembershipElement)
		if !ok {
			continue
		}
		for _, m := range ms.Members {
			op := "drop"
			if m.Enrol() {
				op = "enrol"
			}
			s := fmt.Sprintf("%s %s %s %s", ms.CourseIDNumber, m.IDNumber, m.RoleType, op)
			if !m.Begin.IsZero() || !m.End.IsZero() {
				s += fmt.Sprintf(" %s %s", m.Begin, m.End)
			}
			if m.Cohort != "" {
				s += " " + m.Cohort
			}
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func (e *env) imsPath(site string) string { return filepath.Join(e.dir, IMSFileName(site)) }

func (e *env) archiveEntries() []deliver.Entry {
	e.t.Helper()
	es, err := deliver.Archive{Root: filepath.Join(e.dir, "archive")}.Entries()
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// students returns n Learner memberships of a course: users <prefix>001...
func students(instance, course, prefix string, n int) []feedstest.Membership {
	out := make([]feedstest.Membership, n)
	for i := range out {
		out[i] = feedstest.Membership{Instance: instance, CourseIDNumber: course, UserIDNumber: fmt.Sprintf("%s%03d", prefix, i+1),
			RoleType: "student", Status: 1}
	}
	return out
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// applied stands for Moodle having applied the last files of the sites and
// an extract having shown it: nothing they carried is pending any more.
// (How an extract shows it is pending_test.go's business.)
func (e *env) applied(instances ...string) {
	e.t.Helper()
	for _, table := range []string{"ctl.pending_membership", "ctl.pending_profile"} {
		if _, err := e.pool.Exec(context.Background(), `DELETE FROM `+table+` WHERE instance = ANY($1)`, instances); err != nil {
			e.t.Fatal(err)
		}
	}
}
