package moodletest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mimwarehouse/mim/export/ims"
)

// This file is the site's IMS Enterprise "cron": enrol_imsenterprise's
// scheduled task, applying a file to the site the way Moodle 4.5 does
// (docs/formats.md §1): the re-read rule, the <target> check, line by
// line reading with ims.Scanner, unknown courses and users skipped
// silently, enrolments by the imsenterprise method with roles mapped from
// roletypes, suspended enrolments left suspended, drops as imsunenrol and
// unenrolaction say, and cohorts as course groups.
//
// One simplification: the simulator keeps a user's roles per course, not
// per enrolment method, so unenrolling a user who keeps another enrolment
// in the course (manual, self) keeps their roles, where Moodle would remove
// the roles the IMS method had assigned.

// Unenrol actions (setting unenrolaction, Moodle 4.1+).
const (
	IMSUnenrol        = 0 // delete the enrolment and its roles (the default)
	IMSKeep           = 1 // log only
	IMSSuspend        = 2 // suspend the enrolment, rewrite its dates
	IMSSuspendNoRoles = 3 // suspend and remove the user's roles in the course
)

// IMSMethod is the enrolment method the IMS plugin enrols with.
const IMSMethod = "imsenterprise"

// IMSTask is the scheduled task that reads the file ("Enrolment file
// processing", minute 10 of every hour by default); a site runs it by hand
// with admin/cli/scheduled_task.php --execute='\enrol_imsenterprise\task\cron_task'.
const IMSTask = `\enrol_imsenterprise\task\cron_task`

// IMSSettings are the enrol_imsenterprise settings that change how a file
// is applied (docs/formats.md §1, moodle-side.md §4).
type IMSSettings struct {
	// RestrictTarget is imsrestricttarget: when set, a file whose
	// properties do not name it is not read past them.
	RestrictTarget string
	// Unenrol is imsunenrol: off (the default) ignores every drop.
	Unenrol bool
	// UnenrolAction is unenrolaction, one of IMSUnenrol ... IMSSuspendNoRoles.
	UnenrolAction int
	// RoleMap maps a roletype ("01" to "08") to a role id; 0 ignores the
	// roletype. Nil means a fresh site's defaults (01, 04 student; 02, 03
	// editingteacher; 06, 08 teacher; 05, 07 ignored).
	RoleMap map[string]int64
	// CreateNewUsers, UpdateUsers and DeleteUsers are createnewusers,
	// imsupdateusers and imsdeleteusers; FixCaseUsernames lower-cases
	// usernames.
	CreateNewUsers, UpdateUsers, DeleteUsers, FixCaseUsernames bool
	// Location is the time zone in which dates start; nil is the site's
	// own (State.TimeZone), as Moodle reads them.
	Location *time.Location
}

// IMSCron applies IMS files to one site, remembering, as Moodle does, the
// path, modification time and MD5 of the last file it found.
type IMSCron struct {
	site     *Site
	settings IMSSettings
	roleMap  map[string]int64

	mu        sync.Mutex
	seen      bool
	prevPath  string
	prevMtime int64
	prevMD5   string
}

// IMSCron returns the site's IMS task with settings.
func (s *Site) IMSCron(settings IMSSettings) *IMSCron {
	c := &IMSCron{site: s, settings: settings, roleMap: settings.RoleMap}
	if c.roleMap == nil {
		byShort := func(short string) int64 {
			s.mu.RLock()
			defer s.mu.RUnlock()
			for _, r := range s.roles {
				if r.ShortName == short {
					return r.ID
				}
			}
			return 0
		}
		student, editing, teacher := byShort("student"), byShort("editingteacher"), byShort("teacher")
		c.roleMap = map[string]int64{"01": student, "02": editing, "03": editing, "04": student,
			"05": byShort("admin"), "06": teacher, "07": byShort("admin"), "08": teacher}
	}
	if c.settings.Location == nil {
		c.settings.Location = s.location
	}
	return c
}

// IMSReport is what one run of the task did.
type IMSReport struct {
	// Skipped says why the file was not read ("" when it was).
	Skipped string
	// TargetMismatch: the properties did not name RestrictTarget, and
	// reading stopped there.
	TargetMismatch bool
	// Persons.
	UsersCreated, UsersUpdated, UsersDeleted int
	// Memberships.
	Enrolled int // new IMS enrolments
	// Members are the members with status 1 the task processed, each
	// logged "Enrolled user" whether or not it was enrolled before.
	Members       int
	DatesChanged  int // existing IMS enrolments whose dates were rewritten
	RolesAdded    int // roles added to existing enrolments
	StaySuspended int // status 1 on a suspended IMS enrolment: it stays suspended
	Unenrolled    int
	Suspended     int
	DropsIgnored  int // drops while imsunenrol is off, or kept by unenrolaction
	RolesSkipped  int // members whose roletype maps to no role
	// UnknownCourses are memberships whose course idnumber no course has;
	// UnknownUsers members whose user idnumber no user has. Moodle skips
	// both silently.
	UnknownCourses, UnknownUsers int
	GroupsCreated, GroupMembers  int
	// Log holds one line per action, as logtolocation would.
	Log []string
}

func (r *IMSReport) logf(format string, args ...any) {
	r.Log = append(r.Log, fmt.Sprintf(format, args...))
}

// Run is one run of the task on the file at path. A file that is missing is
// reported, not an error; an error reading it mid-way is an error, and then
// (as when Moodle's task dies) the file's path, mtime and MD5 are not
// remembered, so the next run reads it again from the top.
func (c *IMSCron) Run(path string) (*IMSReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := &IMSReport{}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		rep.Skipped = "no file at " + path
		rep.logf("%s", rep.Skipped)
		return rep, nil
	}
	if err != nil {
		return nil, fmt.Errorf("IMS cron: %w", err)
	}
	sum, err := fileMD5(path)
	if err != nil {
		return nil, fmt.Errorf("IMS cron: %w", err)
	}
	mtime := st.ModTime().Unix()
	remember := func() { c.seen, c.prevPath, c.prevMtime, c.prevMD5 = true, path, mtime, sum }
	if c.seen && path == c.prevPath {
		switch {
		case mtime <= c.prevMtime:
			rep.Skipped = fmt.Sprintf("%s: modification time %d is not later than the last file's %d", path, mtime, c.prevMtime)
		case sum == c.prevMD5:
			rep.Skipped = fmt.Sprintf("%s: same MD5 as the last file", path)
		}
		if rep.Skipped != "" {
			rep.logf("skipping %s", rep.Skipped)
			remember()
			return rep, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("IMS cron: %w", err)
	}
	defer f.Close()
	if err := c.apply(f, rep); err != nil {
		return rep, err
	}
	remember()
	return rep, nil
}

func fileMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Apply reads an IMS file from r and applies it now, without the re-read
// rule (Moodle's "perform an IMS Enterprise import right now").
func (c *IMSCron) Apply(r io.Reader) (*IMSReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := &IMSReport{}
	return rep, c.apply(r, rep)
}

func (c *IMSCron) apply(r io.Reader, rep *IMSReport) error {
	sc := ims.NewScanner(r)
	for sc.Scan() {
		switch e := sc.Element().(type) {
		case *ims.PropertiesElement:
			if t := c.settings.RestrictTarget; t != "" && !e.HasTarget(t) {
				rep.TargetMismatch = true
				rep.logf("skipping the file: its properties do not name the target %q (targets %s)", t, strings.Join(e.Targets(), ", "))
				return nil
			}
		case *ims.PersonElement:
			c.person(e, rep)
		case *ims.GroupElement:
			c.group(e, rep)
		case *ims.MembershipElement:
			c.membership(e, rep)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("IMS cron: %w", err)
	}
	return nil
}

func (c *IMSCron) person(p *ims.PersonElement, rep *IMSReport) {
	s := c.site
	username := p.Username
	if c.settings.FixCaseUsernames {
		username = strings.ToLower(username)
	}
	switch p.Recstatus {
	case 3:
		if !c.settings.DeleteUsers {
			rep.logf("ignoring the deletion of user %q (imsdeleteusers is off)", username)
			return
		}
		u, ok := s.UserByUsername(username)
		if !ok {
			rep.logf("cannot delete user %q: no such username", username)
			return
		}
		// Moodle's soft delete: the username is rewritten, the idnumber cleared.
		u.Username = strings.ToLower(fmt.Sprintf("%s.%d", "deleted", u.ID))
		u.IDNumber, u.Suspended = "", true
		if err := s.UpdateUser(u); err != nil {
			rep.logf("deleting user %d: %v", u.ID, err)
			return
		}
		rep.UsersDeleted++
		rep.logf("deleted user %q (id %d)", username, u.ID)
	case 2:
		if !c.settings.UpdateUsers {
			return
		}
		us := s.UsersByIDNumber(p.IDNumber)
		if p.IDNumber == "" || len(us) == 0 {
			return
		}
		u := us[0]
		if username != "" {
			u.Username = username
		}
		if p.Auth != "" {
			u.Auth, u.EmptyAuth = p.Auth, false
		}
		for _, f := range []struct {
			dst *string
			v   string
		}{{&u.FirstName, p.Given}, {&u.LastName, p.Family}, {&u.Email, p.Email}, {&u.City, p.City}, {&u.Country, p.Country}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if err := s.UpdateUser(u); err != nil {
			rep.logf("updating user %q: %v", p.IDNumber, err)
			return
		}
		rep.UsersUpdated++
		rep.logf("updated user %q", p.IDNumber)
	default:
		if p.IDNumber != "" && len(s.UsersByIDNumber(p.IDNumber)) > 0 {
			rep.logf("user %q already exists", p.IDNumber)
			return
		}
		if !c.settings.CreateNewUsers {
			return
		}
		if username == "" {
			rep.logf("cannot create user %q: no username", p.IDNumber)
			return
		}
		if u, ok := s.UserByUsername(username); ok {
			u.IDNumber = p.IDNumber // account adoption
			if err := s.UpdateUser(u); err == nil {
				rep.UsersUpdated++
				rep.logf("user %q exists: its idnumber is now %q", username, p.IDNumber)
			}
			return
		}
		auth := p.Auth
		if auth == "" {
			auth = "manual"
		}
		if _, err := s.AddUser(User{Username: username, FirstName: p.Given, LastName: p.Family, Email: p.Email,
			IDNumber: p.IDNumber, Auth: auth, City: p.City, Country: p.Country}); err != nil {
			rep.logf("creating user %q: %v", username, err)
			return
		}
		rep.UsersCreated++
		rep.logf("created user %q (idnumber %q)", username, p.IDNumber)
	}
}

func (c *IMSCron) group(g *ims.GroupElement, rep *IMSReport) {
	s := c.site
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.courseByIDNumber[g.IDNumber]
	if !ok || g.IDNumber == "" {
		rep.logf("Course %s not found in Moodle's course idnumbers", g.IDNumber)
		return
	}
	if g.Recstatus == 3 {
		s.courses[id].Visible = false
		rep.logf("course %s hidden", g.IDNumber)
	}
}

func (c *IMSCron) membership(ms *ims.MembershipElement, rep *IMSReport) {
	s := c.site
	s.mu.Lock()
	defer s.mu.Unlock()
	cid, ok := s.courseByIDNumber[ms.CourseIDNumber]
	if !ok || ms.CourseIDNumber == "" {
		rep.UnknownCourses++
		return
	}
	for _, m := range ms.Members {
		ids := s.usersByIDNumber[m.IDNumber]
		if m.IDNumber == "" || len(ids) == 0 {
			rep.UnknownUsers++
			continue
		}
		uid := ids[0] // duplicated idnumbers: Moodle takes the first row it finds
		role, mapped := c.roleMap[m.RoleType]
		if !mapped || role == 0 || s.roleByID[role] == nil {
			rep.RolesSkipped++
			rep.logf("SKIPPING role %q for user %q in course %s", m.RoleType, m.IDNumber, ms.CourseIDNumber)
			continue
		}
		start, end := c.unix(m.Begin), c.unix(m.End)
		if m.Enrol() {
			c.enrol(cid, uid, role, start, end, m, ms.CourseIDNumber, rep)
		} else {
			c.drop(cid, uid, role, start, end, m, ms.CourseIDNumber, rep)
		}
	}
}

// unix is midnight of d in the site's time zone; 0 for no date.
func (c *IMSCron) unix(d ims.Date) int64 {
	if d.IsZero() {
		return 0
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, c.settings.Location).Unix()
}

// enrol applies a member with status 1; the site's lock is held.
func (c *IMSCron) enrol(cid, uid, role, start, end int64, m ims.MemberElement, course string, rep *IMSReport) {
	s := c.site
	mem := s.member(cid, uid)
	var e *Enrolment
	if mem != nil {
		e = mem.enrol(IMSMethod)
	}
	// Moodle logs every member it processes with status 1 as enrolled,
	// already enrolled or not.
	rep.Members++
	rep.logf("Enrolled user #%d (%s) to role %s in course %s", uid, m.IDNumber, m.RoleType, course)
	if e == nil {
		s.putEnrolment(Enrolment{CourseID: cid, UserID: uid, RoleIDs: []int64{role}, Method: IMSMethod, TimeStart: start, TimeEnd: end})
		s.ensureInstance(cid, IMSMethod)
		rep.Enrolled++
	} else {
		if e.TimeStart != start || e.TimeEnd != end {
			e.TimeStart, e.TimeEnd = start, end
			rep.DatesChanged++
		}
		if !slices.Contains(mem.roles, role) {
			s.addRole(mem, role)
			rep.RolesAdded++
			rep.logf("added role %d to user %s in course %s", role, m.IDNumber, course)
		}
		if e.Suspended {
			// No way to re-activate an IMS enrolment through the file.
			rep.StaySuspended++
		}
	}
	if m.Cohort != "" {
		gid := s.groupByName(cid, m.Cohort)
		if gid == 0 {
			s.next.group++
			gid = s.next.group
			s.groups[gid] = &group{Group: Group{ID: gid, CourseID: cid, Name: m.Cohort}, members: map[int64]struct{}{}}
			s.courseGroups[cid] = append(s.courseGroups[cid], gid)
			rep.GroupsCreated++
			rep.logf("created group %q in course %s", m.Cohort, course)
		}
		if _, in := s.groups[gid].members[uid]; !in {
			s.groups[gid].members[uid] = struct{}{}
			rep.GroupMembers++
		}
	}
}

// drop applies a member with any other status; the site's lock is held. It
// acts only on the plugin's own enrolment.
func (c *IMSCron) drop(cid, uid, role, start, end int64, m ims.MemberElement, course string, rep *IMSReport) {
	s := c.site
	if !c.settings.Unenrol {
		rep.DropsIgnored++
		return
	}
	mem := s.member(cid, uid)
	if mem == nil || mem.enrol(IMSMethod) == nil {
		return
	}
	e := mem.enrol(IMSMethod)
	switch c.settings.UnenrolAction {
	case IMSKeep:
		rep.DropsIgnored++
		rep.logf("user %s in course %s: unenrol action is to keep", m.IDNumber, course)
	case IMSSuspend, IMSSuspendNoRoles:
		e.Suspended = true
		e.TimeStart, e.TimeEnd = start, end
		if c.settings.UnenrolAction == IMSSuspendNoRoles {
			if len(mem.enrols) == 1 {
				mem.roles = nil
			} else {
				mem.roles = slices.DeleteFunc(mem.roles, func(r int64) bool { return r == role })
			}
		}
		rep.Suspended++
		rep.logf("suspended user %s in course %s", m.IDNumber, course)
	default:
		s.removeEnrolment(cid, uid, IMSMethod)
		rep.Unenrolled++
		rep.logf("unenrolled user %s from course %s", m.IDNumber, course)
	}
}

// String summarises the report in one line.
func (r *IMSReport) String() string {
	if r.Skipped != "" {
		return "skipped: " + r.Skipped
	}
	parts := []string{
		"enrolled " + strconv.Itoa(r.Enrolled), "dates " + strconv.Itoa(r.DatesChanged), "roles added " + strconv.Itoa(r.RolesAdded),
		"unenrolled " + strconv.Itoa(r.Unenrolled), "suspended " + strconv.Itoa(r.Suspended),
		"drops ignored " + strconv.Itoa(r.DropsIgnored), "still suspended " + strconv.Itoa(r.StaySuspended),
		"unknown courses " + strconv.Itoa(r.UnknownCourses), "unknown users " + strconv.Itoa(r.UnknownUsers),
		"roles skipped " + strconv.Itoa(r.RolesSkipped),
	}
	if r.TargetMismatch {
		parts = append(parts, "stopped at the target")
	}
	return strings.Join(parts, ", ")
}
