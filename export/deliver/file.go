// Package deliver puts MIM's feed files where Moodle reads them without
// Moodle ever seeing half a file: each file is written to name.tmp in its
// final directory, synced, checked, given a modification time later than the
// file it replaces (Moodle skips an IMS file whose mtime second is not newer
// than the last one it read), and renamed over the old one. The same rule
// holds for a copy in another local directory and for an upload over SFTP,
// where the host key is always checked against known_hosts. Every published
// file is also archived with its SHA-256 and run id.
package deliver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File is a file MIM has written, with what the archive, the delivery and
// the ledger (ctl.export_run) need to know about it.
type File struct {
	Path    string // where it is
	Name    string // its base name, kept when it is delivered or archived
	Size    int64
	SHA256  string // hex
	ModTime time.Time
}

// WriteOption changes WriteFile.
type WriteOption func(*writeConfig)

type writeConfig struct {
	verify  func(io.Reader) error
	perm    fs.FileMode
	maxWait time.Duration
	now     func() time.Time
}

// Verify runs check on the complete temporary file before it replaces the
// published one (the IMS export passes ims.Validate); an error leaves the
// published file as it was.
func Verify(check func(io.Reader) error) WriteOption {
	return func(c *writeConfig) { c.verify = check }
}

// Perm sets the file's permissions (default 0644: Moodle's cron user must
// read it).
func Perm(p fs.FileMode) WriteOption { return func(c *writeConfig) { c.perm = p } }

// maxMtimeWait is how long WriteFile waits for the clock to pass the
// previous file's mtime second; beyond it (the previous file is dated in the
// future) the new file's mtime is set one second after the old one instead.
const maxMtimeWait = 2 * time.Second

// WriteFile writes a file whole: write fills path.tmp (buffered, hashed),
// which is synced, verified, dated at least one second after the file it
// replaces, and renamed to path; the directory is synced too. If anything
// fails, or ctx ends, the temporary file is removed and whatever was
// published at path is left untouched.
func WriteFile(ctx context.Context, path string, write func(io.Writer) error, opts ...WriteOption) (File, error) {
	cfg := writeConfig{perm: 0o644, maxWait: maxMtimeWait, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := writeFile(ctx, path, cfg, write)
	if err != nil {
		return File{}, fmt.Errorf("writing %s: %w", path, err)
	}
	return f, nil
}

func writeFile(ctx context.Context, path string, cfg writeConfig, write func(io.Writer) error) (_ File, err error) {
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := path + ".tmp"
	// A temporary file left by an interrupted run is stale: start afresh.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return File{}, fmt.Errorf("removing stale %s: %w", tmp, err)
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, cfg.perm)
	if err != nil {
		return File{}, err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	if err := out.Chmod(cfg.perm); err != nil { // the umask may have narrowed it
		return File{}, err
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(out, h)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if err := write(bw); err != nil {
		return File{}, err
	}
	if err := bw.Flush(); err != nil {
		return File{}, err
	}
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	if cfg.verify != nil {
		if err := verifyFile(tmp, cfg.verify); err != nil {
			return File{}, fmt.Errorf("checking the new file before publishing it: %w", err)
		}
	}
	mtime, err := laterMtime(ctx, path, cfg)
	if err != nil {
		return File{}, err
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return File{}, err
	}
	if err := out.Sync(); err != nil {
		return File{}, err
	}
	if err := out.Close(); err != nil {
		return File{}, err
	}
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return File{}, err
	}
	if err := syncDir(dir); err != nil {
		return File{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return File{}, err
	}
	return File{Path: path, Name: name, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: st.ModTime()}, nil
}

// laterMtime returns the modification time for a file about to replace
// path: now, unless path's mtime second is not yet in the past, in which
// case it waits until it is (at most maxWait) or, failing that, takes the
// second after path's.
func laterMtime(ctx context.Context, path string, cfg writeConfig) (time.Time, error) {
	now := cfg.now()
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return now, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return after(ctx, st.ModTime(), now, cfg)
}

// after is the mtime rule shared by local and SFTP delivery.
func after(ctx context.Context, prev, now time.Time, cfg writeConfig) (time.Time, error) {
	if now.Unix() > prev.Unix() {
		return now, nil
	}
	next := time.Unix(prev.Unix()+1, 0)
	wait := next.Sub(now)
	if wait > cfg.maxWait {
		return next, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-t.C:
	}
	if now = cfg.now(); now.Unix() > prev.Unix() {
		return now, nil
	}
	return next, nil
}

func verifyFile(path string, check func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return check(bufio.NewReaderSize(f, 256<<10))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Hash returns the SHA-256 of the file at path, hex-encoded, and its size.
func Hash(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// copyInto copies f into dir under its name with the same rules as
// WriteFile. The bytes copied are hashed on the way, and a copy whose
// content is not f's (the source changed under us) is never published.
func copyInto(ctx context.Context, f File, dir string, cfg writeConfig) (File, error) {
	src, err := os.Open(f.Path)
	if err != nil {
		return File{}, err
	}
	defer src.Close()
	dst := filepath.Join(dir, f.Name)
	return writeFile(ctx, dst, cfg, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(w, io.TeeReader(&ctxReader{ctx: ctx, r: src}, h))
		if err != nil {
			return err
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 || n != f.Size {
			return fmt.Errorf("%w: %s has SHA-256 %s (%d bytes) now, expected %s (%d bytes)", ErrChecksum, f.Path, sum, n, f.SHA256, f.Size)
		}
		return nil
	})
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
