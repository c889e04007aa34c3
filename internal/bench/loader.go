package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/load"
)

// LoadConfig sizes MeasureLoad.
type LoadConfig struct {
	Records  int    // records per phase (default 100,000)
	PerScope int    // records per scope, as enrolments per course (default 500)
	Writers  int    // goroutines writing at once, as a Moodle extractor does (default 1)
	Psql     string // the psql binary (default "psql" on PATH)
	TempDir  string // for the reference COPY file and spills (default the system's)
	Log      io.Writer
}

// LoadPhase is one timed load.
type LoadPhase struct {
	Name    string
	Write   time.Duration // Write calls: canonical JSON, hashing, spooling
	Commit  time.Duration // the transaction
	Result  extract.Result
	Copy    time.Duration // psql \copy measured just before this phase
	Ratio   float64       // (Write+Commit) / Copy
	Path    string
	Records int
	Timings string // the commit's phases in ms, from the step's detail
}

// Total is the phase's wall time.
func (p LoadPhase) Total() time.Duration { return p.Write + p.Commit }

// LoadResult compares the loader with psql's \copy of the same rows.
type LoadResult struct {
	Records int
	// CopyRuns are psql `\copy` of the same rows (same columns, canonical
	// payloads, hashes) into an empty table indexed like the raw store: the
	// physical floor, measured just before each phase so that each ratio
	// compares runs made in the same conditions (the machine may be shared).
	CopyRuns   []time.Duration
	Phases     []LoadPhase
	CopyTarget string
}

// MeasureLoad measures the loader against PostgreSQL's COPY on the warehouse pool
// points at: a first load of cfg.Records enrolment-shaped records (about 600
// bytes of JSON each), an unchanged re-run, and a re-run with every tenth
// record changed. It writes into the raw store under source "bench" and removes
// those rows (and its reference table) afterwards; its ledger runs stay, as
// command "bench". Run it on a scratch warehouse, not production's: it
// takes the run lock and loads a million rows.
//
// connString is given to psql (its password through PGPASSWORD, never on the
// command line).
func MeasureLoad(ctx context.Context, pool *pgxpool.Pool, connString string, cfg LoadConfig) (*LoadResult, error) {
	if cfg.Records <= 0 {
		cfg.Records = 100_000
	}
	if cfg.PerScope <= 0 {
		cfg.PerScope = 500
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 1
	}
	if cfg.Psql == "" {
		cfg.Psql = "psql"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &LoadResult{Records: cfg.Records, CopyTarget: "mim_bench.record"}
	if err := loadCleanup(ctx, pool); err != nil {
		return nil, err
	}
	defer loadCleanup(context.WithoutCancel(ctx), pool)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA mim_bench`); err != nil {
		return nil, fmt.Errorf("creating the reference table's schema: %w", err)
	}
	if err := load.CreateReferenceTable(ctx, pool, pgx.Identifier{"mim_bench", "record"}); err != nil {
		return nil, err
	}

	file, err := writeCopyFile(cfg)
	if err != nil {
		return nil, err
	}
	defer os.Remove(file)
	copyOnce := func() error {
		if _, err := pool.Exec(ctx, `TRUNCATE mim_bench.record`); err != nil {
			return fmt.Errorf("emptying the reference table: %w", err)
		}
		d, err := psqlCopy(ctx, cfg.Psql, connString, file)
		if err != nil {
			return err
		}
		res.CopyRuns = append(res.CopyRuns, d)
		fmt.Fprintf(cfg.Log, "psql \\copy of %d rows: %s (%.0f rows/s)\n", cfg.Records, d.Round(time.Millisecond), float64(cfg.Records)/d.Seconds())
		return nil
	}
	phases := []struct {
		name    string
		version func(i int) int
	}{
		{"first load", func(int) int { return 0 }},
		{"unchanged re-run", func(int) int { return 0 }},
		{"10% changed", func(i int) int {
			if i%10 == 0 {
				return 1
			}
			return 0
		}},
	}
	for _, ph := range phases {
		if err := copyOnce(); err != nil {
			return nil, err
		}
		p, err := loadPhase(ctx, pool, cfg, ph.name, ph.version)
		if err != nil {
			return nil, err
		}
		p.Copy = res.CopyRuns[len(res.CopyRuns)-1]
		p.Ratio = p.Total().Seconds() / p.Copy.Seconds()
		res.Phases = append(res.Phases, p)
		fmt.Fprintf(cfg.Log, "%s: write %s, commit %s, total %s (%s %s; %+v)\n", p.Name, p.Write.Round(time.Millisecond),
			p.Commit.Round(time.Millisecond), p.Total().Round(time.Millisecond), p.Path, p.Timings, p.Result)
	}
	return res, nil
}

// Report prints the figures as a small table.
func (r *LoadResult) Report(w io.Writer) {
	fmt.Fprintf(w, "%d enrolment-shaped records; reference: psql \\copy of the same rows into %s, just before each phase\n",
		r.Records, r.CopyTarget)
	fmt.Fprintf(w, "%-18s %10s %10s %10s %10s %8s  %s\n", "phase", "write", "commit", "total", "COPY", "x COPY", "result")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "%-18s %10s %10s %10s %10s %8.2f  new %d, changed %d, unchanged %d, deleted %d (%s)\n", p.Name,
			p.Write.Round(time.Millisecond), p.Commit.Round(time.Millisecond), p.Total().Round(time.Millisecond),
			p.Copy.Round(time.Millisecond), p.Ratio, p.Result.New, p.Result.Changed, p.Result.Unchanged, p.Result.Deleted, p.Path)
	}
}

var benchEntity = extract.EntityID{Source: "bench", Instance: "bench", Entity: "enrolments"}

// loadCleanup removes the reference table and the benchmark's records.
func loadCleanup(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS mim_bench CASCADE`); err != nil {
		return fmt.Errorf("removing earlier benchmark rows: %w", err)
	}
	if err := load.ForgetSource(ctx, pool, benchEntity.Source); err != nil {
		return fmt.Errorf("removing earlier benchmark rows: %w", err)
	}
	return nil
}

func loadKey(i, perScope int) (user, course int) {
	return 100000 + i%perScope + (i/perScope/50)*perScope, 1000 + i/perScope
}

func loadPhase(ctx context.Context, pool *pgxpool.Pool, cfg LoadConfig, name string, version func(int) int) (LoadPhase, error) {
	p := LoadPhase{Name: name, Records: cfg.Records}
	run, err := ledger.Begin(ctx, pool, "bench", "bench", "bench", []string{"load", name})
	if err != nil {
		return p, err
	}
	defer run.Finish(ctx, ledger.Succeeded, 0, nil)
	l := load.New(pool, run, load.WithTempDir(cfg.TempDir))
	w, err := l.Entity(ctx, benchEntity)
	if err != nil {
		return p, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, cfg.Writers)
	for g := 0; g < cfg.Writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := g; i < cfg.Records; i += cfg.Writers {
				user, course := loadKey(i, cfg.PerScope)
				buf = appendBenchPayload(buf[:0], user, course, version(i))
				r := extract.Record{Key: strconv.Itoa(course) + ":" + strconv.Itoa(user), Scope: strconv.Itoa(course), Payload: buf}
				if err := w.Write(ctx, r); err != nil {
					errs[g] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			w.Abort()
			return p, err
		}
	}
	for c := 0; c*cfg.PerScope < cfg.Records; c++ {
		w.ScopeComplete(strconv.Itoa(1000 + c))
	}
	p.Write = time.Since(start)
	start = time.Now()
	p.Result, err = w.Commit(ctx)
	p.Commit = time.Since(start)
	if err != nil {
		return p, err
	}
	p.Path, p.Timings = commitDetail(ctx, pool, run.ID)
	return p, nil
}

// commitDetail is the path the loader's commit took and its phases' times
// (ms), from the step the phase's run recorded; "" when they cannot be read.
func commitDetail(ctx context.Context, pool *pgxpool.Pool, runID int64) (path, timings string) {
	steps, err := ledger.Steps(ctx, pool, runID)
	if err != nil || len(steps) == 0 {
		return "", ""
	}
	var d struct {
		Path    string          `json:"path"`
		Timings json.RawMessage `json:"timings_ms"`
	}
	if json.Unmarshal(steps[0].Detail, &d) != nil {
		return "", ""
	}
	if len(d.Timings) > 0 && string(d.Timings) != "null" {
		timings = string(d.Timings)
	}
	return d.Path, timings
}

// writeCopyFile writes the first-load rows in COPY text format, exactly as
// the loader stores them (canonical payload, its hash, run ids).
func writeCopyFile(cfg LoadConfig) (string, error) {
	f, err := os.CreateTemp(cfg.TempDir, "mim-bench-*.copy")
	if err != nil {
		return "", fmt.Errorf("creating the reference COPY file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i := 0; i < cfg.Records; i++ {
		user, course := loadKey(i, cfg.PerScope)
		r := extract.Record{Key: strconv.Itoa(course) + ":" + strconv.Itoa(user), Scope: strconv.Itoa(course), Payload: benchPayload(user, course, 0)}
		if line, err = load.AppendCopyRecord(line[:0], benchEntity, r, 1); err != nil {
			f.Close()
			return "", err
		}
		if _, err := bw.Write(line); err != nil {
			f.Close()
			return "", fmt.Errorf("writing the reference COPY file: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("writing the reference COPY file: %w", err)
	}
	return f.Name(), f.Close()
}

// psqlCopy runs psql's \copy of file into the reference table and times it.
func psqlCopy(ctx context.Context, psql, connString, file string) (time.Duration, error) {
	cc, err := pgx.ParseConfig(connString)
	if err != nil {
		return 0, fmt.Errorf("reading the benchmark's connection string: not a valid PostgreSQL connection string")
	}
	cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", cc.Host, "-p", strconv.Itoa(int(cc.Port)), "-U", cc.User, "-d", cc.Database,
		"-c", `\copy mim_bench.record (`+strings.Join(load.CopyColumns, ", ")+`) FROM '`+file+`'`)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+cc.Password, "PGSSLMODE=prefer")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("running psql \\copy: %v: %s", err, out)
	}
	return d, nil
}
