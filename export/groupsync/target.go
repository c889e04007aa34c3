package groupsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Member is one user who should be in a group.
type Member struct {
	UserID       int64
	UserIDNumber string
}

// DesiredGroup is one group a course should have, with its members.
type DesiredGroup struct {
	IDNumber         string
	Name             string
	GroupingIDNumber string // "" when the group belongs in no grouping
	GroupingName     string
	Members          []Member // by user id, each once
}

// CourseTarget is what one group-sync course should hold.
type CourseTarget struct {
	CourseID int64
	IDNumber string
	Groups   []DesiredGroup // by idnumber
}

// Target is the desired state of one site, from mart.exp_group_target.
// Only courses listed here are ever touched: a course whose group_sync
// mapping is gone keeps its groups as they are, as an inactive mapping
// freezes enrolments.
type Target struct {
	Instance string
	Courses  []CourseTarget // by course id
}

// Groups counts the desired groups.
func (t *Target) Groups() int {
	n := 0
	for _, c := range t.Courses {
		n += len(c.Groups)
	}
	return n
}

// targetQuery is the one place the mart is read (docs/contracts.md §2):
// one row per desired member, userid NULL for a group without members.
const targetQuery = `
SELECT courseid, coalesce(course_idnumber, ''), coalesce(group_idnumber, ''), coalesce(group_name, ''),
       coalesce(grouping_idnumber, ''), coalesce(grouping_name, ''), userid, coalesce(user_idnumber, '')
FROM mart.exp_group_target
WHERE instance = $1 AND ($2::bigint = 0 OR courseid = $2)
ORDER BY courseid, group_idnumber, userid NULLS FIRST`

// LoadTarget reads the desired groups of site instance (of one course when
// courseID is not 0). Every group and grouping idnumber must carry prefix,
// the site's group prefix, and a group or grouping must have one name and
// one grouping per course; rows that break this are a *TargetError naming
// them, and nothing is planned from a target that has any. Two groups of
// one name in a course are not an error here: the plan reports the second
// as a conflict, as Moodle would refuse it.
func LoadTarget(ctx context.Context, q warehouse.Querier, instance, prefix string, courseID int64) (*Target, error) {
	rows, err := q.Query(ctx, targetQuery, instance, courseID)
	if err != nil {
		return nil, targetReadError(instance, err)
	}
	defer rows.Close()
	t := &Target{Instance: instance}
	te := &TargetError{Instance: instance}
	type groupKey struct {
		course   int64
		idnumber string
	}
	var (
		cur       *CourseTarget
		group     *DesiredGroup
		groupings map[string]string // idnumber -> name, within the current course
		bad       = map[groupKey]bool{}
	)
	for rows.Next() {
		var (
			cid                                    int64
			cidn, gidn, gname, ggidn, ggname, uidn string
			uid                                    *int64
		)
		if err := rows.Scan(&cid, &cidn, &gidn, &gname, &ggidn, &ggname, &uid, &uidn); err != nil {
			return nil, fmt.Errorf("reading mart.exp_group_target for site %s: %w", instance, err)
		}
		where := fmt.Sprintf("course %d group %q", cid, gidn)
		switch {
		case cid <= 0:
			te.add("course %d: courseid is not a Moodle id", cid)
			continue
		case !strings.HasPrefix(gidn, prefix) || len(gidn) == len(prefix):
			te.add("%s: group_idnumber does not carry the site's group prefix %q", where, prefix)
			continue
		case strings.TrimSpace(gname) == "":
			te.add("%s: group_name is empty", where)
			continue
		case ggidn != "" && (!strings.HasPrefix(ggidn, prefix) || len(ggidn) == len(prefix)):
			te.add("%s: grouping_idnumber %q does not carry the site's group prefix %q", where, ggidn, prefix)
			continue
		case ggidn != "" && strings.TrimSpace(ggname) == "":
			te.add("%s: grouping %q has no grouping_name", where, ggidn)
			continue
		case uid != nil && *uid <= 0:
			te.add("%s user %q: userid %d is not a Moodle id", where, uidn, *uid)
			continue
		}
		if cur == nil || cur.CourseID != cid {
			t.Courses = append(t.Courses, CourseTarget{CourseID: cid, IDNumber: cidn})
			cur = &t.Courses[len(t.Courses)-1]
			group, groupings = nil, map[string]string{}
		} else if cur.IDNumber != cidn {
			te.add("course %d: course_idnumber is both %q and %q", cid, cur.IDNumber, cidn)
		}
		if group == nil || group.IDNumber != gidn {
			cur.Groups = append(cur.Groups, DesiredGroup{IDNumber: gidn, Name: gname, GroupingIDNumber: ggidn, GroupingName: ggname})
			group = &cur.Groups[len(cur.Groups)-1]
		} else if group.Name != gname || group.GroupingIDNumber != ggidn {
			if !bad[groupKey{cid, gidn}] {
				te.add("%s: rows disagree on its name or grouping (%q in %q, %q in %q)", where, group.Name, group.GroupingIDNumber, gname, ggidn)
				bad[groupKey{cid, gidn}] = true
			}
		}
		if ggidn != "" {
			if n, seen := groupings[ggidn]; seen && n != ggname {
				te.add("course %d grouping %q: named both %q and %q", cid, ggidn, n, ggname)
			}
			groupings[ggidn] = ggname
		}
		if uid != nil {
			if k := len(group.Members); k == 0 || group.Members[k-1].UserID != *uid {
				group.Members = append(group.Members, Member{UserID: *uid, UserIDNumber: uidn})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, targetReadError(instance, err)
	}
	if len(te.Problems) > 0 {
		return nil, te
	}
	for i := range t.Courses {
		sort.Slice(t.Courses[i].Groups, func(a, b int) bool { return t.Courses[i].Groups[a].IDNumber < t.Courses[i].Groups[b].IDNumber })
	}
	return t, nil
}

// TargetSites counts the group-sync courses of each site in the target.
func TargetSites(ctx context.Context, q warehouse.Querier) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT instance, count(DISTINCT courseid) FROM mart.exp_group_target GROUP BY instance`)
	if err != nil {
		return nil, targetReadError("", err)
	}
	out := map[string]int{}
	var (
		name string
		n    int
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil })
	if err != nil {
		return nil, targetReadError("", err)
	}
	return out, nil
}

func targetReadError(instance string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return fmt.Errorf("reading mart.exp_group_target: it does not exist yet; run `mim transform` first: %w", err)
	}
	if instance == "" {
		return fmt.Errorf("reading mart.exp_group_target: %w", err)
	}
	return fmt.Errorf("reading mart.exp_group_target for site %s: %w", instance, err)
}
