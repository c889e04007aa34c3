package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	sqlfiles "github.com/mimwarehouse/mim/sql"
)

// Reset empties a scratch warehouse (`mim demo`, `mim drill`): it drops
// every schema the migrations create. It refuses a database labelled with
// any environment but label, so a real warehouse is never emptied.
func Reset(ctx context.Context, pool *pgxpool.Pool, label string) error {
	var labelled bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('ctl.deployment') IS NOT NULL`).Scan(&labelled); err != nil {
		return fmt.Errorf("looking at the database: %w", err)
	}
	if labelled {
		// Only the label is read, so a warehouse migrated by an older MIM
		// (whose ctl.deployment lacks later columns) can still be reset.
		var env string
		err := pool.QueryRow(ctx, `SELECT environment FROM ctl.deployment`).Scan(&env)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading ctl.deployment: %w", err)
		}
		if err == nil && env != label {
			return fmt.Errorf("the database is the warehouse of environment %q, not a %s warehouse: only a %s warehouse is reset (name another database)",
				env, label, label)
		}
	}
	schemas, err := migrationSchemas()
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
			return fmt.Errorf("resetting schema %s: %w", s, err)
		}
	}
	return nil
}

var createSchema = regexp.MustCompile(`(?i)CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)

// migrationSchemas lists the schemas the migrations create.
func migrationSchemas() ([]string, error) {
	var out []string
	err := fs.WalkDir(sqlfiles.Migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sqlfiles.Migrations, p)
		if err != nil {
			return err
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		for _, m := range createSchema.FindAllStringSubmatch(up, -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
		return nil
	})
	return out, err
}
