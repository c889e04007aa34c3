package moodletest

// State is the content of one simulated Moodle site, as plain data. The
// synthetic institution (internal/synth) builds one per site, tests build
// small ones by hand, and the simulator starts from it. IDs are chosen by
// whoever builds the State (the simulator allocates new ones above the
// highest it was given); 0 is never a valid id. The site course (id 1,
// format "site") is added by the simulator when State does not hold it.
type State struct {
	SiteName string // sitename in core_webservice_get_site_info
	Release  string // e.g. "4.5 (Build: 20241007)"; the simulator defaults it
	// ThemeRev is the theme revision in profile image URLs (it changes
	// whenever a site's caches are purged); the first recorded site's
	// when empty.
	ThemeRev string
	// TimeZone is the site's default time zone ($CFG->timezone, e.g.
	// "Europe/London"): the IMS task starts and ends enrolments at
	// midnight in it. Empty is UTC.
	TimeZone   string
	Categories []Category
	Courses    []Course
	Users      []User
	// ProfileFields are the site's custom user profile fields.
	ProfileFields []ProfileField
	// Roles default to Moodle's standard set (manager 1, coursecreator 2,
	// editingteacher 3, teacher 4, student 5, guest 6, user 7, frontpage 8)
	// when empty.
	Roles      []Role
	Enrolments []Enrolment
	// DisabledMethods are enrolment instances (a course's method) whose
	// status is disabled: their enrolments stay, but give no access, as
	// when a teacher disables a course's self enrolment.
	DisabledMethods []CourseMethod
	Groups          []Group
	Groupings       []Grouping
	GradeItems      []GradeItem
	Grades          []Grade
	Completions     []Completion
}

// Category is a course category.
type Category struct {
	ID          int64
	Name        string
	IDNumber    string
	Parent      int64 // 0 = top level
	Description string
	Visible     bool
}

// Course is a Moodle course.
type Course struct {
	ID         int64
	ShortName  string
	FullName   string
	IDNumber   string // the key SIS mappings and IMS memberships use
	Summary    string // HTML, as Moodle stores it
	CategoryID int64
	Format     string // "topics" when empty; "site" only for id 1
	Visible    bool
	StartDate  int64 // Unix seconds
	EndDate    int64
}

// User is a Moodle account.
type User struct {
	ID        int64
	Username  string // lower case, as Moodle keeps it
	FirstName string
	LastName  string
	Email     string
	IDNumber  string // the SIS student or staff number; may be empty or shared by mistake
	Auth      string // "manual" when empty; "ldap", "saml2", ...
	// EmptyAuth stores auth as '' (a row inserted by hand or by a plugin
	// that left it empty, as some real sites have): such an account
	// matches no auth criterion. Auth is then ignored.
	EmptyAuth bool
	// MailDisplay 1 shows the e-mail address to everyone (a new site's
	// administrator has it); any other value shows it only to those who may
	// see identities (Moodle's default, 2, course members).
	MailDisplay int
	Department  string
	Institution string
	City        string // optional; Moodle omits empty ones from user details
	Country     string // ISO 3166 code, e.g. "NZ"
	Suspended   bool
	// CustomFields are profile field values by field shortname.
	CustomFields map[string]string
}

// ProfileField is a custom user profile field definition.
type ProfileField struct {
	ShortName string
	Name      string
	Type      string // text, menu, checkbox, datetime, textarea
}

// Role is a Moodle role.
type Role struct {
	ID        int64
	ShortName string
	Name      string // Moodle sends "" for the standard roles
	SortOrder int
}

// Enrolment is one user's enrolment in one course through one method.
// Roles belong to the user in the course, not to the method (as in Moodle,
// where enrolment plugins assign roles in the course context): the
// simulator takes the union of RoleIDs over a user's enrolments in a
// course, and Snapshot reports that union on each of them.
type Enrolment struct {
	CourseID  int64
	UserID    int64
	RoleIDs   []int64
	Method    string // manual, imsenterprise, self, ...; "manual" when empty
	Suspended bool
	TimeStart int64 // Unix seconds, 0 = none
	TimeEnd   int64

	off bool // its instance is disabled (State.DisabledMethods)
}

// CourseMethod names one enrolment instance: a course's enrolment method.
type CourseMethod struct {
	CourseID int64
	Method   string // manual, imsenterprise, self, ...; "manual" when empty
}

// Group is a course group. Members must be enrolled in the course, as
// Moodle requires.
type Group struct {
	ID          int64
	CourseID    int64
	Name        string
	IDNumber    string
	Description string
	// DescriptionFormat is Moodle's format of the description (0 Moodle,
	// 1 HTML, 2 plain, 4 Markdown); nil guesses HTML when there is a
	// description and 0 when not. Groups created through web services
	// get what the call sent (1 by default).
	DescriptionFormat *int64
	Members           []int64 // user ids
}

// Grouping is a course grouping and the groups assigned to it.
type Grouping struct {
	ID          int64
	CourseID    int64
	Name        string
	IDNumber    string
	Description string
	Groups      []int64 // group ids
}

// GradeItem is one gradebook item of a course (the course total included).
type GradeItem struct {
	ID         int64
	CourseID   int64
	ItemName   string
	IDNumber   string
	ItemType   string // course, mod, manual, category
	ItemModule string // assign, quiz, ... for ItemType mod
	GradeMax   float64
	GradeMin   float64
}

// Grade is one user's grade on one grade item.
type Grade struct {
	ItemID  int64
	UserID  int64
	Raw     *float64 // nil = not graded
	Updated int64    // Unix seconds
}

// Completion is one user's course completion state.
type Completion struct {
	CourseID      int64
	UserID        int64
	Completed     bool
	TimeCompleted int64
	Progress      *float64 // percentage, nil when the course tracks none
}
