package moodle

import (
	"errors"

	"github.com/mimwarehouse/mim/moodle"
)

// SelectionError says the operator asked for an entity this site cannot
// give: an unknown name, or a heavy one its configuration leaves off.
type SelectionError struct{ Msg string }

func (e *SelectionError) Error() string { return e.Msg }

// fatal reports whether err means no further call of the same function can
// succeed on this site (a bad token, a function the service lacks, a URL
// that is not Moodle's), so reading more courses would only repeat it.
func fatal(err error) bool {
	if k, ok := moodle.KindOf(err); ok {
		return k == moodle.InvalidToken || k == moodle.AccessException || k == moodle.FunctionMissing
	}
	var se *moodle.StatusError
	return errors.As(err, &se)
}
