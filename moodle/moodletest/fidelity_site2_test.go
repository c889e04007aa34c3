package moodletest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// The recordings in testdata/site2 come from a second real Moodle 4.5
// site, read by a web-service user with a system role (moodletest's
// WebServiceRole), some of them with one capability taken away: the
// recording's name says which ("no_viewuseridentity", "no_viewalldetails").
// recorded.Site2 mirrors that site.

const site2 = "testdata/site2"

// site2Rules are the values of each recording no State determines: the
// caller's preferences (timestamps of its own logins), course summaries'
// formats and generated images (context ids), modification times, and
// the grade category a fresh course total belongs to.
var site2Rules = map[string]rules{
	"core_user_get_users":              {keys: set("preferences")},
	"core_user_get_users_by_field":     {keys: set("preferences")},
	"core_enrol_get_users_courses":     {values: set("summaryformat", "courseimage", "timemodified")},
	"gradereport_user_get_grade_items": {values: set("iteminstance")},
}

// site2Token makes the token a recording was made with.
func site2Token(site *moodletest.Site, name string) string {
	caps := moodletest.WebServiceRole()
	switch {
	case strings.Contains(name, "__no_viewuseridentity"):
		caps = moodletest.Without(caps, moodletest.CapViewUserIdentity)
	case strings.Contains(name, "__no_viewalldetails"):
		caps = moodletest.Without(caps, moodletest.CapViewAllDetails)
	}
	token := "mimws-" + strings.ReplaceAll(strings.Join(caps, ","), "/", "_")
	site.AddToken(moodletest.Token{Token: token, UserID: recorded.Site2WSUser, Capabilities: caps})
	return token
}

func newSite2(t *testing.T, opts ...moodletest.Option) *moodletest.Site {
	t.Helper()
	opts = append([]moodletest.Option{moodletest.WithSiteURL(recorded.SiteURL),
		moodletest.WithClock(func() time.Time { return recorded.Site2Time })}, opts...)
	return moodletest.NewServer(t, recorded.Site2(), opts...)
}

func TestRecordedSite2(t *testing.T) {
	site := newSite2(t)
	compared := replay(t, site2, site, func(name string) (string, rules, bool) {
		fn, _, _ := strings.Cut(name, "__")
		return site2Token(site, name), site2Rules[fn], false
	})
	if compared < 27 {
		t.Fatalf("compared %d recordings; index.tsv lists 27", compared)
	}
}

// readError reads one recording of testdata/site2/errors: its status,
// headers and body.
func readError(t *testing.T, name string) (int, http.Header, []byte) {
	t.Helper()
	head, err := os.ReadFile(filepath.Join(site2, "errors", name+".headers"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(site2, "errors", name+".body"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(head)), "\n")
	var status int
	if _, err := fmt.Sscanf(lines[0], "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("%s.headers: %q: %v", name, lines[0], err)
	}
	h := http.Header{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return status, h, body
}

// A request naming another host than the wwwroot (here localhost for a
// site at 127.0.0.1) is redirected before any function runs, the token
// repeated in Location when it was in the URL; a client that follows the
// 303 with a GET loses the POST body and reaches Moodle without a token.
func TestRecordedWrongHost(t *testing.T) {
	site := moodletest.NewServer(t, recorded.Site2(), moodletest.WithDebug(false))
	u, _ := url.Parse(site.URL())
	port := u.Port()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := "wstoken=" + site.Token() + "&wsfunction=core_webservice_get_site_info&moodlewsrestformat=json"
	// A second PHP server on another port of the same Moodle is another
	// host too: Moodle compares the port with the wwwroot's.
	otherPort := "1" + port
	for _, tc := range []struct{ name, host, query, body string }{
		{"wrong_host_localhost_post", "localhost:" + port, "", body},
		{"wrong_host_localhost_token_in_url", "localhost:" + port, "?" + body, ""},
		{"max_input_vars_second_server_port_8089", "127.0.0.1:" + otherPort, "", body},
	} {
		wantStatus, wantHead, wantBody := readError(t, tc.name)
		req, _ := http.NewRequest(http.MethodPost, site.URL()+moodletest.Endpoint+tc.query, strings.NewReader(tc.body))
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		local := func(s string) string { return strings.ReplaceAll(s, "127.0.0.1:8085", "127.0.0.1:"+port) }
		for _, k := range []string{"Location", "X-Redirect-By", "Content-Type", "Content-Language"} {
			if g, w := resp.Header.Get(k), local(wantHead.Get(k)); g != w {
				t.Errorf("%s: %s %q, want %q", tc.name, k, g, w)
			}
		}
		if resp.StatusCode != wantStatus || string(got) != local(string(wantBody)) {
			t.Errorf("%s: HTTP %d\n%s\nwant %d\n%s", tc.name, resp.StatusCode, got, wantStatus, local(string(wantBody)))
		}
		if site.Calls("") != 0 {
			t.Errorf("%s: the function ran", tc.name)
		}
	}
	// Followed as a GET, the request has no token and no format: XML.
	wantStatus, _, wantBody := readError(t, "wrong_host_redirect_followed_get")
	resp, err := http.Get(site.URL() + moodletest.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantStatus || string(got) != string(wantBody) {
		t.Errorf("followed GET: HTTP %d %s, want %d %s", resp.StatusCode, got, wantStatus, wantBody)
	}
}

// group16 are the members sent in the max_input_vars recordings: 25 users
// of course 39 into its group 16.
var group16 = []int64{17, 60, 84, 88, 89, 91, 93, 97, 133, 138, 162, 164, 186, 195, 228, 230, 232, 238, 252, 257, 300, 311, 316, 323, 337}

// With max_input_vars 40, PHP keeps 41 variables of each of the query and
// the body: MIM's layout (protocol variables in the body) loses the last 6
// members silently and Moodle answers null; with the protocol variables in
// the URL the body ends in half a member and Moodle refuses the call.
func TestRecordedMaxInputVars(t *testing.T) {
	members := ""
	for i, uid := range group16 {
		members += fmt.Sprintf("&members[%d][groupid]=16&members[%d][userid]=%d", i, i, uid)
	}
	for _, tc := range []struct {
		name     string
		inURL    bool
		wantKept []int64
	}{
		{"max_input_vars_40_add_group_members_void", false, group16[:19]},
		{"max_input_vars_40_token_in_url_add_group_members", true, nil},
	} {
		site := newSite2(t, moodletest.WithMaxInputVars(40))
		token := site2Token(site, tc.name)
		proto := "wstoken=" + token + "&wsfunction=core_group_add_group_members&moodlewsrestformat=json"
		target, body := site.URL()+moodletest.Endpoint, proto+members
		if tc.inURL {
			target, body = target+"?"+proto, strings.TrimPrefix(members, "&")
		}
		var seen moodletest.Request
		site.OnRequest(func(r moodletest.Request) { seen = r })
		resp, err := http.Post(target, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, _, want := readError(t, tc.name)
		if resp.StatusCode != 200 || strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
			t.Errorf("%s: HTTP %d %s, want %s", tc.name, resp.StatusCode, got, want)
		}
		kept, _ := site.GroupMembers(16)
		if !slices.Equal(kept, tc.wantKept) {
			t.Errorf("%s: group 16 holds %v, want %v", tc.name, kept, tc.wantKept)
		}
		if seen.Dropped == 0 {
			t.Errorf("%s: the site does not say it dropped variables", tc.name)
		}
	}
}
