package wire

import (
	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/cmis"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/config"
)

// SQLRead is how a SQL source (sources.sits, sources.cmis) is read: its
// driver, DSN, schema and limits.
func SQLRead(s *config.SQLSource) sqlsource.Config {
	return sqlsource.Config{Driver: s.Driver, DSN: s.DSN, Schema: s.Schema,
		MaxBadRowsPercent: s.MaxBadRowsPercent, FetchSize: s.FetchSize, Timeout: s.Timeout}
}

// SITS is the student record source's options (sources.sits).
func SITS(s *config.SQLSource) sits.Options {
	return sits.Options{Read: SQLRead(s), System: s.System, MinYear: s.MinYear, Term: s.Term}
}

// NewSITS builds the SITS source of sources.sits.
func NewSITS(s *config.SQLSource, opts extract.Options) (*sqlsource.Source, error) {
	return sits.New(SITS(s), opts)
}

// NewCMIS builds the CMIS source of sources.cmis.
func NewCMIS(s *config.SQLSource, opts extract.Options) (*sqlsource.Source, error) {
	return cmis.New(SQLRead(s), opts)
}
