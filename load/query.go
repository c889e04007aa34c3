package load

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// The loader owns raw.record: the questions other packages ask of what
// raw holds are answered here, so that no stage reads another's tables.

// InstanceCount is how many live records one source instance holds in raw.
type InstanceCount struct {
	Source, Instance string
	Live             int64
}

// LiveCounts counts the live records (not marked deleted) of every source
// instance raw holds, ordered by source and instance.
func LiveCounts(ctx context.Context, q warehouse.Querier) ([]InstanceCount, error) {
	rows, err := q.Query(ctx, `SELECT source, instance, count(*) FILTER (WHERE deleted_run IS NULL)
		FROM raw.record GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("counting raw records: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InstanceCount, error) {
		var c InstanceCount
		err := r.Scan(&c.Source, &c.Instance, &c.Live)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting raw records: %w", err)
	}
	return out, nil
}

// IsLive says whether raw holds key of entity id as a live record (landed
// and not marked deleted).
func IsLive(ctx context.Context, q warehouse.Querier, id extract.EntityID, key string) (bool, error) {
	var live bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM raw.record
		WHERE source = $1 AND instance = $2 AND entity = $3 AND key = $4 AND deleted_run IS NULL)`,
		id.Source, id.Instance, id.Entity, key).Scan(&live)
	if err != nil {
		return false, fmt.Errorf("looking up %s key %q in raw: %w", id, key, err)
	}
	return live, nil
}

// Empty removes every record of raw, its history and its scopes' reads, so
// that the next extraction reads every source for the first time (a
// benchmark's first night).
func Empty(ctx context.Context, q warehouse.Querier) error {
	if _, err := q.Exec(ctx, `TRUNCATE raw.record, raw.record_history, raw.scope_read`); err != nil {
		return fmt.Errorf("emptying raw: %w", err)
	}
	return nil
}

// MoodleSample is what the last extraction of a Moodle site landed, for
// aiming checks at real data: some users (not the first two, Moodle's
// guest and administrator) and the course with the most enrolments in
// groups (then the most enrolments).
type MoodleSample struct {
	// UserIDs are up to 30 users, lowest ids first.
	UserIDs []int64
	// CourseID is the course; Enrolled how many enrolments of it raw holds,
	// GroupMembers how many of them are in a group.
	CourseID     int64
	Enrolled     int
	GroupMembers int
}

// SampleMoodleSite reads the MoodleSample of the site called instance. A
// site never extracted gives an empty sample, not an error.
func SampleMoodleSite(ctx context.Context, q warehouse.Querier, instance string) (MoodleSample, error) {
	var s MoodleSample
	rows, err := q.Query(ctx, `SELECT key::bigint FROM raw.record
		WHERE source = 'moodle' AND instance = $1 AND entity = 'users' AND deleted_run IS NULL AND key ~ '^[0-9]+$' AND key::bigint > 2
		ORDER BY key::bigint LIMIT 30`, instance)
	if err == nil {
		s.UserIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return s, fmt.Errorf("reading the users the last extraction of %s landed: %w", instance, err)
	}
	err = q.QueryRow(ctx, `SELECT scope::bigint, count(*), count(*) FILTER (WHERE jsonb_array_length(coalesce(payload->'groups', '[]')) > 0)
		FROM raw.record WHERE source = 'moodle' AND instance = $1 AND entity = 'enrolments' AND deleted_run IS NULL AND scope ~ '^[0-9]+$'
		GROUP BY scope ORDER BY count(*) FILTER (WHERE payload ? 'groups') DESC, count(*) DESC, scope LIMIT 1`, instance).
		Scan(&s.CourseID, &s.Enrolled, &s.GroupMembers)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("reading the enrolments the last extraction of %s landed: %w", instance, err)
	}
	return s, nil
}
