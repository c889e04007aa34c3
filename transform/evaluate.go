package transform

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// plainRelation is a schema-qualified name that needs no quoting.
var plainRelation = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`)

// EvalRelation is the temporary table Evaluate builds a model into.
func EvalRelation(model string) string {
	return "pg_temp.mim_eval_" + strings.ReplaceAll(model, ".", "_")
}

// Evaluate answers "what would target hold if these sources held other
// rows?" without touching the warehouse: inside tx it builds, as temporary
// tables (dropped at the end of tx), target and every model between it and
// the replaced sources, reading each replaced source (ctl.course_mapping)
// from the relation sources names for it (a temporary table the caller
// filled) and every other model from what its last build left. It returns
// the temporary table that holds target's rows (EvalRelation(target)).
//
// The models run exactly as written, so a preview built this way cannot
// drift from the night's logic; only their scope differs. Checks are not
// run. The caller owns tx and its timeouts, and should roll it back.
func Evaluate(ctx context.Context, tx pgx.Tx, p *Project, target string, sources map[string]string) (string, error) {
	if p.Model(target) == nil {
		return "", &SelectError{Selector: target, Reason: "is not a model"}
	}
	schemas := map[string]bool{"stg": true, "int": true, "mart": true}
	replace := map[string]string{}
	for src, rel := range sources {
		if !plainRelation.MatchString(src) || !plainRelation.MatchString(rel) {
			return "", fmt.Errorf("evaluating %s: %q -> %q is not a plain schema.relation pair", target, src, rel)
		}
		schema, _, _ := strings.Cut(src, ".")
		schemas[schema] = true
		replace[src] = rel
	}
	// The chain: ancestors of target (and target) that read a replaced
	// source or a model of the chain, in run order.
	models := append(p.Ancestors(target), p.Model(target))
	type step struct {
		m   *Model
		sql string
	}
	var chain []step
	for _, m := range models {
		toks, msg := scanSQL(m.SQL)
		if msg != "" {
			return "", &ModelError{Model: m.Name, Path: m.Path, Step: "scanning for evaluation", Err: fmt.Errorf("%s", msg)}
		}
		var b strings.Builder
		last, reads := 0, false
		for _, r := range references(toks, schemas) {
			rel, ok := replace[r.name]
			if !ok {
				continue
			}
			reads = true
			b.WriteString(m.SQL[last:r.pos])
			b.WriteString(rel)
			last = r.end
		}
		if !reads {
			continue
		}
		b.WriteString(m.SQL[last:])
		chain = append(chain, step{m: m, sql: b.String()})
		replace[m.Name] = EvalRelation(m.Name)
	}
	if len(chain) == 0 || chain[len(chain)-1].m.Name != target {
		names := make([]string, 0, len(sources))
		for s := range sources {
			names = append(names, s)
		}
		sort.Strings(names)
		return "", fmt.Errorf("evaluating %s: it does not read %s", target, strings.Join(names, ", "))
	}
	for _, s := range chain {
		rel := EvalRelation(s.m.Name)
		for _, sql := range []string{
			"DROP TABLE IF EXISTS " + rel,
			"CREATE TEMP TABLE " + strings.TrimPrefix(rel, "pg_temp.") + " ON COMMIT DROP AS\n" + s.sql,
			// The planner knows nothing of a fresh temporary table.
			"ANALYZE " + rel,
		} {
			if _, err := tx.Exec(ctx, sql, pgx.QueryExecModeExec); err != nil {
				return "", &ModelError{Model: s.m.Name, Path: s.m.Path, Step: "evaluating into " + rel, Err: err}
			}
		}
	}
	return EvalRelation(target), nil
}
