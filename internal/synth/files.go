package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Load writes the institution's SITS and CMIS views into pool under
// prefix (see Write), reporting each table, the rate and the sources
// configuration that reads them to w; target names the database as it may
// be shown (without its password).
func (in *Institution) Load(ctx context.Context, pool *pgxpool.Pool, prefix string, target fmt.Stringer, w io.Writer) error {
	start := time.Now()
	fmt.Fprintf(w, "writing into %s\n", target)
	var total int64
	counts, err := in.Write(ctx, pool, prefix, func(c TableCount) {
		total += c.Rows
		fmt.Fprintf(w, "%10d  %s\n", c.Rows, c.Table)
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(w, "wrote %d rows in %d tables in %s (%.0f rows/s)\n", total, len(counts), elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds())
	sitsSchema, cmisSchema := Schemas(prefix)
	fmt.Fprintf(w, "read them with:\n  sources:\n    sits: {driver: pgx, dsn: \"%s\", schema: %s}\n    cmis: {driver: pgx, dsn: \"%s\", schema: %s}\n",
		target, sitsSchema, target, cmisSchema)
	return nil
}

// Files are the files `mim synth` may write beside the database ("": not written).
type Files struct {
	MappingsCSV string // the course mappings, in mim mappings import's format
	MoodleJSON  string // a directory: each simulated Moodle site's state as <site>.json
	Manifest    string // what was planted, as JSON
}

// WriteFiles writes the files f names, each through a temporary file
// renamed into place, saying so on w.
func (in *Institution) WriteFiles(f Files, w io.Writer) error {
	if f.MappingsCSV != "" {
		var buf bytes.Buffer
		if err := WriteMappingsCSV(&buf, in.Mappings); err != nil {
			return err
		}
		if err := writeFile(f.MappingsCSV, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %d course mappings to %s\n", len(in.Mappings), f.MappingsCSV)
	}
	if f.MoodleJSON != "" {
		if err := os.MkdirAll(f.MoodleJSON, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", f.MoodleJSON, err)
		}
		for _, s := range in.Sites {
			b, err := json.Marshal(s.State)
			if err != nil {
				return fmt.Errorf("encoding Moodle site %s: %w", s.Name, err)
			}
			p := filepath.Join(f.MoodleJSON, s.Name+".json")
			if err := writeFile(p, b); err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote Moodle site %s to %s\n", s.Name, p)
		}
	}
	if f.Manifest != "" {
		b, err := json.MarshalIndent(in.Manifest, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFile(f.Manifest, append(b, '\n')); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote the manifest to %s\n", f.Manifest)
	}
	return nil
}

// WriteText writes what was planted: the institution's counts and a line
// per site with its planted drift and duplicates.
func (m *Manifest) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "\nplanted: %d students (%d active), %d registrations (%d this year), %d CMIS groups, %d members\n",
		m.Students, m.ActiveStudents, m.Registrations, m.RegistrationsCurrentYear, m.CMISGroups, m.CMISGroupMembers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "site\tcourses\tusers\tenrolments\tmemberships\tmissing\tsuspended\textra\tunknown user\tduplicates\tsync groups\t")
	for _, s := range m.Sites {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Site, s.Courses, s.Users, s.Enrolments, s.ActiveMemberships,
			s.DriftMissing, s.DriftSuspended, s.DriftExtra, s.UnknownUserRows, s.DuplicateSameIDNumber+s.DuplicateEmailCaseVariant, s.GroupSyncGroups)
	}
	return tw.Flush()
}

// writeFile writes data to a temporary file beside path and renames it.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
