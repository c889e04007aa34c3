package mapping

import (
	"errors"
	"fmt"
	"strconv"
)

// Selection is what a command line says of the mappings it acts on:
// filters as typed (the academic year as a start year, e.g. 2025; the
// state active, inactive or all) and, to activate or deactivate, --all.
type Selection struct {
	Instance, Course, Kind, Year, Origin string
	ID                                   int64
	All                                  bool
}

// Filter is s as a Filter (the state aside); a year that is not an
// academic year is an error naming --year.
func (s Selection) Filter() (Filter, error) {
	f := Filter{Instance: s.Instance, Course: s.Course, Kind: s.Kind, Origin: s.Origin, ID: s.ID}
	if s.Year != "" {
		y, ok := StartYear(s.Year)
		if !ok {
			return f, fmt.Errorf("--year %q is not an academic year such as 2025", s.Year)
		}
		f.AcademicYear = strconv.Itoa(y)
	}
	return f, nil
}

// ListFilter is s as a Filter of the mappings in state: active, inactive
// or all.
func (s Selection) ListFilter(state string) (Filter, error) {
	f, err := s.Filter()
	if err != nil {
		return f, err
	}
	switch state {
	case "all":
	case "active", "inactive":
		on := state == "active"
		f.Active = &on
	default:
		return f, errors.New("--state must be active, inactive or all")
	}
	return f, nil
}

// ActivationFilter is s as the Filter of the mappings to activate or
// deactivate, which are named by --all, --course or --id (and narrowed by
// site and year only); global is --all with no filter, which also opens
// or freezes staff edits.
func (s Selection) ActivationFilter() (f Filter, global bool, err error) {
	if f, err = s.Filter(); err != nil {
		return f, false, err
	}
	switch {
	case s.Origin != "" || s.Kind != "":
		return f, false, errors.New("activate/deactivate select by --all, --course, --id, --instance and --year")
	case !s.All && s.Course == "" && s.ID == 0:
		return f, false, errors.New("say which mappings: --all, --course IDNUMBER or --id N")
	case s.All && (s.Course != "" || s.ID != 0):
		return f, false, errors.New("--all cannot be combined with --course or --id")
	}
	return f, s.All && f.Empty(), nil
}
