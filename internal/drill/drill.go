// Package drill stages the disasters MIM exists to survive (an emptied
// view, a gutted answer from Moodle, an unreadable row, a staging copy
// pointed at production, a restored production warehouse, ...) on copies of
// the built-in demo world, runs the next night as cron would, and says for
// each which guard caught it and how many writes reached Moodle: none, or
// the drill failed. It is what a service owner runs before trusting MIM.
//
// The world is built once in a scratch database (a synthetic university,
// simulated Moodle sites, two good nights so it is quiet); each drill runs
// on its own copy of that warehouse and fresh simulators holding the sites
// as the world left them, so drills never see each other's damage.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// DefaultDSN is the scratch database of the drill world unless
// MIM_DRILL_DATABASE_URL names another; the drills' copies are made beside
// it (its name followed by _d1, _d2, ...).
const DefaultDSN = "postgres://mim:mim@127.0.0.1:5432/mim_drill?sslmode=disable"

// DSNVariable names the environment variable that overrides DefaultDSN.
const DSNVariable = "MIM_DRILL_DATABASE_URL"

// Environment labels the drill world's warehouse and its sites: the world
// plays production. A database labelled anything else is never reset.
const Environment = "drill"

// Night runs one nightly run (`mim run`, every stage) with cfg, writing
// its own report to out, and returns what happened.
type Night func(ctx context.Context, cfg *config.Config, out io.Writer) (*pipeline.Result, error)

// Drill is one disaster.
type Drill struct {
	Name string
	// Disaster says what goes wrong, in a service owner's words.
	Disaster string
	// Stage breaks the drill's world before its night; it may change the
	// configuration the night runs with. Nil: nothing is broken (the quiet
	// night the drills are measured against).
	Stage func(ctx context.Context, w *World) error
	// Writes: the disaster is in writes the night must make (PHP cutting
	// a request short); the drill holds when Contained says they were
	// caught and put right, however many writes reached Moodle.
	Writes bool
	// Claim is the environment the drill's warehouse copy is claimed for
	// (default Environment); Unclaimed leaves the copy as restored.
	Claim     string
	Unclaimed bool
	// Contained checks what guard events cannot show (a bad row's key kept
	// its last good version): it says what caught the disaster, or that it
	// was not contained.
	Contained func(ctx context.Context, w *World, runID int64) (caught string, ok bool, err error)
}

// Options choose what a drill session does.
type Options struct {
	// DSN is the drill world's scratch database (default: the variable
	// MIM_DRILL_DATABASE_URL, else DefaultDSN).
	DSN string
	// Night runs a night; required.
	Night Night
	// Only limits the session to these drills (the quiet night always runs).
	Only []string
	// Log, if set, receives every night's own report.
	Log io.Writer
}

// DSN is the scratch database o names.
func (o Options) dsn() string {
	switch {
	case o.DSN != "":
		return o.DSN
	case os.Getenv(DSNVariable) != "":
		return os.Getenv(DSNVariable)
	}
	return DefaultDSN
}

// Result is what one drill did.
type Result struct {
	Drill Drill
	// Status and Exit are the night's run status and exit code.
	Status string
	Exit   int
	// Writes are the writes that reached Moodle: web-service write
	// requests, and changes an IMS file delivered that night made when
	// Moodle's task applied it.
	Writes, WebServiceWrites, IMSChanges int
	// ProfileChanges are the accounts a profile CSV delivered that night
	// updated when uploaded (not counted in Writes: profile values are
	// no guard's subject).
	ProfileChanges int
	// Caught says which guards caught the disaster.
	Caught []string
	// Held: a guard caught it and nothing reached Moodle (the quiet night:
	// nothing was caught and nothing written).
	Held    bool
	Err     error // the drill could not be staged or run
	Elapsed time.Duration
	runID   int64
}

// Report is a whole session.
type Report struct {
	Sites   int
	Results []Result
	Elapsed time.Duration
}

// AllHeld reports whether every drill held.
func (r *Report) AllHeld() bool {
	for _, res := range r.Results {
		if !res.Held {
			return false
		}
	}
	return len(r.Results) > 0
}

// FailedError says which drills did not hold; it exits 1.
type FailedError struct{ Drills []string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d drill(s) did not hold: %s", len(e.Drills), strings.Join(e.Drills, ", "))
}

// Names lists the drills' names, in order.
func Names() []string {
	var out []string
	for _, d := range Drills() {
		out = append(out, d.Name)
	}
	return out
}

// Run builds the world, runs the quiet night and every drill, and returns
// what each did. The error is for the session (the world could not be
// built); each drill's own failure is in its Result.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Night == nil {
		return nil, errors.New("drill: Options.Night is required")
	}
	drills := Drills()
	if len(o.Only) > 0 {
		var sel []Drill
		for _, name := range o.Only {
			i := slices.IndexFunc(drills, func(d Drill) bool { return d.Name == name })
			if i < 0 {
				return nil, &UnknownError{Name: name}
			}
			sel = append(sel, drills[i])
		}
		drills = sel
	}
	start := time.Now()
	b, err := buildWorld(ctx, o)
	if err != nil {
		return nil, err
	}
	defer b.close()
	rep := &Report{Sites: len(b.in.Sites)}
	all := append([]Drill{quietNight()}, drills...)
	rep.Results = make([]Result, len(all))
	// Several drills at a time: each has its own copy and its own sites, and
	// a night waits on PostgreSQL as much as it computes.
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rep.Results[i] = b.drill(ctx, i+1, all[i])
			}
		}()
	}
	for i := range all {
		if ctx.Err() != nil {
			rep.Results[i] = Result{Drill: all[i], Err: ctx.Err()}
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep, ctx.Err()
}

// parallel is how many drills run at once.
const parallel = 3

// UnknownError names a drill that does not exist.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("there is no drill %q (drills: %s)", e.Name, strings.Join(Names(), ", "))
}

// ExitCode makes an unknown drill a usage error.
func (e *UnknownError) ExitCode() int { return 2 }

// World is one drill's copy of the world: its warehouse, its simulated
// sites and the configuration its night runs with.
type World struct {
	Drill string
	DSN   string
	Pool  *pgxpool.Pool
	// Cfg is the configuration the night runs with; Stage may change it.
	Cfg   *config.Config
	Sites map[string]*moodletest.Site
	In    *synth.Institution
	// Out is the night's exports.dir.
	Out  string
	base *world
	// student is the one whose row a drill made unreadable, and the
	// enrolments Moodle was told of before.
	student        string
	studentCourses int
	// site, group and groupCourse are the group a drill had CMIS fill,
	// with writes new members.
	site, group string
	groupCourse int64
	writes      int
}

// drill runs one drill on a fresh copy of the world.
func (b *world) drill(ctx context.Context, n int, d Drill) Result {
	start := time.Now()
	res := Result{Drill: d}
	w, err := b.copyFor(ctx, n, d)
	fmt.Fprintf(b.log, "\n==== drill %s: its copy of the world is ready (%s)\n", d.Name, time.Since(start).Round(time.Millisecond))
	if w != nil {
		defer w.close(b)
	}
	if err == nil && d.Stage != nil {
		if err = d.Stage(ctx, w); err != nil {
			err = fmt.Errorf("staging the disaster: %w", err)
		}
	}
	if err == nil {
		err = w.night(ctx, b.log, &res)
	}
	if err == nil {
		res.Caught, err = w.caught(ctx, res.runID)
	}
	if err == nil && d.Contained != nil {
		var caught string
		var ok bool
		caught, ok, err = d.Contained(ctx, w, res.runID)
		if caught != "" {
			res.Caught = append(res.Caught, caught)
		}
		if !ok {
			res.Caught = nil
		}
	}
	res.Err = err
	res.Elapsed = time.Since(start)
	switch {
	case err != nil:
	case d.Stage == nil:
		res.Held = res.Writes == 0 && len(res.Caught) == 0 && res.Exit == 0
	default:
		res.Held = (res.Writes == 0 || d.Writes) && len(res.Caught) > 0
	}
	return res
}

// night runs the drill's night, counts the writes that reached Moodle and
// lets each site apply the files the night delivered.
func (w *World) night(ctx context.Context, log io.Writer, res *Result) error {
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "\n==== drill %s: the night\n", w.Drill)
	r, err := w.base.o.Night(ctx, w.Cfg, log)
	if r == nil {
		return fmt.Errorf("the night did not start: %w", err)
	}
	res.runID, res.Status, res.Exit = r.RunID, r.Status(), r.ExitCode()
	for _, s := range w.Sites {
		res.WebServiceWrites += s.Writes()
	}
	if res.IMSChanges, res.ProfileChanges, err = applyFiles(w.Cfg, w.base.order, w.Sites, w.Out); err != nil {
		return err
	}
	res.Writes = res.WebServiceWrites + res.IMSChanges
	return nil
}

// applyFiles lets each site apply the files delivered in out as Moodle
// would: its IMS task reads the IMS file, and tool_uploaduser the profile
// CSV. It returns the changes each made.
func applyFiles(cfg *config.Config, order []string, sites map[string]*moodletest.Site, out string) (ims, profile int, err error) {
	for _, name := range order {
		path := filepath.Join(out, feeds.IMSFileName(name))
		if _, err := os.Stat(path); err == nil {
			site, _ := cfg.Site(name)
			rep, err := sites[name].IMSCron(moodletest.IMSSettings{RestrictTarget: site.IMSTarget, Unenrol: true}).Run(path)
			if err != nil {
				return ims, profile, fmt.Errorf("applying the IMS file of site %s as Moodle would: %w", name, err)
			}
			ims += rep.Enrolled + rep.DatesChanged + rep.RolesAdded + rep.Unenrolled + rep.Suspended + rep.UsersDeleted
		}
		f, err := os.Open(filepath.Join(out, feeds.ProfileFileName(name)))
		if err != nil {
			continue // no profile CSV delivered: nothing to upload
		}
		rep, err := sites[name].UploadUsers(f)
		f.Close()
		if err != nil {
			return ims, profile, fmt.Errorf("uploading the profile CSV of site %s as Moodle would: %w", name, err)
		}
		profile += rep.Updated
	}
	return ims, profile, nil
}

// Write prints the session for a service owner: one line per drill.
func (r *Report) Write(out io.Writer) error {
	fmt.Fprintf(out, `mim drill: each disaster MIM guards against is staged on its own copy of the demo world
(a synthetic university and %d simulated Moodle sites, after two good nights), then the next
night runs as cron would. A drill holds when a guard catches the disaster and not one write
reaches Moodle (web-service writes, and the changes a delivered IMS file makes); a drill of
writes cut short holds when every lost write is found, sent again and reported.

`, r.Sites)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tDRILL\tDISASTER\tCAUGHT BY\tTHE NIGHT\tWRITES TO MOODLE")
	held, drills, total := 0, 0, 0
	for _, res := range r.Results {
		verdict, caught, night, writes := "FAILED", "nothing", fmt.Sprintf("%s, exit %d", res.Status, res.Exit), fmt.Sprint(res.Writes)
		if res.Held {
			verdict = "held"
		}
		if len(res.Caught) > 0 {
			caught = res.Caught[0]
			if len(res.Caught) > 1 {
				caught += fmt.Sprintf(" (and %d more)", len(res.Caught)-1)
			}
		}
		switch {
		case res.Err != nil:
			caught, night, writes = "could not run: "+res.Err.Error(), "-", "?"
		case res.Drill.Stage == nil:
			caught = "-"
			if res.Held {
				verdict = "quiet"
			}
		default:
			drills++
			if res.Held {
				held++
			}
		}
		total += res.Writes
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", verdict, res.Drill.Name, res.Drill.Disaster, caught, night, writes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d of %d drills held; %d writes reached Moodle (%s). Exit 3 is a guard's refusal: a person must look.\n",
		held, drills, total, r.Elapsed.Round(100*time.Millisecond))
	if !r.AllHeld() {
		fmt.Fprintln(out, "A drill that did not hold is a guard that would not have saved a real night: do not trust this build until it does.")
	}
	return nil
}

// Err is nil when every drill held.
func (r *Report) Err() error {
	var failed []string
	for _, res := range r.Results {
		if !res.Held {
			failed = append(failed, res.Drill.Name)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &FailedError{Drills: failed}
}
