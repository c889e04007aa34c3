package lti

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// session is what one verified launch allows: one person, one course of
// one site, until it expires.
type session struct {
	hash           []byte
	csrfHash       []byte
	PlatformID     int64
	Instance       string
	Issuer         string
	DeploymentID   string
	ContextID      string
	ContextLabel   string
	ContextTitle   string
	CourseIDNumber string
	UserSub        string
	UserName       string
	UserLogin      string
	UserEmail      string
	Roles          []string
	CanEdit        bool
	Expires        time.Time
}

// openSession records the session a launch opens and returns it with its
// token and CSRF token (only their hashes are stored).
func (t *Tool) openSession(ctx context.Context, p Platform, c *Claims) (*session, string, string, error) {
	s := &session{PlatformID: p.ID, Instance: p.Instance, Issuer: p.Issuer, DeploymentID: c.DeploymentID,
		UserSub: c.Subject, UserName: c.Name, UserEmail: c.Email, Roles: c.Roles, CanEdit: canEdit(c.Roles),
		Expires: t.opts.Now().Add(t.opts.Session)}
	if s.UserName == "" {
		s.UserName = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	if login, ok := c.Ext["user_username"].(string); ok {
		s.UserLogin = login
	}
	if c.Context != nil {
		s.ContextID, s.ContextLabel, s.ContextTitle = c.Context.ID, c.Context.Label, c.Context.Title
		// A context that is not a course (a group, a template) maps nothing.
		if len(c.Context.Type) > 0 && !slices.ContainsFunc(c.Context.Type, isCourseType) {
			s.ContextID = ""
		}
	}
	if c.LIS != nil && s.ContextID != "" {
		s.CourseIDNumber = strings.TrimSpace(c.LIS.CourseSectionSourcedID)
	}
	tok, csrf := token(32), token(32)
	s.hash, s.csrfHash = hash(tok), hash(csrf)
	_, err := t.db.Exec(ctx, `INSERT INTO ctl.lti_session (session_hash, csrf_hash, platform_id, instance, deployment_id, context_id,
			context_label, context_title, course_idnumber, user_sub, user_name, user_login, user_email, roles, can_edit, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		s.hash, s.csrfHash, s.PlatformID, s.Instance, s.DeploymentID, s.ContextID, s.ContextLabel, s.ContextTitle, s.CourseIDNumber,
		s.UserSub, s.UserName, s.UserLogin, s.UserEmail, nonNil(s.Roles), s.CanEdit, t.opts.Now(), s.Expires)
	if err != nil {
		return nil, "", "", fmt.Errorf("recording the session: %w", err)
	}
	return s, tok, csrf, nil
}

func isCourseType(t string) bool {
	switch t {
	case ContextCourse, ContextSection, "CourseOffering", "CourseSection":
		return true
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// fromForm loads the session a page's form names and checks the request
// is the tool's own: the CSRF token matches, and a browser that says where
// the form was (Origin, Sec-Fetch-Site) says it was this tool's page.
func (t *Tool) fromForm(r *http.Request) (*session, *rejection) {
	if err := r.ParseForm(); err != nil {
		return nil, reject(http.StatusBadRequest, "the form cannot be read: %v", err)
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != t.origin {
		return nil, reject(http.StatusForbidden, "CSRF: the form was posted from %s, not from the tool (%s)", origin, t.origin)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" {
		return nil, reject(http.StatusForbidden, "CSRF: the browser says the form was posted from another site")
	}
	tok, csrf := r.PostForm.Get("session"), r.PostForm.Get("csrf")
	if tok == "" {
		return nil, reject(http.StatusUnauthorized, "no session: launch the tool from Moodle")
	}
	s := &session{}
	err := t.db.QueryRow(r.Context(), `SELECT s.session_hash, s.csrf_hash, s.platform_id, s.instance, p.issuer, s.deployment_id, s.context_id,
			s.context_label, s.context_title, s.course_idnumber, s.user_sub, s.user_name, s.user_login, s.user_email, s.roles, s.can_edit,
			s.expires_at
		FROM ctl.lti_session s JOIN ctl.lti_platform p USING (platform_id) WHERE s.session_hash = $1 AND p.active`,
		hash(tok)).Scan(&s.hash, &s.csrfHash, &s.PlatformID, &s.Instance, &s.Issuer, &s.DeploymentID, &s.ContextID, &s.ContextLabel,
		&s.ContextTitle, &s.CourseIDNumber, &s.UserSub, &s.UserName, &s.UserLogin, &s.UserEmail, &s.Roles, &s.CanEdit, &s.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, reject(http.StatusUnauthorized, "the session is unknown or has ended: launch the tool again from Moodle")
	case err != nil:
		return nil, reject(http.StatusInternalServerError, "reading the session: %v", err)
	case t.opts.Now().After(s.Expires):
		return nil, reject(http.StatusUnauthorized, "the session ended at %s: launch the tool again from Moodle", s.Expires.Local().Format("15:04"))
	case subtle.ConstantTimeCompare(hash(csrf), s.csrfHash) != 1:
		return nil, reject(http.StatusForbidden, "CSRF: the form's token does not belong to this session").with("site", s.Instance, "user", s.UserSub)
	}
	if _, ok := t.site(s.Instance); !ok {
		return nil, reject(http.StatusForbidden, "site %s is no longer among lti.sites", s.Instance)
	}
	return s, nil
}

// frameAncestors is the CSP frame-ancestors source of a platform: its
// origin only.
func frameAncestors(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "'none'"
	}
	return u.Scheme + "://" + u.Host
}
