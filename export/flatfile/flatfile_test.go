package flatfile

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriterAndValidateAgree(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	start := time.Date(2025, 9, 22, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 1, 17, 0, 0, 0, 0, time.UTC)
	good := []Line{
		{Op: Add, Role: "student", User: "21004567", Course: "GEOG0012-2025-T1"},
		{Op: Add, Role: "editingteacher", User: "S004211", Course: "GEOG0012-2025-T1", Start: start, End: end},
		{Op: Del, Role: "student", User: "20987654", Course: "GEOG0012-2025-T1"},
		{Op: Add, Role: "student", User: "21004567", Course: "X", Start: start},
	}
	for _, l := range good {
		if err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []Line{
		{Op: "remove", Role: "student", User: "1", Course: "C"},
		{Op: Add, Role: "Student", User: "1", Course: "C"},
		{Op: Add, Role: "student", User: "", Course: "C"},
		{Op: Add, Role: "student", User: "1,2", Course: "C"},
		{Op: Add, Role: "student", User: "1", Course: "C;D"},
		{Op: Add, Role: "student", User: "O'Neill", Course: "C"},
		{Op: Add, Role: "student", User: " 1", Course: "C"},
		{Op: Add, Role: "student", User: "1", Course: "C\n"},
		{Op: Add, Role: "student", User: "1", Course: "C", Start: end, End: start},
	} {
		if err := w.Write(l); !IsFieldError(err) {
			t.Errorf("%+v: %v, want a field error", l, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "add,student,21004567,GEOG0012-2025-T1\n" +
		"add,editingteacher,S004211,GEOG0012-2025-T1,1758499200,1768608000\n" +
		"del,student,20987654,GEOG0012-2025-T1\n" +
		"add,student,21004567,X,1758499200,0\n"
	if b.String() != want {
		t.Errorf("file:\n%s\nwant:\n%s", b.String(), want)
	}
	st, err := Validate(strings.NewReader(b.String()))
	if err != nil || st != (Stats{Adds: 3, Dels: 1}) || w.Stats() != st {
		t.Errorf("validate: %+v %v (writer %+v)", st, err, w.Stats())
	}
	for _, bad := range []string{
		"\ufeffadd,student,1,C\n", "add,student,1\n", "add,student,1,C,5\n", "remove,student,1,C\n",
		"add,student, 1,C\n", "add;student;1;C\n", "add,student,1,C,10,5\n", "add,student,1,C,x,0\n", "\n",
		"'add','student','1','C'\n",
	} {
		if _, err := Validate(strings.NewReader(bad)); err == nil {
			t.Errorf("%q validated", bad)
		}
	}
}
