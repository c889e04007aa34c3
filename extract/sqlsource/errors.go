package sqlsource

import "fmt"

// BadRowsError fails an entity whose unreadable rows exceed the configured
// share: something is wrong with the source as a whole, and landing the rest
// would make the missing rows look deleted.
type BadRowsError struct {
	Entity     string
	Bad, Rows  int64
	MaxPercent float64
}

func (e *BadRowsError) Error() string {
	return fmt.Sprintf("%d of %d rows of %s could not be read (%.2f%%, more than max_bad_rows_percent %g); nothing was landed",
		e.Bad, e.Rows, e.Entity, float64(e.Bad)*100/float64(e.Rows), e.MaxPercent)
}
