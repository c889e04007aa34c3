package moodle

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// ReadFunctions are the functions MIM's extraction may call.
var ReadFunctions = []string{
	"core_webservice_get_site_info",
	"core_course_get_categories",
	"core_course_get_courses",
	"core_course_get_courses_by_field",
	"core_user_get_users",
	"core_user_get_users_by_field",
	"core_enrol_get_enrolled_users",
	"core_enrol_get_users_courses",
	"core_enrol_get_course_enrolment_methods",
	"gradereport_user_get_grade_items",
	"core_completion_get_course_completion_status",
	"core_group_get_course_groups",
	"core_group_get_course_groupings",
	"core_group_get_groupings",
	"core_group_get_group_members",
}

// GroupWriteFunctions are the functions group sync writes with.
var GroupWriteFunctions = []string{
	"core_group_create_groups",
	"core_group_create_groupings",
	"core_group_assign_grouping",
	"core_group_unassign_grouping",
	"core_group_add_group_members",
	"core_group_delete_group_members",
	"core_group_delete_groups",
	"core_group_delete_groupings",
}

// GroupAdoptFunctions are the functions `mim groups adopt` writes with: it
// gives a teacher's group (and grouping) MIM's idnumber.
var GroupAdoptFunctions = []string{
	"core_group_update_groups",
	"core_group_update_groupings",
}

// SiteInfo is core_webservice_get_site_info's answer: who the site says it
// is and what the token may call.
type SiteInfo struct {
	SiteName  string          `json:"sitename"`
	Username  string          `json:"username"`
	UserID    Int             `json:"userid"`
	SiteURL   string          `json:"siteurl"`
	Release   string          `json:"release"`
	Version   Text            `json:"version"`
	SiteID    Int             `json:"siteid"`
	SiteAdmin Bool            `json:"userissiteadmin"`
	Functions []Function      `json:"functions"`
	Raw       json.RawMessage `json:"-"` // the answer as Moodle sent it
}

// Function is one function of the token's service.
type Function struct {
	Name    string `json:"name"`
	Version Text   `json:"version"`
}

// Has reports whether the token's service includes function.
func (s *SiteInfo) Has(function string) bool {
	return slices.ContainsFunc(s.Functions, func(f Function) bool { return f.Name == function })
}

// Missing returns those of functions the token's service lacks.
func (s *SiteInfo) Missing(functions ...string) []string {
	var out []string
	for _, f := range functions {
		if !s.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// SiteInfo asks the site who it is and remembers the answer (see Site).
func (c *Client) SiteInfo(ctx context.Context) (*SiteInfo, error) {
	var raw json.RawMessage
	if err := c.Call(ctx, "core_webservice_get_site_info", nil, &raw); err != nil {
		return nil, err
	}
	info := &SiteInfo{}
	if err := decodeInto("core_webservice_get_site_info", raw, info); err != nil {
		return nil, err
	}
	info.Raw = raw
	c.site.Store(info)
	return info, nil
}

// Site returns the last SiteInfo fetched, or nil.
func (c *Client) Site() *SiteInfo { return c.site.Load() }

// CheckSite fetches SiteInfo and fails with a *SiteError when the live
// siteurl is not the configured URL (a staging MIM pointed at production,
// or a restored database pointing at the wrong site) or when the token's
// service lacks any of required.
func (c *Client) CheckSite(ctx context.Context, required ...string) (*SiteInfo, error) {
	info, err := c.SiteInfo(ctx)
	if err != nil {
		return nil, err
	}
	missing := info.Missing(required...)
	if !SameSite(c.siteURL, info.SiteURL) || len(missing) > 0 {
		return info, &SiteError{Configured: c.siteURL, Live: info.SiteURL, Missing: missing}
	}
	return info, nil
}

// SameSite reports whether two site URLs name the same Moodle: scheme and
// host compared without case, default ports and trailing slashes ignored,
// paths compared exactly.
func SameSite(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimSpace(a))
	ub, err2 := url.Parse(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		host := strings.ToLower(u.Hostname())
		port := u.Port()
		scheme := strings.ToLower(u.Scheme)
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		if port != "" {
			host += ":" + port
		}
		return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
	}
	return norm(ua) == norm(ub)
}
