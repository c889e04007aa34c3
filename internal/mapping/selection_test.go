package mapping_test

import (
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/mapping"
)

// A selection becomes the filter the command line means, and a selection
// that names nothing to (de)activate, or too much, is refused with the
// option at fault.
func TestSelection(t *testing.T) {
	f, err := mapping.Selection{Instance: "main", Year: "2025/26", Kind: "section"}.ListFilter("inactive")
	if err != nil || f.AcademicYear != "2025" || f.Instance != "main" || f.Kind != "section" || f.Active == nil || *f.Active {
		t.Errorf("ListFilter: %+v, %v", f, err)
	}
	if f, err := (mapping.Selection{}).ListFilter("all"); err != nil || !f.Empty() {
		t.Errorf("ListFilter(all) of nothing: %+v, %v", f, err)
	}
	if f, global, err := (mapping.Selection{All: true}).ActivationFilter(); err != nil || !global || !f.Empty() {
		t.Errorf("--all alone: %+v global=%v, %v", f, global, err)
	}
	if f, global, err := (mapping.Selection{All: true, Instance: "main"}).ActivationFilter(); err != nil || global || f.Instance != "main" {
		t.Errorf("--all --instance: %+v global=%v, %v", f, global, err)
	}
	if f, global, err := (mapping.Selection{ID: 7}).ActivationFilter(); err != nil || global || f.ID != 7 {
		t.Errorf("--id 7: %+v global=%v, %v", f, global, err)
	}
	for _, c := range []struct {
		sel   mapping.Selection
		state string // "" : ActivationFilter
		want  string
	}{
		{mapping.Selection{Year: "next"}, "all", `--year "next"`},
		{mapping.Selection{}, "some", "--state"},
		{mapping.Selection{Year: "next", All: true}, "", `--year "next"`},
		{mapping.Selection{Kind: "section", All: true}, "", "activate/deactivate select by"},
		{mapping.Selection{Origin: "manual", ID: 1}, "", "activate/deactivate select by"},
		{mapping.Selection{Instance: "main"}, "", "say which mappings"},
		{mapping.Selection{All: true, Course: "C1"}, "", "--all cannot be combined"},
		{mapping.Selection{All: true, ID: 2}, "", "--all cannot be combined"},
	} {
		var err error
		if c.state != "" {
			_, err = c.sel.ListFilter(c.state)
		} else {
			_, _, err = c.sel.ActivationFilter()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %q: got %v, want an error with %q", c.sel, c.state, err, c.want)
		}
	}
}
