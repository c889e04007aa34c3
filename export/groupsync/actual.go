package groupsync

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mimwarehouse/mim/moodle"
)

// Group is a group as Moodle has it now.
type Group struct {
	ID       int64
	Name     string
	IDNumber string
	Members  []int64 // user ids, ascending
}

// Grouping is a grouping as Moodle has it now. GroupIDs are read only for
// the groupings MIM owns (the others are never touched).
type Grouping struct {
	ID       int64
	Name     string
	IDNumber string
	GroupIDs []int64 // ascending
}

// CourseState is one course as Moodle has it now: its groups with their
// members, its groupings, and who is enrolled (and so may join a group).
type CourseState struct {
	CourseID  int64
	Groups    []Group    // by id
	Groupings []Grouping // by id
	Enrolled  map[int64]bool
}

// Actual is the state of the courses read from one site in this run.
type Actual struct {
	Courses map[int64]*CourseState
	// Unreadable are the courses whose state could not be read; they are
	// left alone, since a failed read must never look like an empty course.
	Unreadable map[int64]error
}

// ReadOptions tune how a site's state is read.
type ReadOptions struct {
	Prefix      string // the site's group prefix: the groupings read in full are the ones carrying it
	Concurrency int    // courses read at once (the client's own cap still applies); default 4
	PageSize    int    // enrolled users per request; 0 reads a course's users in one request
}

// ReadActual reads the courses' groups, groupings and enrolled users from
// Moodle now, through the client: four requests per course at most
// (groups, groupings, the MIM-owned groupings' groups, enrolled users with
// their groups). A course that cannot be read is listed in Unreadable.
func ReadActual(ctx context.Context, c *moodle.Client, courseIDs []int64, o ReadOptions) *Actual {
	a := &Actual{Courses: map[int64]*CourseState{}, Unreadable: map[int64]error{}}
	workers := o.Concurrency
	if workers < 1 {
		workers = 4
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan int64)
	)
	for range min(workers, len(courseIDs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				st, err := readCourse(ctx, c, id, o)
				mu.Lock()
				if err != nil {
					a.Unreadable[id] = err
				} else {
					a.Courses[id] = st
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range courseIDs {
		next <- id
	}
	close(next)
	wg.Wait()
	return a
}

func readCourse(ctx context.Context, c *moodle.Client, courseID int64, o ReadOptions) (*CourseState, error) {
	st := &CourseState{CourseID: courseID, Enrolled: map[int64]bool{}}
	groups, err := c.GetCourseGroups(ctx, courseID)
	if err != nil {
		return nil, fmt.Errorf("reading the groups of course %d: %w", courseID, err)
	}
	index := map[int64]int{}
	for _, g := range groups {
		if g.ID <= 0 {
			return nil, fmt.Errorf("reading the groups of course %d: Moodle answered a group %q with id %d", courseID, g.Name, g.ID)
		}
		index[int64(g.ID)] = len(st.Groups)
		st.Groups = append(st.Groups, Group{ID: int64(g.ID), Name: g.Name, IDNumber: g.IDNumber})
	}
	groupings, err := c.GetCourseGroupings(ctx, courseID)
	if err != nil {
		return nil, fmt.Errorf("reading the groupings of course %d: %w", courseID, err)
	}
	var owned []int64
	for _, g := range groupings {
		if g.ID <= 0 {
			return nil, fmt.Errorf("reading the groupings of course %d: Moodle answered a grouping %q with id %d", courseID, g.Name, g.ID)
		}
		st.Groupings = append(st.Groupings, Grouping{ID: int64(g.ID), Name: g.Name, IDNumber: g.IDNumber})
		if strings.HasPrefix(g.IDNumber, o.Prefix) {
			owned = append(owned, int64(g.ID))
		}
	}
	if len(owned) > 0 {
		full, err := c.GetGroupings(ctx, owned, true)
		if err != nil {
			return nil, fmt.Errorf("reading the groups of MIM's groupings in course %d: %w", courseID, err)
		}
		byID := map[int64][]int64{}
		for _, g := range full {
			ids := make([]int64, 0, len(g.Groups))
			for _, m := range g.Groups {
				ids = append(ids, int64(m.ID))
			}
			slices.Sort(ids)
			byID[int64(g.ID)] = ids
		}
		for i := range st.Groupings {
			if ids, ok := byID[st.Groupings[i].ID]; ok {
				st.Groupings[i].GroupIDs = ids
			} else if slices.Contains(owned, st.Groupings[i].ID) {
				return nil, fmt.Errorf("reading the groups of MIM's groupings in course %d: Moodle did not answer for grouping %d", courseID, st.Groupings[i].ID)
			}
		}
	}
	// Enrolled users with their groups give both who may join a group and
	// who is in each (Moodle drops group memberships on unenrolment).
	// Suspended enrolments count: Moodle lets them be group members.
	err = c.EachEnrolledUser(ctx, courseID, moodle.EnrolledUsersOptions{UserFields: []string{"id", "groups"}}, o.PageSize,
		func(u moodle.EnrolledUser) error {
			if u.ID <= 0 {
				//lint:ignore ST1005 "Moodle" is a proper noun
				return fmt.Errorf("Moodle answered an enrolled user with id %d", u.ID)
			}
			st.Enrolled[int64(u.ID)] = true
			for _, g := range u.Groups {
				i, ok := index[int64(g.ID)]
				if !ok {
					// A group made between the two reads: its members are
					// read next run; it is not MIM's to plan from now.
					continue
				}
				st.Groups[i].Members = append(st.Groups[i].Members, int64(u.ID))
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("reading the enrolled users of course %d: %w", courseID, err)
	}
	for i := range st.Groups {
		slices.Sort(st.Groups[i].Members)
		st.Groups[i].Members = slices.Compact(st.Groups[i].Members)
	}
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].ID < st.Groups[j].ID })
	sort.Slice(st.Groupings, func(i, j int) bool { return st.Groupings[i].ID < st.Groupings[j].ID })
	return st, nil
}
