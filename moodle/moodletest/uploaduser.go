package moodletest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// UploadReport is what one run of the bulk user upload did.
type UploadReport struct {
	Updated  int      // accounts whose profile fields the file set
	Skipped  int      // rows of usernames the site does not have (warned, not errors)
	Warnings []string // one per skipped row
}

// UploadUsers applies a profile CSV the way tool_uploaduser's CLI does for
// MIM's profile feed (admin/tool/uploaduser/cli/uploaduser.php --uutype=3
// --uuupdatetype=1: update existing users only, values from the file):
// rows are matched by username, profile_field_<shortname> columns set the
// field (an empty cell clears it), a username the site does not have is a
// warning and the run goes on. The standard column idnumber sets the
// account's idnumber, trimmed (an empty cell clears it), row by row in file
// order, as MIM's profile CSV moves a student code after a merge. A column
// the site does not know (a profile field it does not have) aborts the
// whole run before any row, as Moodle does (exit code 1): nothing is
// applied and the error says which.
func (s *Site) UploadUsers(r io.Reader) (*UploadReport, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("uploaduser: reading the header: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	userCol, idCol := -1, -1
	fields := make([]string, len(head)) // shortname by column, "" for username and idnumber
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		short, isField := strings.CutPrefix(h, "profile_field_")
		switch {
		case h == "username":
			userCol = i
		case strings.ToLower(h) == "idnumber":
			idCol = i
		case isField && s.hasField(short):
			fields[i] = short
		default:
			return nil, fmt.Errorf("uploaduser: %q is not a valid field name (no such profile field): the upload stopped, nothing was changed", h)
		}
	}
	if userCol < 0 {
		return nil, errors.New("uploaduser: the file has no username column")
	}
	rep := &UploadReport{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rep, nil
		}
		if err != nil {
			return rep, fmt.Errorf("uploaduser: line %d: %w", line, err)
		}
		id, ok := s.userByName[strings.ToLower(strings.TrimSpace(rec[userCol]))]
		if !ok {
			rep.Skipped++
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("line %d: user %q not updated: it does not exist", line, rec[userCol]))
			continue
		}
		u := *s.users[id]
		u.CustomFields = map[string]string{}
		for k, v := range s.users[id].CustomFields {
			u.CustomFields[k] = v
		}
		if idCol >= 0 {
			u.IDNumber = strings.TrimSpace(rec[idCol])
		}
		for i, short := range fields {
			if short == "" {
				continue
			}
			if v := rec[i]; v == "" {
				delete(u.CustomFields, short)
			} else {
				u.CustomFields[short] = v
			}
		}
		s.putUser(&u)
		rep.Updated++
	}
}

func (s *Site) hasField(short string) bool {
	for _, pf := range s.fields {
		if pf.ShortName == short {
			return true
		}
	}
	return false
}
