// Package feeds runs one export: for every configured Moodle site it reads
// the marts, guards the result against the last successful publish, writes
// each feed (IMS Enterprise, profile CSV, tutor table, merge list) whole,
// checks it, archives it, delivers it, and only then records what Moodle was
// told, in the transaction that also spends a threshold override. A site or
// feed that is refused or fails leaves its last file and state as they were
// and does not stop the others.
package feeds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Feed names one feed, as ctl.export_run.feed records it.
type Feed string

// The feeds, in the order an export writes them (docs/formats.md §5).
const (
	IMS       Feed = "ims"
	Flatfile  Feed = "flatfile"
	Profile   Feed = "profile_csv"
	Tutor     Feed = "tutor"
	Merge     Feed = "merge"
	OneRoster Feed = "oneroster"
)

// All lists every feed in export order. A site takes one of IMS and
// Flatfile (moodle[].enrolment_feed).
var All = []Feed{IMS, Flatfile, Profile, Tutor, Merge, OneRoster}

// ParseFeed reads a feed name as the command line gives it (ims, profile,
// tutor, merge; profile_csv too).
func ParseFeed(s string) (Feed, error) {
	switch s {
	case "ims":
		return IMS, nil
	case "flatfile":
		return Flatfile, nil
	case "oneroster":
		return OneRoster, nil
	case "profile", "profile_csv":
		return Profile, nil
	case "tutor":
		return Tutor, nil
	case "merge":
		return Merge, nil
	}
	return "", fmt.Errorf("%q is not a feed (ims, flatfile, profile, tutor, merge, oneroster)", s)
}

// Stage is the ledger stage of an export's steps.
const Stage = "export"

// recordTimeout bounds what is recorded after a feed's own context ended.
const recordTimeout = 10 * time.Second

// Statuses of a feed's Result (ctl.export_run.status, and skipped).
const (
	StatusPublished = "published"
	StatusEmpty     = "empty" // nothing to tell Moodle: no file written
	StatusRefused   = "refused"
	StatusFailed    = "failed"
	StatusDryRun    = "dry_run"
	StatusSkipped   = "skipped" // the feed does not apply (no mart, not configured)
)

// Options choose what one export does.
type Options struct {
	// DryRun computes everything, guards included, and writes nothing: no
	// file, no state, no guard event, no override spent.
	DryRun bool
	// Full re-asserts every membership of the IMS target instead of the
	// delta against what Moodle was last told.
	Full bool
	// Instances limits the export to these sites; empty means every
	// configured site.
	Instances []string
	// Feeds limits the export to these feeds; empty means all.
	Feeds []Feed
}

// Exporter runs exports for one configuration and warehouse.
type Exporter struct {
	pool   *pgxpool.Pool
	cfg    *Config
	mailer notify.Mailer
	logger *slog.Logger
	now    func() time.Time
	by     string
	open   func(ctx context.Context) (deliver.Target, error)

	targetMu sync.Mutex
	target   deliver.Target

	// Test hooks: called after each IMS member is written (n so far), and
	// before a file is delivered.
	afterMember   func(n int) error
	beforeDeliver func(f deliver.File) error
}

// Option changes an Exporter.
type Option func(*Exporter)

// WithMailer sends guard mail through m (default: none; mail is then
// reported as not sent).
func WithMailer(m notify.Mailer) Option { return func(x *Exporter) { x.mailer = m } }

// WithLogger logs through l (default: discard).
func WithLogger(l *slog.Logger) Option { return func(x *Exporter) { x.logger = l } }

// WithClock sets the clock for the files' generation times.
func WithClock(now func() time.Time) Option { return func(x *Exporter) { x.now = now } }

// WithOperator names who runs the export, for the settings history when an
// override is spent (default "mim export").
func WithOperator(by string) Option { return func(x *Exporter) { x.by = by } }

// WithTarget delivers to t instead of opening exports.deliver. The
// Exporter does not close it.
func WithTarget(t deliver.Target) Option {
	return func(x *Exporter) {
		x.open = func(context.Context) (deliver.Target, error) { return nopCloser{t}, nil }
	}
}

type nopCloser struct{ deliver.Target }

func (nopCloser) Close() error { return nil }

// Exists passes on to the wrapped target, when it can tell.
func (n nopCloser) Exists(ctx context.Context, name string) (bool, error) {
	if c, ok := n.Target.(deliver.Consumer); ok {
		return c.Exists(ctx, name)
	}
	return false, fmt.Errorf("the delivery target %s cannot tell whether %s is still there", n.Target, name)
}

// New returns an Exporter over the warehouse pool, set up with cfg.
func New(pool *pgxpool.Pool, cfg *Config, opts ...Option) *Exporter {
	x := &Exporter{pool: pool, cfg: cfg, now: time.Now, by: "mim export",
		logger: slog.New(slog.DiscardHandler)}
	x.open = func(ctx context.Context) (deliver.Target, error) { return deliver.Open(ctx, cfg.Deliver) }
	for _, o := range opts {
		o(x)
	}
	return x
}

// Result is what an export did with one feed of one site.
type Result struct {
	Instance string `json:"instance"`
	Feed     Feed   `json:"feed"`
	Status   string `json:"status"`
	// Counts. IMS: adds, changes (dates), drops (incl. suspensions),
	// held drops, members refused by the writer; profile: rows written;
	// tutor: rows, added and removed pairs; merge: pairs.
	Rows    int64 `json:"rows"`
	Adds    int64 `json:"adds"`
	Changes int64 `json:"changes"`
	Drops   int64 `json:"drops"`
	Held    int64 `json:"held"`
	Skipped int64 `json:"skipped"`
	// Decisions are the guards' decisions in words.
	Decisions []string `json:"decisions,omitempty"`
	// HeldCourses are the courses whose drops were held back.
	HeldCourses []guard.CourseLoss `json:"held_courses,omitempty"`
	// SampleDrops are the first drops sent (or that a dry run would send).
	SampleDrops []string `json:"sample_drops,omitempty"`
	// Notes say what else happened (skipped rows, mail not sent, ...).
	Notes []string `json:"notes,omitempty"`
	// Pending is set when changes of earlier files have not been seen
	// applied for pending_alert_nights extracts or more.
	Pending *Pending `json:"pending,omitempty"`
	// LeftOut names every person and member the writer refused, each with
	// its reason (the feed's ledger step keeps them all).
	LeftOut []string `json:"left_out,omitempty"`
	// The published file, for file feeds.
	File      string `json:"file,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	Archive   string `json:"archive,omitempty"`
	Delivered string `json:"delivered,omitempty"`
	ExportID  int64  `json:"export_id,omitempty"`
	Err       error  `json:"-"`
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Summary is what one export did, feed by feed.
type Summary struct {
	DryRun  bool
	Full    bool
	RunID   int64
	Results []*Result
}

// Err is nil when every feed went out (or had nothing to send); otherwise an
// *Error listing what was refused and what failed.
func (s *Summary) Err() error {
	e := &Error{}
	for _, r := range s.Results {
		switch r.Status {
		case StatusRefused:
			e.Refused = append(e.Refused, r)
		case StatusFailed:
			e.Failed = append(e.Failed, r)
		}
	}
	if len(e.Refused)+len(e.Failed) == 0 {
		return nil
	}
	return e
}

// Run exports. run is the ledger run the steps are recorded under (nil for
// a dry run, which records nothing). The error is for the export as a whole
// (a bad option, an unreachable warehouse); what happened to each feed is in
// the Summary, whose Err says whether any was refused or failed.
func (x *Exporter) Run(ctx context.Context, run *ledger.Run, opts Options) (*Summary, error) {
	if !opts.DryRun && run == nil {
		return nil, errors.New("exporting: a ledger run is required unless it is a dry run")
	}
	sites, err := x.sites(opts.Instances)
	if err != nil {
		return nil, err
	}
	feeds := opts.Feeds
	if len(feeds) == 0 {
		feeds = All
	}
	sum := &Summary{DryRun: opts.DryRun, Full: opts.Full}
	if run != nil {
		sum.RunID = run.ID
	}
	defer x.closeTarget()
	if !opts.DryRun {
		// The first export on a new host: make the output directory (not
		// world-readable: the files carry personal data) rather than fail.
		if err := os.MkdirAll(x.cfg.Deliver.Dir, 0o750); err != nil {
			return sum, fmt.Errorf("creating the export directory (exports.dir): %w", err)
		}
	}
	env := envguard.New(x.cfg.Environment, x.pool)
	for _, site := range sites {
		// The environment guard, rules (1) and (2): the IMS <target> names
		// the site, and Moodle reads the files and the table itself.
		_, gerr := env.Feed(ctx, envguard.Site{Name: site.Name, URL: site.URL, Environment: site.Environment})
		var refused *envguard.RefusedError
		if gerr != nil && !errors.As(gerr, &refused) {
			return sum, gerr
		}
		if refused != nil && !opts.DryRun {
			if err := envguard.Record(ctx, x.pool, sum.RunID, refused); err != nil {
				return sum, err
			}
		}
		for _, f := range All {
			if !slices.Contains(feeds, f) {
				continue
			}
			why := notTaken(site, f)
			if why != "" && len(opts.Feeds) == 0 {
				continue // not a feed of this site
			}
			res := &Result{Instance: site.Name, Feed: f}
			sum.Results = append(sum.Results, res)
			if why != "" {
				res.Status = StatusSkipped
				res.note("%s", why)
				continue
			}
			if refused != nil && opts.DryRun {
				res.Status = StatusDryRun
				res.Decisions = append(res.Decisions, "would be refused: "+refused.Error())
				continue
			}
			if refused != nil {
				res.Status, res.Err = StatusRefused, refused
				res.Decisions = append(res.Decisions, refused.Error())
				if err := x.recordStep(ctx, run, res); err != nil {
					return sum, err
				}
				continue
			}
			if err := x.runFeed(ctx, run, site, f, opts, res); err != nil {
				return sum, err
			}
			if err := ctx.Err(); err != nil {
				return sum, fmt.Errorf("export interrupted: %w", err)
			}
		}
	}
	return sum, nil
}

// notTaken says why a site does not take a feed ("" when it does): a site
// takes its enrolments by IMS or by flat file, and OneRoster only when it
// asks for it.
func notTaken(site *Site, f Feed) string {
	switch {
	case f == IMS && site.EnrolmentFeed == Flatfile, f == Flatfile && site.EnrolmentFeed != Flatfile:
		return "the site takes its enrolments by " + string(site.EnrolmentFeed) + " (moodle[].enrolment_feed)"
	case f == OneRoster && !site.OneRoster:
		return "the site has no OneRoster feed (moodle[].oneroster)"
	}
	return ""
}

// runFeed runs one feed of one site and records its step. Only an error
// that makes going on pointless (the ledger cannot be written) is returned;
// the feed's own failure is in res.
func (x *Exporter) runFeed(ctx context.Context, run *ledger.Run, site *Site, f Feed, opts Options, res *Result) error {
	var err error
	switch f {
	case IMS:
		err = x.runIMS(ctx, run, site, opts, res)
	case Flatfile:
		err = x.runEnrolment(ctx, run, site, opts, res, Flatfile)
	case OneRoster:
		err = x.runOneRoster(ctx, run, site, opts, res)
	case Profile:
		err = x.runProfile(ctx, run, site, opts, res)
	case Tutor:
		err = x.runTutor(ctx, run, site, opts, res)
	case Merge:
		err = x.runMerge(ctx, run, site, opts, res)
	}
	if err != nil {
		res.Err = err
		var re *guard.RefusedError
		if errors.As(err, &re) {
			res.Status = StatusRefused
		} else {
			res.Status = StatusFailed
		}
		if !opts.DryRun && run != nil {
			x.recordFailure(ctx, run.ID, res, opts.Full)
		}
		x.logger.Error("export feed "+res.Status, "run_id", runID(run), "stage", Stage, "instance", site.Name,
			"entity", string(f), "error", err)
	} else {
		x.logger.Info("export feed "+res.Status, "run_id", runID(run), "stage", Stage, "instance", site.Name,
			"entity", string(f), "rows", res.Rows)
	}
	return x.recordStep(ctx, run, res)
}

func runID(run *ledger.Run) int64 {
	if run == nil {
		return 0
	}
	return run.ID
}

// recordFailure keeps a ctl.export_run row for a refused or failed feed
// (a refusal's guard event is written where it is decided).
func (x *Exporter) recordFailure(ctx context.Context, runID int64, res *Result, full bool) {
	// An interrupted export still records how it ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	counts := map[string]any{"error": res.Err.Error(), "adds": res.Adds, "drops": res.Drops, "changes": res.Changes}
	if _, err := insertExportRun(ctx, x.pool, exportRow{runID: runID, instance: res.Instance, feed: res.Feed, full: full,
		status: res.Status, counts: counts}); err != nil {
		res.note("could not record the %s in ctl.export_run: %v", res.Status, err)
	}
}

// recordStep writes the feed's ledger step (none in a dry run).
func (x *Exporter) recordStep(ctx context.Context, run *ledger.Run, res *Result) error {
	if run == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	st, err := run.Step(ctx, ledger.StepKey{Stage: Stage, Instance: res.Instance, Entity: string(res.Feed)})
	if err != nil {
		return err
	}
	status := ledger.Succeeded
	switch res.Status {
	case StatusRefused:
		status = ledger.Refused
	case StatusFailed:
		status = ledger.Failed
	case StatusSkipped:
		status = ledger.Skipped
	}
	// Unchanged: rows of the target that needed nothing sent (drops are
	// rows no longer in it, so they are not among Rows).
	c := ledger.Counts{In: res.Rows, New: res.Adds, Changed: res.Changes, Deleted: res.Drops, Errors: res.Skipped,
		Unchanged: max(res.Rows-res.Adds-res.Changes-res.Skipped, 0)}
	return st.Finish(ctx, status, c, res, res.Err)
}

// sites are the configured sites the export covers.
func (x *Exporter) sites(names []string) ([]*Site, error) {
	if len(names) == 0 {
		out := make([]*Site, len(x.cfg.Sites))
		for i := range x.cfg.Sites {
			out[i] = &x.cfg.Sites[i]
		}
		return out, nil
	}
	var out []*Site
	for _, n := range names {
		s, ok := x.cfg.site(n)
		if !ok {
			known := make([]string, len(x.cfg.Sites))
			for i, m := range x.cfg.Sites {
				known[i] = m.Name
			}
			return nil, &UnknownSiteError{Name: n, Known: known}
		}
		out = append(out, s)
	}
	return out, nil
}

// deliverTarget opens exports.deliver on first use.
func (x *Exporter) deliverTarget(ctx context.Context) (deliver.Target, error) {
	x.targetMu.Lock()
	defer x.targetMu.Unlock()
	if x.target != nil {
		return x.target, nil
	}
	t, err := x.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening the delivery target: %w", err)
	}
	x.target = t
	return t, nil
}

func (x *Exporter) closeTarget() {
	x.targetMu.Lock()
	defer x.targetMu.Unlock()
	if x.target != nil {
		if err := x.target.Close(); err != nil {
			x.logger.Warn("closing the delivery target", "error", err)
		}
		x.target = nil
	}
}

// publishFile archives a written file and delivers it; the caller records
// it afterwards.
func (x *Exporter) publishFile(ctx context.Context, runID int64, instance string, feed Feed, f deliver.File, res *Result) error {
	res.File, res.SHA256, res.Bytes = f.Path, f.SHA256, f.Size
	a := deliver.Archive{Root: x.archiveRoot()}
	e, err := a.Store(ctx, runID, instance, string(feed), f)
	if err != nil {
		return err
	}
	res.Archive = filepath.Join(a.Root, e.Path)
	if x.beforeDeliver != nil {
		if err := x.beforeDeliver(f); err != nil {
			return fmt.Errorf("delivering %s: %w", f.Name, err)
		}
	}
	t, err := x.deliverTarget(ctx)
	if err != nil {
		return err
	}
	d, err := t.Deliver(ctx, f)
	if err != nil {
		return err
	}
	res.Delivered = d.Location
	return nil
}

func (x *Exporter) archiveRoot() string { return filepath.Join(x.cfg.Deliver.Dir, "archive") }

// exportRow is one ctl.export_run row.
type exportRow struct {
	runID              int64
	instance           string
	feed               Feed
	full               bool
	status             string
	file, archive, sum string
	bytes              int64
	students, members  *int64
	counts             map[string]any
}

func insertExportRun(ctx context.Context, q warehouse.Querier, r exportRow) (int64, error) {
	mode := "delta"
	if r.full {
		mode = "full"
	}
	var published *time.Time
	if r.status == StatusPublished || r.status == StatusEmpty {
		now := time.Now()
		published = &now
	}
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO ctl.export_run (run_id, instance, feed, mode, status, file_name, archive_path, sha256, bytes,
			active_students, active_memberships, counts, published_at)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, 0), $10, $11, $12, $13)
		RETURNING export_id`,
		r.runID, r.instance, string(r.feed), mode, r.status, r.file, r.archive, r.sum, r.bytes, r.students, r.members,
		r.counts, published).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("recording the %s feed of site %s in ctl.export_run: %w", r.feed, r.instance, err)
	}
	return id, nil
}

// martExists reports whether a mart relation has been built.
func martExists(ctx context.Context, q pgx.Tx, name string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("looking for %s: %w", name, err)
	}
	return ok, nil
}

// begin opens the feed's transaction: one snapshot for everything the feed
// reads, so the file, the guards and the recorded state agree.
func (x *Exporter) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := x.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("starting the export transaction: %w", err)
	}
	return tx, nil
}

func rollback(ctx context.Context, tx pgx.Tx) { _ = tx.Rollback(context.WithoutCancel(ctx)) }

// siteFile is the path of a site's feed file in exports.dir.
func (x *Exporter) siteFile(name string) string { return filepath.Join(x.cfg.Deliver.Dir, name) }

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinShort(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}
