package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RunLockID is the PostgreSQL advisory lock every changing run holds, so two
// runs (a cron night and a manual rerun, two daemons) can never overlap.
const RunLockID int64 = 0x6d696d5f72756e // "mim_run"

// RunLock is a held run lock. It lives on one dedicated connection: if the
// process dies, PostgreSQL drops the connection and the lock with it.
type RunLock struct {
	conn *pgxpool.Conn
}

// HolderUnknown is a LockedError's Holder when the warehouse cannot say who
// holds the lock.
const HolderUnknown = "holder unknown"

// LockedError says another run holds the lock.
type LockedError struct {
	Holder string // who holds it, as far as the warehouse can tell
}

func (e *LockedError) Error() string {
	return "another MIM run holds the warehouse run lock (" + e.Holder + "); not starting a second one"
}

// AcquireRunLock takes the run lock without waiting, or returns a
// *LockedError naming the run that holds it.
func AcquireRunLock(ctx context.Context, pool *pgxpool.Pool) (*RunLock, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection for the run lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, RunLockID).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("taking the run lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, &LockedError{Holder: describeHolder(ctx, pool)}
	}
	return &RunLock{conn: conn}, nil
}

// describeHolder names the database session holding the lock (the ledger
// adds the run it recorded).
func describeHolder(ctx context.Context, pool *pgxpool.Pool) string {
	var pid int
	var app, addr string
	var since time.Time
	err := pool.QueryRow(ctx, `
		SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
		LIMIT 1`, RunLockID).Scan(&pid, &app, &addr, &since)
	if err != nil {
		return HolderUnknown
	}
	return fmt.Sprintf("database session %d from %s, connected %s", pid, addr, since.Format(time.RFC3339))
}

// Release gives the lock back. It uses its own short context so that a
// cancelled run still releases promptly.
func (l *RunLock) Release() {
	if l == nil || l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, RunLockID); err != nil {
		// The session may be broken; closing it drops the lock anyway.
		_ = l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
	l.conn = nil
}
