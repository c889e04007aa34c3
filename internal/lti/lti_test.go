package lti_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/lti/ltitest"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// logs collects what the tool logs.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// clock is the tool's adjustable clock.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// editor records the changes the tool asks for; the real one
// (coursemap.Service) is exercised end to end in internal/app.
type editor struct {
	mu       sync.Mutex
	previews []mapping.Change
	applied  []mapping.Change
	by       []string
}

func (e *editor) preview(ch mapping.Change) *coursemap.Preview {
	return &coursemap.Preview{Change: ch, Mapping: mapping.Mapping{SISKind: ch.Kind, SISKey: ch.Key, Roles: ch.Roles},
		Export: &feeds.CoursePreview{Adds: 3, HoldLimit: 50}}
}

func (e *editor) Preview(_ context.Context, site, course string, ch mapping.Change) (*coursemap.Preview, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.previews = append(e.previews, ch)
	return e.preview(ch), nil
}

func (e *editor) Apply(_ context.Context, site, course string, ch mapping.Change, by string, _ map[string]any) (*coursemap.Preview, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applied = append(e.applied, ch)
	e.by = append(e.by, site+" "+course+" "+by)
	p := e.preview(ch)
	p.Applied = true
	return p, nil
}

type harness struct {
	t     *testing.T
	db    *pgtest.DB
	p     *ltitest.Platform
	tool  *lti.Tool
	srv   *httptest.Server
	logs  *logs
	clock *clock
	edit  *editor
}

const course = "101"

// The tool's key, made once: RSA keys are slow to make.
var (
	keyOnce sync.Once
	toolKey *rsa.PrivateKey
	keyErr  error
)

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, db: pgtest.New(t), p: ltitest.New(), logs: &logs{}, clock: &clock{}, edit: &editor{}}
	t.Cleanup(h.p.Close)
	var handler http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	keyOnce.Do(func() { toolKey, keyErr = lti.GenerateKey() })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	var err error
	h.tool, err = lti.New(h.db.Pool, h.edit, lti.Options{URL: h.srv.URL, Key: toolKey, Sites: []lti.Site{{Name: "main", Issuer: h.p.URL()}},
		Roles: []string{"editingteacher", "student", "teacher"}, Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Now: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	handler = h.tool
	h.p.AddUser(ltitest.User{ID: "2", Username: "jteacher", Name: "Jo Teacher", Given: "Jo", Email: "jo@example.ac.uk"})
	h.p.AddUser(ltitest.User{ID: "3", Username: "sstudent", Name: "Sam Student", Given: "Sam"})
	h.p.AddUser(ltitest.User{ID: "4", Username: "admin", Name: "Ada Admin", Given: "Ada", Admin: true})
	h.p.AddCourse(ltitest.Course{ID: course, ShortName: "CLAS0001", FullName: "Classics 1", IDNumber: "CLAS0001-A4U-T1-2026",
		Roles: map[string]string{"2": ltitest.Instructor, "3": ltitest.Learner}})
	h.register()
	return h
}

func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// register runs LTI Dynamic Registration as Moodle does: open the
// registration URL, confirm.
func (h *harness) register() {
	h.t.Helper()
	c := h.client()
	resp, err := c.Get(h.p.RegistrationURL(h.tool.RegisterURL()))
	if err != nil {
		h.t.Fatal(err)
	}
	body := readBody(h.t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Register MIM with main") {
		h.t.Fatalf("registration page: %s\n%s", resp.Status, body)
	}
	form := url.Values{"openid_configuration": {hidden(h.t, body, "openid_configuration")}, "registration_token": {hidden(h.t, body, "registration_token")}}
	resp, err = c.PostForm(h.tool.RegisterURL(), form)
	if err != nil {
		h.t.Fatal(err)
	}
	body = readBody(h.t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "MIM is registered") {
		h.t.Fatalf("registration: %s\n%s\n%s", resp.Status, body, h.logs)
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return html.UnescapeString(string(b))
}

func hidden(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden %s in\n%s", name, body)
	}
	return html.UnescapeString(m[1])
}

// launch is a launch of user whose claims mutate changes, posted through c.
func (h *harness) launch(c *http.Client, user string, mutate func(map[string]any)) (*http.Response, string) {
	h.t.Helper()
	login, _, err := h.p.Begin(c, user, course, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	claims := h.p.Claims(user, course, login.Nonce)
	if mutate != nil {
		mutate(claims)
	}
	resp, err := h.p.Post(c, login.RedirectURI, h.p.Sign(claims), login.State)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

// page is an open session's forms.
type page struct {
	h               *harness
	c               *http.Client
	session, csrf   string
	body            string
	status          int
	contentSecurity string
}

func (h *harness) open(user string) *page {
	h.t.Helper()
	c := h.client()
	resp, body := h.launch(c, user, nil)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("launch of %s: %s\n%s\n%s", user, resp.Status, body, h.logs)
	}
	return &page{h: h, c: c, session: hidden(h.t, body, "session"), csrf: hidden(h.t, body, "csrf"), body: body,
		status: resp.StatusCode, contentSecurity: resp.Header.Get("Content-Security-Policy")}
}

// post submits a form of the session to path with more fields.
func (pg *page) post(path string, fields url.Values, header http.Header) *page {
	pg.h.t.Helper()
	form := url.Values{"session": {pg.session}, "csrf": {pg.csrf}}
	for k, v := range fields {
		form[k] = v
	}
	req, _ := http.NewRequest(http.MethodPost, pg.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := pg.c.Do(req)
	if err != nil {
		pg.h.t.Fatal(err)
	}
	return &page{h: pg.h, c: pg.c, session: pg.session, csrf: pg.csrf, body: readBody(pg.h.t, resp), status: resp.StatusCode,
		contentSecurity: resp.Header.Get("Content-Security-Policy")}
}

func TestRegistrationRecordsThePlatform(t *testing.T) {
	h := newHarness(t)
	ps, err := lti.Platforms(context.Background(), h.db.Pool, "")
	if err != nil {
		t.Fatal(err)
	}
	tool := h.p.Tool()
	if len(ps) != 1 || ps[0].Instance != "main" || ps[0].Issuer != h.p.URL() || ps[0].ClientID != tool.ClientID ||
		strings.Join(ps[0].DeploymentIDs, ",") != tool.DeploymentID || ps[0].AuthURL != h.p.AuthURL() || ps[0].JWKSURL != h.p.JWKSURL() {
		t.Fatalf("registrations %+v, platform's tool %+v", ps, tool)
	}
	if tool.LoginURL != h.tool.LoginURL() || tool.LaunchURL != h.tool.LaunchURL() || tool.JWKSURL != h.tool.JWKSURL() {
		t.Errorf("the platform registered %+v", tool)
	}
	// The tool's JWKS is its public key only.
	resp, err := http.Get(h.tool.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	jwks := readBody(t, resp)
	if !strings.Contains(jwks, `"kty":"RSA"`) || strings.Contains(jwks, `"d":`) || !strings.Contains(jwks, `"kid":`) {
		t.Errorf("jwks %s", jwks)
	}
	// A registration token is used once; a configuration on another site
	// is never fetched.
	c := h.client()
	resp, err = c.PostForm(h.tool.RegisterURL(), url.Values{"openid_configuration": {h.p.OpenIDConfigURL()}, "registration_token": {"used-or-made-up"}})
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode == http.StatusOK || !strings.Contains(body, "refused the registration") {
		t.Errorf("a made-up registration token: %s %s", resp.Status, body)
	}
	resp, err = c.Get(h.tool.RegisterURL() + "?" + url.Values{"openid_configuration": {"http://127.0.0.1:1/evil"}, "registration_token": {"x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not on a Moodle site this tool serves") {
		t.Errorf("a configuration off the sites: %s %s", resp.Status, body)
	}
	// Registering is a POST: a GET shows what would happen and changes nothing.
	resp, err = c.Get(h.p.RegistrationURL(h.tool.RegisterURL()))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if ps2, _ := lti.Platforms(context.Background(), h.db.Pool, ""); len(ps2) != 1 || len(h.p.Registrations) != 1 {
		t.Errorf("a GET of the registration URL registered: %d registrations, %d requests", len(ps2), len(h.p.Registrations))
	}
}

func TestInstructorLaunchOpensAnEditingSession(t *testing.T) {
	h := newHarness(t)
	pg := h.open("2")
	for _, want := range []string{"Enrolments of Classics 1", "CLAS0001-A4U-T1-2026", "Jo Teacher", "Search this year", "Nothing feeds this course yet"} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	csp := pg.contentSecurity
	for _, want := range []string{"default-src 'none'", "script-src 'none'", "form-action 'self'", "frame-ancestors " + h.p.URL()} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	var sub, login, idnumber string
	var canEdit bool
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT user_sub, user_login, course_idnumber, can_edit FROM ctl.lti_session`).
		Scan(&sub, &login, &idnumber, &canEdit); err != nil {
		t.Fatal(err)
	}
	if sub != "2" || login != "jteacher" || idnumber != "CLAS0001-A4U-T1-2026" || !canEdit {
		t.Errorf("session %s %s %s %v", sub, login, idnumber, canEdit)
	}
	// Preview, then apply once: the change reaches the editor with the
	// registration's site and the person's Moodle identity.
	pv := pg.post("/lti/preview", url.Values{"action": {"add"}, "pick": {"module_occurrence/ABC123"}, "role": {"student"}}, nil)
	if pv.status != http.StatusOK || !strings.Contains(pv.body, "Preview: Add") {
		t.Fatalf("preview: %d\n%s", pv.status, pv.body)
	}
	change := hidden(t, pv.body, "change")
	// A change is applied by the session that previewed it, not another.
	other := h.open("4")
	if r := other.post("/lti/apply", url.Values{"change": {change}}, nil); r.status != http.StatusConflict ||
		!strings.Contains(r.body, "not one previewed in this session") {
		t.Errorf("another session applying the change: %d %s", r.status, r.body)
	}
	ap := pg.post("/lti/apply", url.Values{"change": {change}}, nil)
	if ap.status != http.StatusOK || !strings.Contains(ap.body, "Done.") {
		t.Fatalf("apply: %d\n%s", ap.status, ap.body)
	}
	again := pg.post("/lti/apply", url.Values{"change": {change}}, nil)
	if again.status != http.StatusConflict || !strings.Contains(again.body, "already applied") {
		t.Errorf("applying twice: %d %s", again.status, again.body)
	}
	if len(h.edit.applied) != 1 || h.edit.by[0] != "main CLAS0001-A4U-T1-2026 jteacher@main (Jo Teacher) via Moodle" {
		t.Errorf("applied %v by %v", h.edit.applied, h.edit.by)
	}
	// The site is the registration's: a site named in the form is ignored.
	pg.post("/lti/preview", url.Values{"action": {"add"}, "pick": {"programme/P1"}, "role": {"student"}, "site": {"archive"}, "instance": {"archive"}}, nil)
	if got := h.edit.previews[len(h.edit.previews)-1]; got.Kind != "programme" {
		t.Errorf("preview %+v", got)
	}
	var sites []string
	rows, _ := h.db.Pool.Query(context.Background(), `SELECT DISTINCT instance FROM ctl.lti_change`)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		sites = append(sites, s)
	}
	rows.Close()
	if strings.Join(sites, ",") != "main" {
		t.Errorf("changes recorded for sites %v", sites)
	}
}

func TestAdministratorMayEdit(t *testing.T) {
	h := newHarness(t)
	pg := h.open("4") // a site administrator with no role in the course
	if !strings.Contains(pg.body, "Search this year") {
		t.Fatalf("an administrator's page has no search:\n%s", pg.body)
	}
}

func TestStudentPageIsReadOnly(t *testing.T) {
	h := newHarness(t)
	pg := h.open("3")
	if strings.Contains(pg.body, "/lti/preview") || strings.Contains(pg.body, "/lti/search") || strings.Contains(pg.body, "History") {
		t.Errorf("a student's page offers changes or history:\n%s", pg.body)
	}
	if !strings.Contains(pg.body, "Students are enrolled in this course from the SITS entities above") {
		t.Errorf("the student's page does not say how the course is fed:\n%s", pg.body)
	}
	for _, step := range []struct{ path string }{{"/lti/search"}, {"/lti/preview"}, {"/lti/apply"}} {
		r := pg.post(step.path, url.Values{"q": {"CLAS"}, "action": {"add"}, "pick": {"module_occurrence/ABC123"}, "role": {"student"},
			"change": {"1"}}, nil)
		if r.status != http.StatusForbidden {
			t.Errorf("a student's %s: %d", step.path, r.status)
		}
	}
	if len(h.edit.previews)+len(h.edit.applied) != 0 {
		t.Errorf("a student reached the editor: %v %v", h.edit.previews, h.edit.applied)
	}
	if !strings.Contains(h.logs.String(), "do not include Instructor or Administrator") {
		t.Errorf("the refusal was not logged with its reason:\n%s", h.logs)
	}
}

// Every forged, expired, replayed or misdirected launch is refused with a
// logged reason, and opens no session.
func TestForgedLaunchesAreRejected(t *testing.T) {
	h := newHarness(t)
	tool := h.p.Tool()
	forger := ltitest.NewKey()
	now := time.Now()
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	cases := []struct {
		name   string
		mutate func(map[string]any)
		sign   func(map[string]any) string // nil: the platform's key
		reason string
	}{
		{"signed by another key under the platform's kid", nil, func(c map[string]any) string {
			return ltitest.SignWith(forger, platformKid(t, h), c)
		}, "does not verify"},
		{"signed by an unknown key", nil, func(c map[string]any) string { return ltitest.SignWith(forger, "forged", c) }, "has no key"},
		{"HS256 with the public key as secret", nil, func(c map[string]any) string { return hs256(t, h, c) }, "accepted algorithm"},
		{"expired", func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-3*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		}, nil, "exp: the id_token has expired"},
		{"issued long ago", set("iat", now.Add(-30*time.Minute).Unix()), nil, "was issued"},
		{"issued in the future", set("iat", now.Add(10*time.Minute).Unix()), nil, "iat: the id_token is issued in the future"},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, nil, "no exp"},
		{"another issuer", set("iss", "https://moodle.evil.example"), nil, "issuer"},
		{"another audience", set("aud", "someone-else"), nil, "audience"},
		{"several audiences without azp", set("aud", []string{tool.ClientID, "other"}), nil, "no azp"},
		{"azp of another client", func(c map[string]any) { c["aud"] = []string{tool.ClientID, "other"}; c["azp"] = "other" }, nil, "azp"},
		{"another nonce", set("nonce", "not-the-nonce"), nil, "nonce"},
		{"wrong deployment", set("https://purl.imsglobal.org/spec/lti/claim/deployment_id", "99"), nil, "is not registered for this platform"},
		{"deep linking message", set("https://purl.imsglobal.org/spec/lti/claim/message_type", "LtiDeepLinkingRequest"), nil, "message_type"},
		{"LTI 1.1", set("https://purl.imsglobal.org/spec/lti/claim/version", "1.1"), nil, "LTI version"},
		{"no resource link", func(c map[string]any) { delete(c, "https://purl.imsglobal.org/spec/lti/claim/resource_link") }, nil, "resource_link"},
		{"another tool's target", set("https://purl.imsglobal.org/spec/lti/claim/target_link_uri", "https://elsewhere.example/launch"), nil, "target_link_uri"},
		{"anonymous", set("sub", ""), nil, "anonymous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client()
			login, _, err := h.p.Begin(c, "2", course, nil)
			if err != nil {
				t.Fatal(err)
			}
			claims := h.p.Claims("2", course, login.Nonce)
			if tc.mutate != nil {
				tc.mutate(claims)
			}
			tok := h.p.Sign(claims)
			if tc.sign != nil {
				tok = tc.sign(claims)
			}
			resp, err := h.p.Post(c, login.RedirectURI, tok, login.State)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode == http.StatusOK || strings.Contains(body, `name="session"`) {
				t.Fatalf("accepted: %s\n%s", resp.Status, body)
			}
			if !strings.Contains(body, tc.reason) {
				t.Errorf("the page does not say %q:\n%s", tc.reason, body)
			}
			if !strings.Contains(h.logs.String(), "lti: launch rejected") || !strings.Contains(h.logs.String(), tc.reason) {
				t.Errorf("the log does not give the reason %q:\n%s", tc.reason, h.logs)
			}
		})
	}
	var sessions int
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.lti_session`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 0 {
		t.Errorf("%d sessions were opened by rejected launches", sessions)
	}
}

func platformKid(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.p.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return set.Keys[0].Kid
}

// hs256 is the old algorithm-confusion forgery: HMAC with the platform's
// public key as the secret.
func hs256(t *testing.T, h *harness, claims map[string]any) string {
	t.Helper()
	resp, err := http.Get(h.p.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(readBody(t, resp))
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"` + platformKid(t, h) + `"}`))
	body, _ := json.Marshal(claims)
	msg := head + "." + base64.RawURLEncoding.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msg))
	return msg + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestReplayedAndUnboundLaunchesAreRejected(t *testing.T) {
	h := newHarness(t)
	check := func(name string, resp *http.Response, body, reason string) {
		t.Helper()
		if resp.StatusCode == http.StatusOK || !strings.Contains(body, reason) || !strings.Contains(h.logs.String(), reason) {
			t.Errorf("%s: %s, want the logged reason %q:\n%s", name, resp.Status, reason, body)
		}
	}
	// The same token and state twice: the state is used once.
	c := h.client()
	login, _, err := h.p.Begin(c, "2", course, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := h.p.Sign(h.p.Claims("2", course, login.Nonce))
	resp, err := h.p.Post(c, login.RedirectURI, tok, login.State)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first launch: %s\n%s", resp.Status, body)
	}
	resp, _ = h.p.Post(c, login.RedirectURI, tok, login.State)
	check("replayed token and state", resp, readBody(t, resp), "state unknown or already used")

	// The same token with a fresh state of the replayer's own: the nonce
	// is not the one issued with that state.
	login2, _, err := h.p.Begin(c, "2", course, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = h.p.Post(c, login2.RedirectURI, tok, login2.State)
	check("replayed token, fresh state", resp, readBody(t, resp), "nonce: the id_token's nonce is not the one issued")

	// A nonce seen before is refused even if it matches (a platform that
	// reused one, or a token captured with its state).
	login3, _, _ := h.p.Begin(c, "2", course, nil)
	if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO ctl.lti_nonce (issuer, nonce, expires_at) VALUES ($1, $2, now() + interval '1 hour')`,
		h.p.URL(), login3.Nonce); err != nil {
		t.Fatal(err)
	}
	resp, _ = h.p.Post(c, login3.RedirectURI, h.p.Sign(h.p.Claims("2", course, login3.Nonce)), login3.State)
	check("used nonce", resp, readBody(t, resp), "nonce already used")

	// The state is bound to the browser that began the login.
	login4, _, _ := h.p.Begin(c, "2", course, nil)
	other := h.client()
	resp, _ = h.p.Post(other, login4.RedirectURI, h.p.Sign(h.p.Claims("2", course, login4.Nonce)), login4.State)
	check("another browser", resp, readBody(t, resp), "login cookie is missing")
	login5, _, _ := h.p.Begin(c, "2", course, nil)
	u, _ := url.Parse(h.srv.URL + "/lti/")
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "mim_lti_") {
			c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: "tampered", Path: "/lti/"}})
		}
	}
	resp, _ = h.p.Post(c, login5.RedirectURI, h.p.Sign(h.p.Claims("2", course, login5.Nonce)), login5.State)
	check("tampered cookie", resp, readBody(t, resp), "login cookie does not match")

	// A state that waited too long.
	c2 := h.client()
	login6, _, _ := h.p.Begin(c2, "2", course, nil)
	h.clock.advance(11 * time.Minute)
	h.p.SetClock(h.clock.now)
	resp, _ = h.p.Post(c2, login6.RedirectURI, h.p.Sign(h.p.Claims("2", course, login6.Nonce)), login6.State)
	check("expired state", resp, readBody(t, resp), "state expired")

	// A made-up state, and a launch without a token.
	resp, _ = h.p.Post(c, h.tool.LaunchURL(), tok, "made-up-state")
	check("made-up state", resp, readBody(t, resp), "state unknown")
	resp, _ = c.PostForm(h.tool.LaunchURL(), url.Values{"state": {"x"}})
	check("no token", resp, readBody(t, resp), "no id_token")
}

func TestLoginInitiationChecksThePlatform(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	for _, tc := range []struct {
		name   string
		extra  url.Values
		reason string
	}{
		{"unknown issuer", url.Values{"iss": {"https://moodle.evil.example"}}, "no active registration"},
		{"unknown client", url.Values{"client_id": {"not-ours"}}, "no active registration"},
		{"unknown deployment", url.Values{"lti_deployment_id": {"42"}}, "is not registered for"},
		{"another target", url.Values{"target_link_uri": {"https://elsewhere.example/launch"}}, "is not this tool's launch URL"},
		{"no login hint", url.Values{"login_hint": {""}}, "no login_hint"},
	} {
		_, resp, err := h.p.Begin(c, "2", course, tc.extra)
		if err == nil || resp == nil || resp.StatusCode == http.StatusFound {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(h.logs.String(), tc.reason) {
			t.Errorf("%s: the log lacks %q:\n%s", tc.name, tc.reason, h.logs)
		}
	}
}

func TestKeyRotationAndRevocation(t *testing.T) {
	h := newHarness(t)
	h.open("2")
	// The platform rotates its key: the unknown kid makes the tool fetch
	// the key set again, and the launch goes through.
	h.p.RotateKey()
	h.open("2")
	// A revoked registration launches no more, and its sessions end.
	pg := h.open("2")
	ps, _ := lti.Platforms(context.Background(), h.db.Pool, "main")
	if err := lti.Revoke(context.Background(), h.db.Pool, ps[0].ID); err != nil {
		t.Fatal(err)
	}
	if r := pg.post("/lti/course", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("a session of a revoked registration: %d", r.status)
	}
	if _, resp, err := h.p.Begin(h.client(), "2", course, nil); err == nil {
		t.Errorf("a revoked registration began a login: %v", resp.Status)
	}
}

func TestSessionFormsAreGuarded(t *testing.T) {
	h := newHarness(t)
	pg := h.open("2")
	bad := *pg
	bad.csrf = "forged"
	if r := bad.post("/lti/preview", url.Values{"action": {"add"}, "pick": {"programme/P1"}, "role": {"student"}}, nil); r.status != http.StatusForbidden ||
		!strings.Contains(r.body, "CSRF") {
		t.Errorf("a wrong CSRF token: %d %s", r.status, r.body)
	}
	if r := pg.post("/lti/preview", url.Values{"action": {"add"}, "pick": {"programme/P1"}, "role": {"student"}},
		http.Header{"Origin": {"https://evil.example"}}); r.status != http.StatusForbidden {
		t.Errorf("a form posted from another origin: %d", r.status)
	}
	if r := pg.post("/lti/course", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusForbidden {
		t.Errorf("a cross-site form: %d", r.status)
	}
	noSession := *pg
	noSession.session = "guessed"
	if r := noSession.post("/lti/course", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("a guessed session: %d", r.status)
	}
	// Nothing changes on GET.
	for _, path := range []string{"/lti/course", "/lti/preview", "/lti/apply", "/lti/search", "/lti/launch"} {
		resp, err := pg.c.Get(h.srv.URL + path + "?" + url.Values{"session": {pg.session}, "csrf": {pg.csrf}, "change": {"1"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	if len(h.edit.previews) != 0 {
		t.Errorf("a guarded form reached the editor: %v", h.edit.previews)
	}
	// A session is short: past it, launch again.
	h.clock.advance(31 * time.Minute)
	if r := pg.post("/lti/course", nil, nil); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "launch the tool again") {
		t.Errorf("an expired session: %d %s", r.status, r.body)
	}
}

func TestCourseWithoutIDNumberIsReadOnly(t *testing.T) {
	h := newHarness(t)
	h.p.AddCourse(ltitest.Course{ID: course, ShortName: "NEW", FullName: "New course", Roles: map[string]string{"2": ltitest.Instructor}})
	pg := h.open("2")
	if !strings.Contains(pg.body, "no course ID number") || strings.Contains(pg.body, "/lti/search") {
		t.Errorf("a course without an ID number:\n%s", pg.body)
	}
	if r := pg.post("/lti/preview", url.Values{"action": {"add"}, "pick": {"programme/P1"}, "role": {"student"}}, nil); r.status != http.StatusConflict {
		t.Errorf("a change to a course without an ID number: %d", r.status)
	}
}

// Over https the state cookie can cross sites (the launch is a POST from
// the platform) and lives in Moodle's frame partition; its path follows
// the tool's URL behind a proxy.
func TestStateCookieOverHTTPS(t *testing.T) {
	h := newHarness(t)
	tool, err := lti.New(h.db.Pool, h.edit, lti.Options{URL: "https://mim.example.ac.uk/mim", Key: toolKey,
		Sites: []lti.Site{{Name: "main", Issuer: h.p.URL()}}})
	if err != nil {
		t.Fatal(err)
	}
	pl := h.p.Tool()
	form := url.Values{"iss": {h.p.URL()}, "login_hint": {"2"}, "client_id": {pl.ClientID}, "lti_message_hint": {course}}
	req := httptest.NewRequest(http.MethodPost, "/lti/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	tool.ServeHTTP(rec, req)
	if rec.Code != http.StatusFound {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookie := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"mim_lti_", "Path=/mim/lti/", "HttpOnly", "Secure", "SameSite=None", "Partitioned"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if loc.Query().Get("redirect_uri") != "https://mim.example.ac.uk/mim/lti/launch" || !strings.HasPrefix(loc.String(), h.p.AuthURL()) {
		t.Errorf("redirected to %s", loc)
	}
}

// While the mappings are frozen, an instructor's page says so, with who
// and why, and offers nothing to change.
func TestFrozenEditsAreExplained(t *testing.T) {
	h := newHarness(t)
	search := `action="` + h.srv.URL + `/lti/search"`
	if open := h.open("2"); !strings.Contains(open.body, search) {
		t.Fatalf("an open page has no search form %s:\n%s", search, open.body)
	}
	if _, err := mapping.FreezeEdits(context.Background(), h.db.Pool, true, "lama@example.ac.uk", "rollover to 2026", nil); err != nil {
		t.Fatal(err)
	}
	pg := h.open("2")
	if !strings.Contains(pg.body, "Course mappings are frozen for every course") || !strings.Contains(pg.body, "rollover to 2026") ||
		strings.Contains(pg.body, search) {
		t.Errorf("a frozen page:\n%s", pg.body)
	}
}
