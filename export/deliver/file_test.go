package deliver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/ims"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func noTmp(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ims-main.xml")
	content := strings.Repeat("<membership>\n</membership>\n", 20000)
	f, err := WriteFile(context.Background(), p, writeString(content))
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, p) != content {
		t.Fatal("content differs")
	}
	if f.Path != p || f.Name != "ims-main.xml" || f.Size != int64(len(content)) || f.SHA256 != sum([]byte(content)) {
		t.Errorf("File = %+v", f)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 || !st.ModTime().Equal(f.ModTime) {
		t.Errorf("mode %v mtime %v, File.ModTime %v", st.Mode(), st.ModTime(), f.ModTime)
	}
	if h, n, err := Hash(p); err != nil || h != f.SHA256 || n != f.Size {
		t.Errorf("Hash = %s %d %v", h, n, err)
	}
	noTmp(t, dir)
}

// Whatever goes wrong before the rename, the published file and its mtime
// stay exactly as they were and no temporary file is left.
func TestFailedWriteLeavesThePublishedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ims-main.xml")
	if _, err := WriteFile(context.Background(), p, writeString("yesterday's file\n")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	boom := errors.New("query failed half way")
	canceled, cancel := context.WithCancel(context.Background())
	cases := map[string]struct {
		ctx   context.Context
		write func(io.Writer) error
		opts  []WriteOption
		is    error
	}{
		"write error": {context.Background(), func(w io.Writer) error {
			_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
			return boom
		}, nil, boom},
		"context ended during the write": {canceled, func(w io.Writer) error {
			_, _ = io.WriteString(w, "partial")
			cancel()
			return nil
		}, nil, context.Canceled},
		"verification fails": {context.Background(), writeString("<enterprise>not IMS"), []WriteOption{Verify(func(r io.Reader) error {
			_, err := ims.Validate(r)
			return err
		})}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := WriteFile(c.ctx, p, c.write, c.opts...)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error = %v", err)
			}
			if got := readFile(t, p); got != "yesterday's file\n" {
				t.Errorf("published file became %q", got)
			}
			after, _ := os.Stat(p)
			if !after.ModTime().Equal(before.ModTime()) {
				t.Error("published file's mtime changed")
			}
			noTmp(t, dir)
		})
	}
	var ve *ims.ValidationError
	_, err := WriteFile(context.Background(), p, writeString("<x/>"), Verify(func(r io.Reader) error { _, err := ims.Validate(r); return err }))
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "before publishing") {
		t.Errorf("verification error is not passed on: %v", err)
	}
}

// A temporary file left by a run that died is replaced, not appended to,
// and does not keep its old permissions.
func TestStaleTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "profile-main.csv")
	if err := os.WriteFile(p+".tmp", []byte("half a file from a crashed run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(context.Background(), p, writeString("username\n")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if readFile(t, p) != "username\n" || st.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", readFile(t, p), st.Mode())
	}
	noTmp(t, dir)
}

// Moodle skips an IMS file whose mtime second is not later than the last
// one's, so two files written in the same second must not share it.
func TestMtimeSecondAlwaysLater(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ims-main.xml")
	var prev int64
	for i := 0; i < 3; i++ {
		f, err := WriteFile(context.Background(), p, writeString("file "+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && f.ModTime.Unix() <= prev {
			t.Fatalf("file %d has mtime second %d, previous %d", i, f.ModTime.Unix(), prev)
		}
		prev = f.ModTime.Unix()
	}
	// A previous file dated in the future (clock skew, a copy with -p): the
	// new one is dated the second after it rather than waiting.
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	f, err := WriteFile(context.Background(), p, writeString("after skew"))
	if err != nil {
		t.Fatal(err)
	}
	if f.ModTime.Unix() != future.Unix()+1 {
		t.Errorf("mtime %v, want %v", f.ModTime, future.Add(time.Second))
	}
}

func TestMtimeRule(t *testing.T) {
	cfg := writeConfig{maxWait: 2 * time.Second}
	base := time.Unix(1_758_416_700, 0)
	clock := base.Add(300 * time.Millisecond)
	cfg.now = func() time.Time { return clock }
	// Clock already past the previous second: now.
	if got, _ := after(context.Background(), base.Add(-time.Second), clock, cfg); !got.Equal(clock) {
		t.Errorf("got %v", got)
	}
	// Same second, clock stuck (a frozen test clock): the second after.
	if got, _ := after(context.Background(), base, clock, cfg); got.Unix() != base.Unix()+1 {
		t.Errorf("got %v", got)
	}
	// Far future previous: no waiting.
	cfg.maxWait = 0
	if got, _ := after(context.Background(), base.Add(time.Hour), clock, cfg); got.Unix() != base.Add(time.Hour).Unix()+1 {
		t.Errorf("got %v", got)
	}
	// Waiting honours the context.
	cfg.maxWait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := after(ctx, base.Add(30*time.Minute), clock, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestDirTarget(t *testing.T) {
	out, moodle := t.TempDir(), t.TempDir()
	write := func(s string) File {
		f, err := WriteFile(context.Background(), filepath.Join(out, "ims-main.xml"), writeString(s))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	d := &Dir{Path: moodle}
	first, err := d.Deliver(context.Background(), write("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Location != filepath.Join(moodle, "ims-main.xml") || readFile(t, first.Location) != "v1" {
		t.Errorf("delivery %+v", first)
	}
	second, err := d.Deliver(context.Background(), write("v2"))
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, second.Location) != "v2" || second.ModTime.Unix() <= first.ModTime.Unix() {
		t.Errorf("second delivery %+v after %+v", second, first)
	}
	// The source changes between writing and delivering: the copy is refused
	// and the delivered file stays v2.
	f := write("v3")
	if err := os.WriteFile(f.Path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deliver(context.Background(), f); !errors.Is(err, ErrChecksum) {
		t.Fatalf("tampered source: %v", err)
	}
	if readFile(t, second.Location) != "v2" {
		t.Error("a tampered copy was published")
	}
	noTmp(t, moodle)
	// Delivering into the directory the file is already in is a no-op.
	same := &Dir{Path: out}
	g := write("v4")
	if del, err := same.Deliver(context.Background(), g); err != nil || del.Location != g.Path {
		t.Errorf("same dir: %+v %v", del, err)
	}
}

func TestArchive(t *testing.T) {
	out := t.TempDir()
	a := Archive{Root: filepath.Join(out, "archive")}
	content := []byte("<?xml version=\"1.0\"?>\n<enterprise/>\n")
	f, err := WriteFile(context.Background(), filepath.Join(out, "ims-main.xml"), func(w io.Writer) error { _, err := w.Write(content); return err })
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.Store(context.Background(), 4711, "main", "ims", f)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	wantRel := filepath.Join(now.Format("2006"), now.Format("01"), "run-4711", "main", "ims-main.xml")
	if e.Path != wantRel || e.SHA256 != sum(content) || e.Size != int64(len(content)) || e.RunID != 4711 || e.Feed != "ims" {
		t.Errorf("entry %+v, want path %s", e, wantRel)
	}
	if got := readFile(t, filepath.Join(a.Root, e.Path)); got != string(content) {
		t.Errorf("archived %q", got)
	}
	if got := readFile(t, filepath.Join(a.Root, e.Path+".sha256")); got != sum(content)+"  ims-main.xml\n" {
		t.Errorf("checksum file %q", got)
	}
	if st, _ := os.Stat(filepath.Join(a.Root, e.Path)); st.Mode().Perm() != 0o640 {
		t.Errorf("archive mode %v", st.Mode())
	}
	// Archiving the same file again is a no-op.
	if again, err := a.Store(context.Background(), 4711, "main", "ims", f); err != nil || again.Path != e.Path {
		t.Errorf("again: %+v %v", again, err)
	}
	es, err := a.Entries()
	if err != nil || len(es) != 1 || es[0].SHA256 != e.SHA256 || !es[0].ModTime.Equal(f.ModTime.UTC()) {
		t.Fatalf("manifest %+v %v", es, err)
	}
	// Different content under the same key is refused; the archived copy stays.
	g, err := WriteFile(context.Background(), filepath.Join(out, "ims-main.xml"), writeString("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store(context.Background(), 4711, "main", "ims", g); !errors.Is(err, ErrArchived) {
		t.Errorf("overwrite: %v", err)
	}
	if _, err := a.Store(context.Background(), 4712, "main", "ims", g); err != nil {
		t.Fatal(err)
	}
	if bad, err := a.Verify(context.Background()); err != nil || len(bad) != 0 {
		t.Errorf("verify clean archive: %v %v", bad, err)
	}
	if err := os.WriteFile(filepath.Join(a.Root, e.Path), []byte("tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	if bad, err := a.Verify(context.Background()); err != nil || len(bad) != 1 || bad[0].RunID != 4711 {
		t.Errorf("verify after tampering: %v %v", bad, err)
	}
	for _, k := range []struct {
		run        int64
		site, feed string
	}{{0, "main", "ims"}, {1, "../x", "ims"}, {1, "main", "IMS"}, {1, "", "ims"}} {
		if _, err := a.Store(context.Background(), k.run, k.site, k.feed, g); err == nil {
			t.Errorf("key %+v accepted", k)
		}
	}
}

func TestOpenChoosesTheTarget(t *testing.T) {
	dir := t.TempDir()
	for deliver, want := range map[string]string{"": "deliver.Stay", dir: "*deliver.Dir"} {
		tg, err := Open(context.Background(), exportsWith(deliver))
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(tg); got != want {
			t.Errorf("deliver %q: %s, want %s", deliver, got, want)
		}
	}
	if _, err := Open(context.Background(), exportsWith("ftp://host/x")); err == nil {
		t.Error("ftp accepted")
	}
}

func typeName(v any) string {
	switch v.(type) {
	case Stay:
		return "deliver.Stay"
	case *Dir:
		return "*deliver.Dir"
	case *SFTP:
		return "*deliver.SFTP"
	}
	return "?"
}
