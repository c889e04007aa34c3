package lti

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// token returns n random bytes, base64url-encoded.
func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// stateCookie names the cookie that binds one login's state to the browser
// that started it. One cookie per login, so two launches in two tabs (or
// two frames) do not overwrite each other.
func stateCookie(state string) string { return "mim_lti_" + state[:min(len(state), 16)] }

// login is the OIDC third-party login initiation: the platform names
// itself (iss, client_id), the user (login_hint) and where the launch goes
// (target_link_uri); the tool answers with a redirect to the platform's
// authorization endpoint carrying a fresh state and nonce. The state is
// bound to this browser by a cookie holding a secret only its hash is
// kept of.
func (t *Tool) login(w http.ResponseWriter, r *http.Request) {
	t.sweepExpired(r)
	if err := r.ParseForm(); err != nil {
		t.refuse(w, r, "login", reject(http.StatusBadRequest, "the login request cannot be read: %v", err))
		return
	}
	iss, clientID := r.Form.Get("iss"), r.Form.Get("client_id")
	hint, target := r.Form.Get("login_hint"), r.Form.Get("target_link_uri")
	switch {
	case iss == "":
		t.refuse(w, r, "login", reject(http.StatusBadRequest, "the login request has no iss"))
		return
	case hint == "":
		t.refuse(w, r, "login", reject(http.StatusBadRequest, "the login request has no login_hint").with("iss", iss))
		return
	case target != "" && !t.ownLaunchURL(target):
		t.refuse(w, r, "login", reject(http.StatusBadRequest, "target_link_uri %q is not this tool's launch URL %s", target, t.LaunchURL()).with("iss", iss))
		return
	}
	ps, err := platformsOf(r.Context(), t.db, iss)
	if err != nil {
		t.opts.Logger.Error("lti: login", "error", err)
		t.renderError(w, http.StatusInternalServerError, "login", "the tool could not read its registrations; try again")
		return
	}
	var p *Platform
	for i := range ps {
		if clientID == "" || ps[i].ClientID == clientID {
			if p != nil {
				t.refuse(w, r, "login", reject(http.StatusBadRequest, "issuer %s has several registrations and the login request names no client_id", iss))
				return
			}
			p = &ps[i]
		}
	}
	if p == nil {
		t.refuse(w, r, "login", reject(http.StatusBadRequest, "no active registration for issuer %q and client_id %q", iss, clientID).with("iss", iss, "client_id", clientID))
		return
	}
	if _, ok := t.site(p.Instance); !ok {
		t.refuse(w, r, "login", reject(http.StatusForbidden, "site %s (registration %d) is not among lti.sites", p.Instance, p.ID).with("iss", iss))
		return
	}
	if dep := r.Form.Get("lti_deployment_id"); dep != "" && !slices.Contains(p.DeploymentIDs, dep) {
		t.refuse(w, r, "login", reject(http.StatusForbidden, "deployment %q is not registered for %s (client %s)", dep, iss, p.ClientID).with("site", p.Instance))
		return
	}
	state, browser, nonce := token(32), token(32), token(24)
	now := t.opts.Now()
	if _, err := t.db.Exec(r.Context(), `INSERT INTO ctl.lti_login (state_hash, browser_hash, nonce, platform_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hash(state), hash(browser), nonce, p.ID, now, now.Add(loginTTL)); err != nil {
		t.opts.Logger.Error("lti: recording a login", "error", err)
		t.renderError(w, http.StatusInternalServerError, "login", "the tool could not record the login; try again")
		return
	}
	t.setCookie(w, &http.Cookie{Name: stateCookie(state), Value: browser, MaxAge: int(loginTTL.Seconds())})
	q := url.Values{
		"scope":         {"openid"},
		"response_type": {"id_token"},
		"response_mode": {"form_post"},
		"prompt":        {"none"},
		"client_id":     {p.ClientID},
		"redirect_uri":  {t.LaunchURL()},
		"login_hint":    {hint},
		"state":         {state},
		"nonce":         {nonce},
	}
	if m := r.Form.Get("lti_message_hint"); m != "" {
		q.Set("lti_message_hint", m)
	}
	sep := "?"
	if strings.Contains(p.AuthURL, "?") {
		sep = "&"
	}
	http.Redirect(w, r, p.AuthURL+sep+q.Encode(), http.StatusFound)
}

// setCookie sets a cookie for the tool's paths. Over https it is
// SameSite=None (the launch is a cross-site POST from the platform),
// Secure and Partitioned (CHIPS: browsers that block third-party cookies
// keep a partitioned one inside Moodle's frame); on plain http, which only
// loopback allows, SameSite=Lax.
func (t *Tool) setCookie(w http.ResponseWriter, c *http.Cookie) {
	c.Path = t.cookiePath
	c.HttpOnly = true
	if t.secure {
		c.Secure = true
		c.SameSite = http.SameSiteNoneMode
		c.Partitioned = true
	} else {
		c.SameSite = http.SameSiteLaxMode
	}
	http.SetCookie(w, c)
}

func (t *Tool) ownLaunchURL(u string) bool {
	return u == t.LaunchURL() || strings.HasPrefix(u, t.LaunchURL()+"?")
}
