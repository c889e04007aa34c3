// Package ltitest is an LTI 1.3 platform for tests: a Moodle 4.5 site as
// far as an external tool sees it, behind httptest. It has its own RSA key
// and JWKS (mod/lti/certs.php), an OpenID configuration and LTI Dynamic
// Registration endpoint (mod/lti/openid-configuration.php,
// openid-registration.php) that take a registration token once, the OIDC
// authorization endpoint (mod/lti/auth.php) that answers a tool's login
// redirect with an auto-posting form carrying a signed id_token, and
// browser pages that start a launch the way Moodle's does (mod/lti/launch.php
// posts the login initiation; course/view.php frames it). Users and courses
// are set up by the test; claims follow what Moodle 4.5 sends (roles as LIS
// v2 URIs, the course idnumber in the lis claim, the username in ext).
//
// For security tests the pieces are exposed: Begin runs a login initiation
// with an http.Client (keeping the tool's cookie) and returns the state and
// nonce, Claims builds a launch's claims, Sign and SignWith sign anything,
// and Post delivers an id_token to the tool.
package ltitest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Roles as Moodle 4.5 sends them.
const (
	Instructor  = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
	Learner     = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
	AdminInst   = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
	AdminSystem = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
)

// User is a person of the site.
type User struct {
	ID                 string // Moodle user id: the sub
	Username           string
	Name, Given, Email string
	// Admin adds the site administrator roles to every launch.
	Admin bool
}

// Course is a course of the site, with its people's course roles.
type Course struct {
	ID, ShortName, FullName string
	IDNumber                string
	// Roles maps a user id to Instructor or Learner.
	Roles map[string]string
}

// Tool is what the site knows of a registered tool.
type Tool struct {
	ClientID, DeploymentID string
	LoginURL, LaunchURL    string
	RedirectURIs           []string
	JWKSURL                string
	Name                   string
}

// Platform is the simulated site.
type Platform struct {
	srv     *httptest.Server // nil when mounted elsewhere
	handler http.Handler
	base    string

	mu        sync.Mutex
	key       *rsa.PrivateKey
	kid       string
	oldKeys   []jose.JSONWebKey
	users     map[string]User
	courses   map[string]Course
	tool      *Tool
	regTokens map[string]bool
	clients   int
	now       func() time.Time
	// Registrations are the tools' registration requests as received.
	Registrations []json.RawMessage
}

// New starts a platform on its own loopback server; Close stops it.
func New() *Platform {
	p := NewUnstarted()
	p.srv = httptest.NewServer(p.handler)
	p.base = p.srv.URL
	return p
}

// NewUnstarted returns a platform without a server, to be mounted beside
// something else (a moodletest site, so that one URL is both the site's web
// services and its LTI platform): serve Handler's paths and call SetURL.
func NewUnstarted() *Platform {
	p := &Platform{users: map[string]User{}, courses: map[string]Course{}, regTokens: map[string]bool{}, now: time.Now}
	p.rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mod/lti/certs.php", p.certs)
	mux.HandleFunc("GET /mod/lti/openid-configuration.php", p.openidConfiguration)
	mux.HandleFunc("POST /mod/lti/openid-registration.php", p.registration)
	mux.HandleFunc("GET /mod/lti/auth.php", p.auth)
	mux.HandleFunc("GET /mod/lti/launch.php", p.launchPage)
	mux.HandleFunc("GET /course/view.php", p.coursePage)
	p.handler = mux
	return p
}

// Handler serves the platform's pages: /mod/lti/... and /course/view.php.
func (p *Platform) Handler() http.Handler { return p.handler }

// SetURL says where the platform is served (its wwwroot).
func (p *Platform) SetURL(base string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base = strings.TrimRight(base, "/")
}

// Close stops the platform's own server, if it has one.
func (p *Platform) Close() {
	if p.srv != nil {
		p.srv.Close()
	}
}

// URL is the site's wwwroot, its LTI issuer.
func (p *Platform) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base
}

// OpenIDConfigURL is what Moodle gives a tool to register with.
func (p *Platform) OpenIDConfigURL() string { return p.URL() + "/mod/lti/openid-configuration.php" }

// AuthURL, JWKSURL and TokenURL are the platform's endpoints.
func (p *Platform) AuthURL() string  { return p.URL() + "/mod/lti/auth.php" }
func (p *Platform) JWKSURL() string  { return p.URL() + "/mod/lti/certs.php" }
func (p *Platform) TokenURL() string { return p.URL() + "/mod/lti/token.php" }

// SetClock sets the platform's clock (for tokens issued in the past).
func (p *Platform) SetClock(now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = now
}

// AddUser adds a person.
func (p *Platform) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.ID] = u
}

// AddCourse adds a course.
func (p *Platform) AddCourse(c Course) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.courses[c.ID] = c
}

// RegistrationToken issues a one-time registration token, as Moodle does
// when an administrator starts a dynamic registration.
func (p *Platform) RegistrationToken() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok := randomString(24)
	p.regTokens[tok] = true
	return tok
}

// RegistrationURL is what Moodle opens: the tool's registration URL with
// the platform's configuration and a fresh token.
func (p *Platform) RegistrationURL(toolRegisterURL string) string {
	q := url.Values{"openid_configuration": {p.OpenIDConfigURL()}, "registration_token": {p.RegistrationToken()}}
	return toolRegisterURL + "?" + q.Encode()
}

// SetTool registers a tool by hand (Moodle's manual configuration).
func (p *Platform) SetTool(t Tool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tool = &t
}

// Tool returns the registered tool, or nil.
func (p *Platform) Tool() *Tool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tool == nil {
		return nil
	}
	t := *p.tool
	return &t
}

// RotateKey replaces the signing key (kid changes); the JWKS keeps the old
// public key too, as a platform does while tokens signed by it may live.
func (p *Platform) RotateKey() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.oldKeys = append(p.oldKeys, p.publicJWK())
	p.rotate()
}

func (p *Platform) rotate() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p.key, p.kid = key, randomString(8)
}

func (p *Platform) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

func (p *Platform) certs(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{p.publicJWK()}, p.oldKeys...)}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func (p *Platform) openidConfiguration(w http.ResponseWriter, r *http.Request) {
	base := p.URL()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                base,
		"token_endpoint":                        base + "/mod/lti/token.php",
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256"},
		"jwks_uri":                              base + "/mod/lti/certs.php",
		"authorization_endpoint":                base + "/mod/lti/auth.php",
		"registration_endpoint":                 base + "/mod/lti/openid-registration.php",
		"scopes_supported":                      []string{"openid"},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "iss", "name", "given_name", "family_name", "email"},
		"https://purl.imsglobal.org/spec/lti-platform-configuration": map[string]any{
			"product_family_code": "moodle",
			"version":             "4.5.2 (Build: 20250210)",
			"messages_supported": []map[string]any{{"type": "LtiResourceLinkRequest"},
				{"type": "LtiDeepLinkingRequest", "placements": []string{"ContentArea"}}},
			"variables": []string{"basic-lti-launch-request", "ContentItemSelectionRequest", "CourseSection.sourcedId"},
		},
	})
}

// registration takes a tool's client registration, as Moodle's
// openid-registration.php does: a bearer registration token used once, the
// fields Moodle requires, and an answer with the client id and the
// deployment id.
func (p *Platform) registration(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	valid := p.regTokens[tok]
	delete(p.regTokens, tok)
	p.mu.Unlock()
	if !valid {
		fail(http.StatusUnauthorized, "invalid_token")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var reg struct {
		ResponseTypes    []string `json:"response_types"`
		InitiateLoginURI string   `json:"initiate_login_uri"`
		RedirectURIs     []string `json:"redirect_uris"`
		ClientName       string   `json:"client_name"`
		JWKSURI          string   `json:"jwks_uri"`
		AuthMethod       string   `json:"token_endpoint_auth_method"`
		ApplicationType  string   `json:"application_type"`
		Tool             *struct {
			Domain        string `json:"domain"`
			TargetLinkURI string `json:"target_link_uri"`
		} `json:"https://purl.imsglobal.org/spec/lti-tool-configuration"`
	}
	if err := json.Unmarshal(body, &reg); err != nil {
		fail(http.StatusBadRequest, "invalid JSON")
		return
	}
	switch {
	case reg.InitiateLoginURI == "" || len(reg.RedirectURIs) == 0 || reg.ClientName == "" || reg.JWKSURI == "" || reg.Tool == nil ||
		reg.Tool.Domain == "" || reg.Tool.TargetLinkURI == "":
		fail(http.StatusBadRequest, "missing required attribute")
		return
	case !slices.Contains(reg.ResponseTypes, "id_token"):
		fail(http.StatusBadRequest, "invalid_response_types")
		return
	case reg.AuthMethod != "private_key_jwt":
		fail(http.StatusBadRequest, "invalid_token_endpoint_auth_method")
		return
	case reg.ApplicationType != "" && reg.ApplicationType != "web":
		fail(http.StatusBadRequest, "invalid_application_type")
		return
	}
	p.mu.Lock()
	p.clients++
	t := Tool{ClientID: "mim-" + randomString(10), DeploymentID: fmt.Sprint(p.clients), LoginURL: reg.InitiateLoginURI,
		LaunchURL: reg.Tool.TargetLinkURI, RedirectURIs: reg.RedirectURIs, JWKSURL: reg.JWKSURI, Name: reg.ClientName}
	p.tool = &t
	p.Registrations = append(p.Registrations, body)
	p.mu.Unlock()
	// Moodle answers with the registration as it stored it
	// (registration_helper::config_to_registration), application_type a list.
	var answer map[string]any
	_ = json.Unmarshal(body, &answer)
	answer["client_id"] = t.ClientID
	answer["application_type"] = []string{"web"}
	answer["scope"] = ""
	if tc, ok := answer["https://purl.imsglobal.org/spec/lti-tool-configuration"].(map[string]any); ok {
		tc["deployment_id"] = t.DeploymentID
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// Claims are the claims of a launch of user in course, as Moodle 4.5 sends
// them to the registered tool, with nonce.
func (p *Platform) Claims(userID, courseID, nonce string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, c, t := p.users[userID], p.courses[courseID], p.tool
	now := p.now()
	roles := []string{}
	if r := c.Roles[userID]; r != "" {
		roles = append(roles, r)
	}
	if u.Admin {
		roles = append(roles, Instructor, AdminSystem, AdminInst)
	}
	clientID, deployment, target := "", "", ""
	if t != nil {
		clientID, deployment, target = t.ClientID, t.DeploymentID, t.LaunchURL
	}
	claims := map[string]any{
		"iss":         p.base,
		"aud":         clientID,
		"sub":         u.ID,
		"iat":         now.Unix(),
		"exp":         now.Add(time.Minute).Unix(),
		"nonce":       nonce,
		"name":        u.Name,
		"given_name":  u.Given,
		"family_name": strings.TrimSpace(strings.TrimPrefix(u.Name, u.Given)),
		"email":       u.Email,
		"https://purl.imsglobal.org/spec/lti/claim/deployment_id":   deployment,
		"https://purl.imsglobal.org/spec/lti/claim/target_link_uri": target,
		"https://purl.imsglobal.org/spec/lti/claim/message_type":    "LtiResourceLinkRequest",
		"https://purl.imsglobal.org/spec/lti/claim/version":         "1.3.0",
		"https://purl.imsglobal.org/spec/lti/claim/roles":           roles,
		"https://purl.imsglobal.org/spec/lti/claim/resource_link": map[string]any{
			"id": "cm-" + courseID, "title": "Course enrolments"},
		"https://purl.imsglobal.org/spec/lti/claim/context": map[string]any{
			"id": c.ID, "label": c.ShortName, "title": c.FullName,
			"type": []string{"http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"}},
		"https://purl.imsglobal.org/spec/lti/claim/lis": map[string]any{
			"person_sourcedid": "", "course_section_sourcedid": c.IDNumber},
		"https://purl.imsglobal.org/spec/lti/claim/ext": map[string]any{"user_username": u.Username, "lms": "moodle-2"},
		"https://purl.imsglobal.org/spec/lti/claim/launch_presentation": map[string]any{
			"locale": "en", "document_target": "iframe", "return_url": p.base + "/mod/lti/return.php?course=" + courseID},
		"https://purl.imsglobal.org/spec/lti/claim/tool_platform": map[string]any{
			"product_family_code": "moodle", "version": "2024100702", "guid": "moodle.example", "name": "Simulated Moodle"},
	}
	return claims
}

// Sign signs claims with the platform's current key, as an id_token.
func (p *Platform) Sign(claims map[string]any) string {
	p.mu.Lock()
	key, kid := p.key, p.kid
	p.mu.Unlock()
	return SignWith(key, kid, claims)
}

// SignWith signs claims with any RSA key and kid (a forger's).
func SignWith(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

// NewKey makes an RSA key, for forgeries.
func NewKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// Login is a login initiation as the platform saw the tool answer it.
type Login struct {
	State, Nonce, RedirectURI, ClientID, LoginHint, MessageHint string
}

// Begin makes the login initiation of user in course through client (whose
// cookie jar keeps the tool's state cookie) and returns what the tool sent
// to the authorization endpoint, without following it. extra adds or
// overrides initiation parameters.
func (p *Platform) Begin(client *http.Client, userID, courseID string, extra url.Values) (*Login, *http.Response, error) {
	t := p.Tool()
	if t == nil {
		return nil, nil, fmt.Errorf("no tool is registered with the platform")
	}
	form := url.Values{"iss": {p.URL()}, "login_hint": {userID}, "target_link_uri": {t.LaunchURL},
		"lti_message_hint": {courseID}, "client_id": {t.ClientID}, "lti_deployment_id": {t.DeploymentID}}
	for k, v := range extra {
		form[k] = v
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(t.LoginURL, form)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, resp, fmt.Errorf("login initiation: HTTP %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, resp, err
	}
	q := loc.Query()
	return &Login{State: q.Get("state"), Nonce: q.Get("nonce"), RedirectURI: q.Get("redirect_uri"), ClientID: q.Get("client_id"),
		LoginHint: q.Get("login_hint"), MessageHint: q.Get("lti_message_hint")}, resp, nil
}

// Post delivers an id_token and state to the tool's launch URL through
// client, as the platform's auto-posting form would.
func (p *Platform) Post(client *http.Client, redirectURI, idToken, state string) (*http.Response, error) {
	return client.PostForm(redirectURI, url.Values{"id_token": {idToken}, "state": {state}})
}

// auth is the OIDC authorization endpoint: it checks the tool's request
// and answers with a page that posts the id_token to the tool.
func (p *Platform) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t := p.Tool()
	switch {
	case t == nil || q.Get("client_id") != t.ClientID:
		http.Error(w, "invalid_client", http.StatusBadRequest)
		return
	case !slices.Contains(t.RedirectURIs, q.Get("redirect_uri")):
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return
	case q.Get("scope") != "openid" || q.Get("response_type") != "id_token" || q.Get("response_mode") != "form_post" ||
		q.Get("prompt") != "none" || q.Get("nonce") == "" || q.Get("state") == "":
		http.Error(w, "invalid_request", http.StatusBadRequest)
		return
	}
	tok := p.Sign(p.Claims(q.Get("login_hint"), q.Get("lti_message_hint"), q.Get("nonce")))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = postPage.Execute(w, map[string]string{"Action": q.Get("redirect_uri"), "Token": tok, "State": q.Get("state")})
}

var postPage = template.Must(template.New("post").Parse(`<!DOCTYPE html><html><body>
<form id="post" method="post" action="{{.Action}}"><input type="hidden" name="id_token" value="{{.Token}}"><input type="hidden" name="state" value="{{.State}}"></form>
<script>document.getElementById("post").submit();</script></body></html>`))

// launchPage starts a launch in a browser as Moodle's mod/lti/launch.php
// does: a form posting the third-party login initiation to the tool. The
// user is given in the URL (the simulator has no login).
func (p *Platform) launchPage(w http.ResponseWriter, r *http.Request) {
	t := p.Tool()
	if t == nil {
		http.Error(w, "no tool", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, map[string]string{"Action": t.LoginURL, "Iss": p.URL(), "User": q.Get("user"), "Target": t.LaunchURL,
		"Course": q.Get("id"), "Client": t.ClientID, "Deployment": t.DeploymentID})
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html><html><body>
<form id="login" method="post" action="{{.Action}}">
<input type="hidden" name="iss" value="{{.Iss}}"><input type="hidden" name="login_hint" value="{{.User}}">
<input type="hidden" name="target_link_uri" value="{{.Target}}"><input type="hidden" name="lti_message_hint" value="{{.Course}}">
<input type="hidden" name="client_id" value="{{.Client}}"><input type="hidden" name="lti_deployment_id" value="{{.Deployment}}">
</form><script>document.getElementById("login").submit();</script></body></html>`))

// LaunchPageURL starts a launch of the tool by user in course, in a window.
func (p *Platform) LaunchPageURL(userID, courseID string) string {
	return p.URL() + "/mod/lti/launch.php?" + url.Values{"id": {courseID}, "user": {userID}}.Encode()
}

// CoursePageURL is the course's page with the tool embedded in a frame.
func (p *Platform) CoursePageURL(userID, courseID string) string {
	return p.URL() + "/course/view.php?" + url.Values{"id": {courseID}, "user": {userID}}.Encode()
}

func (p *Platform) coursePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = framePage.Execute(w, map[string]string{"Src": p.LaunchPageURL(q.Get("user"), q.Get("id"))})
}

var framePage = template.Must(template.New("frame").Parse(`<!DOCTYPE html><html><head><title>Course</title></head><body>
<h1>Simulated Moodle course</h1>
<iframe id="contentframe" title="Course enrolments" src="{{.Src}}" width="1100" height="1400"></iframe></body></html>`))

func randomString(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
