package lti

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/mapping"
)

//go:embed web/*.tmpl
var templateFS embed.FS

//go:embed web/static
var webFS embed.FS

// staticFS serves web/static as static/.
var staticFS = func() fs.FS {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err)
	}
	return sub
}()

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"join":  strings.Join,
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"kind":  kindLabel,
	"year":  yearLabel,
}).ParseFS(templateFS, "web/*.tmpl"))

// render writes a page with the tool's headers: a strict CSP that loads
// only the tool's own stylesheet (and script, where a page needs one),
// posts forms only to the tool, and lets only frameAncestors frame it.
func (t *Tool) render(w http.ResponseWriter, status int, name string, data any, frameAncestors string, script bool) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		t.opts.Logger.Error("lti: rendering "+name, "error", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	scriptSrc := "'none'"
	if script {
		scriptSrc = "'self'"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; script-src "+scriptSrc+
		"; form-action 'self'; base-uri 'none'; frame-ancestors "+frameAncestors)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	Base, Step, Reason string
}

func (t *Tool) renderError(w http.ResponseWriter, status int, step, reason string) {
	t.render(w, status, "error", errorPage{Base: t.base, Step: step, Reason: reason}, t.siteOrigins(), false)
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000")
}

// previewView is a change's preview as the page shows it.
type previewView struct {
	ChangeID     int64
	Title        string
	Lines        []string
	Warnings     []string
	Guards       []string
	SampleAdds   []string
	SampleDrops  []string
	Blocked      string
	ConfirmLabel string
}

// viewPreview words a preview for people who teach, not for the ledger.
func viewPreview(id int64, p *coursemap.Preview, roles []string) *previewView {
	ch, m, e := p.Change, p.Mapping, p.Export
	v := &previewView{ChangeID: id}
	what := fmt.Sprintf("%s %s", strings.ToLower(kindLabel(m.SISKind)), m.SISKey)
	if c := p.Entity; c != nil {
		what = fmt.Sprintf("%s %s (%s)", strings.ToLower(kindLabel(m.SISKind)), c.Code, c.Title)
	}
	switch ch.Action {
	case mapping.ActionAdd:
		v.Title = "Add " + what
		v.ConfirmLabel = "Confirm: add the mapping"
	case mapping.ActionUpdate:
		v.Title = "Change " + what
		v.ConfirmLabel = "Confirm: change the mapping"
	case mapping.ActionRemove:
		v.Title = "Remove " + what
		v.ConfirmLabel = "Confirm: remove the mapping"
	}
	if ch.Action != mapping.ActionRemove {
		v.Lines = append(v.Lines, fmt.Sprintf("Roles: %s; group import %s; academic year %s.", strings.Join(m.Roles, ", "), onOff(m.GroupSync),
			yearLabel(m.AcademicYear)))
	}
	v.Lines = append(v.Lines, fmt.Sprintf("The next export would enrol %d, unenrol %d and change the dates of %d in this course.",
		e.Adds, e.Drops+e.Suspends, e.Changes))
	if e.Quiet > 0 {
		v.Lines = append(v.Lines, fmt.Sprintf("%d people lose one role but keep another (Moodle keeps their enrolment).", e.Quiet))
	}
	for _, pc := range p.People {
		switch pc.UserStatus {
		case "one":
			v.Lines = append(v.Lines, fmt.Sprintf("After the change the course takes %d as %s.", pc.Count, pc.Role))
		case "none":
			v.Warnings = append(v.Warnings, fmt.Sprintf("%d %s have no Moodle account yet: they are enrolled once they have one.", pc.Count, plural(pc.Role)))
		default:
			v.Warnings = append(v.Warnings, fmt.Sprintf("%d %s cannot be enrolled: their account is ambiguous (%s); the integration team sees them in the data-quality reports.",
				pc.Count, plural(pc.Role), strings.ReplaceAll(pc.UserStatus, "_", " ")))
		}
	}
	switch p.CourseStatus {
	case "none":
		v.Warnings = append(v.Warnings, "MIM has not seen this course on the site yet (Moodle's courses are read every night): its enrolments follow the night after it has.")
	case "several":
		v.Warnings = append(v.Warnings, "Several Moodle courses share this course's ID number: nothing is enrolled until the integration team resolves it.")
	}
	if p.Groups > 0 {
		v.Lines = append(v.Lines, fmt.Sprintf("Group import keeps %d timetable groups with %d members in the course.", p.Groups, p.GroupMembers))
	}
	if e.Frozen {
		v.Warnings = append(v.Warnings, "Every mapping of the course is inactive: the export leaves its enrolments exactly as they are.")
	}
	if e.Held {
		v.Guards = append(v.Guards, fmt.Sprintf("Per-course guard: the course would lose more than %d%% of its %d students, so the export will hold back these %d unenrolments for the integration team to review. The enrolments still go ahead.",
			e.HoldLimit, e.Students, e.HeldDrops))
	} else {
		v.Guards = append(v.Guards, fmt.Sprintf("Per-course guard: passes (it holds unenrolments when a course would lose more than %d%% of its students).", e.HoldLimit))
	}
	v.Guards = append(v.Guards, thresholdLine(e))
	if e.Causes {
		v.Blocked = "This change alone would make the whole site's next export fall below the threshold, so it cannot be made here. The integration team can make it."
	}
	v.SampleAdds, v.SampleDrops = named(e.SampleAdds, p.Names), named(e.SampleDrops, p.Names)
	return v
}

// thresholdLine words the site's threshold for staff.
func thresholdLine(e *feeds.CoursePreview) string {
	if e.First {
		return "Site threshold: passes (nothing to compare with: the site's first export)."
	}
	verdict := "passes"
	switch e.Threshold {
	case "refused":
		verdict = "the site's whole next export would be refused"
	case "overridden":
		verdict = "passes once, because the integration team set the threshold override"
	}
	return fmt.Sprintf("Site threshold: %s. With this change the site's next export keeps %.1f%% of its active students and %.1f%% of its memberships (it is refused below %d%%).",
		verdict, e.StudentsKept, e.MembershipsKept, e.ThresholdLimit)
}

// named shows sample users by name and idnumber.
func named(ms []feeds.Member, names map[string]string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		s := m.User
		if n := names[m.User]; n != "" {
			s = n + " (" + m.User + ")"
		}
		if m.Roletype != "01" {
			s += " as roletype " + m.Roletype
		}
		out[i] = s
	}
	return out
}

func plural(role string) string {
	switch role {
	case "student":
		return "students"
	case "":
		return "people"
	}
	return "people with role " + role
}

// info tells whoever opens URL/lti/ (or the registration URL without a
// platform's parameters) what the tool is and how to register it.
func (t *Tool) info(w http.ResponseWriter, r *http.Request) {
	d := struct {
		Base, Register, Login, Launch, JWKS string
		Sites                               []Site
	}{t.base, t.RegisterURL(), t.LoginURL(), t.LaunchURL(), t.JWKSURL(), t.opts.Sites}
	t.render(w, http.StatusOK, "info", d, "'none'", false)
}

// serveJWKS serves the tool's public key.
func (t *Tool) serveJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{t.jwk}})
}
