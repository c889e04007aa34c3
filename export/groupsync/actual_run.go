package groupsync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	rawload "github.com/mimwarehouse/mim/load"
)

// The Moodle entities a course's actual state is taken from, when it comes
// from the night's database read instead of the web services: what the
// web-service read asks for (groups, groupings with the groups of MIM's,
// enrolled users with their groups) in the raw entities that read landed.
const (
	entGroups     = "groups"
	entGroupings  = "groupings"
	entEnrolments = "enrolments"
)

// RunRead says where a sync's actual state came from.
type RunRead struct {
	// RunID is the run whose database read was used (0: none was).
	RunID int64
	// Courses is how many courses' state came from it; the others were
	// read over the web services.
	Courses int
	// Reason says why the database read was not used, or not for every
	// course ("" when it was used for all).
	Reason string
}

// readFromRun takes the state of the courses from what run runID's database
// read of the site landed, for the courses whose groups, groupings and
// enrolments that read completed; it returns their state and the courses
// left to read over the web services. The read is used only when its
// groups, groupings and enrolments steps all succeeded in runID: a read
// from an earlier run, or one that failed tonight, is not Moodle's state
// now.
func readFromRun(ctx context.Context, q warehouse.Querier, site *Site, runID int64, courseIDs []int64) (*Actual, []int64, RunRead, error) {
	rr := RunRead{}
	if !site.ReadsDatabase || runID == 0 || len(courseIDs) == 0 {
		return nil, courseIDs, rr, nil
	}
	if reason, err := readSucceeded(ctx, q, site.Name, runID); err != nil || reason != "" {
		rr.Reason = reason
		return nil, courseIDs, rr, err
	}
	scopes := make([]string, len(courseIDs))
	for i, id := range courseIDs {
		scopes[i] = strconv.FormatInt(id, 10)
	}
	b := &runStateBuilder{prefix: site.GroupPrefix, courses: map[int64]*CourseState{}, bad: map[int64]error{}}
	entity := func(name string) extract.EntityID {
		return extract.EntityID{Source: "moodle", Instance: site.Name, Entity: name}
	}
	// Groups first: enrolments' groups are kept only for groups the
	// course's group list has, as over the web services.
	groupsDone, err := rawload.ReadOfRun(ctx, q, entity(entGroups), runID, scopes, b.group)
	if err != nil {
		return nil, nil, rr, err
	}
	groupingsDone, err := rawload.ReadOfRun(ctx, q, entity(entGroupings), runID, scopes, b.grouping)
	if err != nil {
		return nil, nil, rr, err
	}
	b.indexGroups()
	enrolDone, err := rawload.ReadOfRun(ctx, q, entity(entEnrolments), runID, scopes, b.enrolment)
	if err != nil {
		return nil, nil, rr, err
	}
	a := &Actual{Courses: map[int64]*CourseState{}, Unreadable: map[int64]error{}}
	var rest []int64
	for i, id := range courseIDs {
		s := scopes[i]
		if !groupsDone[s] || !groupingsDone[s] || !enrolDone[s] {
			rest = append(rest, id)
			continue
		}
		if err := b.bad[id]; err != nil {
			a.Unreadable[id] = err
			continue
		}
		a.Courses[id] = b.finish(id)
	}
	rr.RunID, rr.Courses = runID, len(courseIDs)-len(rest)
	if len(rest) > 0 {
		rr.Reason = fmt.Sprintf("%d courses not read completely by run %d's database read", len(rest), runID)
	}
	return a, rest, rr, nil
}

// readSucceeded says why run runID's Moodle read of site cannot stand in
// for the web services ("" when it can): its groups, groupings and
// enrolments must each have a succeeded extract step in that run.
func readSucceeded(ctx context.Context, q warehouse.Querier, site string, runID int64) (string, error) {
	steps, err := ledger.Steps(ctx, q, runID)
	if err != nil {
		return "", err
	}
	status := map[string]string{}
	for _, s := range steps {
		if s.Key.Stage == "extract" && s.Key.Source == "moodle" && s.Key.Instance == site {
			status[s.Key.Entity] = s.Status
		}
	}
	var not []string
	for _, e := range []string{entGroups, entGroupings, entEnrolments} {
		switch st := status[e]; st {
		case ledger.Succeeded:
		case "":
			not = append(not, e+" not read")
		default:
			not = append(not, e+" "+st)
		}
	}
	if len(not) > 0 {
		return fmt.Sprintf("run %d's database read of the site is not usable (%s)", runID, strings.Join(not, ", ")), nil
	}
	return "", nil
}

// runStateBuilder builds courses' state from the raw records of a read.
type runStateBuilder struct {
	prefix  string
	courses map[int64]*CourseState
	bad     map[int64]error         // a course whose records are not usable: it is unreadable, as over the web services
	groups  map[int64]map[int64]int // course → group id → index in its Groups
}

func (b *runStateBuilder) course(scope string) (*CourseState, int64, error) {
	id, err := strconv.ParseInt(scope, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("raw scope %q is not a course id", scope)
	}
	st := b.courses[id]
	if st == nil {
		st = &CourseState{CourseID: id, Enrolled: map[int64]bool{}}
		b.courses[id] = st
	}
	return st, id, nil
}

func (b *runStateBuilder) fail(id int64, err error) {
	if b.bad[id] == nil {
		b.bad[id] = err
	}
}

// group takes one record of the groups entity.
func (b *runStateBuilder) group(scope, key string, payload []byte) error {
	st, id, err := b.course(scope)
	if err != nil {
		return err
	}
	var g struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		IDNumber string `json:"idnumber"`
	}
	if err := json.Unmarshal(payload, &g); err != nil || g.ID <= 0 {
		b.fail(id, fmt.Errorf("reading the groups of course %d from the database read: group %s has no usable id (%v)", id, key, err))
		return nil
	}
	st.Groups = append(st.Groups, Group{ID: g.ID, Name: g.Name, IDNumber: g.IDNumber})
	return nil
}

// grouping takes one record of the groupings entity; the groups of a
// grouping are kept for MIM's groupings only, as the web-service read does.
func (b *runStateBuilder) grouping(scope, key string, payload []byte) error {
	st, id, err := b.course(scope)
	if err != nil {
		return err
	}
	var g struct {
		ID       int64   `json:"id"`
		Name     string  `json:"name"`
		IDNumber string  `json:"idnumber"`
		GroupIDs []int64 `json:"mim_groupids"`
	}
	if err := json.Unmarshal(payload, &g); err != nil || g.ID <= 0 {
		b.fail(id, fmt.Errorf("reading the groupings of course %d from the database read: grouping %s has no usable id (%v)", id, key, err))
		return nil
	}
	gr := Grouping{ID: g.ID, Name: g.Name, IDNumber: g.IDNumber}
	if strings.HasPrefix(g.IDNumber, b.prefix) {
		gr.GroupIDs = slices.Sorted(slices.Values(g.GroupIDs))
		if gr.GroupIDs == nil {
			gr.GroupIDs = []int64{}
		}
	}
	st.Groupings = append(st.Groupings, gr)
	return nil
}

// indexGroups indexes each course's groups by id, for enrolment.
func (b *runStateBuilder) indexGroups() {
	b.groups = make(map[int64]map[int64]int, len(b.courses))
	for id, st := range b.courses {
		ix := make(map[int64]int, len(st.Groups))
		for i, g := range st.Groups {
			ix[g.ID] = i
		}
		b.groups[id] = ix
	}
}

// enrolment takes one record of the enrolments entity: who may join a
// group, and who is in each (suspended enrolments included, as Moodle
// lets them be members).
func (b *runStateBuilder) enrolment(scope, key string, payload []byte) error {
	st, id, err := b.course(scope)
	if err != nil {
		return err
	}
	var u struct {
		ID     int64 `json:"id"`
		Groups []struct {
			ID int64 `json:"id"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(payload, &u); err != nil || u.ID <= 0 {
		b.fail(id, fmt.Errorf("reading the enrolled users of course %d from the database read: enrolment %s has no usable user id (%v)", id, key, err))
		return nil
	}
	st.Enrolled[u.ID] = true
	ix := b.groups[id]
	for _, g := range u.Groups {
		if i, ok := ix[g.ID]; ok {
			st.Groups[i].Members = append(st.Groups[i].Members, u.ID)
		}
	}
	return nil
}

// finish sorts a course's state as the web-service read leaves it.
func (b *runStateBuilder) finish(id int64) *CourseState {
	st := b.courses[id]
	if st == nil {
		return &CourseState{CourseID: id, Enrolled: map[int64]bool{}}
	}
	for i := range st.Groups {
		slices.Sort(st.Groups[i].Members)
		st.Groups[i].Members = slices.Compact(st.Groups[i].Members)
	}
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].ID < st.Groups[j].ID })
	sort.Slice(st.Groupings, func(i, j int) bool { return st.Groupings[i].ID < st.Groupings[j].ID })
	return st
}
