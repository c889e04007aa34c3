package oneroster

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func set(t *testing.T, modes map[string]Mode, rows map[string][]Row) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, modes, "MIM test", time.Date(2025, 9, 22, 1, 5, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Files {
		if modes[f] == Absent || modes[f] == "" {
			continue
		}
		if err := w.Begin(f); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows[f] {
			if err := w.Write(r); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func bulkRows() map[string][]Row {
	return map[string][]Row{
		"orgs":             {{SourcedID: "institution", Fields: []string{"Example University", "school", "main", ""}}},
		"academicSessions": {{SourcedID: "ay-2025", Fields: []string{"2025/26", "schoolYear", "2025-08-01", "2026-07-31", "", "2026"}}},
		"courses":          {{SourcedID: "GEOG0012|2025", Fields: []string{"ay-2025", "Geography", "GEOG0012", "", "institution", "", ""}}},
		"classes": {{SourcedID: "GEOG0012-A6U-T1-2025", Fields: []string{"Geography T1", "", "GEOG0012|2025", "GEOG0012-A6U-T1-2025",
			"scheduled", "", "institution", "ay-2025", "", "", ""}}},
		"users": {{SourcedID: "21004567", Fields: []string{"true", "mokaf21", "", "Mia", "O'Kafor", "", "21004567", "m@example.ac.uk",
			"", "", "", "", "", "", "", "", "", "", "institution", ""}}},
		"roles": {{SourcedID: "role-21004567", Fields: []string{"21004567", "primary", "student", "", "", "institution", ""}}},
		"enrollments": {{SourcedID: "GEOG0012-A6U-T1-2025|21004567|student", Fields: []string{"GEOG0012-A6U-T1-2025", "institution",
			"21004567", "student", "false", "2025-09-22", "2026-01-16"}}},
	}
}

func TestBulkSetPassesAndEveryRuleBites(t *testing.T) {
	bulk := map[string]Mode{}
	for _, f := range Files {
		bulk[f] = Bulk
	}
	data, err := set(t, bulk, bulkRows())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Validate(data)
	if err != nil || sum.Rows["enrollments"] != 1 || sum.Modes["lineItems"] != Absent {
		t.Fatalf("%+v %v", sum, err)
	}
	// The writer refuses what the spec does not allow.
	for name, mutate := range map[string]func(map[string][]Row){
		"org type":         func(r map[string][]Row) { r["orgs"][0].Fields[1] = "university" },
		"class type":       func(r map[string][]Row) { r["classes"][0].Fields[4] = "lecture" },
		"enrollment role":  func(r map[string][]Row) { r["enrollments"][0].Fields[3] = "learner" },
		"required title":   func(r map[string][]Row) { r["courses"][0].Fields[1] = "" },
		"date":             func(r map[string][]Row) { r["enrollments"][0].Fields[5] = "22/09/2025" },
		"schoolYear":       func(r map[string][]Row) { r["academicSessions"][0].Fields[5] = "2025/26" },
		"status in bulk":   func(r map[string][]Row) { r["users"][0].Status = Active },
		"enabledUser":      func(r map[string][]Row) { r["users"][0].Fields[0] = "yes" },
		"field count":      func(r map[string][]Row) { r["roles"][0].Fields = r["roles"][0].Fields[:3] },
		"line break":       func(r map[string][]Row) { r["users"][0].Fields[3] = "Mia\nX" },
		"session reversed": func(r map[string][]Row) { r["academicSessions"][0].Fields[3] = "2025-01-01" },
	} {
		rows := bulkRows()
		mutate(rows)
		if _, err := set(t, bulk, rows); !IsRowError(err) {
			t.Errorf("%s: %v, want a row error", name, err)
		}
	}
	// Validate catches what a writer could not: a dangling reference.
	rows := bulkRows()
	rows["enrollments"][0].Fields[2] = "99999999"
	data, err = set(t, bulk, rows)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(data); err == nil || !strings.Contains(err.Error(), `userSourcedId "99999999" is not a sourcedId of users.csv`) {
		t.Errorf("dangling reference: %v", err)
	}
}

func TestDeltaCarriesStatusAndDate(t *testing.T) {
	modes := map[string]Mode{"enrollments": Delta}
	data, err := set(t, modes, map[string][]Row{"enrollments": {
		{SourcedID: "C|1|student", Status: ToBeDeleted, Fields: []string{"C", "institution", "1", "student", "false", "", ""}},
		{SourcedID: "C|2|student", Status: Active, Fields: []string{"C", "institution", "2", "student", "false", "", ""}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Validate(data)
	if err != nil || sum.Modes["enrollments"] != Delta || sum.Modes["users"] != Absent || sum.Rows["enrollments"] != 2 {
		t.Fatalf("%+v %v", sum, err)
	}
	if _, err := set(t, modes, map[string][]Row{"enrollments": {{SourcedID: "x", Fields: make([]string, 7)}}}); !IsRowError(err) {
		t.Errorf("a delta row without status: %v", err)
	}
}
