package transform_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load/loadtest"
	"github.com/mimwarehouse/mim/transform"
)

// benchScale is the share of scale "ucl" the benchmark generates:
// MIM_BENCH_SCALE=ucl (or a fraction such as 0.25) for the full size; the
// default 0.05 keeps `go test -bench` short on a shared machine.
func benchScale(tb testing.TB) float64 {
	switch s := os.Getenv("MIM_BENCH_SCALE"); s {
	case "":
		return 0.05
	case "ucl":
		return 1
	default:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 4 {
			tb.Fatalf("MIM_BENCH_SCALE=%q: want ucl or a fraction", s)
		}
		return f
	}
}

// uclVolumes are scale "ucl": UCL's volumes (internal/synth's scale ucl).
var uclVolumes = struct {
	faculties, departments, programmes, routes, students, moduleInst, occurrences, registrations,
	cmisGroups, cmisMembers, courses, sites int
}{15, 104, 2368, 4334, 50000, 10517, 54359, 290000, 38412, 204910, 15000, 4}

// generateRaw lands a synthetic institution in the raw store the way the
// extractors do (docs/contracts.md §1): SITS and CMIS rows with every
// column, Moodle objects shaped like the recorded 4.5 responses (same keys,
// similar sizes, enrolledcourses and profile image URLs included).
func generateRaw(tb testing.TB, pool *pgxpool.Pool, scale float64) map[string]int {
	v := uclVolumes
	n := func(x int) int { return max(1, int(float64(x)*scale)) }
	rng := rand.New(rand.NewPCG(1, 2))
	guid := func(kind, i int) string { return fmt.Sprintf("%08X%04XC3A1E063021E1C0A7F42", i, kind) }
	var rows []loadtest.Record
	counts := map[string]int{}
	add := func(source, instance, entity, key, scope, payload string) {
		rows = append(rows, loadtest.Record{ID: extract.EntityID{Source: source, Instance: instance, Entity: entity}, Key: key, Scope: scope, Payload: []byte(payload)})
		counts[source+"/"+entity]++
	}
	q := strconv.Quote
	statuses := []string{"E", "E", "E", "E", "E", "E", "E", "XE", "PE", "I", "L", "XF"}
	regs := []string{"CON", "CON", "CON", "CON", "APP", "APP", "NEW", "REJ"}
	psls := []string{"T1", "T2", "T1/2", "YEAR", "T3"}

	for i := 0; i < v.faculties; i++ {
		add("sits", "sits", "faculties", fmt.Sprintf("F%02d", i), "", fmt.Sprintf(`{"dpt_fac_code":"F%02d","dpt_fac_name":"Faculty %d"}`, i, i))
	}
	for i := 0; i < v.departments; i++ {
		add("sits", "sits", "department", guid(1, i), "", fmt.Sprintf(`{"dpt_bdo_id":%q,"dpt_code":"D%04d","dpt_name":"Department of %d","dpt_fac_code":"F%02d"}`,
			guid(1, i), i, i, i%v.faculties))
	}
	for i := 0; i < n(v.programmes); i++ {
		d := guid(1, i%v.departments)
		add("sits", "sits", "programme", fmt.Sprintf("UBA%09d|%s", i, d), "", fmt.Sprintf(`{"prog_code":"UBA%09d","prog_name":"BA Programme %d","dpt_bdo_id":%q,"ioe_sessions":"N"}`, i, i, d))
	}
	for i := 0; i < n(v.routes); i++ {
		p, d := i%n(v.programmes), guid(1, i%v.departments)
		add("sits", "sits", "route", fmt.Sprintf("R%011d|UBA%09d|%s", i, p, d), "", fmt.Sprintf(`{"route_code":"R%011d","route_name":"Route %d","prog_code":"UBA%09d","dpt_bdo_id":%q,"ioe_sessions":"N"}`, i, i, p, d))
	}
	students := n(v.students)
	for i := 0; i < students; i++ {
		code := fmt.Sprintf("%08d", 25000000+i)
		add("sits", "sits", "student", code, "", fmt.Sprintf(`{"student_code":%q,"username":"zcqs%05d","upi":"UPI%05d","firstname":"First%d","surname":"Surname-Lindqvist %d","student_name":"First%d Surname-Lindqvist %d","email":"first%d.surname@example.ac.uk","dpt_bdo_id":%q,"personal_tutor":"PTUT%04d","enrolment_status":%q,"course_join_status":"O"}`,
			code, i, i, i, i, i, i, i, guid(1, i%v.departments), i%2000, statuses[rng.IntN(len(statuses))]))
		add("sits", "sits", "assignment", fmt.Sprintf("%s|R%011d|UBA%09d|%s|F%02d|U|%d", code, i%n(v.routes), i%n(v.programmes), guid(1, i%v.departments), i%v.faculties, 1+i%3), "",
			fmt.Sprintf(`{"student_code":%q,"route_code":"R%011d","prog_code":"UBA%09d","dpt_bdo_id":%q,"dpt_fac_code":"F%02d","post_undergrad":"U","course_year":"%d"}`,
				code, i%n(v.routes), i%n(v.programmes), guid(1, i%v.departments), i%v.faculties, 1+i%3))
	}
	inst := n(v.moduleInst)
	for i := 0; i < inst; i++ {
		add("sits", "sits", "module_inst", guid(2, i), "", fmt.Sprintf(`{"mod_inst_bdo_id":%q,"mod_bdo_id":%q,"mod_code":"MODL%04d","mod_name":"Module %d","mod_dpt_bdo_id":%q,"mod_year_code":"2025","mod_credits":15,"mod_leader_upi":"STAF%04d"}`,
			guid(2, i), guid(3, i), i, i, guid(1, i%v.departments), i%3000))
	}
	occs := n(v.occurrences)
	occKey := make([]string, occs)
	for i := 0; i < occs; i++ {
		mod := i % inst
		psl := psls[i%len(psls)]
		year := 2025 - (i/inst)%3
		occKey[i] = fmt.Sprintf("MODL%04d-A%dU-%s-%d", mod, 4+i%4, psl, year)
		add("sits", "sits", "module_struc", guid(4, i), "", fmt.Sprintf(`{"mod_occ_bdo_id":%q,"mod_inst_bdo_id":%q,"mod_code":"MODL%04d","mod_occ_psl_code":%q,"mod_occ_mav":"A%dU","mod_occ_year_code":"%d","mod_occ_name":"Module %d"}`,
			guid(4, i), guid(2, mod), mod, psl, 4+i%4, year, mod))
	}
	courses := n(v.courses)
	// A student's k-th registration: nine in ten on an occurrence that has a
	// Moodle course, each on a different occurrence.
	regOcc := func(i, s int) int {
		k := i / students
		if (s+k)%10 == 0 {
			return (s*13 + k*7919) % occs
		}
		return ((s*7 + k*2503) % courses) * occs / courses
	}
	for i := 0; i < n(v.registrations); i++ {
		s := i % students
		o := regOcc(i, s)
		code := fmt.Sprintf("%08d", 25000000+s)
		key := fmt.Sprintf("%s|%s|%s", code, guid(4, o), guid(1, o%v.departments))
		if counts["dup:"+key] > 0 {
			continue
		}
		counts["dup:"+key]++
		add("sits", "sits", "student_enrl", key, "", fmt.Sprintf(`{"student_code":%q,"mod_occ_bdo_id":%q,"mod_dpt_bdo_id":%q,"reg_status":%q,"smo_sms":"SMO","spr_code":"%s/1"}`,
			code, guid(4, o), guid(1, o%v.departments), regs[rng.IntN(len(regs))], code))
	}
	groups := n(v.cmisGroups)
	for i := 0; i < groups; i++ {
		add("cmis", "cmis", "module_group", guid(5, i), "", fmt.Sprintf(`{"group_bdo_id":%q,"mod_occ_bdo_id":%q,"group_id":"MODL%04d-%d","group_code":"SEM%d","group_name":"Seminar %d","mod_code":"MODL%04d","inst_code":"A4U-T1","setid":"LIVE-25-26","group_num":%d,"capacity":16}`,
			guid(5, i), guid(4, i%occs), i%inst, i%6, i%6, i%6, i%inst, i%6))
		add("cmis", "cmis", "group_tutor", guid(5, i)+"|STAF0001", "", fmt.Sprintf(`{"group_bdo_id":%q,"staff_upi":"STAF%04d","lecturer_id":"L%05d"}`, guid(5, i), i%3000, i%3000))
	}
	for i := 0; i < n(v.cmisMembers); i++ {
		g, s := i%groups, (i*31)%students
		key := fmt.Sprintf("%s|0%08d", guid(5, g), 25000000+s)
		if counts["dup:"+key] > 0 {
			continue
		}
		counts["dup:"+key]++
		add("cmis", "cmis", "group_member", key, "", fmt.Sprintf(`{"group_bdo_id":%q,"student_code":"0%08d","mod_occ_bdo_id":%q,"setid":"LIVE-25-26"}`, guid(5, g), 25000000+s, guid(4, g%occs)))
	}

	// Moodle: the main site has most courses and users, three others share the rest.
	site := func(c int) string {
		if c%10 < 7 {
			return "main"
		}
		return fmt.Sprintf("site%d", c%10-6)
	}
	siteNames := []string{"main", "site1", "site2", "site3"}
	for _, s := range siteNames {
		add("moodle", s, "site_info", "site", "", fmt.Sprintf(`{"sitename":"%s Moodle","username":"mimws","userid":2,"siteurl":"https://%s.example.ac.uk","release":"4.5 (Build: 20241007)","version":"2024100700","siteid":1,"functions":[{"name":"core_webservice_get_site_info","version":"2024100700"},{"name":"core_user_get_users","version":"2024100700"}]}`, s, s))
		add("moodle", s, "courses", "1", "", `{"id":1,"shortname":"site","categoryid":0,"fullname":"Site","displayname":"Site","idnumber":"","summary":"","format":"site","startdate":0,"enddate":0,"visible":1}`)
		for c := 0; c < 60; c++ {
			add("moodle", s, "categories", strconv.Itoa(c+2), "", fmt.Sprintf(`{"id":%d,"name":"Department %d","idnumber":"2025_D%04d","description":"","descriptionformat":1,"parent":0,"sortorder":%d,"coursecount":40,"visible":1,"visibleold":1,"timemodified":1795354012,"depth":1,"path":"/%d","theme":""}`, c+2, c, c, c*10000, c+2))
		}
	}
	courseOfOcc := map[int]int{}
	for c := 0; c < courses; c++ {
		o := c * occs / courses
		courseOfOcc[o] = c
		id := c + 2
		add("moodle", site(c), "courses", strconv.Itoa(id), "", fmt.Sprintf(`{"id":%d,"shortname":%s,"categoryid":%d,"categorysortorder":20009,"fullname":"Module %d (%s)","displayname":"Module %d","idnumber":%s,"summary":"<p>Module offering.</p>","summaryformat":1,"format":"topics","showgrades":1,"newsitems":1,"startdate":1752451200,"enddate":1761868800,"numsections":6,"maxbytes":0,"showreports":0,"visible":1,"hiddensections":1,"groupmode":0,"groupmodeforce":0,"defaultgroupingid":0,"timecreated":1795354016,"timemodified":1795354016,"enablecompletion":1,"completionnotify":0,"lang":"","forcetheme":"","courseformatoptions":[{"name":"hiddensections","value":1},{"name":"coursedisplay","value":0}],"showactivitydates":false,"showcompletionconditions":true}`,
			id, q(occKey[o]), 2+c%60, o, occKey[o], o, q(occKey[o])))
		if c%4 == 0 {
			add("moodle", site(c), "groups", strconv.Itoa(100000+c), strconv.Itoa(id), fmt.Sprintf(`{"id":%d,"courseid":%d,"name":"Seminar 1","description":"","descriptionformat":0,"enrolmentkey":null,"idnumber":"mim:%s","visibility":0,"participation":true}`, 100000+c, id, guid(5, c)))
			add("moodle", site(c), "groupings", strconv.Itoa(100000+c), strconv.Itoa(id), fmt.Sprintf(`{"id":%d,"courseid":%d,"name":"Seminar 1","description":"","descriptionformat":0,"idnumber":"mim:%s","mim_groupids":[%d]}`, 100000+c, id, guid(5, c), 100000+c))
		}
	}
	user := func(s string, uid int, code string) string {
		return fmt.Sprintf(`{"id":%d,"username":"zcqs%s","firstname":"First","lastname":"Surname","fullname":"First Surname","email":"first.surname%s@example.ac.uk","department":"Science","institution":"Example University","idnumber":%q,"firstaccess":0,"lastaccess":0,"auth":"manual","suspended":false,"confirmed":true,"lang":"en","theme":"","timezone":"99","mailformat":1,"trackforums":0,"city":"London","country":"GB","profileimageurlsmall":"https://%s.example.ac.uk/theme/image.php/boost/core/1795353844/u/f2","profileimageurl":"https://%s.example.ac.uk/theme/image.php/boost/core/1795353844/u/f1","customfields":[{"type":"text","value":%q,"displayvalue":%q,"name":"UPI","shortname":"upi"}]}`,
			uid, code, code, code, s, s, "UPI"+code, "UPI"+code)
	}
	for i := 0; i < students; i++ {
		code := fmt.Sprintf("%08d", 25000000+i)
		for k, s := range siteNames {
			if k > 0 && i%4 != k {
				continue
			}
			if i%50 == 0 { // some students have no account
				continue
			}
			add("moodle", s, "users", strconv.Itoa(1000+i), "", user(s, 1000+i, code))
		}
	}
	for _, s := range siteNames {
		add("moodle", s, "profile_fields", "upi", "", `{"shortname":"upi","name":"UPI","type":"text"}`)
		add("moodle", s, "roles", "5", "", `{"roleid":5,"shortname":"student","name":""}`)
	}
	// Enrolments follow the registrations whose occurrence has a course.
	for i := 0; i < n(v.registrations); i++ {
		s := i % students
		o := regOcc(i, s)
		c, ok := courseOfOcc[o]
		if !ok || s%50 == 0 {
			continue
		}
		sn := site(c)
		if sn != "main" && s%4 != int(sn[4]-'0') {
			continue
		}
		key := fmt.Sprintf("%d:%d", c+2, 1000+s)
		if counts["dup:"+key+sn] > 0 {
			continue
		}
		counts["dup:"+key+sn]++
		groups := "[]"
		if c%4 == 0 {
			groups = fmt.Sprintf(`[{"id":%d,"name":"Seminar 1","description":"","descriptionformat":0}]`, 100000+c)
		}
		code := fmt.Sprintf("%08d", 25000000+s)
		add("moodle", sn, "enrolments", key, strconv.Itoa(c+2), fmt.Sprintf(`{"id":%d,"username":"zcqs%s","firstname":"First","lastname":"Surname","fullname":"First Surname","email":"first.surname%s@example.ac.uk","department":"","idnumber":%q,"firstaccess":0,"lastaccess":0,"lastcourseaccess":0,"profileimageurlsmall":"https://%s.example.ac.uk/theme/image.php/boost/core/1795353844/u/f2","profileimageurl":"https://%s.example.ac.uk/theme/image.php/boost/core/1795353844/u/f1","customfields":[{"type":"text","value":"UPI%s","name":"UPI","shortname":"upi"}],"groups":%s,"roles":[{"roleid":5,"name":"","shortname":"student","sortorder":0}],"enrolledcourses":[{"id":%d,"fullname":"Module","shortname":%s},{"id":14,"fullname":"MOD1234 Modelling and Simulation (T1 2025)","shortname":"MOD1234-A7U-T1-2025"},{"id":24,"fullname":"PHI6235 Ethics (T2 2025)","shortname":"PHI6235-A7U-T2-2025"}],"mim_courseid":%d,"mim_suspended":%v}`,
			1000+s, code, code, code, sn, sn, code, groups, c+2, q(occKey[o]), c+2, s%97 == 0))
	}
	for k := range counts {
		if len(k) > 4 && k[:4] == "dup:" {
			delete(counts, k)
		}
	}

	// COPY in key order, as the loader's merge would leave the table.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.ID.Source != b.ID.Source {
			return a.ID.Source < b.ID.Source
		}
		if a.ID.Instance != b.ID.Instance {
			return a.ID.Instance < b.ID.Instance
		}
		if a.ID.Entity != b.ID.Entity {
			return a.ID.Entity < b.ID.Entity
		}
		return a.Key < b.Key
	})
	loadtest.Copy(tb, pool, rows)
	loadtest.Analyze(tb, pool)
	counts["total"] = len(rows)
	return counts
}

// BenchmarkTransform times a full transform (every embedded model, checks
// and tests, one transaction) over a synthetic institution in the raw store.
// The first build creates the tables; the timed loop measures the nightly
// case, a full rebuild that refills them.
//
//	MIM_REQUIRE_DB=1 MIM_BENCH_SCALE=ucl go test ./transform -run '^$' -bench Transform -benchtime 3x
func BenchmarkTransform(b *testing.B) {
	scale := benchScale(b)
	db := pgtest.New(b)
	ctx := context.Background()
	t0 := time.Now()
	counts := generateRaw(b, db.Pool, scale)
	b.Logf("scale %.2f of ucl: %d raw records generated and copied in %s (%v)", scale, counts["total"], time.Since(t0).Round(time.Millisecond), counts)
	b.Logf("raw store: %s", loadtest.Size(b, db.Pool))
	p, err := transform.LoadEmbedded()
	if err != nil {
		b.Fatal(err)
	}
	o := transform.Options{StatementTimeout: 30 * time.Minute, LockTimeout: time.Minute}
	t0 = time.Now()
	if _, err := transform.Run(ctx, db.Pool, p, o); err != nil {
		b.Fatal(err)
	}
	b.Logf("first build (creates every table): %s", time.Since(t0).Round(time.Millisecond))
	var last *transform.Result
	var rows int64
	for b.Loop() {
		res, err := transform.Run(ctx, db.Pool, p, o)
		if err != nil {
			b.Fatal(err)
		}
		last = res
		rows = 0
		for _, m := range res.Models {
			rows += max(m.Rows, 0)
		}
	}
	b.ReportMetric(float64(rows), "rows/op")
	b.ReportMetric(float64(counts["total"])/b.Elapsed().Seconds()*float64(b.N), "raw-records/s")
	ms := append([]transform.ModelResult(nil), last.Models...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Duration > ms[j].Duration })
	var build time.Duration
	for _, m := range ms {
		build += m.Duration
	}
	report := fmt.Sprintf("last run: %s in all, %s building %d models, checks and tests %s; per model:", last.Duration.Round(time.Millisecond),
		build.Round(time.Millisecond), len(ms), (last.Duration - build).Round(time.Millisecond))
	for _, m := range ms {
		report += fmt.Sprintf("\n  %-28s %9d rows %8s", m.Model, m.Rows, m.Duration.Round(time.Millisecond))
	}
	// Printed, not logged: the testing package truncates a benchmark's log.
	fmt.Fprintln(os.Stderr, report)
}
