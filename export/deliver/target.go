package deliver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/secret"
)

// Delivery says where a file was put.
type Delivery struct {
	Location string    // a local path, or sftp://user@host:port/path/name
	Size     int64     // as the destination reports it
	ModTime  time.Time // the mtime the destination has
}

// Target is where published files go for Moodle to read.
type Target interface {
	// Deliver puts f at the destination under f.Name, atomically, with an
	// mtime later than the file it replaces.
	Deliver(ctx context.Context, f File) (Delivery, error)
	// String names the destination for logs (never with a secret).
	String() string
	Close() error
}

// Consumer is a Target that can tell whether a file is still where it was
// delivered: Moodle's flat-file task deletes its file once it has read it,
// so a file still there has not been read, and overwriting it would lose
// its commands.
type Consumer interface {
	Exists(ctx context.Context, name string) (bool, error)
}

// Options say where files go: the configuration's exports.dir,
// exports.deliver and exports.sftp.
type Options struct {
	// Dir receives every file first and keeps the archive.
	Dir string
	// Deliver is empty (files stay in Dir), a local directory path, or
	// sftp://user@host[:port]/path.
	Deliver string
	// SFTP holds the credentials for sftp:// delivery.
	SFTP SFTPAuth
}

// SFTPAuth is how MIM authenticates to an SFTP server and checks it.
type SFTPAuth struct {
	KnownHosts string        // OpenSSH known_hosts file; required
	KeyFile    string        // private key (unencrypted; readable only by MIM)
	Password   secret.Secret // used when set, alongside or instead of the key
}

// Open returns the Target that exports.deliver names: empty means files
// stay in exports.dir, a path is a local directory, sftp://user@host[:port]/path
// an SFTP server (dialled now, host key checked).
func Open(ctx context.Context, exports Options, opts ...SFTPOption) (Target, error) {
	d := exports.Deliver
	switch {
	case d == "":
		return Stay{Dir: exports.Dir}, nil
	case strings.HasPrefix(d, "sftp://"):
		return DialSFTP(ctx, SFTPConfig{URL: d, KnownHosts: exports.SFTP.KnownHosts, KeyFile: exports.SFTP.KeyFile,
			Password: exports.SFTP.Password}, opts...)
	case strings.Contains(d, "://"):
		return nil, fmt.Errorf("exports.deliver %q: only local paths and sftp:// are supported", d)
	default:
		return &Dir{Path: d}, nil
	}
}

// Stay leaves files where they were written (exports.deliver is empty:
// Moodle reads exports.dir itself, e.g. over a shared mount).
type Stay struct {
	Dir string // exports.dir
}

// Exists reports whether name is in the directory.
func (s Stay) Exists(_ context.Context, name string) (bool, error) {
	return fileExists(filepath.Join(s.Dir, name))
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Deliver reports the file's own path.
func (Stay) Deliver(_ context.Context, f File) (Delivery, error) {
	return Delivery{Location: f.Path, Size: f.Size, ModTime: f.ModTime}, nil
}

func (Stay) String() string { return "exports.dir" }

// Close does nothing.
func (Stay) Close() error { return nil }

// Dir copies files into a local directory (a path Moodle's host mounts).
type Dir struct {
	Path string
}

// Deliver copies f into the directory as name.tmp, checks the copy's
// checksum, dates it after the file it replaces and renames it.
func (d *Dir) Deliver(ctx context.Context, f File) (Delivery, error) {
	if same, err := sameDir(filepath.Dir(f.Path), d.Path); err != nil {
		return Delivery{}, fmt.Errorf("delivering %s to %s: %w", f.Name, d.Path, err)
	} else if same {
		return Stay{}.Deliver(ctx, f)
	}
	out, err := copyInto(ctx, f, d.Path, writeConfig{perm: 0o644, maxWait: maxMtimeWait, now: time.Now})
	if err != nil {
		return Delivery{}, fmt.Errorf("delivering %s to %s: %w", f.Name, d.Path, err)
	}
	return Delivery{Location: out.Path, Size: out.Size, ModTime: out.ModTime}, nil
}

func (d *Dir) String() string { return d.Path }

// Exists reports whether name is in the directory.
func (d *Dir) Exists(_ context.Context, name string) (bool, error) {
	return fileExists(filepath.Join(d.Path, name))
}

// Close does nothing.
func (d *Dir) Close() error { return nil }

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
