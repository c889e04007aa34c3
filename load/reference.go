package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// The raw store's shape, for measuring the loader against its physical
// reference: PostgreSQL's COPY of the same rows into a table like the raw
// store's (`mim bench`, internal/bench).

// CreateReferenceTable creates table (in an existing schema), empty, with
// the raw store's columns, indexes and constraints.
func CreateReferenceTable(ctx context.Context, q warehouse.Querier, table pgx.Identifier) error {
	if _, err := q.Exec(ctx, `CREATE TABLE `+table.Sanitize()+` (LIKE raw.record INCLUDING ALL)`); err != nil {
		return fmt.Errorf("creating the reference table %s: %w", table, err)
	}
	return nil
}

// CopyColumns are the columns a line of AppendCopyRecord fills, in order.
var CopyColumns = []string{"source", "instance", "entity", "key", "scope", "payload", "hash", "first_run", "changed_run", "seen_run"}

// AppendCopyRecord appends r, of entity id, as one line of COPY's text
// format in CopyColumns' order, exactly as the loader stores it: the
// canonical payload, its SHA-256, and run as the first, changed and seen
// run.
func AppendCopyRecord(dst []byte, id extract.EntityID, r extract.Record, run int64) ([]byte, error) {
	canon, err := Canonical(nil, r.Payload)
	if err != nil {
		return dst, fmt.Errorf("record %s of %s: %w", r.Key, id, err)
	}
	sum := sha256.Sum256(canon)
	for _, s := range []string{id.Source, id.Instance, id.Entity, r.Key, r.Scope} {
		dst = appendCopyText(dst, []byte(s))
		dst = append(dst, '\t')
	}
	dst = appendCopyText(dst, canon)
	dst = append(dst, "\t\\\\x"...)
	dst = hex.AppendEncode(dst, sum[:])
	for range 3 {
		dst = append(dst, '\t')
		dst = strconv.AppendInt(dst, run, 10)
	}
	return append(dst, '\n'), nil
}

// appendCopyText escapes b for COPY's text format.
func appendCopyText(dst, b []byte) []byte {
	for _, c := range b {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// ForgetSource removes every record of source from the raw store, with its
// history and its scopes' reads: a scratch source (a benchmark's) leaves
// nothing behind.
func ForgetSource(ctx context.Context, q warehouse.Querier, source string) error {
	for _, table := range []string{"raw.record", "raw.record_history", "raw.scope_read"} {
		if _, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE source = $1`, source); err != nil {
			return fmt.Errorf("removing the records of source %s from %s: %w", source, table, err)
		}
	}
	return nil
}
