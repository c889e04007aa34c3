package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ProfileField maps one column of mart.exp_profile_fields to a custom
// profile field of the Moodle sites, written as the column
// profile_field_<shortname> of the profile CSV (tool_uploaduser).
type ProfileField struct {
	// Column is the mart column (see ProfileColumns).
	Column string `yaml:"column"`
	// Shortname is the profile field's shortname on the site.
	Shortname string `yaml:"shortname"`
	// Type is text (default), textarea, menu, checkbox or date.
	Type string `yaml:"type"`
	// Options are a menu's option lines exactly as on the site; values
	// outside them are refused instead of silently blanked by Moodle.
	Options []string `yaml:"options"`
	// Required refuses a row whose value is empty (an empty cell clears the
	// field on the site).
	Required bool `yaml:"required"`
}

// ProfileColumns are the columns of mart.exp_profile_fields a profile
// field may be fed from.
var ProfileColumns = []string{
	"student_number", "programme_name", "programme_code", "ug_pg",
	"approved_modules", "preapproval_modules", "year_level",
}

var profileShortname = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func (e *Exports) validateFeeds(ps *problems) {
	seen := map[string]bool{}
	for i, f := range e.ProfileFields {
		path := fmt.Sprintf("exports.profile_fields[%d]", i)
		if !slices.Contains(ProfileColumns, f.Column) {
			ps.add(path+".column", 0, "%q is not a column of mart.exp_profile_fields (%s)", f.Column, strings.Join(ProfileColumns, ", "))
		}
		switch {
		case !profileShortname.MatchString(f.Shortname):
			ps.add(path+".shortname", 0, "%q is not a profile field shortname (letters, digits, _)", f.Shortname)
		case seen[strings.ToLower(f.Shortname)]:
			ps.add(path+".shortname", 0, "%q is listed twice (a repeated column makes Moodle reject the whole file)", f.Shortname)
		}
		seen[strings.ToLower(f.Shortname)] = true
		switch f.Type {
		case "", "text", "textarea", "checkbox", "date":
			if len(f.Options) > 0 {
				ps.add(path+".options", 0, "only menu fields have options")
			}
		case "menu":
			for j, o := range f.Options {
				if o == "" || strings.TrimSpace(o) != o || strings.ContainsAny(o, "\r\n") {
					ps.add(fmt.Sprintf("%s.options[%d]", path, j), 0, "%q is not a menu option line", o)
				}
			}
		default:
			ps.add(path+".type", 0, "%q is not one of text, textarea, menu, checkbox, date", f.Type)
		}
	}
	if strings.HasPrefix(e.Deliver, "sftp://") && e.SFTP.KeyFile == "" && e.SFTP.Password.IsZero() {
		ps.add("exports.sftp", 0, "sftp delivery needs key_file or password")
	}
}

func (n *Notify) validateTLS(ps *problems) {
	if s := n.SMTP; s.Host != "" && !s.StartTLS && !isLoopback(s.Host) {
		ps.add("notify.smtp.starttls", 0, "must be true: STARTTLS is required unless the relay is on loopback")
	}
}
