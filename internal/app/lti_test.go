package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/lti/ltitest"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/statuspage/browsertest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// A Moodle administrator registers the tool by pasting one URL, an
// instructor opens it inside the course's frame in Chromium, searches
// SITS, adds the course's module occurrence after a preview, the mapping is
// in the warehouse with the instructor's Moodle identity, a student's
// launch of the same course can change nothing, and the next mim run
// enrols the occurrence's students in the course (Moodle's IMS task
// applies the file).
func TestStaffMapACourseFromMoodleInChromium(t *testing.T) {
	browser := browsertest.Chromium(t)
	ctx := context.Background()

	// A course whose mapping and enrolments are gone, as a new course's:
	// the first active main-site course mapped to an occurrence with
	// students enrolled.
	var picked synth.Mapping
	var pickedCourse moodletest.Course
	w := newWorld(t, demo.Environment, func(in *synth.Institution) {
		for _, s := range in.Sites {
			if s.Name != "main" {
				continue
			}
			for i, m := range in.Mappings {
				if m.Instance != "main" || !m.Active || m.SISKind != "module_occurrence" {
					continue
				}
				j := slices.IndexFunc(s.State.Courses, func(c moodletest.Course) bool { return c.IDNumber == m.CourseIDNumber })
				if j < 0 {
					continue
				}
				c := s.State.Courses[j]
				n := 0
				for _, e := range s.State.Enrolments {
					if e.CourseID == c.ID {
						n++
					}
				}
				if n < 3 {
					continue
				}
				picked, pickedCourse = m, c
				in.Mappings = slices.Delete(in.Mappings, i, i+1)
				s.State.Enrolments = slices.DeleteFunc(s.State.Enrolments, func(e moodletest.Enrolment) bool { return e.CourseID == c.ID })
				// Nothing else maps this course.
				in.Mappings = slices.DeleteFunc(in.Mappings, func(o synth.Mapping) bool {
					return o.Instance == "main" && o.CourseIDNumber == m.CourseIDNumber
				})
				return
			}
		}
	})
	if picked.CourseIDNumber == "" {
		t.Fatal("the synthetic institution has no mapped course with students on site main")
	}

	// Site main is one address for its web services and its LTI platform,
	// as a real Moodle is.
	platform := ltitest.NewUnstarted()
	main := w.sims["main"]
	main.Mount("/mod/lti/", platform.Handler())
	main.Mount("/course/view.php", platform.Handler())
	platform.SetURL(main.URL())
	sites := w.sites
	e, out := w.env(t, sites)
	night := func(n int) {
		t.Helper()
		res, err := app.RunPipeline(ctx, e, app.RunOptions{Progress: "off"})
		if err != nil || res.Status() != "succeeded" {
			t.Fatalf("night %d: %v (%v)\n%s", n, err, res.Status(), out.String())
		}
	}
	night(1)
	var published int
	if err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.published_membership WHERE instance = 'main' AND course_idnumber = $1`,
		picked.CourseIDNumber).Scan(&published); err != nil || published != 0 {
		t.Fatalf("before the instructor maps it, %d memberships of %s were published (%v)", published, picked.CourseIDNumber, err)
	}

	// mim serve with the tool on.
	keyFile := filepath.Join(t.TempDir(), "lti-key.pem")
	if err := lti.WriteKey(keyFile); err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { handler.ServeHTTP(rw, r) }))
	t.Cleanup(srv.Close)
	cfg, err := e.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.LTI = config.LTI{URL: srv.URL, KeyFile: keyFile, Sites: []string{"main"}, Session: 30 * time.Minute}
	logs := &syncBuffer{}
	tool, err := wire.LTITool(cfg, w.db.Pool, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	handler = app.ServeHandler(cfg, w.db.Pool, app.ServeOptions{Metrics: observe.NewMetrics(), LTI: tool})

	const teacher, student = "7001", "7002"
	platform.AddUser(ltitest.User{ID: teacher, Username: "tlecturer", Name: "Tess Lecturer", Given: "Tess", Email: "t.lecturer@example.ac.uk"})
	platform.AddUser(ltitest.User{ID: student, Username: "sstudent", Name: "Sid Student", Given: "Sid"})
	courseID := fmt.Sprint(pickedCourse.ID)
	platform.AddCourse(ltitest.Course{ID: courseID, ShortName: pickedCourse.ShortName, FullName: pickedCourse.FullName,
		IDNumber: pickedCourse.IDNumber, Roles: map[string]string{teacher: ltitest.Instructor, student: ltitest.Learner}})
	var occurrence string
	if err := w.db.Pool.QueryRow(ctx, `SELECT code FROM mart.mapping_candidate WHERE sis_kind = 'module_occurrence' AND sis_key = $1`,
		picked.SISKey).Scan(&occurrence); err != nil {
		t.Fatalf("the occurrence %s is not in the search: %v", picked.SISKey, err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 1600))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no timeout of its own
		t.Fatal(err)
	}
	page := func() string {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		return html
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v\npage:\n%s\ntool log:\n%s", what, err, page(), logs.String())
		}
	}
	// MIM_LTI_SCREENSHOTS=DIR keeps what the browser showed, for people.
	shot := func(name string) {
		if dir := os.Getenv("MIM_LTI_SCREENSHOTS"); dir != "" {
			if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
			}
		}
	}
	text := func(sel string, opts ...chromedp.QueryOption) (string, error) {
		sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
		defer cancel()
		return chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel), opts...))
	}

	// The administrator pastes the registration URL; Moodle opens it.
	do("registering", chromedp.Navigate(platform.RegistrationURL(tool.RegisterURL())),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("p[role=status]")))
	if h, err := text("h1"); h != "MIM is registered" {
		t.Fatalf("registration ended with %q (%v)", h, err)
	}

	// The instructor opens the course; the tool runs in its frame. Every
	// step finds the frame again, since each form post loads a new document
	// into it.
	do("opening the course", chromedp.Navigate(platform.CoursePageURL(teacher, courseID)), chromedp.WaitVisible(chromedp.CSS("iframe#contentframe")))
	inFrame := func(what string, step func(frame chromedp.QueryOption) error) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			frames, err := chromedp.Run(sctx, chromedp.Nodes(chromedp.CSS("iframe#contentframe")))
			cancel()
			if err == nil && len(frames) == 1 {
				frames[0].RLock()
				doc := frames[0].ContentDocument
				frames[0].RUnlock()
				if doc != nil {
					if err = step(chromedp.FromNode(doc)); err == nil {
						return
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v\ntool log:\n%s", what, err, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	frameText := func(sel string) string {
		t.Helper()
		var s string
		inFrame("reading "+sel, func(f chromedp.QueryOption) (err error) {
			s, err = text(sel, f)
			return err
		})
		return s
	}
	frameDo := func(what string, steps func(f chromedp.QueryOption) []chromedp.Action[chromedp.Void]) {
		t.Helper()
		inFrame(what, func(f chromedp.QueryOption) error {
			sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			defer cancel()
			return chromedp.Do(sctx, steps(f)...)
		})
	}
	if h := frameText("h1"); !strings.Contains(h, "Enrolments of") {
		t.Fatalf("the frame shows %q", h)
	}
	if s := frameText("#no-mappings"); !strings.Contains(s, "Nothing feeds this course yet") {
		t.Errorf("before the change the page says %q", s)
	}
	// Search by the module code, pick the occurrence, preview, confirm.
	modCode, _, _ := strings.Cut(occurrence, "-")
	frameDo("searching", func(f chromedp.QueryOption) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{chromedp.SetValue(chromedp.CSS("#q"), modCode, f),
			chromedp.Click(chromedp.CSS("form.search button[type=submit]"), f)}
	})
	results := frameText("#results")
	shot("1-search")
	if !strings.Contains(results, occurrence) {
		t.Fatalf("the search for %s does not list %s:\n%s", modCode, occurrence, results)
	}
	frameDo("choosing the occurrence", func(f chromedp.QueryOption) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results input[value="module_occurrence/%s"]`, picked.SISKey)), f),
			chromedp.Click(chromedp.CSS("#add > button[type=submit]"), f)}
	})
	preview := frameText("#preview")
	shot("2-preview")
	for _, want := range []string{"Preview: Add module occurrence", "The next export would enrol", "Per-course guard", "Site threshold"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the preview lacks %q:\n%s", want, preview)
		}
	}
	var mappingsBefore int
	if err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.course_mapping WHERE course_idnumber = $1`, picked.CourseIDNumber).Scan(&mappingsBefore); err != nil || mappingsBefore != 0 {
		t.Fatalf("the preview changed the warehouse: %d mappings (%v)", mappingsBefore, err)
	}
	frameDo("confirming", func(f chromedp.QueryOption) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS("#confirm"), f)}
	})
	if msg := frameText("#message"); !strings.HasPrefix(msg, "Done. The next export will enrol") {
		t.Fatalf("after confirming: %q", msg)
	}
	shot("3-applied")
	if table := frameText("#mappings"); !strings.Contains(table, occurrence) || !strings.Contains(table, "course staff") {
		t.Errorf("the course's mappings after the change:\n%s", table)
	}
	if hist := frameText("#history"); !strings.Contains(hist, "tlecturer@main (Tess Lecturer) via Moodle") {
		t.Errorf("the history does not name the instructor:\n%s", hist)
	}

	// The warehouse has the mapping, made by the instructor's Moodle identity.
	var origin, by, sisKey, via, moodleUser string
	var active bool
	err = w.db.Pool.QueryRow(ctx, `SELECT m.origin, m.created_by, m.sis_key, m.active, e.detail ->> 'via', e.detail ->> 'moodle_user_id'
		FROM ctl.course_mapping m JOIN ctl.course_mapping_event e ON e.mapping_id = m.mapping_id AND e.action = 'create'
		WHERE m.instance = 'main' AND m.course_idnumber = $1`, picked.CourseIDNumber).Scan(&origin, &by, &sisKey, &active, &via, &moodleUser)
	if err != nil {
		t.Fatalf("the mapping is not in the warehouse: %v", err)
	}
	if origin != "lti" || by != "tlecturer@main (Tess Lecturer) via Moodle" || sisKey != picked.SISKey || !active || via != "lti" || moodleUser != teacher {
		t.Errorf("mapping origin %q by %q key %q active %v via %q user %q", origin, by, sisKey, active, via, moodleUser)
	}
	var previewAdds int64
	if err := w.db.Pool.QueryRow(ctx, `SELECT (preview -> 'Export' ->> 'Adds')::bigint FROM ctl.lti_change WHERE status = 'applied'`).Scan(&previewAdds); err != nil {
		t.Fatal(err)
	}

	// A student of the same course, in a new window: how the course is
	// fed, and nothing to change it with.
	do("the student's launch", chromedp.Navigate(platform.LaunchPageURL(student, courseID)), chromedp.WaitVisible(chromedp.CSS("#mappings")))
	forms, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("form[action$='/lti/preview'], form[action$='/lti/apply'], form[action$='/lti/search']").length`))
	if err != nil {
		t.Fatal(err)
	}
	studentPage, _ := text("main")
	shot("4-student")
	if forms != 0 || !strings.Contains(studentPage, occurrence) || strings.Contains(studentPage, "History") {
		t.Errorf("the student's page has %d change forms:\n%s", forms, studentPage)
	}

	// The instructor again, in a new window, with the keyboard only: type
	// into the search and press Enter. Every control of the page has a
	// label, every table its headers, the page its language.
	do("the instructor's launch in a window", chromedp.Navigate(platform.LaunchPageURL(teacher, courseID)),
		chromedp.WaitVisible(chromedp.CSS("#q")), chromedp.Focus(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), modCode+"\r"), chromedp.WaitVisible(chromedp.CSS("#results")))
	problems, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
			if (el.labels.length === 0 && !el.getAttribute("aria-label")) out.push("unlabelled " + el.outerHTML);
		}
		for (const b of document.querySelectorAll("button")) {
			if (!b.textContent.trim() && !b.getAttribute("aria-label")) out.push("nameless button");
		}
		for (const fs of document.querySelectorAll("fieldset")) if (!fs.querySelector("legend")) out.push("fieldset without legend");
		for (const t of document.querySelectorAll("table")) if (!t.querySelector("th")) out.push("table without headers: " + t.id);
		if (!document.documentElement.lang) out.push("no lang");
		if (document.querySelectorAll("h1").length !== 1) out.push("not one h1");
		return out;
	})()`))
	if err != nil || len(problems) != 0 {
		t.Errorf("accessibility of the search page: %v %v", err, problems)
	}
	shot("5-window")

	// The next night enrols the occurrence's students, and Moodle's IMS
	// task applies the file.
	night(2)
	var target, pub int64
	if err := w.db.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM mart.exp_ims_membership WHERE instance = 'main' AND course_idnumber = $1 AND status = 1),
			(SELECT count(*) FROM ctl.published_membership WHERE instance = 'main' AND course_idnumber = $1 AND status = 1)`,
		picked.CourseIDNumber).Scan(&target, &pub); err != nil {
		t.Fatal(err)
	}
	if target == 0 || pub != target || previewAdds != target {
		t.Fatalf("night 2: %d in the target, %d published, the preview said %d adds", target, pub, previewAdds)
	}
	rep, err := main.IMSCron(moodletest.IMSSettings{RestrictTarget: "main", Unenrol: true}).Run(filepath.Join(cfg.Exports.Dir, feeds.IMSFileName("main")))
	if err != nil {
		t.Fatal(err)
	}
	var enrolled int64
	for _, en := range main.Enrolments(pickedCourse.ID) {
		if en.Method == "imsenterprise" && !en.Suspended {
			enrolled++
		}
	}
	if enrolled != target {
		t.Errorf("Moodle has %d IMS enrolments in %s after its task (%+v); the export sent %d", enrolled, picked.CourseIDNumber, rep, target)
	}
	if _, err := os.Stat(filepath.Join(cfg.Exports.Dir, feeds.IMSFileName("main"))); err != nil {
		t.Error(err)
	}
}
