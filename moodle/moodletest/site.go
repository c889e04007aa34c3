package moodletest

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRelease is what core_webservice_get_site_info reports when the
// State names no release: the Moodle the samples were recorded from.
const DefaultRelease = "4.5 (Build: 20241007)"

const (
	siteCourseID = 1
	// defaultThemeRev is the theme revision in profile image URLs when the
	// State names none: the first recorded site's, so a site configured with
	// its siteurl produces the same URLs.
	defaultThemeRev = "1795353844"
)

// standardRoles are Moodle's default roles; Moodle sends name "" for them.
var standardRoles = []Role{
	{ID: 1, ShortName: "manager", SortOrder: 1},
	{ID: 2, ShortName: "coursecreator", SortOrder: 2},
	{ID: 3, ShortName: "editingteacher", SortOrder: 3},
	{ID: 4, ShortName: "teacher", SortOrder: 4},
	{ID: 5, ShortName: "student", SortOrder: 5},
	{ID: 6, ShortName: "guest", SortOrder: 6},
	{ID: 7, ShortName: "user", SortOrder: 7},
	{ID: 8, ShortName: "frontpage", SortOrder: 8},
}

// StandardRoles returns Moodle's default roles, the ones a State without
// Roles gets; a State that adds its own (a personal-tutor role) starts
// from these.
func StandardRoles() []Role { return slices.Clone(standardRoles) }

// Site is one simulated Moodle site: its content, indexed by course and by
// user, behind Moodle's REST web-service protocol (see ServeHTTP). It is
// safe for concurrent use; reads share a lock, each write call holds it
// exclusively and is applied whole or not at all, as in Moodle's delegated
// transactions.
type Site struct {
	mu  sync.RWMutex
	now func() time.Time

	siteName, release string
	themeRev          string
	location          *time.Location // the site's time zone
	cats              map[int64]*category
	catOrder          []int64 // depth-first, the order of sortorder
	courses           map[int64]*course
	courseByShort     map[string]int64
	courseByIDNumber  map[string]int64
	catCourses        map[int64][]int64
	users             map[int64]*User
	userIDs           []int64 // ascending
	userByName        map[string]int64
	usersByIDNumber   map[string][]int64
	fields            []ProfileField
	roles             []Role // by sort order
	roleByID          map[int64]*Role
	enrol             map[int64]*courseEnrol
	userCourses       map[int64]map[int64]struct{}
	instances         map[int64][]enrolInstance
	disabled          map[CourseMethod]bool
	groups            map[int64]*group
	courseGroups      map[int64][]int64
	groupings         map[int64]*grouping
	courseGroupings   map[int64][]int64
	items             map[int64]*GradeItem
	courseItems       map[int64][]int64
	gradeCats         map[int64]int64 // course id -> its grade category id
	autoTotal         map[int64]bool  // course totals the site made itself
	grades            map[int64]map[int64]*Grade
	completion        map[int64]map[int64]*Completion
	merges            []MergeLog // tool_mergeusers' log
	next              struct{ cat, course, user, group, grouping, item, instance, gradeCat int64 }

	cfg config
}

// config is the simulated server's behaviour, separate from its content.
type config struct {
	mu           sync.Mutex
	siteURL      string
	baseURL      string // where the server listens, once started
	adminToken   string
	tokens       map[string]*Token
	debug        bool
	maxInputVars int
	latency      time.Duration
	faults       []*faultState
	throttle     *rate.Limiter
	calls        map[string]int
	total        int
	onRequest    func(Request)
	srv          *server
	mounts       []mount
}

// mount is a handler for paths other than the web services (Mount).
type mount struct {
	prefix string
	h      http.Handler
}

type category struct {
	Category
	sortorder    int64
	depth        int
	path         string
	timemodified int64
}

type course struct {
	Course
	sortorder    int64
	timecreated  int64
	timemodified int64
}

// member is one user's place in one course: their enrolments (one per
// method) and their roles there.
type member struct {
	enrols []*Enrolment // RoleIDs unused here
	roles  []int64
}

type courseEnrol struct {
	users map[int64]*member
	ids   []int64 // ascending
}

type enrolInstance struct {
	id     int64
	method string
}

type group struct {
	Group
	members       map[int64]struct{}
	descFormat    int64
	enrolmentKey  string
	visibility    int64
	participation bool
}

type grouping struct {
	Grouping
	descFormat int64
}

// formatOf guesses the description format of loaded groups and groupings:
// HTML when there is a description, as Moodle's forms save it.
func formatOf(description string) int64 {
	if description == "" {
		return 0
	}
	return 1
}

// Option configures a Site.
type Option func(*Site)

// WithToken sets the site administrator's web-service token (default: a
// fixed 32-character token, see Token).
func WithToken(token string) Option { return func(s *Site) { s.cfg.adminToken = token } }

// WithSiteURL sets the siteurl core_webservice_get_site_info reports and
// links are built from; by default it is the URL the server listens on. A
// test sets it to make the live siteurl differ from the configured URL.
func WithSiteURL(u string) Option { return func(s *Site) { s.cfg.siteURL = strings.TrimRight(u, "/") } }

// WithDebug switches Moodle's debugging display: with it on, errors carry
// "debuginfo" (the default, as the errors_debug samples show); off, they
// do not, as on a production site.
func WithDebug(on bool) Option { return func(s *Site) { s.cfg.debug = on } }

// WithMaxInputVars sets PHP's max_input_vars (default 1000, PHP's own
// default): form variables beyond it are silently dropped.
func WithMaxInputVars(n int) Option { return func(s *Site) { s.cfg.maxInputVars = n } }

// WithLatency delays every answer by d.
func WithLatency(d time.Duration) Option { return func(s *Site) { s.cfg.latency = d } }

// WithClock sets the clock used for enrolment time windows and for the
// times of objects created through web services.
func WithClock(now func() time.Time) Option { return func(s *Site) { s.now = now } }

// DefaultToken is the administrator token of a site built without WithToken.
const DefaultToken = "0123456789abcdef0123456789abcdef"

// New builds a site from st. It checks that st is consistent (unique ids,
// references that resolve, group members enrolled) and says what is not.
// It adds the site course (id 1), the guest (id 1) and admin (id 2) users
// when st does not hold them and their ids are free, and the standard roles
// when st has none.
func New(st State, opts ...Option) (*Site, error) {
	s := &Site{
		now:              time.Now,
		cats:             map[int64]*category{},
		courses:          map[int64]*course{},
		courseByShort:    map[string]int64{},
		courseByIDNumber: map[string]int64{},
		catCourses:       map[int64][]int64{},
		users:            map[int64]*User{},
		userByName:       map[string]int64{},
		usersByIDNumber:  map[string][]int64{},
		roleByID:         map[int64]*Role{},
		enrol:            map[int64]*courseEnrol{},
		userCourses:      map[int64]map[int64]struct{}{},
		instances:        map[int64][]enrolInstance{},
		disabled:         map[CourseMethod]bool{},
		groups:           map[int64]*group{},
		courseGroups:     map[int64][]int64{},
		groupings:        map[int64]*grouping{},
		courseGroupings:  map[int64][]int64{},
		items:            map[int64]*GradeItem{},
		courseItems:      map[int64][]int64{},
		gradeCats:        map[int64]int64{},
		autoTotal:        map[int64]bool{},
		grades:           map[int64]map[int64]*Grade{},
		completion:       map[int64]map[int64]*Completion{},
	}
	s.cfg.adminToken = DefaultToken
	s.cfg.debug = true
	s.cfg.maxInputVars = 1000
	s.cfg.tokens = map[string]*Token{}
	s.cfg.calls = map[string]int{}
	for _, o := range opts {
		o(s)
	}
	s.cfg.tokens[s.cfg.adminToken] = &Token{Token: s.cfg.adminToken}
	if err := s.load(st); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Site) load(st State) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	s.siteName = st.SiteName
	if s.siteName == "" {
		s.siteName = "Simulated Moodle"
	}
	s.release = st.Release
	if s.release == "" {
		s.release = DefaultRelease
	}
	s.themeRev = st.ThemeRev
	if s.themeRev == "" {
		s.themeRev = defaultThemeRev
	}
	s.location = time.UTC
	if st.TimeZone != "" {
		loc, err := time.LoadLocation(st.TimeZone)
		if err != nil {
			bad("time zone %q: %v", st.TimeZone, err)
		} else {
			s.location = loc
		}
	}
	now := s.now().Unix()

	// Roles.
	roles := st.Roles
	if len(roles) == 0 {
		roles = standardRoles
	}
	for _, r := range roles {
		if r.ID <= 0 {
			bad("role %q: id %d is not valid", r.ShortName, r.ID)
			continue
		}
		if _, dup := s.roleByID[r.ID]; dup {
			bad("role %d: id used twice", r.ID)
			continue
		}
		r := r
		s.roles = append(s.roles, r)
		s.roleByID[r.ID] = &s.roles[len(s.roles)-1]
	}
	s.sortRoles()

	// Categories.
	for _, c := range st.Categories {
		if c.ID <= 0 {
			bad("category %q: id %d is not valid", c.Name, c.ID)
			continue
		}
		if _, dup := s.cats[c.ID]; dup {
			bad("category %d: id used twice", c.ID)
			continue
		}
		s.cats[c.ID] = &category{Category: c, timemodified: now}
		s.next.cat = max(s.next.cat, c.ID)
	}
	for _, c := range s.cats {
		if c.Parent != 0 && s.cats[c.Parent] == nil {
			bad("category %d: parent %d does not exist", c.ID, c.Parent)
			c.Parent = 0
		}
	}
	if err := s.resortCategories(); err != nil {
		bad("%v", err)
	}

	// Courses, the site course first.
	hasSite := false
	for _, c := range st.Courses {
		if c.ID == siteCourseID {
			hasSite = true
		}
	}
	courses := st.Courses
	if !hasSite {
		courses = append([]Course{{ID: siteCourseID, ShortName: shortSiteName(s.siteName), FullName: s.siteName, Format: "site", Visible: true}}, courses...)
	}
	for _, c := range courses {
		switch {
		case c.ID <= 0:
			bad("course %q: id %d is not valid", c.ShortName, c.ID)
			continue
		case s.courses[c.ID] != nil:
			bad("course %d: id used twice", c.ID)
			continue
		case c.ID == siteCourseID && c.Format != "" && c.Format != "site":
			bad("course 1 is Moodle's site course; its format must be \"site\", not %q", c.Format)
			continue
		case c.ID != siteCourseID && c.Format == "site":
			bad("course %d: only the site course (id 1) has format \"site\"", c.ID)
			continue
		case c.ID != siteCourseID && s.cats[c.CategoryID] == nil:
			bad("course %d (%s): category %d does not exist", c.ID, c.ShortName, c.CategoryID)
			continue
		case c.ShortName == "":
			bad("course %d: shortname is empty", c.ID)
			continue
		}
		if c.ID == siteCourseID {
			c.Format, c.CategoryID = "site", 0
		}
		if c.Format == "" {
			c.Format = "topics"
		}
		if other, dup := s.courseByShort[c.ShortName]; dup {
			bad("course %d: shortname %q already used by course %d", c.ID, c.ShortName, other)
			continue
		}
		if c.IDNumber != "" {
			if other, dup := s.courseByIDNumber[c.IDNumber]; dup {
				bad("course %d: idnumber %q already used by course %d", c.ID, c.IDNumber, other)
				continue
			}
			s.courseByIDNumber[c.IDNumber] = c.ID
		}
		s.courseByShort[c.ShortName] = c.ID
		s.courses[c.ID] = &course{Course: c, timecreated: now, timemodified: now}
		if c.ID != siteCourseID {
			s.catCourses[c.CategoryID] = append(s.catCourses[c.CategoryID], c.ID)
		}
		s.next.course = max(s.next.course, c.ID)
	}
	for cat := range s.catCourses {
		s.resortCourses(cat)
	}
	s.courses[siteCourseID].sortorder = 1

	// Users, with guest and admin when their ids and names are free; in id
	// order, so that the index of ids stays sorted as each is added.
	users := slices.Clone(st.Users)
	var taken [3]bool
	names := map[string]bool{}
	for _, u := range users {
		if u.ID >= 1 && u.ID <= 2 {
			taken[u.ID] = true
		}
		names[u.Username] = true
	}
	if !taken[1] && !names["guest"] {
		users = append(users, User{ID: 1, Username: "guest", FirstName: "Guest user", LastName: " ", Email: "root@localhost"})
	}
	if !taken[2] && !names["admin"] {
		users = append(users, User{ID: 2, Username: "admin", FirstName: "Admin", LastName: "User", Email: "admin@example.com", MailDisplay: 1})
	}
	slices.SortStableFunc(users, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	for i := range users {
		u := users[i]
		if err := s.checkUser(&u); err != nil {
			bad("%v", err)
			continue
		}
		if s.users[u.ID] != nil {
			bad("user %d: id used twice", u.ID)
			continue
		}
		if other, dup := s.userByName[u.Username]; dup {
			bad("user %d: username %q already used by user %d", u.ID, u.Username, other)
			continue
		}
		s.putUser(&u)
		s.next.user = max(s.next.user, u.ID)
	}

	// Profile fields.
	seenField := map[string]bool{}
	for _, pf := range st.ProfileFields {
		if pf.ShortName == "" || seenField[pf.ShortName] {
			bad("profile field %q: shortname empty or used twice", pf.ShortName)
			continue
		}
		seenField[pf.ShortName] = true
		if pf.Type == "" {
			pf.Type = "text"
		}
		s.fields = append(s.fields, pf)
	}
	for _, id := range s.userIDs {
		for k := range s.users[id].CustomFields {
			if !seenField[k] {
				bad("user %d: profile field %q is not defined in ProfileFields", id, k)
			}
		}
	}

	// Enrolments, knowing first which instances are disabled.
	for _, cm := range st.DisabledMethods {
		cm.Method = methodOf(cm.Method)
		if s.courses[cm.CourseID] == nil {
			bad("disabled %s enrolment: course %d does not exist", cm.Method, cm.CourseID)
			continue
		}
		s.disabled[cm] = true
	}
	for _, e := range st.Enrolments {
		if err := s.checkEnrolment(e); err != nil {
			bad("%v", err)
			continue
		}
		if s.member(e.CourseID, e.UserID) != nil && s.member(e.CourseID, e.UserID).enrol(methodOf(e.Method)) != nil {
			bad("enrolment of user %d in course %d by %s: given twice", e.UserID, e.CourseID, methodOf(e.Method))
			continue
		}
		s.putEnrolment(e)
	}
	for _, id := range sortedKeys(s.courses) {
		s.ensureInstance(id, "manual")
		if ce := s.enrol[id]; ce != nil {
			var methods []string
			for _, uid := range ce.ids {
				for _, e := range ce.users[uid].enrols {
					if !slices.Contains(methods, e.Method) {
						methods = append(methods, e.Method)
					}
				}
			}
			// Moodle adds manual, guest and self to a new course; other
			// plugins' instances come after them.
			rank := map[string]int{"manual": 0, "guest": 1, "self": 2}
			sort.Slice(methods, func(i, j int) bool {
				ri, iok := rank[methods[i]]
				rj, jok := rank[methods[j]]
				switch {
				case iok && jok:
					return ri < rj
				case iok != jok:
					return iok
				}
				return methods[i] < methods[j]
			})
			for _, m := range methods {
				s.ensureInstance(id, m)
			}
		}
	}
	for _, cm := range sortedCourseMethods(s.disabled) {
		s.ensureInstance(cm.CourseID, cm.Method)
	}

	// Groups and groupings.
	for _, g := range st.Groups {
		switch {
		case g.ID <= 0:
			bad("group %q: id %d is not valid", g.Name, g.ID)
			continue
		case s.groups[g.ID] != nil:
			bad("group %d: id used twice", g.ID)
			continue
		case s.courses[g.CourseID] == nil:
			bad("group %d (%s): course %d does not exist", g.ID, g.Name, g.CourseID)
			continue
		case strings.TrimSpace(g.Name) == "":
			bad("group %d: name is empty", g.ID)
			continue
		}
		if other := s.groupByName(g.CourseID, g.Name); other != 0 {
			bad("group %d: name %q already used by group %d in course %d", g.ID, g.Name, other, g.CourseID)
			continue
		}
		if other := s.groupByIDNumber(g.CourseID, g.IDNumber); g.IDNumber != "" && other != 0 {
			bad("group %d: idnumber %q already used by group %d in course %d", g.ID, g.IDNumber, other, g.CourseID)
			continue
		}
		ng := &group{Group: g, members: map[int64]struct{}{}, descFormat: formatOf(g.Description), participation: true}
		if g.DescriptionFormat != nil {
			ng.descFormat = *g.DescriptionFormat
		}
		ng.Members = nil
		for _, uid := range g.Members {
			if s.member(g.CourseID, uid) == nil {
				bad("group %d (%s): member %d is not enrolled in course %d (Moodle allows only enrolled users in groups)", g.ID, g.Name, uid, g.CourseID)
				continue
			}
			ng.members[uid] = struct{}{}
		}
		s.groups[g.ID] = ng
		s.courseGroups[g.CourseID] = append(s.courseGroups[g.CourseID], g.ID)
		s.next.group = max(s.next.group, g.ID)
	}
	for _, g := range st.Groupings {
		switch {
		case g.ID <= 0:
			bad("grouping %q: id %d is not valid", g.Name, g.ID)
			continue
		case s.groupings[g.ID] != nil:
			bad("grouping %d: id used twice", g.ID)
			continue
		case s.courses[g.CourseID] == nil:
			bad("grouping %d (%s): course %d does not exist", g.ID, g.Name, g.CourseID)
			continue
		}
		if other := s.groupingByName(g.CourseID, g.Name); other != 0 {
			bad("grouping %d: name %q already used by grouping %d in course %d", g.ID, g.Name, other, g.CourseID)
			continue
		}
		ng := &grouping{Grouping: g, descFormat: formatOf(g.Description)}
		ng.Groups = nil
		for _, gid := range g.Groups {
			if gr := s.groups[gid]; gr == nil || gr.CourseID != g.CourseID {
				bad("grouping %d (%s): group %d is not a group of course %d", g.ID, g.Name, gid, g.CourseID)
				continue
			}
			if !slices.Contains(ng.Groups, gid) {
				ng.Groups = append(ng.Groups, gid)
			}
		}
		s.groupings[g.ID] = ng
		s.courseGroupings[g.CourseID] = append(s.courseGroupings[g.CourseID], g.ID)
		s.next.grouping = max(s.next.grouping, g.ID)
	}

	// Gradebook.
	for _, it := range st.GradeItems {
		switch {
		case it.ID <= 0:
			bad("grade item %q: id %d is not valid", it.ItemName, it.ID)
			continue
		case s.items[it.ID] != nil:
			bad("grade item %d: id used twice", it.ID)
			continue
		case s.courses[it.CourseID] == nil:
			bad("grade item %d: course %d does not exist", it.ID, it.CourseID)
			continue
		}
		it := it
		if it.ItemType == "" {
			it.ItemType = "manual"
		}
		s.items[it.ID] = &it
		s.courseItems[it.CourseID] = append(s.courseItems[it.CourseID], it.ID)
		s.next.item = max(s.next.item, it.ID)
	}
	// Every course has a course total: Moodle creates it (with its grade
	// category) on the first grade report read, a read that writes, so a
	// course without items reports its total, maximum 0.
	for _, cid := range sortedKeys(s.courses) {
		if cid == siteCourseID {
			continue
		}
		hasTotal := false
		sumMax := 0.0
		for _, id := range s.courseItems[cid] {
			hasTotal = hasTotal || s.items[id].ItemType == "course"
			if s.items[id].ItemType != "course" {
				sumMax += s.items[id].GradeMax
			}
		}
		if !hasTotal {
			s.next.item++
			it := &GradeItem{ID: s.next.item, CourseID: cid, ItemType: "course", GradeMax: sumMax}
			s.items[it.ID] = it
			s.autoTotal[it.ID] = true
			s.courseItems[cid] = append(s.courseItems[cid], it.ID)
		}
		s.next.gradeCat++
		s.gradeCats[cid] = s.next.gradeCat
	}
	for _, g := range st.Grades {
		it := s.items[g.ItemID]
		switch {
		case it == nil:
			bad("grade of user %d: grade item %d does not exist", g.UserID, g.ItemID)
			continue
		case s.users[g.UserID] == nil:
			bad("grade on item %d: user %d does not exist", g.ItemID, g.UserID)
			continue
		}
		g := g
		if s.grades[g.ItemID] == nil {
			s.grades[g.ItemID] = map[int64]*Grade{}
		}
		if s.grades[g.ItemID][g.UserID] != nil {
			bad("grade of user %d on item %d: given twice", g.UserID, g.ItemID)
			continue
		}
		s.grades[g.ItemID][g.UserID] = &g
	}
	for _, c := range st.Completions {
		switch {
		case s.courses[c.CourseID] == nil:
			bad("completion of user %d: course %d does not exist", c.UserID, c.CourseID)
			continue
		case s.users[c.UserID] == nil:
			bad("completion in course %d: user %d does not exist", c.CourseID, c.UserID)
			continue
		}
		c := c
		if s.completion[c.CourseID] == nil {
			s.completion[c.CourseID] = map[int64]*Completion{}
		}
		s.completion[c.CourseID][c.UserID] = &c
	}
	return errors.Join(errs...)
}

func shortSiteName(name string) string {
	f := strings.Fields(name)
	if len(f) == 0 {
		return "moodle"
	}
	return f[0]
}

func methodOf(m string) string {
	if m == "" {
		return "manual"
	}
	return m
}

func (s *Site) sortRoles() {
	sort.SliceStable(s.roles, func(i, j int) bool { return s.roles[i].SortOrder < s.roles[j].SortOrder })
	for i := range s.roles {
		s.roleByID[s.roles[i].ID] = &s.roles[i]
	}
}

// resortCategories gives categories Moodle's sortorder: 10000 apart in
// depth-first order, siblings by id, with depth and path.
func (s *Site) resortCategories() error {
	children := map[int64][]int64{}
	for _, id := range sortedKeys(s.cats) {
		children[s.cats[id].Parent] = append(children[s.cats[id].Parent], id)
	}
	s.catOrder = s.catOrder[:0]
	var walk func(parent int64, depth int, path string)
	seen := map[int64]bool{}
	walk = func(parent int64, depth int, path string) {
		for _, id := range children[parent] {
			if seen[id] {
				continue
			}
			seen[id] = true
			c := s.cats[id]
			c.depth = depth
			c.path = fmt.Sprintf("%s/%d", path, id)
			s.catOrder = append(s.catOrder, id)
			c.sortorder = int64(len(s.catOrder)) * 10000
			walk(id, depth+1, c.path)
		}
	}
	walk(0, 1, "")
	if len(seen) != len(s.cats) {
		var loop []int64
		for _, id := range sortedKeys(s.cats) {
			if !seen[id] {
				loop = append(loop, id)
			}
		}
		return fmt.Errorf("categories %v: their parents form a loop", loop)
	}
	for cat := range s.catCourses {
		s.resortCourses(cat)
	}
	return nil
}

// resortCourses numbers a category's courses after its sortorder, newest
// (highest id) first, as Moodle puts a new course at the top.
func (s *Site) resortCourses(cat int64) {
	ids := s.catCourses[cat]
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	base := int64(0)
	if c := s.cats[cat]; c != nil {
		base = c.sortorder
	}
	for i, id := range ids {
		s.courses[id].sortorder = base + int64(i) + 1
	}
}

func (s *Site) checkUser(u *User) error {
	switch {
	case u.ID <= 0:
		return fmt.Errorf("user %q: id %d is not valid", u.Username, u.ID)
	case u.Username == "":
		return fmt.Errorf("user %d: username is empty", u.ID)
	case u.Username != strings.ToLower(u.Username):
		return fmt.Errorf("user %d: username %q is not lower case (Moodle keeps usernames in lower case)", u.ID, u.Username)
	}
	switch {
	case u.EmptyAuth:
		u.Auth = ""
	case u.Auth == "":
		u.Auth = "manual"
	}
	return nil
}

func (s *Site) putUser(u *User) {
	cp := *u
	if len(u.CustomFields) > 0 {
		cp.CustomFields = make(map[string]string, len(u.CustomFields))
		for k, v := range u.CustomFields {
			cp.CustomFields[k] = v
		}
	}
	if old := s.users[cp.ID]; old != nil {
		delete(s.userByName, old.Username)
		s.usersByIDNumber[old.IDNumber] = slices.DeleteFunc(s.usersByIDNumber[old.IDNumber], func(id int64) bool { return id == old.ID })
	} else {
		s.userIDs = insertSorted(s.userIDs, cp.ID)
	}
	s.users[cp.ID] = &cp
	s.userByName[cp.Username] = cp.ID
	if cp.IDNumber != "" {
		s.usersByIDNumber[cp.IDNumber] = append(s.usersByIDNumber[cp.IDNumber], cp.ID)
	}
}

func (s *Site) checkEnrolment(e Enrolment) error {
	switch {
	case s.courses[e.CourseID] == nil:
		return fmt.Errorf("enrolment of user %d: course %d does not exist", e.UserID, e.CourseID)
	case s.users[e.UserID] == nil:
		return fmt.Errorf("enrolment in course %d: user %d does not exist", e.CourseID, e.UserID)
	}
	for _, r := range e.RoleIDs {
		if s.roleByID[r] == nil {
			return fmt.Errorf("enrolment of user %d in course %d: role %d does not exist", e.UserID, e.CourseID, r)
		}
	}
	return nil
}

func (m *member) enrol(method string) *Enrolment {
	for _, e := range m.enrols {
		if e.Method == method {
			return e
		}
	}
	return nil
}

func (s *Site) member(courseID, userID int64) *member {
	ce := s.enrol[courseID]
	if ce == nil {
		return nil
	}
	return ce.users[userID]
}

// putEnrolment adds an enrolment or updates the one of the same method,
// adding its roles to the user's roles in the course.
func (s *Site) putEnrolment(e Enrolment) (created bool) {
	e.Method = methodOf(e.Method)
	ce := s.enrol[e.CourseID]
	if ce == nil {
		ce = &courseEnrol{users: map[int64]*member{}}
		s.enrol[e.CourseID] = ce
	}
	m := ce.users[e.UserID]
	if m == nil {
		m = &member{}
		ce.users[e.UserID] = m
		ce.ids = insertSorted(ce.ids, e.UserID)
		if s.userCourses[e.UserID] == nil {
			s.userCourses[e.UserID] = map[int64]struct{}{}
		}
		s.userCourses[e.UserID][e.CourseID] = struct{}{}
		created = true
	}
	roles := e.RoleIDs
	e.RoleIDs = nil
	e.off = s.disabled[CourseMethod{e.CourseID, e.Method}]
	if old := m.enrol(e.Method); old != nil {
		*old = e
	} else {
		cp := e
		m.enrols = append(m.enrols, &cp)
	}
	for _, r := range roles {
		s.addRole(m, r)
	}
	return created
}

func (s *Site) addRole(m *member, roleID int64) {
	if slices.Contains(m.roles, roleID) {
		return
	}
	m.roles = append(m.roles, roleID)
	sort.Slice(m.roles, func(i, j int) bool {
		return s.roleSortOrder(m.roles[i]) < s.roleSortOrder(m.roles[j])
	})
}

func (s *Site) roleSortOrder(id int64) int {
	if r := s.roleByID[id]; r != nil {
		return r.SortOrder
	}
	return int(id)
}

func (s *Site) ensureInstance(courseID int64, method string) int64 {
	for _, in := range s.instances[courseID] {
		if in.method == method {
			return in.id
		}
	}
	s.next.instance++
	s.instances[courseID] = append(s.instances[courseID], enrolInstance{s.next.instance, method})
	return s.next.instance
}

// active reports whether an enrolment gives access now, as Moodle's
// get_enrolled_sql(onlyactive) decides: its instance enabled, not
// suspended, started, not ended.
func active(e *Enrolment, now int64) bool {
	return !e.off && !e.Suspended && (e.TimeStart == 0 || e.TimeStart < now) && (e.TimeEnd == 0 || e.TimeEnd > now)
}

// sortedCourseMethods orders the keys of set by course, then method.
func sortedCourseMethods(set map[CourseMethod]bool) []CourseMethod {
	out := make([]CourseMethod, 0, len(set))
	for cm := range set {
		out = append(out, cm)
	}
	slices.SortFunc(out, func(a, b CourseMethod) int {
		if c := cmp.Compare(a.CourseID, b.CourseID); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

func (m *member) isActive(now int64) bool {
	for _, e := range m.enrols {
		if active(e, now) {
			return true
		}
	}
	return false
}

func (s *Site) groupByName(courseID int64, name string) int64 {
	for _, id := range s.courseGroups[courseID] {
		if s.groups[id].Name == name {
			return id
		}
	}
	return 0
}

func (s *Site) groupByIDNumber(courseID int64, idnumber string) int64 {
	if idnumber == "" {
		return 0
	}
	for _, id := range s.courseGroups[courseID] {
		if s.groups[id].IDNumber == idnumber {
			return id
		}
	}
	return 0
}

func (s *Site) groupingByName(courseID int64, name string) int64 {
	for _, id := range s.courseGroupings[courseID] {
		if s.groupings[id].Name == name {
			return id
		}
	}
	return 0
}

func (s *Site) groupingByIDNumber(courseID int64, idnumber string) int64 {
	if idnumber == "" {
		return 0
	}
	for _, id := range s.courseGroupings[courseID] {
		if s.groupings[id].IDNumber == idnumber {
			return id
		}
	}
	return 0
}

// groupsByName returns a course's group ids ordered by name, as
// groups_get_all_groups does.
func (s *Site) groupsByName(courseID int64) []int64 {
	ids := slices.Clone(s.courseGroups[courseID])
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.groups[ids[i]], s.groups[ids[j]]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return ids
}

func (s *Site) groupingsByName(courseID int64) []int64 {
	ids := slices.Clone(s.courseGroupings[courseID])
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.groupings[ids[i]], s.groupings[ids[j]]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return ids
}

// removeMember drops a user's enrolment by method; when it was their last
// one, their roles and group memberships in the course go too, as
// enrol_plugin::unenrol_user does. It returns an undo function.
func (s *Site) removeEnrolment(courseID, userID int64, method string) (undo func(), ok bool) {
	ce := s.enrol[courseID]
	if ce == nil || ce.users[userID] == nil {
		return nil, false
	}
	m := ce.users[userID]
	idx := slices.IndexFunc(m.enrols, func(e *Enrolment) bool { return e.Method == method })
	if idx < 0 {
		return nil, false
	}
	removed := m.enrols[idx]
	m.enrols = slices.Delete(slices.Clone(m.enrols), idx, idx+1)
	if len(m.enrols) > 0 {
		return func() { m.enrols = append(m.enrols, removed) }, true
	}
	var groupIDs []int64
	for _, gid := range s.courseGroups[courseID] {
		if _, in := s.groups[gid].members[userID]; in {
			groupIDs = append(groupIDs, gid)
			delete(s.groups[gid].members, userID)
		}
	}
	delete(ce.users, userID)
	ce.ids = deleteSorted(ce.ids, userID)
	delete(s.userCourses[userID], courseID)
	return func() {
		m.enrols = []*Enrolment{removed}
		ce.users[userID] = m
		ce.ids = insertSorted(ce.ids, userID)
		if s.userCourses[userID] == nil {
			s.userCourses[userID] = map[int64]struct{}{}
		}
		s.userCourses[userID][courseID] = struct{}{}
		for _, gid := range groupIDs {
			if g := s.groups[gid]; g != nil {
				g.members[userID] = struct{}{}
			}
		}
	}, true
}

func insertSorted(ids []int64, id int64) []int64 {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func deleteSorted(ids []int64, id int64) []int64 {
	i, found := slices.BinarySearch(ids, id)
	if !found {
		return ids
	}
	return slices.Delete(ids, i, i+1)
}

func fullName(u *User) string { return u.FirstName + " " + u.LastName }
