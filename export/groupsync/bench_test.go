package groupsync_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/export/groupsync/groupsynctest"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// benchScale is the size of the benchmarks: small by default (the machine
// is shared); MIM_BENCH_FULL=1 runs UCL's size for the plan (7,600 courses,
// 38,000 groups, 190,000 members) and 1,000 courses at 20 ms a request for
// the sync against the simulator.
type benchScale struct {
	courses, groups, members int
	latency                  time.Duration
}

func scale(full, small benchScale) benchScale {
	if os.Getenv("MIM_BENCH_FULL") == "1" {
		return full
	}
	return small
}

// benchWorld builds a target and a site for it: every course has its users
// enrolled and no groups yet.
func benchWorld(s benchScale) (moodletest.State, [][]groupsynctest.Row) {
	st := moodletest.State{Categories: []moodletest.Category{{ID: 1, Name: "Modules", Visible: true}}}
	perCourse := s.groups * s.members
	users := int64(perCourse * 4)
	for u := int64(1000); u < 1000+users; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprint("u", u), FirstName: "F", LastName: fmt.Sprint(u), Email: fmt.Sprintf("u%d@example.ac.uk", u)})
	}
	var rows [][]groupsynctest.Row
	for c := 0; c < s.courses; c++ {
		id := int64(100 + c)
		idn := fmt.Sprintf("MOD%04d-A7U-T1-2025", c)
		st.Courses = append(st.Courses, moodletest.Course{ID: id, ShortName: idn, FullName: idn, IDNumber: idn, CategoryID: 1})
		for k := 0; k < perCourse; k++ {
			uid := 1000 + int64((c*7+k)%int(users))
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: id, UserID: uid, RoleIDs: []int64{5}})
		}
		for g := 0; g < s.groups; g++ {
			var members []int64
			for m := 0; m < s.members; m++ {
				members = append(members, 1000+int64((c*7+g*s.members+m)%int(users)))
			}
			rows = append(rows, groupsynctest.Group("main", id, idn, fmt.Sprintf("mim:%08X%04X", c, g), fmt.Sprintf("SEM%d", g+1), members...))
		}
	}
	return st, rows
}

// BenchmarkMakePlan measures comparing a target with a state read from
// Moodle (pure computation: no database, no requests).
func BenchmarkMakePlan(b *testing.B) {
	s := scale(benchScale{courses: 7600, groups: 5, members: 5}, benchScale{courses: 500, groups: 5, members: 5})
	tgt := &groupsync.Target{Instance: "main"}
	a := &groupsync.Actual{Courses: map[int64]*groupsync.CourseState{}}
	for c := 0; c < s.courses; c++ {
		id := int64(100 + c)
		ct := groupsync.CourseTarget{CourseID: id, IDNumber: fmt.Sprint("C", c)}
		st := &groupsync.CourseState{CourseID: id, Enrolled: map[int64]bool{}}
		for g := 0; g < s.groups; g++ {
			idn := fmt.Sprintf("mim:%08X%04X", c, g)
			d := groupsync.DesiredGroup{IDNumber: idn, Name: fmt.Sprint("SEM", g), GroupingIDNumber: idn, GroupingName: fmt.Sprint("SEM", g)}
			var have []int64
			for m := 0; m < s.members; m++ {
				uid := int64(g*s.members + m)
				d.Members = append(d.Members, groupsync.Member{UserID: uid})
				st.Enrolled[uid] = true
				if m > 0 { // one member missing per group: drift to plan
					have = append(have, uid)
				}
			}
			ct.Groups = append(ct.Groups, d)
			st.Groups = append(st.Groups, groupsync.Group{ID: id*10 + int64(g), Name: d.Name, IDNumber: idn, Members: have})
			st.Groupings = append(st.Groupings, groupsync.Grouping{ID: id*10 + int64(g), Name: d.Name, IDNumber: idn, GroupIDs: []int64{id*10 + int64(g)}})
		}
		tgt.Courses = append(tgt.Courses, ct)
		a.Courses[id] = st
	}
	b.ReportAllocs()
	b.ResetTimer()
	var p *groupsync.Plan
	for b.Loop() {
		p = groupsync.MakePlan(tgt, a, "mim:")
	}
	if p.Count(groupsync.AddMember) != s.courses*s.groups || p.Writes() != p.Count(groupsync.AddMember) {
		b.Fatalf("plan: %v", p.Counts())
	}
	b.ReportMetric(float64(s.courses*s.groups), "groups")
}

// BenchmarkSync measures `groups apply` against the simulator: the first
// sync of a site without groups (create everything), and a sync of a site
// already in step (read everything, write nothing).
func BenchmarkSync(b *testing.B) {
	s := scale(benchScale{courses: 1000, groups: 5, members: 5, latency: 20 * time.Millisecond},
		benchScale{courses: 40, groups: 5, members: 5})
	st, rows := benchWorld(s)
	db := pgtest.New(b)
	groupsynctest.Fill(b, db.Pool, rows...)
	ctx := context.Background()
	run := func(b *testing.B, sim *moodletest.Site) *groupsync.Report {
		site := &groupsync.Site{Name: "main", URL: sim.URL(),
			Environment: pgtest.Environment, GroupPrefix: "mim:", Concurrency: 8, PageSize: 1000}
		c, err := moodle.New("main", site.URL, moodletest.DefaultToken, moodle.WithBatchSize(groupsync.BatchSize),
			moodle.WithConcurrency(8), moodle.WithRate(0))
		if err != nil {
			b.Fatal(err)
		}
		r, err := ledger.Begin(ctx, db.Pool, "groups", pgtest.Environment, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := groupsync.Sync(ctx, db.Pool, c, envguard.New(pgtest.Environment, db.Pool), groupsync.Options{Site: site, Run: r, By: "bench"})
		_ = r.Finish(ctx, ledger.Outcome(err), 0, err)
		if err != nil {
			b.Fatal(err)
		}
		return rep
	}
	b.Run(fmt.Sprintf("first/courses=%d", s.courses), func(b *testing.B) {
		var requests, writes int
		for b.Loop() {
			b.StopTimer()
			sim := moodletest.NewServer(b, st, moodletest.WithLatency(s.latency))
			b.StartTimer()
			rep := run(b, sim)
			requests, writes = sim.Calls(""), rep.Result.Total(groupsync.Applied)
			b.StopTimer()
			_ = sim.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(requests), "requests")
		b.ReportMetric(float64(writes), "writes")
	})
	b.Run(fmt.Sprintf("unchanged/courses=%d", s.courses), func(b *testing.B) {
		sim := moodletest.NewServer(b, st, moodletest.WithLatency(s.latency))
		run(b, sim)
		before := sim.Calls("")
		n := 0
		for b.Loop() {
			if rep := run(b, sim); rep.Plan.Writes() != 0 {
				b.Fatalf("an unchanged site planned %d writes", rep.Plan.Writes())
			}
			n++
		}
		b.ReportMetric(float64(sim.Calls("")-before)/float64(n), "requests")
	})
}
