package deliver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Archive keeps a copy of every file MIM publishes, because Moodle keeps
// none (flatfile deletes its input; IMS remembers only an MD5 and an mtime).
//
// Layout under Root:
//
//	manifest.jsonl                               one JSON Entry per archived file, appended
//	YYYY/MM/run-<runid>/<instance>/<name>        the file, byte for byte (mode 0640)
//	YYYY/MM/run-<runid>/<instance>/<name>.sha256 "<hex>  <name>", for sha256sum -c
//
// The year and month are those of the archiving time (UTC). A file is never
// overwritten: archiving the same content again is a no-op, different
// content under the same run, site and name is ErrArchived.
type Archive struct {
	Root string // normally <exports.dir>/archive
}

// Entry is one archived file, as recorded in the manifest.
type Entry struct {
	RunID      int64     `json:"run_id"`
	Instance   string    `json:"instance"`
	Feed       string    `json:"feed"`
	Name       string    `json:"name"`
	Path       string    `json:"path"` // relative to the archive root
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"bytes"`
	ModTime    time.Time `json:"mtime"` // of the published file
	ArchivedAt time.Time `json:"archived_at"`
}

var safeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const manifestName = "manifest.jsonl"

// Store copies f into the archive for run runID, site instance and feed
// (ims, profile_csv, tutor, merge), checking the copy against f.SHA256, and
// records it in the manifest.
func (a Archive) Store(ctx context.Context, runID int64, instance, feed string, f File) (Entry, error) {
	if runID <= 0 || !safeName.MatchString(instance) || !safeName.MatchString(feed) || f.Name == "" || f.Name != filepath.Base(f.Name) {
		return Entry{}, fmt.Errorf("archiving %s: run %d, site %q, feed %q: not a valid archive key", f.Path, runID, instance, feed)
	}
	now := time.Now().UTC()
	rel := filepath.Join(fmt.Sprintf("%04d", now.Year()), fmt.Sprintf("%02d", int(now.Month())),
		"run-"+strconv.FormatInt(runID, 10), instance, f.Name)
	e := Entry{RunID: runID, Instance: instance, Feed: feed, Name: f.Name, Path: rel, SHA256: f.SHA256,
		Size: f.Size, ModTime: f.ModTime.UTC(), ArchivedAt: now}
	dst := filepath.Join(a.Root, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.Path, err)
	}
	if prev, err := a.find(runID, instance, f.Name); err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.Path, err)
	} else if prev != nil {
		if prev.SHA256 == f.SHA256 {
			return *prev, nil
		}
		return Entry{}, fmt.Errorf("archiving %s: %w: %s (SHA-256 %s)", f.Path, ErrArchived, prev.Path, prev.SHA256)
	}
	cfg := writeConfig{perm: 0o640, maxWait: maxMtimeWait, now: time.Now}
	if _, err := copyInto(ctx, f, filepath.Dir(dst), cfg); err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.Path, err)
	}
	if _, err := writeFile(ctx, dst+".sha256", cfg, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s  %s\n", f.SHA256, f.Name)
		return err
	}); err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.Path, err)
	}
	if err := a.appendManifest(e); err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.Path, err)
	}
	return e, nil
}

func (a Archive) appendManifest(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	m, err := os.OpenFile(filepath.Join(a.Root, manifestName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if _, err := m.Write(append(line, '\n')); err != nil {
		m.Close()
		return err
	}
	if err := m.Sync(); err != nil {
		m.Close()
		return err
	}
	return m.Close()
}

// Entries reads the manifest, oldest first.
func (a Archive) Entries() ([]Entry, error) {
	m, err := os.Open(filepath.Join(a.Root, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the archive manifest: %w", err)
	}
	defer m.Close()
	var out []Entry
	sc := bufio.NewScanner(m)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A crash while appending leaves a torn last line; say where.
			return out, fmt.Errorf("reading the archive manifest, line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading the archive manifest: %w", err)
	}
	return out, nil
}

func (a Archive) find(runID int64, instance, name string) (*Entry, error) {
	es, err := a.Entries()
	if err != nil {
		return nil, err
	}
	for i := len(es) - 1; i >= 0; i-- {
		if e := es[i]; e.RunID == runID && e.Instance == instance && e.Name == name {
			return &e, nil
		}
	}
	return nil, nil
}

// Verify re-hashes every archived file and returns the entries whose file
// is missing or no longer matches its checksum.
func (a Archive) Verify(ctx context.Context) ([]Entry, error) {
	es, err := a.Entries()
	if err != nil {
		return nil, err
	}
	var bad []Entry
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return bad, err
		}
		sum, n, err := Hash(filepath.Join(a.Root, e.Path))
		if err != nil || sum != e.SHA256 || n != e.Size {
			bad = append(bad, e)
		}
	}
	return bad, nil
}
