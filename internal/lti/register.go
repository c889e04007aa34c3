package lti

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// platformConfig is the part of a platform's OpenID configuration (LTI
// Dynamic Registration 1.0, §3.4) the tool reads.
type platformConfig struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	RegistrationEndpoint  string   `json:"registration_endpoint"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	LTI                   *struct {
		ProductFamilyCode string `json:"product_family_code"`
		Version           string `json:"version"`
		Messages          []struct {
			Type string `json:"type"`
		} `json:"messages_supported"`
	} `json:"https://purl.imsglobal.org/spec/lti-platform-configuration"`
}

// registration is the client registration the tool sends.
type registration struct {
	ApplicationType         string     `json:"application_type"`
	ResponseTypes           []string   `json:"response_types"`
	GrantTypes              []string   `json:"grant_types"`
	InitiateLoginURI        string     `json:"initiate_login_uri"`
	RedirectURIs            []string   `json:"redirect_uris"`
	ClientName              string     `json:"client_name"`
	JWKSURI                 string     `json:"jwks_uri"`
	TokenEndpointAuthMethod string     `json:"token_endpoint_auth_method"`
	Scope                   string     `json:"scope"`
	Tool                    toolConfig `json:"https://purl.imsglobal.org/spec/lti-tool-configuration"`
}

// registered is the part of the platform's answer the tool reads. Only
// these: Moodle answers with the registration as it stored it, in shapes of
// its own (application_type as a list).
type registered struct {
	ClientID string `json:"client_id"`
	Tool     struct {
		DeploymentID string `json:"deployment_id"`
	} `json:"https://purl.imsglobal.org/spec/lti-tool-configuration"`
}

type toolConfig struct {
	Domain        string        `json:"domain"`
	TargetLinkURI string        `json:"target_link_uri"`
	Description   string        `json:"description,omitempty"`
	Claims        []string      `json:"claims,omitempty"`
	Messages      []toolMessage `json:"messages,omitempty"`
	DeploymentID  string        `json:"deployment_id,omitempty"`
}

type toolMessage struct {
	Type          string `json:"type"`
	TargetLinkURI string `json:"target_link_uri,omitempty"`
	Label         string `json:"label,omitempty"`
}

// ClientName is how Moodle lists the tool.
const ClientName = "MIM course enrolments"

type registerPage struct {
	Base, Site, Issuer, Config, Token string
	Done                              bool
	ClientID, Deployment              string
}

// registrationSite finds the configured site an openid_configuration URL
// belongs to: the URL must lie under the site's wwwroot, so the tool only
// ever fetches a configured site's own configuration.
func (t *Tool) registrationSite(raw string) (Site, *rejection) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return Site{}, reject(http.StatusBadRequest, "openid_configuration %q is not an http(s) URL", raw)
	}
	for _, s := range t.opts.Sites {
		if under(raw, s.Issuer) {
			return s, nil
		}
	}
	return Site{}, reject(http.StatusForbidden, "openid_configuration %s is not on a Moodle site this tool serves (lti.sites: %s)", raw, t.siteNames())
}

// under reports whether raw is issuer or a URL below it.
func under(raw, issuer string) bool {
	issuer = strings.TrimRight(issuer, "/")
	return raw == issuer || strings.HasPrefix(raw, issuer+"/") || strings.HasPrefix(raw, issuer+"?")
}

func (t *Tool) siteNames() string {
	var out []string
	for _, s := range t.opts.Sites {
		out = append(out, s.Name+" "+s.Issuer)
	}
	return strings.Join(out, ", ")
}

// registerForm is what Moodle opens when an administrator pastes the
// registration URL: it asks to confirm, and registers on POST (a GET
// changes nothing).
func (t *Tool) registerForm(w http.ResponseWriter, r *http.Request) {
	cfgURL, regToken := r.URL.Query().Get("openid_configuration"), r.URL.Query().Get("registration_token")
	if cfgURL == "" {
		t.info(w, r)
		return
	}
	site, rej := t.registrationSite(cfgURL)
	if rej != nil {
		t.refuse(w, r, "registration", rej)
		return
	}
	t.render(w, http.StatusOK, "register", registerPage{Base: t.base, Site: site.Name, Issuer: site.Issuer, Config: cfgURL, Token: regToken},
		frameAncestors(site.Issuer), false)
}

// register performs LTI Dynamic Registration with the site: it reads the
// platform's configuration from the site itself, checks it names the site
// as issuer, posts the tool's registration with the administrator's
// registration token, and records the client id and deployment the
// platform gives.
func (t *Tool) register(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		t.refuse(w, r, "registration", reject(http.StatusBadRequest, "the form cannot be read: %v", err))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != t.origin {
		t.refuse(w, r, "registration", reject(http.StatusForbidden, "CSRF: the registration was posted from %s, not from the tool", origin))
		return
	}
	cfgURL, regToken := r.PostForm.Get("openid_configuration"), r.PostForm.Get("registration_token")
	site, rej := t.registrationSite(cfgURL)
	if rej != nil {
		t.refuse(w, r, "registration", rej)
		return
	}
	p, rej := t.registerWith(r.Context(), site, cfgURL, regToken)
	if rej != nil {
		t.refuse(w, r, "registration", rej.with("site", site.Name))
		return
	}
	t.opts.Logger.Info("lti: registered", "site", p.Instance, "iss", p.Issuer, "client_id", p.ClientID, "deployments", p.DeploymentIDs)
	t.render(w, http.StatusOK, "register", registerPage{Base: t.base, Site: site.Name, Issuer: site.Issuer, Done: true,
		ClientID: p.ClientID, Deployment: strings.Join(p.DeploymentIDs, ", ")}, frameAncestors(site.Issuer), true)
}

func (t *Tool) registerWith(ctx context.Context, site Site, cfgURL, regToken string) (Platform, *rejection) {
	var pc platformConfig
	if err := t.getJSON(ctx, cfgURL, &pc); err != nil {
		return Platform{}, reject(http.StatusBadGateway, "reading the platform's configuration: %v", err)
	}
	issuer := strings.TrimRight(pc.Issuer, "/")
	switch {
	case issuer != strings.TrimRight(site.Issuer, "/"):
		return Platform{}, reject(http.StatusForbidden, "the configuration's issuer %q is not site %s's %q", pc.Issuer, site.Name, site.Issuer)
	case pc.LTI == nil:
		return Platform{}, reject(http.StatusBadRequest, "the configuration has no LTI platform configuration: is this a Moodle 4.x site?")
	case pc.AuthorizationEndpoint == "" || pc.JWKSURI == "" || pc.RegistrationEndpoint == "":
		return Platform{}, reject(http.StatusBadRequest, "the configuration lacks authorization_endpoint, jwks_uri or registration_endpoint")
	case len(pc.SigningAlgs) > 0 && !slices.Contains(pc.SigningAlgs, "RS256"):
		return Platform{}, reject(http.StatusBadRequest, "the platform does not sign with RS256 (%s)", strings.Join(pc.SigningAlgs, ", "))
	}
	for _, e := range []string{pc.AuthorizationEndpoint, pc.JWKSURI, pc.RegistrationEndpoint} {
		if originOf(e) != originOf(site.Issuer) {
			return Platform{}, reject(http.StatusForbidden, "the configuration's endpoint %s is not on the site %s", e, site.Issuer)
		}
	}
	if pc.TokenEndpoint != "" && originOf(pc.TokenEndpoint) != originOf(site.Issuer) {
		return Platform{}, reject(http.StatusForbidden, "the configuration's token endpoint %s is not on the site %s", pc.TokenEndpoint, site.Issuer)
	}
	u, _ := url.Parse(t.base)
	reg := registration{
		ApplicationType:         "web",
		ResponseTypes:           []string{"id_token"},
		GrantTypes:              []string{"implicit", "client_credentials"},
		InitiateLoginURI:        t.LoginURL(),
		RedirectURIs:            []string{t.LaunchURL()},
		ClientName:              ClientName,
		JWKSURI:                 t.JWKSURL(),
		TokenEndpointAuthMethod: "private_key_jwt",
		Tool: toolConfig{
			Domain:        u.Host,
			TargetLinkURI: t.LaunchURL(),
			Description:   "See and change which SITS module occurrences, programmes, routes, departments or faculties feed this course's enrolments (MIM).",
			Claims:        []string{"iss", "sub", "name", "given_name", "family_name", "email"},
			Messages:      []toolMessage{{Type: MessageResource, TargetLinkURI: t.LaunchURL(), Label: "Course enrolments"}},
		},
	}
	body, _ := json.Marshal(reg)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pc.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return Platform{}, reject(http.StatusBadGateway, "registering: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if regToken != "" {
		req.Header.Set("Authorization", "Bearer "+regToken)
	}
	resp, err := t.opts.Client.Do(req)
	if err != nil {
		return Platform{}, reject(http.StatusBadGateway, "registering at %s: %v", pc.RegistrationEndpoint, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return Platform{}, reject(http.StatusBadGateway, "the platform refused the registration: HTTP %s %s", resp.Status, snippet(data))
	}
	var got registered
	if err := json.Unmarshal(data, &got); err != nil {
		return Platform{}, reject(http.StatusBadGateway, "the platform's answer to the registration is not JSON: %v", err)
	}
	if got.ClientID == "" {
		return Platform{}, reject(http.StatusBadGateway, "the platform's answer to the registration has no client_id")
	}
	var deps []string
	if got.Tool.DeploymentID != "" {
		deps = []string{got.Tool.DeploymentID}
	}
	p, err := Register(ctx, t.db, Platform{Instance: site.Name, Issuer: site.Issuer, ClientID: got.ClientID, DeploymentIDs: deps,
		AuthURL: pc.AuthorizationEndpoint, JWKSURL: pc.JWKSURI, TokenURL: pc.TokenEndpoint, RegisteredBy: "dynamic registration",
		Detail: map[string]any{"product": pc.LTI.ProductFamilyCode, "version": pc.LTI.Version, "openid_configuration": cfgURL}})
	if err != nil {
		return Platform{}, reject(http.StatusInternalServerError, "%v", err)
	}
	return p, nil
}

// getJSON fetches a JSON document of at most 1 MiB.
func (t *Tool) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s is not JSON: %v", u, err)
	}
	return nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
