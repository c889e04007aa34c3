package lti

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// LTI 1.3 claim names and values.
const (
	claimPrefix      = "https://purl.imsglobal.org/spec/lti/claim/"
	MessageResource  = "LtiResourceLinkRequest"
	Version13        = "1.3.0"
	RoleInstructor   = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
	RoleLearner      = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
	RoleAdminMember  = "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator"
	RoleAdminInst    = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
	RoleAdminSystem  = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
	ContextCourse    = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
	ContextSection   = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"
	ContextTemplate  = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseTemplate"
	contextGroupType = "http://purl.imsglobal.org/vocab/lis/v2/course#Group"
)

// editRoles may manage the mappings of the launch's course.
var editRoles = []string{RoleInstructor, RoleAdminMember, RoleAdminInst, RoleAdminSystem}

// Claims are the parts of an LTI 1.3 id_token the tool reads.
type Claims struct {
	jwt.Claims
	Nonce         string   `json:"nonce"`
	AZP           string   `json:"azp,omitempty"`
	Name          string   `json:"name,omitempty"`
	GivenName     string   `json:"given_name,omitempty"`
	FamilyName    string   `json:"family_name,omitempty"`
	Email         string   `json:"email,omitempty"`
	MessageType   string   `json:"https://purl.imsglobal.org/spec/lti/claim/message_type"`
	Version       string   `json:"https://purl.imsglobal.org/spec/lti/claim/version"`
	DeploymentID  string   `json:"https://purl.imsglobal.org/spec/lti/claim/deployment_id"`
	TargetLinkURI string   `json:"https://purl.imsglobal.org/spec/lti/claim/target_link_uri"`
	Roles         []string `json:"https://purl.imsglobal.org/spec/lti/claim/roles"`
	ResourceLink  *struct {
		ID    string `json:"id"`
		Title string `json:"title,omitempty"`
	} `json:"https://purl.imsglobal.org/spec/lti/claim/resource_link,omitempty"`
	Context *struct {
		ID    string   `json:"id"`
		Label string   `json:"label,omitempty"`
		Title string   `json:"title,omitempty"`
		Type  []string `json:"type,omitempty"`
	} `json:"https://purl.imsglobal.org/spec/lti/claim/context,omitempty"`
	LIS *struct {
		CourseSectionSourcedID string `json:"course_section_sourcedid,omitempty"`
		PersonSourcedID        string `json:"person_sourcedid,omitempty"`
	} `json:"https://purl.imsglobal.org/spec/lti/claim/lis,omitempty"`
	Ext map[string]any `json:"https://purl.imsglobal.org/spec/lti/claim/ext,omitempty"`
}

// signatureAlgorithms are those a platform may sign with (Moodle: RS256).
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256}

// launch verifies the platform's id_token and opens a session: the state
// must be one this tool issued, unexpired, unused, and bound to this
// browser; the token must be signed by a key of the registration's JWKS,
// issued by its issuer for its client id, current, carry the nonce issued
// with the state (once), a registered deployment, the resource link
// message of LTI 1.3.0 aimed at this tool, and a user.
func (t *Tool) launch(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		t.refuse(w, r, "launch", reject(http.StatusBadRequest, "the launch cannot be read: %v", err))
		return
	}
	if e := r.PostForm.Get("error"); e != "" {
		t.refuse(w, r, "launch", reject(http.StatusBadRequest, "the platform refused the login: %s %s", e, r.PostForm.Get("error_description")))
		return
	}
	raw, state := r.PostForm.Get("id_token"), r.PostForm.Get("state")
	if raw == "" || state == "" {
		t.refuse(w, r, "launch", reject(http.StatusBadRequest, "the launch has no id_token or no state"))
		return
	}
	c, p, rej := t.verify(r, raw, state)
	// The state is spent either way: drop its cookie.
	t.setCookie(w, &http.Cookie{Name: stateCookie(state), Value: "", MaxAge: -1})
	if rej != nil {
		t.refuse(w, r, "launch", rej)
		return
	}
	s, sessionToken, csrf, err := t.openSession(r.Context(), p, c)
	if err != nil {
		t.opts.Logger.Error("lti: opening a session", "site", p.Instance, "error", err)
		t.renderError(w, http.StatusInternalServerError, "launch", "the tool could not open a session; launch it again from Moodle")
		return
	}
	t.opts.Logger.Info("lti: launch", "site", p.Instance, "course", s.CourseIDNumber, "context", s.ContextID, "user", s.UserSub,
		"can_edit", s.CanEdit)
	t.renderCourse(w, r, s, sessionToken, csrf, pageState{})
}

// verify runs every check of a launch; it consumes the state whatever the
// outcome, so a state is tried once.
func (t *Tool) verify(r *http.Request, raw, state string) (*Claims, Platform, *rejection) {
	ctx := r.Context()
	now := t.opts.Now()
	var p Platform
	var nonce string
	var browserHash []byte
	var platformID int64
	var expires time.Time
	err := t.db.QueryRow(ctx, `DELETE FROM ctl.lti_login WHERE state_hash = $1 RETURNING browser_hash, nonce, platform_id, expires_at`,
		hash(state)).Scan(&browserHash, &nonce, &platformID, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, p, reject(http.StatusBadRequest, "state unknown or already used (a replayed or forged launch; launch again from Moodle)")
	case err != nil:
		return nil, p, reject(http.StatusInternalServerError, "reading the login: %v", err)
	case now.After(expires):
		return nil, p, reject(http.StatusBadRequest, "state expired: the login began more than %s ago (launch again from Moodle)", loginTTL)
	}
	// The state must come back to the browser that started the login.
	cookie, err := r.Cookie(stateCookie(state))
	if err != nil {
		return nil, p, reject(http.StatusForbidden, "state not bound to this browser: the login cookie is missing (a forged launch, or a browser that blocks the tool's cookie inside Moodle's frame: set the tool to open in a new window)")
	}
	if subtle.ConstantTimeCompare(hash(cookie.Value), browserHash) != 1 {
		return nil, p, reject(http.StatusForbidden, "state not bound to this browser: the login cookie does not match")
	}
	if p, err = platformByID(ctx, t.db, platformID); err != nil {
		return nil, p, reject(http.StatusInternalServerError, "%v", err)
	}
	attrs := []any{"site", p.Instance, "iss", p.Issuer, "client_id", p.ClientID}
	if !p.Active {
		return nil, p, reject(http.StatusForbidden, "registration %d of %s has been revoked", p.ID, p.Issuer).with(attrs...)
	}
	if _, ok := t.site(p.Instance); !ok {
		return nil, p, reject(http.StatusForbidden, "site %s is not among lti.sites", p.Instance).with(attrs...)
	}

	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return nil, p, reject(http.StatusBadRequest, "the id_token is not a signed JWT with an accepted algorithm: %v", err).with(attrs...)
	}
	if len(tok.Headers) != 1 {
		return nil, p, reject(http.StatusBadRequest, "the id_token has %d signatures, not one", len(tok.Headers)).with(attrs...)
	}
	key, err := t.keys.key(ctx, p.JWKSURL, tok.Headers[0].KeyID)
	if err != nil {
		return nil, p, reject(http.StatusUnauthorized, "signature: %v", err).with(attrs...)
	}
	var c Claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, p, reject(http.StatusUnauthorized, "signature: the id_token does not verify with the platform's key %s: %v", key.KeyID, err).with(attrs...)
	}
	attrs = append(attrs, "sub", c.Subject)
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{p.ClientID}, Time: now}, leeway); err != nil {
		return nil, p, reject(http.StatusUnauthorized, "%s (iss %q, aud %v, expected %q and %q)", claimError(err), c.Issuer, []string(c.Audience),
			p.Issuer, p.ClientID).with(attrs...)
	}
	switch {
	case c.Expiry == nil:
		return nil, p, reject(http.StatusUnauthorized, "the id_token has no exp").with(attrs...)
	case c.IssuedAt == nil:
		return nil, p, reject(http.StatusUnauthorized, "the id_token has no iat").with(attrs...)
	case now.Sub(c.IssuedAt.Time()) > maxTokAge:
		return nil, p, reject(http.StatusUnauthorized, "the id_token was issued %s ago (more than %s)", now.Sub(c.IssuedAt.Time()).Round(time.Second), maxTokAge).with(attrs...)
	case len(c.Audience) > 1 && c.AZP == "":
		return nil, p, reject(http.StatusUnauthorized, "the id_token has several audiences and no azp").with(attrs...)
	case c.AZP != "" && c.AZP != p.ClientID:
		return nil, p, reject(http.StatusUnauthorized, "azp %q is not this tool's client id %q", c.AZP, p.ClientID).with(attrs...)
	case c.Nonce == "" || subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return nil, p, reject(http.StatusUnauthorized, "nonce: the id_token's nonce is not the one issued with this state").with(attrs...)
	case !slices.Contains(p.DeploymentIDs, c.DeploymentID):
		return nil, p, reject(http.StatusForbidden, "deployment_id %q is not registered for this platform (registered: %s)", c.DeploymentID,
			strings.Join(p.DeploymentIDs, ", ")).with(attrs...)
	case c.MessageType != MessageResource:
		return nil, p, reject(http.StatusBadRequest, "message_type %q is not %s", c.MessageType, MessageResource).with(attrs...)
	case c.Version != Version13:
		return nil, p, reject(http.StatusBadRequest, "LTI version %q is not %s", c.Version, Version13).with(attrs...)
	case c.ResourceLink == nil || c.ResourceLink.ID == "":
		return nil, p, reject(http.StatusBadRequest, "the launch has no resource_link id").with(attrs...)
	case c.TargetLinkURI != "" && !t.ownLaunchURL(c.TargetLinkURI):
		return nil, p, reject(http.StatusBadRequest, "target_link_uri %q is not this tool's launch URL", c.TargetLinkURI).with(attrs...)
	case c.Subject == "":
		return nil, p, reject(http.StatusForbidden, "the launch names no user (sub): anonymous launches cannot use the tool").with(attrs...)
	}
	// The nonce is used once, whatever the state: a token replayed with a
	// fresh state of its own is still refused.
	exp := c.Expiry.Time().Add(leeway)
	if keep := now.Add(nonceKeep); keep.After(exp) {
		exp = keep
	}
	if _, err := t.db.Exec(ctx, `INSERT INTO ctl.lti_nonce (issuer, nonce, expires_at) VALUES ($1, $2, $3)`, p.Issuer, c.Nonce, exp); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return nil, p, reject(http.StatusUnauthorized, "nonce already used: a replayed id_token").with(attrs...)
		}
		return nil, p, reject(http.StatusInternalServerError, "recording the nonce: %v", err).with(attrs...)
	}
	return &c, p, nil
}

// claimError words go-jose's validation errors.
func claimError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return "issuer: the id_token's iss is not the registered platform's"
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "audience: the id_token is not for this tool's client id"
	case errors.Is(err, jwt.ErrExpired):
		return "exp: the id_token has expired"
	case errors.Is(err, jwt.ErrNotValidYet):
		return "nbf: the id_token is not valid yet"
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "iat: the id_token is issued in the future"
	}
	return err.Error()
}

// canEdit reports whether roles let a person manage the course's mappings.
func canEdit(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(editRoles, r) {
			return true
		}
	}
	return false
}

// by is how the history names a person who launched from site.
func (s *session) by() string {
	who := s.UserLogin
	if who == "" {
		who = "user " + s.UserSub
	}
	b := fmt.Sprintf("%s@%s", who, s.Instance)
	if s.UserName != "" {
		b += " (" + s.UserName + ")"
	}
	return b + " via Moodle"
}
