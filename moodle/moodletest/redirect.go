package moodletest

import (
	"html"
	"net/http"
	"net/url"
	"strings"
)

// redirectPage is the page Moodle sends with a redirect (lib/setuplib.php),
// around the target URL.
const redirectPage = `<!DOCTYPE html>
<html  lang="en" xml:lang="en">
    <head>
        <meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
                <title>Redirect</title>
        <style>
body {
    margin: 0;
    font-family: -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif,"Apple Color Emoji","Segoe UI Emoji","Segoe UI Symbol","Noto Color Emoji";
    font-size: .9375rem;
    font-weight: 400;
    line-height: 1.5;
    color: #343a40;
    text-align: left;
    background-color: #f2f2f2;
}
#page {
    margin-top: 15px;
    background: white;
    max-width: 600px;
    margin: 0 auto;
    padding: 15px;
}
#region-main {
    margin: 0 auto;
    border: 1px solid rgba(0,0,0,.125);
    padding: 1rem 1.25rem 1.25rem;
    background-color: #fff;
}
h1 {
    font-size: 2.34rem;
    margin: 0 0 .5rem;
    font-weight: 300;
    line-height: 1.2;
}
.alert-danger {
    color: #6e211e;
    background-color: #f6d9d8;
    border-color: #f3c9c8;
    padding: .75rem 1.25rem;
}
    </style>
    </head>
    <body>
        <div id="page">
            <div id="region-main">
                <h1>Redirect</h1>
                <div style="margin-top: 3em; margin-left:auto; margin-right:auto; text-align:center;">This page should automatically redirect. If nothing is happening please use the continue link below.<br /><a href="%s">Continue</a></div>                            </div>
        </div>
    </body>
</html>

`

// wrongHost answers a request for another host than the site's wwwroot
// the way Moodle's setup does before any function runs: 303 See Other to
// the same path (and query) on the wwwroot. It reports whether it did.
// A site configured with WithSiteURL stands behind a proxy (Moodle's
// reverseproxy), which is not checked.
func (s *Site) wrongHost(w http.ResponseWriter, r *http.Request) bool {
	s.cfg.mu.Lock()
	root, proxied := s.cfg.baseURL, s.cfg.siteURL != ""
	s.cfg.mu.Unlock()
	u, err := url.Parse(root)
	if proxied || err != nil || root == "" || strings.EqualFold(r.Host, u.Host) {
		return false
	}
	loc := root + r.URL.Path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	h := w.Header()
	h.Set("X-Redirect-By", "Moodle /lib/setuplib.php:703")
	h.Set("Location", loc)
	h.Set("Content-Language", "en")
	h.Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(http.StatusSeeOther)
	_, _ = w.Write([]byte(strings.Replace(redirectPage, "%s", html.EscapeString(loc), 1)))
	return true
}
