package ims

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the Writer returns (wrapped, with the record they concern).
var (
	// ErrOrder: elements were written out of the order Moodle needs
	// (properties, persons, groups, memberships).
	ErrOrder = errors.New("element out of order")
	// ErrPersonDelete: a person with recstatus 3. Moodle matches it by
	// username and deletes the account, so MIM never writes one.
	ErrPersonDelete = errors.New("a person deletion (recstatus 3) is never written: Moodle would delete the account by username")
	// ErrGroupDelete: a group with recstatus 3, which hides the course.
	ErrGroupDelete = errors.New("a group deletion (recstatus 3) is never written: Moodle would hide the course")
	// ErrDuplicate: a second membership for one course, or the same user and
	// role twice in one membership.
	ErrDuplicate = errors.New("duplicate")
	// ErrClosed: the Writer was used after Close or after a write failed.
	ErrClosed = errors.New("IMS writer is closed")
)

// FieldError is a value the Writer refuses, named by its record and field.
type FieldError struct {
	Element string // properties, person, group, membership, member
	Record  string // which one: "course GEOG0012-2025-T1, user 21004567"
	Field   string // e.g. given, idnumber, roletype
	Reason  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("writing IMS %s (%s): field %s %s", e.Element, e.Record, e.Field, e.Reason)
}

// Problem is one rule a file breaks, at a line (1-based; 0 when the problem
// concerns the whole file).
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Msg
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
}

// maxProblems bounds the list a ValidationError keeps; the rest are counted.
const maxProblems = 100

// ValidationError lists what is wrong with an IMS file.
type ValidationError struct {
	Problems []Problem
	Omitted  int // problems found beyond the first maxProblems
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.Omitted
	fmt.Fprintf(&b, "IMS file breaks %d rule", n)
	if n != 1 {
		b.WriteString("s")
	}
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", n-10)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *ValidationError) add(line int, format string, args ...any) {
	if len(e.Problems) >= maxProblems {
		e.Omitted++
		return
	}
	e.Problems = append(e.Problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}
