package lti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/mapping"
)

// Limits of the page.
const (
	searchLimit  = 50
	historyLimit = 50
)

// pageState is what one request adds to the course page.
type pageState struct {
	Message, Error string
	Query, Kind    string
	Searched       bool
	Results        []mapping.Candidate
	More           bool
	Preview        *previewView
}

// pageData is the course page's template data.
type pageData struct {
	Base, Session, CSRF string
	Site, CourseID      string
	Label, Title        string
	IDNumber            string
	Person, Roles       string
	CanEdit             bool
	// ReadOnly says why an editor cannot change anything now.
	ReadOnly string
	Mappings []mappingRow
	History  []historyRow
	Offer    []string // roles staff may give
	Kinds    []kindOption
	pageState
}

type kindOption struct{ Value, Label string }

type mappingRow struct {
	ID                       int64
	Kind, Code, Title, Year  string
	Roles                    []string
	GroupSync, Active        bool
	Origin                   string
	Students                 string
	Editable                 bool
	NotEditable              string
	GroupSyncAllowed         bool
	RoleChecked              map[string]bool
	RemoveLabel, ChangeLabel string
}

type historyRow struct {
	When, By, What string
}

// kindLabel is how the page names a SIS kind.
func kindLabel(k string) string {
	switch k {
	case "module_occurrence":
		return "Module occurrence"
	case "section":
		return "Module section"
	}
	return strings.ToUpper(k[:1]) + k[1:]
}

// renderCourse renders the course page of session s with what st adds.
func (t *Tool) renderCourse(w http.ResponseWriter, r *http.Request, s *session, tok, csrf string, st pageState) {
	ctx := r.Context()
	d := &pageData{Base: t.base, Session: tok, CSRF: csrf, Site: s.Instance, CourseID: s.ContextID, Label: s.ContextLabel,
		Title: s.ContextTitle, IDNumber: s.CourseIDNumber, Person: s.UserName, CanEdit: s.CanEdit, Offer: t.opts.Roles,
		pageState: st}
	if d.Person == "" {
		d.Person = s.UserLogin
	}
	d.Roles = describeRoles(s.Roles)
	for _, k := range mapping.StaffKinds {
		d.Kinds = append(d.Kinds, kindOption{k, kindLabel(k)})
	}
	problem, err := t.courseProblem(ctx, s)
	if err != nil {
		t.serverError(w, r, "course page", err)
		return
	}
	switch {
	case problem != "":
		d.ReadOnly = problem
	case s.CanEdit:
		f, err := mapping.EditFreeze(ctx, t.db, s.Instance, s.CourseIDNumber)
		if err != nil {
			t.serverError(w, r, "course page", err)
			return
		}
		d.ReadOnly = f.Message()
	}
	if s.CourseIDNumber != "" {
		ms, err := mapping.List(ctx, t.db, mapping.Filter{Instance: s.Instance, Course: s.CourseIDNumber})
		if err != nil {
			t.serverError(w, r, "course page", err)
			return
		}
		if d.Mappings, err = t.mappingRows(ctx, ms, s.CanEdit && d.ReadOnly == ""); err != nil {
			t.serverError(w, r, "course page", err)
			return
		}
		if s.CanEdit {
			evs, err := mapping.Events(ctx, t.db, s.Instance, s.CourseIDNumber, historyLimit)
			if err != nil {
				t.serverError(w, r, "course page", err)
				return
			}
			d.History = historyRows(evs, ms, t.entityNames(ctx, evs, ms))
		}
	}
	t.render(w, http.StatusOK, "course", d, frameAncestors(s.Issuer), false)
}

// courseProblem says why the launch's course cannot be mapped at all.
func (t *Tool) courseProblem(ctx context.Context, s *session) (string, error) {
	switch {
	case s.ContextID == "":
		return "This launch did not come from a course. Add the tool to a course and open it there.", nil
	case s.CourseIDNumber == "":
		return "This course has no course ID number in Moodle. MIM feeds courses by their ID number (IMS Enterprise), so nothing can be mapped to it until it has one: set it in the course settings, or ask the integration team.", nil
	}
	// The ID number comes from the signed launch, so it is the course's
	// now. If the warehouse's copy of the site knows it as another course,
	// an ID number was moved between courses since the last night: refuse
	// until the warehouse has caught up, rather than act on the wrong course.
	var other int64
	err := t.db.QueryRow(ctx, `SELECT course_id FROM stg.moodle_course WHERE instance = $1 AND idnumber = $2 AND course_id::text <> $3
		LIMIT 1`, s.Instance, s.CourseIDNumber, s.ContextID).Scan(&other)
	switch {
	case err == nil:
		return fmt.Sprintf("Last night Moodle gave the ID number %s to another course (id %d). Mappings follow ID numbers, so this page stays read-only until the next night has read the change; ask the integration team if it is urgent.", s.CourseIDNumber, other), nil
	case errors.Is(err, pgx.ErrNoRows), isUndefinedTable(err):
		return "", nil
	}
	return "", fmt.Errorf("looking the course up: %w", err)
}

func (t *Tool) mappingRows(ctx context.Context, ms []mapping.Mapping, editable bool) ([]mappingRow, error) {
	keys := make([]mapping.Key, len(ms))
	for i, m := range ms {
		keys[i] = m.Key()
	}
	cands, err := mapping.Candidates(ctx, t.db, keys)
	if err != nil && !errors.Is(err, mapping.ErrNoCatalogue) {
		return nil, err
	}
	byKey := map[[2]string]mapping.Candidate{}
	for _, c := range cands {
		byKey[[2]string{c.Kind, c.Key}] = c
	}
	rows := make([]mappingRow, len(ms))
	for i, m := range ms {
		row := mappingRow{ID: m.ID, Kind: kindLabel(m.SISKind), Code: m.SISKey, Year: yearLabel(m.AcademicYear), Roles: m.Roles,
			GroupSync: m.GroupSync, Active: m.Active, Origin: originLabel(m.Origin),
			GroupSyncAllowed: m.SISKind == "module_occurrence" || m.SISKind == "section", RoleChecked: map[string]bool{}}
		if c, ok := byKey[[2]string{m.SISKind, m.SISKey}]; ok {
			row.Code, row.Title, row.Students = c.Code, c.Title, strconv.FormatInt(c.Students, 10)
		}
		for _, role := range m.Roles {
			row.RoleChecked[role] = true
		}
		row.RemoveLabel = "Preview removing " + row.Code
		row.ChangeLabel = "Change " + row.Code
		switch {
		case !editable:
		case strings.HasPrefix(m.Origin, "rule:"):
			row.NotEditable = "made by a rule from the course ID number; the integration team changes it"
		default:
			row.Editable = true
		}
		rows[i] = row
	}
	return rows, nil
}

func yearLabel(y string) string {
	if n, err := strconv.Atoi(y); err == nil {
		return fmt.Sprintf("%d/%02d", n, (n+1)%100)
	}
	if y == "" {
		return "any"
	}
	return y
}

func originLabel(o string) string {
	switch {
	case o == mapping.OriginStaff:
		return "course staff"
	case o == "manual":
		return "integration team"
	case strings.HasPrefix(o, "import:"):
		return "imported (" + strings.TrimPrefix(o, "import:") + ")"
	case strings.HasPrefix(o, "rule:"):
		return "rule " + strings.TrimPrefix(o, "rule:")
	}
	return o
}

// describeRoles names the LTI roles briefly (Instructor, Learner, ...).
func describeRoles(roles []string) string {
	var out []string
	for _, r := range roles {
		name := r
		if i := strings.LastIndexAny(r, "#/"); i >= 0 {
			name = r[i+1:]
		}
		if strings.Contains(r, "/system/") || strings.Contains(r, "/institution/") {
			name = "site " + name
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return strings.Join(out, ", ")
}

// entityNames names the SIS entities of the course's mappings and events
// as people know them (the occurrence's code, not its BDO id), by kind and
// key; entities not among this year's keep their key.
func (t *Tool) entityNames(ctx context.Context, evs []mapping.Event, ms []mapping.Mapping) map[[2]string]string {
	var keys []mapping.Key
	for _, m := range ms {
		keys = append(keys, m.Key())
	}
	for _, ev := range evs {
		if m, ok := ev.Detail["mapping"].(map[string]any); ok {
			keys = append(keys, mapping.Key{SISKind: fmt.Sprint(m["sis_kind"]), SISKey: fmt.Sprint(m["sis_key"])})
		}
	}
	out := map[[2]string]string{}
	cs, err := mapping.Candidates(ctx, t.db, keys)
	if err != nil {
		return out // the keys will do
	}
	for _, c := range cs {
		out[[2]string{c.Kind, c.Key}] = c.Code
	}
	return out
}

// historyRows words the course's mapping events.
func historyRows(evs []mapping.Event, ms []mapping.Mapping, names map[[2]string]string) []historyRow {
	byID := map[int64]mapping.Mapping{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	name := func(kind, key string) string {
		if n := names[[2]string{kind, key}]; n != "" {
			key = n
		}
		return strings.ToLower(kindLabel(kind)) + " " + key
	}
	out := make([]historyRow, len(evs))
	for i, ev := range evs {
		what := ""
		if m, ok := ev.Detail["mapping"].(map[string]any); ok {
			what = name(fmt.Sprint(m["sis_kind"]), fmt.Sprint(m["sis_key"]))
		} else if ev.MappingID != nil {
			if m, ok := byID[*ev.MappingID]; ok {
				what = name(m.SISKind, m.SISKey)
			} else {
				what = fmt.Sprintf("mapping %d", *ev.MappingID)
			}
		}
		var verb string
		switch ev.Action {
		case "create":
			verb = "Added " + what
		case "delete":
			verb = "Removed " + what
		case "update":
			verb = fmt.Sprintf("Changed %s: %s → %s", what, brief(ev.Detail["before"]), brief(ev.Detail["after"]))
		case "activate":
			verb = "Activated " + what
		case "deactivate":
			verb = "Deactivated " + what
		default:
			verb = ev.Action + " " + what
		}
		if reason, ok := ev.Detail["reason"].(string); ok && reason != "" {
			verb += " (" + reason + ")"
		}
		out[i] = historyRow{When: ev.At.Local().Format("2006-01-02 15:04"), By: ev.By, What: verb}
	}
	return out
}

// brief words a mapping's settings from an event's detail.
func brief(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "?"
	}
	var parts []string
	if roles, ok := m["roles"].([]any); ok {
		rs := make([]string, len(roles))
		for i, r := range roles {
			rs[i] = fmt.Sprint(r)
		}
		parts = append(parts, "roles "+strings.Join(rs, ", "))
	}
	if g, ok := m["group_sync"].(bool); ok {
		parts = append(parts, "group import "+onOff(g))
	}
	if a, ok := m["active"].(bool); ok && !a {
		parts = append(parts, "inactive")
	}
	return strings.Join(parts, "; ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// course shows the course page again (Cancel, Back).
func (t *Tool) course(w http.ResponseWriter, r *http.Request) {
	s, rej := t.fromForm(r)
	if rej != nil {
		t.refuse(w, r, "course page", rej)
		return
	}
	t.renderCourse(w, r, s, r.PostForm.Get("session"), r.PostForm.Get("csrf"), pageState{})
}

// editor loads an editing session for a change step, refusing students
// and courses that cannot be mapped.
func (t *Tool) editor(w http.ResponseWriter, r *http.Request, step string) (*session, bool) {
	s, rej := t.fromForm(r)
	if rej != nil {
		t.refuse(w, r, step, rej)
		return nil, false
	}
	if !s.CanEdit {
		t.refuse(w, r, step, reject(http.StatusForbidden, "%s: the launch's roles (%s) do not include Instructor or Administrator; this page is read-only",
			step, describeRoles(s.Roles)).with("site", s.Instance, "course", s.CourseIDNumber, "user", s.UserSub))
		return nil, false
	}
	problem, err := t.courseProblem(r.Context(), s)
	if err != nil {
		t.serverError(w, r, step, err)
		return nil, false
	}
	if problem != "" {
		t.refuse(w, r, step, reject(http.StatusConflict, "%s", problem).with("site", s.Instance, "user", s.UserSub))
		return nil, false
	}
	return s, true
}

// search finds SIS entities to map to.
func (t *Tool) search(w http.ResponseWriter, r *http.Request) {
	s, ok := t.editor(w, r, "search")
	if !ok {
		return
	}
	st := pageState{Query: strings.TrimSpace(r.PostForm.Get("q")), Kind: r.PostForm.Get("kind"), Searched: true}
	if st.Kind != "" && !slices.Contains(mapping.StaffKinds, st.Kind) {
		st.Kind = ""
	}
	if len(st.Query) > 200 {
		st.Query = st.Query[:200]
	}
	var err error
	switch st.Results, st.More, err = mapping.Search(r.Context(), t.db, st.Query, st.Kind, searchLimit); {
	case errors.Is(err, mapping.ErrNoCatalogue):
		st.Error = err.Error()
	case err != nil:
		t.serverError(w, r, "search", err)
		return
	case st.Query == "":
		st.Error = "Type a module code, a programme or route code, or words of a name."
	case len(st.Results) == 0:
		st.Message = fmt.Sprintf("Nothing in this year's SITS data matches %q.", st.Query)
	}
	t.renderCourse(w, r, s, r.PostForm.Get("session"), r.PostForm.Get("csrf"), st)
}

// changeFrom reads the change a preview form asks for.
func changeFrom(r *http.Request) (mapping.Change, error) {
	f := r.PostForm
	ch := mapping.Change{Action: f.Get("action"), Roles: f["role"], GroupSync: f.Get("group_sync") == "on"}
	switch ch.Action {
	case mapping.ActionAdd:
		pick := f.Get("pick")
		kind, key, ok := strings.Cut(pick, "/")
		if !ok || key == "" {
			return ch, errors.New("choose what to map the course to")
		}
		ch.Kind, ch.Key = kind, key
	case mapping.ActionUpdate, mapping.ActionRemove:
		id, err := strconv.ParseInt(f.Get("id"), 10, 64)
		if err != nil || id <= 0 {
			return ch, errors.New("no mapping named")
		}
		ch.ID = id
		if ch.Action == mapping.ActionRemove {
			ch.Roles, ch.GroupSync = nil, false
		}
	default:
		return ch, fmt.Errorf("%q is not a change", ch.Action)
	}
	return ch, nil
}

// preview shows what a change would do and records it, so that applying
// it means applying exactly this.
func (t *Tool) preview(w http.ResponseWriter, r *http.Request) {
	s, ok := t.editor(w, r, "preview")
	if !ok {
		return
	}
	tok, csrf := r.PostForm.Get("session"), r.PostForm.Get("csrf")
	ch, err := changeFrom(r)
	if err != nil {
		t.renderCourse(w, r, s, tok, csrf, pageState{Error: err.Error()})
		return
	}
	p, err := t.edit.Preview(r.Context(), s.Instance, s.CourseIDNumber, ch)
	if msg, ok := userError(err); ok {
		t.renderCourse(w, r, s, tok, csrf, pageState{Error: msg})
		return
	}
	if err != nil {
		t.serverError(w, r, "preview", err)
		return
	}
	chJSON, _ := json.Marshal(ch)
	pvJSON, _ := json.Marshal(p)
	var id int64
	if err := t.db.QueryRow(r.Context(), `INSERT INTO ctl.lti_change (session_hash, instance, course_idnumber, action, change, preview, by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING change_id`, s.hash, s.Instance, s.CourseIDNumber, ch.Action, chJSON, pvJSON, s.by()).Scan(&id); err != nil {
		t.serverError(w, r, "preview", err)
		return
	}
	t.renderCourse(w, r, s, tok, csrf, pageState{Preview: viewPreview(id, p, t.opts.Roles)})
}

// apply makes a previewed change of this session, once.
func (t *Tool) apply(w http.ResponseWriter, r *http.Request) {
	s, ok := t.editor(w, r, "apply")
	if !ok {
		return
	}
	ctx := r.Context()
	tok, csrf := r.PostForm.Get("session"), r.PostForm.Get("csrf")
	id, _ := strconv.ParseInt(r.PostForm.Get("change"), 10, 64)
	var chJSON []byte
	var status string
	// Claim the change: only a previewed change of this session, once.
	err := t.db.QueryRow(ctx, `UPDATE ctl.lti_change SET status = 'applying'
		WHERE change_id = $1 AND session_hash = $2 AND status = 'previewed' RETURNING change`, id, s.hash).Scan(&chJSON)
	if errors.Is(err, pgx.ErrNoRows) {
		err = t.db.QueryRow(ctx, `SELECT status FROM ctl.lti_change WHERE change_id = $1 AND session_hash = $2`, id, s.hash).Scan(&status)
		msg := "That change is not one previewed in this session."
		if err == nil {
			msg = fmt.Sprintf("That change was already %s.", status)
		}
		t.refuse(w, r, "apply", reject(http.StatusConflict, "%s", msg).with("site", s.Instance, "user", s.UserSub, "change", id))
		return
	}
	if err != nil {
		t.serverError(w, r, "apply", err)
		return
	}
	var ch mapping.Change
	if err := json.Unmarshal(chJSON, &ch); err != nil {
		t.serverError(w, r, "apply", err)
		return
	}
	detail := map[string]any{"via": "lti", "change_id": id, "moodle_user_id": s.UserSub, "moodle_username": s.UserLogin,
		"name": s.UserName, "email": s.UserEmail, "roles": describeRoles(s.Roles), "moodle_course_id": s.ContextID}
	p, err := t.edit.Apply(ctx, s.Instance, s.CourseIDNumber, ch, s.by(), detail)
	status, note := "applied", ""
	msg, refused := userError(err)
	switch {
	case refused:
		status, note = "refused", msg
	case err != nil:
		status, note = "refused", "failed: "+err.Error()
	}
	pvJSON := []byte("{}")
	if p != nil {
		pvJSON, _ = json.Marshal(p)
	}
	if _, uerr := t.db.Exec(ctx, `UPDATE ctl.lti_change SET status = $2, note = NULLIF($3, ''), preview = $4, decided_at = now()
		WHERE change_id = $1`, id, status, note, pvJSON); uerr != nil {
		t.opts.Logger.Error("lti: recording a change's outcome", "change", id, "error", uerr)
	}
	if err != nil && !refused {
		t.serverError(w, r, "apply", err)
		return
	}
	st := pageState{}
	if refused {
		st.Error = msg
		t.opts.Logger.Warn("lti: change refused", "site", s.Instance, "course", s.CourseIDNumber, "user", s.UserSub, "change", id, "reason", msg)
	} else {
		st.Message = appliedMessage(p)
		t.opts.Logger.Info("lti: change applied", "site", s.Instance, "course", s.CourseIDNumber, "user", s.UserSub, "change", id,
			"action", ch.Action, "held", p.Export.Held)
	}
	t.renderCourse(w, r, s, tok, csrf, st)
}

// userError returns the message of an error meant for the person asking.
func userError(err error) (string, bool) {
	var ce *mapping.ChangeError
	var re *coursemap.RefusedError
	switch {
	case errors.As(err, &ce):
		return ce.Msg, true
	case errors.As(err, &re):
		return re.Msg, true
	case errors.Is(err, coursemap.ErrNotBuilt), errors.Is(err, mapping.ErrNoCatalogue):
		return err.Error(), true
	}
	return "", false
}

func appliedMessage(p *coursemap.Preview) string {
	e := p.Export
	s := fmt.Sprintf("Done. The next export will enrol %d and unenrol %d in this course.", e.Adds, e.Drops+e.Suspends-e.HeldDrops)
	if e.Held {
		s += fmt.Sprintf(" It will hold back %d unenrolments for the integration team to review, because the course would lose more than %d%% of its students.",
			e.HeldDrops, e.HoldLimit)
	}
	return s
}

func (t *Tool) serverError(w http.ResponseWriter, r *http.Request, step string, err error) {
	t.opts.Logger.Error("lti: "+step, "error", err, "remote", r.RemoteAddr)
	t.renderError(w, http.StatusInternalServerError, step, "something went wrong on MIM's side; the integration team can see it in MIM's log")
}
