package app

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/wire"
)

var mappingsCommand = Command{
	Name:    "mappings",
	Group:   "Warehouse",
	Summary: "import, derive, list, activate and deactivate Moodle course -> SIS mappings",
	Usage: `mim mappings import FILE [--instance SITE] [--year YYYY] [--kind KIND] [--dry-run]
       mim mappings derive [--dry-run]
       mim mappings list [--instance SITE] [--course IDNUMBER] [--kind KIND] [--year YYYY] [--origin O] [--state active|inactive|all] [--format table|csv]
       mim mappings activate|deactivate (--all | --course IDNUMBER | --id N) [--instance SITE] [--year YYYY] [--reason TEXT]
       mim mappings history [--instance SITE] [--course IDNUMBER] [--limit N]`,
	Help: helpText("mappings"),
	Setup: func(fs *flag.FlagSet) Runner {
		var o mappingOpts
		fs.StringVar(&o.sel.Instance, "instance", "", "the Moodle `SITE` (import: for rows without one; others: a filter)")
		fs.StringVar(&o.sel.Course, "course", "", "only the mappings of the course with this `IDNUMBER`")
		fs.StringVar(&o.sel.Kind, "kind", "", "import: kind for JSON entries without one (default section); list: a filter")
		fs.StringVar(&o.sel.Year, "year", "", "import: academic year for rows without one; others: a filter (start year, e.g. 2025)")
		fs.StringVar(&o.sel.Origin, "origin", "", "list: only mappings of this origin (manual, import:FILE, rule:NAME, or import: / rule:)")
		fs.StringVar(&o.state, "state", "all", "list: active, inactive or all")
		fs.StringVar(&o.format, "format", "table", "list: table or csv (the import format)")
		fs.Int64Var(&o.sel.ID, "id", 0, "activate/deactivate: only the mapping with this id")
		fs.BoolVar(&o.sel.All, "all", false, "activate/deactivate: every mapping (with the other filters, if any)")
		fs.StringVar(&o.reason, "reason", "", "why (kept with each change)")
		fs.BoolVar(&o.dryRun, "dry-run", false, "import/derive: check and show what would change, change nothing")
		fs.IntVar(&o.limit, "limit", 50, "history: how many changes to show")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) == 0 {
				return Usagef("say import, derive, list, activate, deactivate or history")
			}
			action, rest := args[0], args[1:]
			switch action {
			case "import":
				if len(rest) != 1 {
					return Usagef("import needs exactly one FILE")
				}
				return mappingsImport(ctx, e, rest[0], o)
			case "derive", "list", "activate", "deactivate", "history":
				if len(rest) != 0 {
					return Usagef("%s takes no arguments", action)
				}
			default:
				return Usagef("unknown action %q (use import, derive, list, activate, deactivate or history)", action)
			}
			switch action {
			case "derive":
				return mappingsDerive(ctx, e, o)
			case "list":
				return mappingsList(ctx, e, o)
			case "history":
				return mappingsHistory(ctx, e, o)
			}
			return mappingsSetActive(ctx, e, action == "activate", o)
		}
	},
}

// mappingOpts are mim mappings' options.
type mappingOpts struct {
	sel                   mapping.Selection
	state, format, reason string
	dryRun                bool
	limit                 int
}

func mappingsImport(ctx context.Context, e *Env, file string, o mappingOpts) (err error) {
	data, rerr := os.ReadFile(file)
	if rerr != nil {
		return Usagef("reading %s: %v", file, rerr)
	}
	cfg, pool, run, err := beginRun(ctx, e, "mappings")
	if err != nil {
		return err
	}
	defer func() { _ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err) }()
	d := mapping.Defaults{Instance: o.sel.Instance, AcademicYear: o.sel.Year, Kind: o.sel.Kind, Origin: "import:" + filepath.Base(file)}
	n, res, err := mapping.ImportFile(ctx, pool, file, data, d, wire.Knowledge(cfg), Who(), o.dryRun)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "dry run, nothing imported; would have", false: "imported"}[o.dryRun]
	fmt.Fprintf(e.Stdout, "%s %s: %d mappings read; %s %d created, %d updated, %d unchanged\n",
		file, map[bool]string{true: "(JSON)", false: "(CSV)"}[strings.HasPrefix(strings.TrimSpace(string(data)), "{")],
		n, verb, res.Created, res.Updated, res.Unchanged)
	return nil
}

func mappingsDerive(ctx context.Context, e *Env, o mappingOpts) (err error) {
	cfg, pool, run, err := beginRun(ctx, e, "mappings")
	if err != nil {
		return err
	}
	defer func() { _ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err) }()
	if len(cfg.Mappings.Rules) == 0 {
		return Usagef("the configuration has no mappings.rules (see mim.example.yaml)")
	}
	res, err := mapping.DeriveAll(ctx, pool, cfg.Mappings.Rules, Who(), o.dryRun)
	if err != nil {
		return err
	}
	res.WriteText(e.Stdout)
	if o.dryRun {
		fmt.Fprintln(e.Stdout, "dry run: nothing was changed")
	}
	return nil
}

func mappingsList(ctx context.Context, e *Env, o mappingOpts) error {
	f, err := o.sel.ListFilter(o.state)
	if err != nil {
		return Usagef("%v", err)
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	ms, err := mapping.List(ctx, pool, f)
	if err != nil {
		return err
	}
	switch o.format {
	case "csv":
		return mapping.WriteCSV(e.Stdout, ms)
	case "table":
		return mapping.WriteTable(e.Stdout, ms)
	}
	return Usagef("--format must be table or csv")
}

func mappingsSetActive(ctx context.Context, e *Env, active bool, o mappingOpts) (err error) {
	f, global, err := o.sel.ActivationFilter()
	if err != nil {
		return Usagef("%v", err)
	}
	_, pool, run, err := beginRun(ctx, e, "mappings")
	if err != nil {
		return err
	}
	defer func() { _ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err) }()
	n, matching, err := mapping.Activate(ctx, pool, f, active, global, Who(), o.reason, &run.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s %d of %d matching mappings (the others already were)\n", map[bool]string{true: "activated", false: "deactivated"}[active], n, matching)
	if !active && n > 0 {
		fmt.Fprintln(e.Stdout, "note: an inactive mapping freezes its course: its enrolments stay exactly as they are.")
	}
	switch {
	case global && !active:
		fmt.Fprintln(e.Stdout, "staff edits through the LTI tool are frozen until `mim mappings activate --all` or `mim settings set staff_edits_frozen false`.")
	case global:
		fmt.Fprintln(e.Stdout, "staff edits through the LTI tool are open again.")
	}
	return nil
}

func mappingsHistory(ctx context.Context, e *Env, o mappingOpts) error {
	if o.limit < 1 {
		return Usagef("--limit must be at least 1")
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	evs, err := mapping.Events(ctx, pool, o.sel.Instance, o.sel.Course, o.limit)
	if err != nil {
		return err
	}
	return mapping.WriteEvents(e.Stdout, evs)
}
