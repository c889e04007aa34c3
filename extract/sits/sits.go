// Package sits extracts the SITS student record views (UCL_BDO_V_MOODLE_*)
// into raw, one full-snapshot entity per view, through extract/sqlsource: the
// same SELECTs run on Oracle in production and on a PostgreSQL copy in tests.
// docs/contracts.md §1 lists the entities, keys and payload typing.
package sits

import (
	"embed"
	"fmt"

	"github.com/mimwarehouse/mim/docs"
	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
)

//go:embed sql/*.sql sql/powercampus/*.sql
var queries embed.FS

func query(name string) string { return sqlsource.Query(queries, "sits", name) }

// Entities are the SITS views in extraction order (reference data first).
func Entities() []sqlsource.Entity {
	const v = "UCL_BDO_V_MOODLE_"
	return []sqlsource.Entity{
		{Name: "faculties", SQL: query("faculties"), Key: []string{"dpt_fac_code"}, Reads: []string{v + "FACULTIES"}},
		{Name: "department", SQL: query("department"), Key: []string{"dpt_bdo_id", "dpt_code"}, KeyFunc: departmentKey,
			Reads: []string{v + "DEPARTMENT"}},
		{Name: "programme", SQL: query("programme"), Key: []string{"prog_code", "dpt_bdo_id"}, Reads: []string{v + "PROGRAMME"}},
		{Name: "route", SQL: query("route"), Key: []string{"route_code", "prog_code", "dpt_bdo_id"}, Reads: []string{v + "ROUTE"}},
		{Name: "student", SQL: query("student"), Key: []string{"student_code"}, Reads: []string{v + "STUDENT"}},
		{Name: "assignment", SQL: query("assignment"), Key: []string{"student_code", "route_code", "prog_code",
			"dpt_bdo_id", "dpt_fac_code", "post_undergrad", "course_year"}, Reads: []string{v + "ASSIGNMENT"}},
		{Name: "module_inst", SQL: query("module_inst"), Key: []string{"mod_inst_bdo_id"},
			Types: map[string]sqlsource.Type{"mod_credits": sqlsource.Number}, Reads: []string{v + "MODULE_INST"}},
		{Name: "module_struc", SQL: query("module_struc"), Key: []string{"mod_occ_bdo_id"},
			Types: map[string]sqlsource.Type{"mod_occ_start_date": sqlsource.Date, "mod_occ_end_date": sqlsource.Date},
			Reads: []string{v + "MODULE_STRUC"}},
		{Name: "student_enrl", SQL: query("student_enrl"), Key: []string{"student_code", "mod_occ_bdo_id", "mod_dpt_bdo_id"},
			Reads: []string{v + "STUDENT_ENRL", v + "MODULE_STRUC"}},
	}
}

// PowerCampusEntities read a PowerCampus (Campus6, SQL Server) database's
// tables into the SITS entities the marts need (docs/sources.md): people
// as students, courses of a term as module instances, sections as module
// occurrences, TRANSCRIPTDETAIL as registrations. Their SELECTs keep to SQL
// that SQL Server and PostgreSQL both take.
func PowerCampusEntities() []sqlsource.Entity {
	pc := func(name string) string { return query("powercampus/" + name) }
	return []sqlsource.Entity{
		{Name: "student", SQL: pc("student"), Key: []string{"student_code"},
			Reads: []string{"PEOPLE", "ACADEMIC", "EMAILADDRESS", "PERSONUSER"}},
		{Name: "module_inst", SQL: pc("module_inst"), Key: []string{"mod_inst_bdo_id"},
			Types: map[string]sqlsource.Type{"mod_credits": sqlsource.Number}, Reads: []string{"SECTIONS", "SECTIONPER", "PEOPLE"}},
		{Name: "module_struc", SQL: pc("module_struc"), Key: []string{"mod_occ_bdo_id"},
			Types: map[string]sqlsource.Type{"mod_occ_start_date": sqlsource.Date, "mod_occ_end_date": sqlsource.Date},
			Reads: []string{"SECTIONS"}},
		{Name: "student_enrl", SQL: pc("student_enrl"), Key: []string{"student_code", "mod_occ_bdo_id", "mod_dpt_bdo_id"},
			Reads: []string{"TRANSCRIPTDETAIL", "PEOPLE"}},
	}
}

// Contract is the source contract (docs/sources.md) the SITS, CMIS and
// PowerCampus relations are checked against.
func Contract() sqlsource.Contract { return sqlsource.MustContract(docs.SourceContract) }

// departmentKey is dpt_bdo_id, or "code:<dpt_code>" when the id is empty
// (UCL's department dump defaults the id to ”).
func departmentKey(get func(string) (string, bool)) (string, error) {
	if id, null := get("dpt_bdo_id"); !null && id != "" {
		return id, nil
	}
	code, null := get("dpt_code")
	if null || code == "" {
		return "", fmt.Errorf("key columns dpt_bdo_id and dpt_code are both empty")
	}
	return "code:" + code, nil
}

// MinYearParam renders a minimum academic start year as the SELECTs'
// :min_year ("0000" for no limit).
func MinYearParam(year int) string { return fmt.Sprintf("%04d", year) }

// Options are how the student record is read (sources.sits).
type Options struct {
	// Read is the connection and its limits; New sets the source name,
	// parameters and contract.
	Read sqlsource.Config
	// System is "sits" (the SITS views, the default) or "powercampus" (the
	// PowerCampus tables read into the same entities).
	System string
	// MinYear drops academic years before it (0: none).
	MinYear int
	// Term keeps only this ACADEMIC_TERM (PowerCampus only; empty: every
	// term of the kept years).
	Term string
}

// New builds the SITS source: the SITS views, or with system powercampus
// the PowerCampus tables.
func New(o Options, opts extract.Options) (*sqlsource.Source, error) {
	sc := o.Read
	sc.Source = "sits"
	sc.Params = map[string]any{"min_year": MinYearParam(o.MinYear)}
	sc.Contract = Contract()
	entities := Entities()
	if o.System == "powercampus" {
		entities = PowerCampusEntities()
		sc.Params["term"] = o.Term
	}
	return sqlsource.New(sc, entities, opts)
}
