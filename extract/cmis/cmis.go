// Package cmis extracts the CMIS timetabling views (teaching groups, their
// students and tutors) into raw, one full-snapshot entity per view, through
// extract/sqlsource. CMIS student codes are kept as read (9 digits, zero
// padded); staging derives the SITS form.
package cmis

import (
	"embed"

	"github.com/mimwarehouse/mim/docs"
	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
)

//go:embed sql/*.sql
var queries embed.FS

func query(name string) string { return sqlsource.Query(queries, "cmis", name) }

// Entities are the CMIS views in extraction order.
func Entities() []sqlsource.Entity {
	return []sqlsource.Entity{
		{Name: "module_group", SQL: query("module_group"), Key: []string{"group_bdo_id"},
			Types: map[string]sqlsource.Type{"group_num": sqlsource.Number, "capacity": sqlsource.Number},
			Reads: []string{"CMIS_MOODLE_V_MODULE_GROUP"}},
		{Name: "group_member", SQL: query("group_member"), Key: []string{"group_bdo_id", "student_code"},
			Reads: []string{"CMIS_MOODLE_V_GROUP_MEMBER"}},
		{Name: "group_tutor", SQL: query("group_tutor"), Key: []string{"group_bdo_id", "staff_upi"},
			Reads: []string{"CMIS_MOODLE_V_GROUP_TUTOR"}},
	}
}

// New builds the CMIS source read through read (its connection and
// limits; the source name and contract are set here).
func New(read sqlsource.Config, opts extract.Options) (*sqlsource.Source, error) {
	sc := read
	sc.Source = "cmis"
	sc.Contract = sqlsource.MustContract(docs.SourceContract)
	return sqlsource.New(sc, Entities(), opts)
}
