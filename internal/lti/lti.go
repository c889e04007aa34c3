// Package lti is the LTI 1.3 tool `mim serve` offers course staff: from
// inside Moodle (the platform) the staff of a course see which SIS entities
// feed it, search this year's module occurrences, programmes, routes,
// departments and faculties, and add, change or remove mappings after a
// preview of what the next export would do; students see how their course
// is fed. It is the incumbent's "Portico enrolments" block without PHP in
// Moodle.
//
// The tool implements what a tool must: LTI Dynamic Registration (an
// administrator pastes URL/lti/register into Moodle), OIDC third-party
// login initiation, the launch (the platform's id_token is verified against
// the registered platform: issuer, client id, deployment id, signature by a
// key of the platform's JWKS, exp and iat, a nonce used once, state bound to
// the browser by a cookie, message type and LTI version), and its own
// JWKS. A launch opens a short session for one person and one course of
// the registered site: the site is always the registration's, never a
// parameter. Every rejection is logged with its reason.
//
// Pages are plain HTML forms (no script), work inside Moodle's frame and in
// a new window, carry the session and a CSRF token in every form, change
// nothing on GET, and are served with a strict Content-Security-Policy whose
// frame-ancestors is the platform.
package lti

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/mapping"
)

// Site is a Moodle site that may register and launch the tool.
type Site struct {
	Name   string // moodle[].name: the site mappings are made for
	Issuer string // its wwwroot, the LTI issuer
}

// Options configure the tool.
type Options struct {
	// URL is the tool's public base address; its endpoints are URL/lti/...
	URL string
	// Key signs nothing yet but identifies the tool: its public half is
	// the tool's JWKS, which platforms use to verify the tool's messages.
	Key *rsa.PrivateKey
	// Sites are the Moodle sites the tool serves.
	Sites []Site
	// Roles are the MIM roles staff may give a mapping (exports.ims_roles).
	Roles []string
	// Session is how long a launch's session lasts (default 30m).
	Session time.Duration
	// Logger receives every rejection with its reason (default: discard).
	Logger *slog.Logger
	// Client fetches platform keys and configurations (default: 15s timeout, no redirects).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Editor previews and makes staff changes (*coursemap.Service).
type Editor interface {
	Preview(ctx context.Context, site, course string, ch mapping.Change) (*coursemap.Preview, error)
	Apply(ctx context.Context, site, course string, ch mapping.Change, by string, detail map[string]any) (*coursemap.Preview, error)
}

// Tool is the LTI tool's HTTP handler, for paths under /lti/.
type Tool struct {
	db     *pgxpool.Pool
	edit   Editor
	opts   Options
	base   string // URL without a trailing slash
	origin string // scheme://host of URL
	secure bool   // https: cross-site cookies are possible
	// cookiePath is /lti/ under URL's path, as browsers see it.
	cookiePath string
	jwk        jose.JSONWebKey
	keys       *keySets
	mux        *http.ServeMux
	sweep      atomic.Int64 // unix seconds of the last cleanup
}

// Timings of the protocol.
const (
	loginTTL  = 10 * time.Minute // from login initiation to launch
	leeway    = 60 * time.Second // clock skew allowed on exp and iat
	maxTokAge = 10 * time.Minute // an id_token issued longer ago is refused
	nonceKeep = maxTokAge + leeway
)

// New returns the tool over the warehouse db.
func New(db *pgxpool.Pool, edit Editor, opts Options) (*Tool, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("the LTI tool's URL %q is not an http(s) URL", opts.URL)
	}
	if opts.Key == nil {
		return nil, errors.New("the LTI tool needs its key")
	}
	if len(opts.Sites) == 0 {
		return nil, errors.New("the LTI tool serves no Moodle site")
	}
	if opts.Session <= 0 {
		opts.Session = 30 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	jwk, err := publicJWK(opts.Key)
	if err != nil {
		return nil, err
	}
	t := &Tool{db: db, edit: edit, opts: opts, base: strings.TrimRight(opts.URL, "/"),
		origin: u.Scheme + "://" + u.Host, secure: u.Scheme == "https", jwk: jwk, cookiePath: strings.TrimRight(u.Path, "/") + "/lti/",
		keys: &keySets{client: opts.Client, minRefresh: 10 * time.Second, now: opts.Now, sets: map[string]*keySet{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lti/{$}", t.info)
	mux.HandleFunc("GET /lti/jwks", t.serveJWKS)
	mux.HandleFunc("GET /lti/login", t.login)
	mux.HandleFunc("POST /lti/login", t.login)
	mux.HandleFunc("POST /lti/launch", t.launch)
	mux.HandleFunc("GET /lti/register", t.registerForm)
	mux.HandleFunc("POST /lti/register", t.register)
	mux.HandleFunc("POST /lti/course", t.course)
	mux.HandleFunc("POST /lti/search", t.search)
	mux.HandleFunc("POST /lti/preview", t.preview)
	mux.HandleFunc("POST /lti/apply", t.apply)
	mux.Handle("GET /lti/static/", http.StripPrefix("/lti/", http.FileServerFS(staticFS)))
	t.mux = mux
	return t, nil
}

// ServeHTTP serves the tool's endpoints under /lti/.
func (t *Tool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send "Origin:
	// null" on the tool's own form posts, which the CSRF check refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	t.mux.ServeHTTP(w, r)
}

// Endpoint URLs.
func (t *Tool) url(path string) string { return t.base + path }

// LoginURL is the OIDC login initiation URL (Moodle: "Initiate login URL").
func (t *Tool) LoginURL() string { return t.url("/lti/login") }

// LaunchURL is the tool's launch and redirect URL.
func (t *Tool) LaunchURL() string { return t.url("/lti/launch") }

// JWKSURL is the tool's public keyset URL.
func (t *Tool) JWKSURL() string { return t.url("/lti/jwks") }

// RegisterURL is what an administrator pastes into Moodle.
func (t *Tool) RegisterURL() string { return t.url("/lti/register") }

// site returns the configured site of a registration.
func (t *Tool) site(name string) (Site, bool) {
	for _, s := range t.opts.Sites {
		if s.Name == name {
			return s, true
		}
	}
	return Site{}, false
}

// siteOrigins are the configured sites' origins, who may frame the pages
// that are not yet tied to one platform.
func (t *Tool) siteOrigins() string {
	var out []string
	for _, s := range t.opts.Sites {
		if o := originOf(s.Issuer); o != "" {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return "'none'"
	}
	return strings.Join(out, " ")
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// rejection is a refused protocol step: a reason for the log and the page.
type rejection struct {
	status int
	reason string
	attrs  []any
}

func reject(status int, format string, args ...any) *rejection {
	return &rejection{status: status, reason: fmt.Sprintf(format, args...)}
}

func (r *rejection) with(attrs ...any) *rejection {
	r.attrs = append(r.attrs, attrs...)
	return r
}

// refuse logs a rejected request with its reason and answers with a page
// that says it.
func (t *Tool) refuse(w http.ResponseWriter, r *http.Request, step string, rej *rejection) {
	attrs := append([]any{"step", step, "reason", rej.reason, "remote", r.RemoteAddr}, rej.attrs...)
	t.opts.Logger.Warn("lti: "+step+" rejected", attrs...)
	t.renderError(w, rej.status, step, rej.reason)
}

// sweepExpired deletes expired logins, nonces and sessions, at most once a
// minute, on the request that finds it due.
func (t *Tool) sweepExpired(r *http.Request) {
	now := t.opts.Now().Unix()
	last := t.sweep.Load()
	if now-last < 60 || !t.sweep.CompareAndSwap(last, now) {
		return
	}
	for _, table := range []string{"ctl.lti_login", "ctl.lti_nonce", "ctl.lti_session"} {
		if _, err := t.db.Exec(r.Context(), `DELETE FROM `+table+` WHERE expires_at < $1`, t.opts.Now()); err != nil {
			t.opts.Logger.Warn("lti: deleting expired rows", "table", table, "error", err)
		}
	}
}
