// Package pipeline runs MIM's stages as one run: extract (every source at
// once) → transform → export and group sync, under one ledger run and the
// run lock, so that a stage's failure stops what depends on it and nothing
// else. It also writes the run's summary, shaped like the incumbent's job
// mail, from what the ledger recorded.
//
// The package knows no stage: a run is a list of Tasks, each a Runner with
// the tasks it needs. internal/app builds the tasks from the stages that
// exist (internal/night, the night's composition root).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
)

// Runner does one task's work under the run. prior holds the outcomes of
// the tasks this one needs or waits for, so a task can act on what they did
// (the export leaves out the sites whose extract failed).
type Runner interface {
	Run(ctx context.Context, run *ledger.Run, prior Outcomes) Report
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, run *ledger.Run, prior Outcomes) Report

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, run *ledger.Run, prior Outcomes) Report {
	return f(ctx, run, prior)
}

// Task is one unit of a run.
type Task struct {
	// Name is unique in a run: extract:sits, extract:moodle:main,
	// transform, export, groups:main, catalog.
	Name string
	// Stage, Source and Instance say which ledger steps are this task's
	// (for the summary) and label its metrics. Empty Source or Instance
	// matches any.
	Stage, Source, Instance string
	// Needs are tasks that must end succeeded or partial for this one to
	// run; when one does not, this task is skipped and says why. A need
	// that is not in the run is ignored, so a run may hold only some stages.
	Needs []string
	// After are tasks that must have ended, whatever their outcome.
	After []string
	Runner
}

// Report is what a task's Runner says it did.
type Report struct {
	// Status is a ledger status (succeeded, partial, failed, refused, or
	// skipped when the task found nothing it could do; its Lines say why);
	// empty means ledger.Outcome(Err).
	Status string
	Err    error
	// Lines describe what the task did, for the terminal and the mail.
	Lines []string
	// Value is the task's own structured result (what a stage read, wrote,
	// held or refused), for callers that need more than the lines.
	Value any
}

// Outcome is how a task ended.
type Outcome struct {
	Task, Stage, Source, Instance string
	// Status is a ledger status, or ledger.Skipped.
	Status            string
	Err               error
	Started, Finished time.Time
	Lines             []string
	// Value is the structured result the task's Report carried.
	Value any
}

// OK says whether the task ended succeeded or partial.
func (o Outcome) OK() bool { return o.Status == ledger.Succeeded || o.Status == ledger.Partial }

// Elapsed is how long the task ran (zero if skipped).
func (o Outcome) Elapsed() time.Duration {
	if o.Started.IsZero() {
		return 0
	}
	return o.Finished.Sub(o.Started)
}

// Outcomes are finished tasks by name.
type Outcomes map[string]Outcome

// Option configures a Pipeline.
type Option func(*Pipeline)

// WithLogger logs each task's start and end.
func WithLogger(l *slog.Logger) Option { return func(p *Pipeline) { p.logger = l } }

// WithProgress writes a line as each task starts and ends.
func WithProgress(w io.Writer) Option { return func(p *Pipeline) { p.progress = w } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(p *Pipeline) { p.now = now } }

// Pipeline is a set of tasks ready to run.
type Pipeline struct {
	tasks    []Task
	logger   *slog.Logger
	progress io.Writer
	now      func() time.Time
	outMu    sync.Mutex
}

// New checks the tasks: unique names, a Runner each, no cycles. Needs and
// After naming tasks that are not in the run are dropped.
func New(tasks []Task, opts ...Option) (*Pipeline, error) {
	p := &Pipeline{logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(p)
	}
	index := map[string]int{}
	for i, t := range tasks {
		if t.Name == "" || t.Runner == nil {
			return nil, fmt.Errorf("pipeline: task %d has no name or no runner", i)
		}
		if _, dup := index[t.Name]; dup {
			return nil, fmt.Errorf("pipeline: task %q is listed twice", t.Name)
		}
		index[t.Name] = i
	}
	for _, t := range tasks {
		keep := func(names []string) []string {
			var out []string
			for _, n := range names {
				if _, ok := index[n]; ok && n != t.Name && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
			return out
		}
		t.Needs, t.After = keep(t.Needs), keep(t.After)
		p.tasks = append(p.tasks, t)
	}
	// A cycle would wait forever: refuse it.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("pipeline: tasks wait for each other: %s", strings.Join(append(path, name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		t := p.tasks[index[name]]
		for _, d := range append(slices.Clone(t.Needs), t.After...) {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, t := range p.tasks {
		if err := visit(t.Name, nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Tasks returns the tasks in the order given.
func (p *Pipeline) Tasks() []Task { return slices.Clone(p.tasks) }

// Result is what a run of the pipeline did.
type Result struct {
	RunID    int64
	Started  time.Time
	Finished time.Time
	// Outcomes are in the order the tasks were given.
	Outcomes []Outcome
}

// Run runs every task as soon as what it waits for has ended, all under
// run. A task whose needs did not succeed is skipped and recorded as a
// skipped step; an interrupted run skips what has not started.
func (p *Pipeline) Run(ctx context.Context, run *ledger.Run) *Result {
	res := &Result{RunID: run.ID, Started: p.now(), Outcomes: make([]Outcome, len(p.tasks))}
	done := map[string]chan struct{}{}
	for _, t := range p.tasks {
		done[t.Name] = make(chan struct{})
	}
	var mu sync.Mutex
	finished := Outcomes{}
	var wg sync.WaitGroup
	for i, t := range p.tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[t.Name])
			for _, d := range append(slices.Clone(t.Needs), t.After...) {
				<-done[d]
			}
			mu.Lock()
			prior := Outcomes{}
			var blocked []string
			for _, d := range append(slices.Clone(t.Needs), t.After...) {
				prior[d] = finished[d]
			}
			for _, d := range t.Needs {
				if o := finished[d]; !o.OK() {
					blocked = append(blocked, d+" "+o.Status)
				}
			}
			mu.Unlock()
			var o Outcome
			switch {
			case len(blocked) > 0:
				o = p.skip(ctx, run, t, "not run: "+strings.Join(blocked, ", "))
			case ctx.Err() != nil:
				o = p.skip(ctx, run, t, "not run: the run was interrupted")
			default:
				o = p.runTask(ctx, run, t, prior)
			}
			mu.Lock()
			finished[t.Name] = o
			mu.Unlock()
			res.Outcomes[i] = o
		}()
	}
	wg.Wait()
	res.Finished = p.now()
	return res
}

func (p *Pipeline) runTask(ctx context.Context, run *ledger.Run, t Task, prior Outcomes) (o Outcome) {
	o = Outcome{Task: t.Name, Stage: t.Stage, Source: t.Source, Instance: t.Instance, Started: p.now()}
	p.say("%s started", t.Name)
	p.logger.Debug("task started", "run_id", run.ID, "stage", t.Stage, "task", t.Name)
	rep := func() (rep Report) {
		defer func() {
			if r := recover(); r != nil {
				rep = Report{Err: fmt.Errorf("%s panicked: %v", t.Name, r)}
			}
		}()
		return t.Run(ctx, run, prior)
	}()
	o.Finished, o.Err, o.Lines, o.Value = p.now(), rep.Err, rep.Lines, rep.Value
	if rep.Status == ledger.Skipped && rep.Err == nil {
		// The task decided there was nothing it could do (every site it
		// serves failed its extract): it is a skip, recorded as such.
		s := p.skip(ctx, run, t, strings.Join(rep.Lines, "; "))
		s.Started, s.Finished = o.Started, o.Finished
		return s
	}
	o.Status = rep.Status
	if o.Status == "" {
		o.Status = ledger.Outcome(rep.Err)
	}
	if o.Err != nil && o.Status == ledger.Succeeded {
		// A runner that reports success with an error has a bug; the error wins.
		o.Status = ledger.Outcome(o.Err)
	}
	elapsed := o.Elapsed().Round(time.Millisecond)
	if o.Err != nil {
		p.say("%s %s after %s: %v", t.Name, o.Status, elapsed, o.Err)
		p.logger.Warn("task ended", "run_id", run.ID, "stage", t.Stage, "task", t.Name, "status", o.Status, "seconds", elapsed.Seconds(), "error", o.Err)
	} else {
		p.say("%s %s in %s", t.Name, o.Status, elapsed)
		p.logger.Info("task ended", "run_id", run.ID, "stage", t.Stage, "task", t.Name, "status", o.Status, "seconds", elapsed.Seconds())
	}
	return o
}

// skip records a task that did not run as a skipped ledger step.
func (p *Pipeline) skip(ctx context.Context, run *ledger.Run, t Task, why string) Outcome {
	o := Outcome{Task: t.Name, Stage: t.Stage, Source: t.Source, Instance: t.Instance, Status: ledger.Skipped, Lines: []string{why}}
	p.say("%s skipped: %s", t.Name, why)
	p.logger.Warn("task skipped", "run_id", run.ID, "stage", t.Stage, "task", t.Name, "reason", why)
	// The ledger gets the skip even when the run was interrupted.
	wctx := context.WithoutCancel(ctx)
	step, err := run.Step(wctx, ledger.StepKey{Stage: t.Stage, Source: t.Source, Instance: t.Instance})
	if err == nil {
		err = step.Finish(wctx, ledger.Skipped, ledger.Counts{}, map[string]string{"task": t.Name, "reason": why}, nil)
	}
	if err != nil {
		p.logger.Error("recording a skipped task", "run_id", run.ID, "task", t.Name, "error", err)
	}
	return o
}

func (p *Pipeline) say(format string, args ...any) {
	if p.progress == nil {
		return
	}
	p.outMu.Lock()
	defer p.outMu.Unlock()
	fmt.Fprintf(p.progress, "%s %s\n", p.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Status is the run's ledger status: succeeded when every task succeeded;
// refused when a guard refused; failed when nothing succeeded; partial
// otherwise (something failed or was skipped, or a task was partial).
func (r *Result) Status() string {
	var ok, bad, refused, partial int
	for _, o := range r.Outcomes {
		switch o.Status {
		case ledger.Succeeded:
			ok++
		case ledger.Partial:
			ok++
			partial++
		case ledger.Refused:
			refused++
		default:
			bad++
		}
	}
	switch {
	case refused > 0:
		return ledger.Refused
	case bad == 0 && partial == 0:
		return ledger.Succeeded
	case ok == 0:
		return ledger.Failed
	}
	return ledger.Partial
}

// Err joins the errors of the tasks that failed or were refused, each
// named by its task; nil when none did.
func (r *Result) Err() error {
	var errs []error
	for _, o := range r.Outcomes {
		if o.Err != nil {
			errs = append(errs, &TaskError{Task: o.Task, Err: o.Err})
		}
	}
	return errors.Join(errs...)
}

// ExitCode is 3 when a guard refused something (whatever else failed: a
// refusal needs a person), 1 when a task failed, else 0.
func (r *Result) ExitCode() int {
	code := 0
	for _, o := range r.Outcomes {
		switch {
		case o.Status == ledger.Refused:
			return 3
		case o.Err != nil:
			code = 1
		}
	}
	return code
}

// Outcome returns the named task's outcome.
func (r *Result) Outcome(task string) (Outcome, bool) {
	for _, o := range r.Outcomes {
		if o.Task == task {
			return o, true
		}
	}
	return Outcome{}, false
}

// TaskError is one task's failure.
type TaskError struct {
	Task string
	Err  error
}

func (e *TaskError) Error() string { return e.Task + ": " + e.Err.Error() }
func (e *TaskError) Unwrap() error { return e.Err }

// RunError is a run that did not succeed: it carries the exit code (3 for
// a guard's refusal) so internal/app exits with it.
type RunError struct {
	RunID  int64
	Status string
	Code   int
	Err    error
}

func (e *RunError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("run %d %s", e.RunID, e.Status)
	}
	return fmt.Sprintf("run %d %s: %v", e.RunID, e.Status, e.Err)
}
func (e *RunError) Unwrap() error { return e.Err }

// ExitCode is the run's exit code.
func (e *RunError) ExitCode() int { return e.Code }

// AsError returns nil for a run that exits 0, else a *RunError.
func (r *Result) AsError() error {
	code := r.ExitCode()
	if code == 0 {
		return nil
	}
	return &RunError{RunID: r.RunID, Status: r.Status(), Code: code, Err: r.Err()}
}
