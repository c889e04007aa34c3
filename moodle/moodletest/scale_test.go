package moodletest_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// scale is the size of a generated site; full is a large university's.
type scale struct{ users, courses, enrolments, groups int }

var fullScale = scale{users: 50_000, courses: 15_000, enrolments: 300_000, groups: 40_000}

// benchScale is a tenth of a university unless MIM_BENCH_FULL is set.
func benchScale() scale {
	if os.Getenv("MIM_BENCH_FULL") != "" {
		return fullScale
	}
	return scale{fullScale.users / 10, fullScale.courses / 10, fullScale.enrolments / 10, fullScale.groups / 10}
}

// generate builds a site of the given scale: course sizes skewed (a few
// large first-year modules, many small ones), groups drawn from each
// course's enrolled users.
func generate(s scale) moodletest.State {
	r := rand.New(rand.NewPCG(1, 2))
	st := moodletest.State{SiteName: "Scale", ProfileFields: []moodletest.ProfileField{{ShortName: "studentnumber", Name: "Student number"}}}
	for i := range 200 {
		parent := int64(0)
		if i >= 10 {
			parent = int64(2 + i%10)
		}
		st.Categories = append(st.Categories, moodletest.Category{ID: int64(2 + i), Name: fmt.Sprintf("Cat %d", i), Parent: parent, Visible: true})
	}
	for i := range s.users {
		id := int64(10 + i)
		st.Users = append(st.Users, moodletest.User{ID: id, Username: fmt.Sprintf("u%07d", id), FirstName: "First",
			LastName: fmt.Sprintf("Last%d", i%997), Email: fmt.Sprintf("u%d@example.ac.uk", id), IDNumber: fmt.Sprintf("%08d", 20000000+i),
			CustomFields: map[string]string{"studentnumber": fmt.Sprintf("%08d", 20000000+i)}})
	}
	weights := make([]float64, s.courses)
	total := 0.0
	for i := range weights {
		weights[i] = 1 / float64(1+i%97) // skew: some courses far larger
		total += weights[i]
	}
	enrolled := make([][]int64, s.courses)
	for i := range s.courses {
		id := int64(2 + i)
		st.Courses = append(st.Courses, moodletest.Course{ID: id, ShortName: fmt.Sprintf("MOD%05d", i), FullName: fmt.Sprintf("Module %d", i),
			IDNumber: fmt.Sprintf("MOD%05d-2025", i), CategoryID: int64(12 + i%190), Visible: true})
		n := min(int(weights[i]/total*float64(s.enrolments)+0.5), s.users)
		start := r.IntN(s.users)
		for k := range n {
			uid := int64(10 + (start+k*7)%s.users)
			role := int64(5)
			if k == 0 {
				role = 3
			}
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: id, UserID: uid, RoleIDs: []int64{role},
				Method: "imsenterprise", Suspended: k%50 == 49})
			enrolled[i] = append(enrolled[i], uid)
		}
	}
	gid := int64(1)
	for len(st.Groups) < s.groups {
		ci := r.IntN(s.courses)
		us := enrolled[ci]
		if len(us) < 4 {
			continue
		}
		from := r.IntN(len(us) - 3)
		to := min(len(us), from+4+r.IntN(30))
		st.Groups = append(st.Groups, moodletest.Group{ID: gid, CourseID: int64(2 + ci), Name: fmt.Sprintf("Group %d", gid),
			IDNumber: fmt.Sprintf("mim:%d", gid), Members: append([]int64(nil), us[from:to]...)})
		gid++
	}
	return st
}

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkUniversitySite builds a site of a tenth of a university (all of
// one with MIM_BENCH_FULL=1) and measures answers through ServeHTTP
// without a network: a 1000-user page of the largest course, a course's
// groups, 900 users by idnumber.
//
//	go test -run - -bench UniversitySite ./moodle/moodletest/
func BenchmarkUniversitySite(b *testing.B) {
	s := benchScale()
	before := heapMB()
	st := generate(s)
	start := time.Now()
	site, err := moodletest.New(st)
	if err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	st = moodletest.State{} // only the site's own copy stays reachable
	heap := heapMB() - before
	b.Logf("%d users, %d courses, %d enrolments, %d groups: built in %s, %.0f MB of heap",
		s.users, s.courses, s.enrolments, s.groups, build.Round(time.Millisecond), heap)
	serve := func(b *testing.B, query string) int {
		req := httptest.NewRequest(http.MethodPost, moodletest.Endpoint,
			strings.NewReader("wstoken="+site.Token()+"&moodlewsrestformat=json&"+query))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		site.ServeHTTP(w, req)
		if w.Code != 200 || strings.HasPrefix(w.Body.String(), `{"exception"`) {
			b.Fatalf("%s: %d %.200s", query, w.Code, w.Body.String())
		}
		return w.Body.Len()
	}
	b.Run("enrolled_users_page_1000", func(b *testing.B) {
		var n int
		for b.Loop() {
			n = serve(b, "wsfunction=core_enrol_get_enrolled_users&courseid=2&options[0][name]=limitnumber&options[0][value]=1000")
		}
		b.SetBytes(int64(n))
		b.ReportMetric(build.Seconds(), "build-s")
		b.ReportMetric(heap, "site-heap-MB")
	})
	b.Run("course_groups", func(b *testing.B) {
		for b.Loop() {
			serve(b, "wsfunction=core_group_get_course_groups&courseid=2")
		}
	})
	b.Run("users_by_field_900", func(b *testing.B) {
		var q strings.Builder
		q.WriteString("wsfunction=core_user_get_users_by_field&field=idnumber")
		for i := range 900 {
			fmt.Fprintf(&q, "&values[%d]=%s", i, url.QueryEscape(fmt.Sprintf("%08d", 20000000+i*5)))
		}
		for b.Loop() {
			serve(b, q.String())
		}
	})
}

// The generator makes states the simulator accepts, at a small scale.
func TestGeneratedStateLoads(t *testing.T) {
	s := scale{users: 2000, courses: 300, enrolments: 8000, groups: 600}
	site, err := moodletest.New(generate(s))
	if err != nil {
		t.Fatal(err)
	}
	snap := site.Snapshot()
	if len(snap.Courses) != s.courses+1 || len(snap.Groups) != s.groups || len(snap.Enrolments) < s.enrolments*9/10 {
		t.Errorf("%d courses, %d groups, %d enrolments", len(snap.Courses), len(snap.Groups), len(snap.Enrolments))
	}
}
