package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Merge chooses how the merge list (tool_mergeusers) is made and carried
// through.
type Merge struct {
	// Keep are the rules, in order, that choose the account a student's
	// other accounts are merged into (see MergeKeepRules); the first rule
	// that tells two accounts apart decides. Default
	// DefaultMergeKeep. newest (or oldest) is added at the end when
	// neither is listed, so that the choice is always made.
	Keep []string `yaml:"keep"`
	// CarryIDNumber moves the student code from a merged-away account to
	// the kept one through the profile CSV once Moodle shows the merge
	// done (default true): tool_mergeusers moves no idnumber.
	CarryIDNumber *bool `yaml:"carry_idnumber"`
}

// MergeKeepRules are the rules exports.merge.keep may list.
var MergeKeepRules = map[string]string{
	"sis_username": "the username is the student's SITS username",
	"main_auth":    "the account uses the site's main authentication (moodle[].main_auth)",
	"idnumber":     "the account carries the student code",
	"active":       "the account is not suspended",
	"last_access":  "the account was used last",
	"newest":       "the newest account (highest user id)",
	"oldest":       "the oldest account (lowest user id)",
}

// DefaultMergeKeep is exports.merge.keep when it is not set.
var DefaultMergeKeep = []string{"sis_username", "main_auth", "idnumber", "active", "last_access", "newest"}

// Carry reports whether the student code is carried to kept accounts.
func (m Merge) Carry() bool { return m.CarryIDNumber == nil || *m.CarryIDNumber }

func (m *Merge) applyDefaults() {
	if len(m.Keep) == 0 {
		m.Keep = slices.Clone(DefaultMergeKeep)
	}
	if !slices.Contains(m.Keep, "newest") && !slices.Contains(m.Keep, "oldest") {
		m.Keep = append(m.Keep, "newest")
	}
}

func (m *Merge) validate(ps *problems) {
	seen := map[string]bool{}
	for i, r := range m.Keep {
		path := fmt.Sprintf("exports.merge.keep[%d]", i)
		switch {
		case MergeKeepRules[r] == "":
			names := make([]string, 0, len(MergeKeepRules))
			for n := range MergeKeepRules {
				names = append(names, n)
			}
			slices.Sort(names)
			ps.add(path, 0, "%q is not a keep rule (%s)", r, strings.Join(names, ", "))
		case seen[r]:
			ps.add(path, 0, "%q is listed twice", r)
		}
		seen[r] = true
	}
	if seen["newest"] && seen["oldest"] {
		ps.add("exports.merge.keep", 0, "lists both newest and oldest: only the first can ever decide")
	}
}

// authName is a Moodle authentication plugin name (auth_<name>).
var authName = regexp.MustCompile(`^[a-z0-9_]+$`)

// pgRoleName is a PostgreSQL role name MIM checks grants of.
var pgRoleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

func (m *MoodleSite) validateMerge(path string, ps *problems) {
	if m.MainAuth != "" && !authName.MatchString(m.MainAuth) {
		ps.add(path+".main_auth", 0, "%q is not an authentication plugin name (ldap, saml2, oidc, cas, manual, ...)", m.MainAuth)
	}
	if m.TutorDBUser != "" && !pgRoleName.MatchString(m.TutorDBUser) {
		ps.add(path+".tutor_db_user", 0, "%q is not a PostgreSQL role name", m.TutorDBUser)
	}
}
