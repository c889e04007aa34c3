package serve

import (
	"context"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Start readies the daemon before it listens: it warns when the warehouse
// schema is behind this mim (scheduled runs would fail until it is
// migrated) and, when scheduled, builds the scheduler of jobs, recording
// the times missed while no daemon ran (a schedule that does not parse is
// a *ScheduleError). Not scheduled (--no-schedule), it runs nothing: sched
// is nil and upcoming lists no times.
func Start(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, jobs []Job, scheduled bool) (sched *schedule.Scheduler, upcoming func() []schedule.Upcoming, err error) {
	if n, err := warehouse.Pending(ctx, pool); err != nil {
		return nil, nil, err
	} else if n > 0 {
		logger.Warn("the warehouse schema is behind this mim: scheduled runs will fail until `mim migrate`", "pending", n)
	}
	if !scheduled {
		return nil, func() []schedule.Upcoming { return nil }, nil
	}
	host, _ := os.Hostname()
	if sched, err = (Jobs{Pool: pool, Logger: logger, Host: host}).Scheduler(ctx, jobs); err != nil {
		return nil, nil, err
	}
	return sched, sched.Upcoming, nil
}
