package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Stage is the ledger stage of catalog publishing.
const Stage = "catalog"

// Mart is one mart relation as the catalog describes it.
type Mart struct {
	Relation    string // mart.enrolment_drift
	Kind        string // table or view
	Description string
	Rows        int64
	Columns     []Column
}

// Column is one column of a mart.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // Frictionless type: string, integer, number, boolean, date, datetime, array, object, any
	PGType   string `json:"-"`    // the PostgreSQL type
	Nullable bool   `json:"-"`    // shown through constraints
	Comment  string `json:"description,omitempty"`
}

// Select reports whether relation is chosen by patterns: globs over
// "mart.NAME", applied in order, a leading "!" excluding.
func Select(patterns []string, relation string) bool {
	chosen := false
	for _, p := range patterns {
		exclude := strings.HasPrefix(p, "!")
		if ok, _ := path.Match(strings.TrimPrefix(p, "!"), relation); ok {
			chosen = !exclude
		}
	}
	return chosen
}

// Describe reads the marts patterns choose: their comments, columns and
// exact row counts, in name order.
func Describe(ctx context.Context, q warehouse.Querier, patterns []string) ([]Mart, error) {
	rows, err := q.Query(ctx, `
		SELECT 'mart.' || c.relname, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END,
		       coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'mart' AND c.relkind IN ('r', 'p', 'v', 'm')
		ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("listing the marts: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mart, error) {
		var m Mart
		err := r.Scan(&m.Relation, &m.Kind, &m.Description)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the marts: %w", err)
	}
	var out []Mart
	for _, m := range all {
		if !Select(patterns, m.Relation) {
			continue
		}
		m.Description = describeComment(m.Description)
		if m.Columns, err = columns(ctx, q, m.Relation); err != nil {
			return nil, err
		}
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier(strings.SplitN(m.Relation, ".", 2)).Sanitize()).Scan(&m.Rows); err != nil {
			return nil, fmt.Errorf("counting the rows of %s: %w", m.Relation, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// describeComment keeps what a model says about itself from the comment
// the transform puts on every relation it builds ("mim model built by mim
// transform from sql/...; rebuilt every run. <description>").
func describeComment(c string) string {
	if _, rest, ok := strings.Cut(c, "rebuilt every run."); ok {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(c)
}

func columns(ctx context.Context, q warehouse.Querier, relation string) ([]Column, error) {
	rows, err := q.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, coalesce(col_description(a.attrelid, a.attnum), ''),
		       t.typcategory
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, relation)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", relation, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
		var c Column
		var cat string
		err := r.Scan(&c.Name, &c.PGType, &c.Nullable, &c.Comment, &cat)
		c.Type = frictionlessType(c.PGType, cat)
		return c, err
	})
}

// frictionlessType maps a PostgreSQL type to a Table Schema type.
func frictionlessType(pg, category string) string {
	switch {
	case category == "A":
		return "array"
	case pg == "boolean":
		return "boolean"
	case pg == "date":
		return "date"
	case strings.HasPrefix(pg, "timestamp"):
		return "datetime"
	case pg == "smallint" || pg == "integer" || pg == "bigint":
		return "integer"
	case strings.HasPrefix(pg, "numeric") || pg == "real" || pg == "double precision":
		return "number"
	case pg == "jsonb" || pg == "json":
		return "object"
	case category == "S":
		return "string"
	}
	return "any"
}

// Published is what happened to one mart.
type Published struct {
	Relation  string
	Dataset   string
	PackageID string
	Action    string // created, updated, or failed
	Rows      int64
	Err       error
}

// Publisher puts marts into one CKAN organisation.
type Publisher struct {
	Client      *Client
	Org         string
	Prefix      string // dataset names start with it
	Environment string // recorded on each dataset
	Logger      *slog.Logger
}

// DatasetName is the CKAN name of a mart's dataset: the prefix and the
// relation's name with _ written -, as CKAN URLs are usually written.
func (p *Publisher) DatasetName(relation string) string {
	name := strings.TrimPrefix(relation, "mart.")
	return p.Prefix + strings.ReplaceAll(name, "_", "-")
}

// Package builds the dataset of one mart. Its one resource is the
// relation itself: schema and row count, no data and no URL (the data
// stays in the warehouse).
func (p *Publisher) Package(m Mart) (*Package, error) {
	fields := []map[string]any{}
	for _, c := range m.Columns {
		f := map[string]any{"name": c.Name, "type": c.Type, "pg_type": c.PGType}
		if c.Comment != "" {
			f["description"] = c.Comment
		}
		if !c.Nullable {
			f["constraints"] = map[string]any{"required": true}
		}
		fields = append(fields, f)
	}
	schema, err := json.Marshal(map[string]any{"fields": fields})
	if err != nil {
		return nil, fmt.Errorf("encoding the schema of %s: %w", m.Relation, err)
	}
	title := "MIM: " + strings.ReplaceAll(strings.TrimPrefix(m.Relation, "mart."), "_", " ")
	notes := m.Description
	if notes == "" {
		notes = "A mart of the MIM warehouse."
	}
	notes += fmt.Sprintf("\n\nPostgreSQL %s `%s` in the MIM warehouse (environment %s), rebuilt by every nightly run.", m.Kind, m.Relation, p.Environment)
	rows := m.Rows
	return &Package{
		Name:     p.DatasetName(m.Relation),
		Title:    title,
		Notes:    notes,
		OwnerOrg: p.Org,
		Tags:     []Tag{{Name: "mim"}, {Name: "moodle"}},
		Extras: []Extra{
			{Key: "mim_relation", Value: m.Relation},
			{Key: "mim_environment", Value: p.Environment},
			{Key: "row_count", Value: fmt.Sprint(m.Rows)},
			{Key: "columns", Value: fmt.Sprint(len(m.Columns))},
		},
		Resources: []Resource{{
			Name: m.Relation, Description: fmt.Sprintf("%d columns, %d rows", len(m.Columns), m.Rows),
			Format: "PostgreSQL " + m.Kind, URL: "", RowCount: &rows, Schema: string(schema),
		}},
	}, nil
}

// Publish creates or updates the dataset of every mart, each on its own:
// one that fails does not stop the others. Under run (which may be nil) each
// mart is a ledger step and ctl.catalog_dataset records what CKAN holds.
func (p *Publisher) Publish(ctx context.Context, q warehouse.Querier, run *ledger.Run, marts []Mart) []Published {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []Published
	for _, m := range marts {
		var step *ledger.Step
		if run != nil {
			var err error
			if step, err = run.Step(ctx, ledger.StepKey{Stage: Stage, Entity: m.Relation}); err != nil {
				out = append(out, Published{Relation: m.Relation, Action: "failed", Err: err})
				continue
			}
		}
		res := p.publishOne(ctx, m)
		if res.Err == nil {
			res.Err = record(ctx, q, run, m, res)
		}
		if res.Err != nil {
			res.Action = "failed"
			log.Warn("publishing a mart to CKAN", "entity", m.Relation, "error", res.Err)
		} else {
			log.Info("published a mart to CKAN", "entity", m.Relation, "rows", m.Rows, "action", res.Action)
		}
		if step != nil {
			c := ledger.Counts{In: m.Rows}
			switch res.Action {
			case "created":
				c.New = 1
			case "updated":
				c.Changed = 1
			default:
				c.Errors = 1
			}
			if ferr := step.Finish(ctx, ledger.Outcome(res.Err), c, map[string]string{"dataset": res.Dataset, "action": res.Action}, res.Err); ferr != nil && res.Err == nil {
				res.Err, res.Action = ferr, "failed"
			}
		}
		out = append(out, res)
	}
	return out
}

func (p *Publisher) publishOne(ctx context.Context, m Mart) Published {
	res := Published{Relation: m.Relation, Dataset: p.DatasetName(m.Relation), Rows: m.Rows}
	want, err := p.Package(m)
	if err != nil {
		res.Err = err
		return res
	}
	have, err := p.Client.PackageShow(ctx, want.Name)
	switch {
	case IsNotFound(err):
		created, err := p.Client.PackageCreate(ctx, want)
		if err != nil {
			res.Err = fmt.Errorf("creating dataset %s for %s: %w", want.Name, m.Relation, err)
			return res
		}
		res.PackageID, res.Action = created.ID, "created"
	case err != nil:
		res.Err = fmt.Errorf("reading dataset %s for %s: %w", want.Name, m.Relation, err)
	default:
		// Keep the ids of resources that are still there, so CKAN updates
		// them rather than replacing them (their URLs stay stable).
		for i := range want.Resources {
			for _, old := range have.Resources {
				if old.Name == want.Resources[i].Name {
					want.Resources[i].ID = old.ID
				}
			}
		}
		want.ID = have.ID
		patched, err := p.Client.PackagePatch(ctx, want)
		if err != nil {
			res.Err = fmt.Errorf("updating dataset %s for %s: %w", want.Name, m.Relation, err)
			return res
		}
		res.PackageID, res.Action = patched.ID, "updated"
	}
	return res
}

func record(ctx context.Context, q warehouse.Querier, run *ledger.Run, m Mart, res Published) error {
	var cols strings.Builder
	for _, c := range m.Columns {
		fmt.Fprintf(&cols, "%s %s\n", c.Name, c.PGType)
	}
	sum := sha256.Sum256([]byte(cols.String()))
	var runID *int64
	if run != nil {
		runID = &run.ID
	}
	_, err := q.Exec(ctx, `INSERT INTO ctl.catalog_dataset (relation, dataset_name, package_id, row_count, columns, schema_sha256, action, run_id, published_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
		ON CONFLICT (relation) DO UPDATE SET dataset_name = EXCLUDED.dataset_name, package_id = EXCLUDED.package_id,
			row_count = EXCLUDED.row_count, columns = EXCLUDED.columns, schema_sha256 = EXCLUDED.schema_sha256,
			action = EXCLUDED.action, run_id = EXCLUDED.run_id, published_at = now()`,
		m.Relation, res.Dataset, res.PackageID, m.Rows, len(m.Columns), hex.EncodeToString(sum[:]), res.Action, runID)
	if err != nil {
		return fmt.Errorf("recording the catalog entry of %s: %w", m.Relation, err)
	}
	return nil
}
