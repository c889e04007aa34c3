package deliver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mimwarehouse/mim/internal/secret"
)

// SFTPConfig is where and how to upload.
type SFTPConfig struct {
	URL        string        // sftp://user@host[:port]/absolute/dir
	KnownHosts string        // OpenSSH known_hosts file; required, the host key is always checked
	KeyFile    string        // private key (unencrypted; readable only by MIM)
	Password   secret.Secret // used when set, alongside or instead of the key
}

// SFTPOption changes how DialSFTP connects.
type SFTPOption func(*sftpOptions)

type sftpOptions struct {
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

// WithSSHTimeout bounds dialling and the SSH handshake (default 30s).
func WithSSHTimeout(d time.Duration) SFTPOption { return func(o *sftpOptions) { o.timeout = d } }

// WithSSHDialer replaces how the server is dialled.
func WithSSHDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) SFTPOption {
	return func(o *sftpOptions) { o.dial = dial }
}

// SFTP uploads files to a directory on an SFTP server.
type SFTP struct {
	display     string // sftp://user@host:port/dir, for logs and Delivery.Location
	dir         string
	ssh         *ssh.Client
	client      *sftp.Client
	posixRename bool
	fsync       bool
}

// DialSFTP connects and authenticates. The server's host key must be in
// KnownHosts with the same key; an unknown or changed key is ErrHostKey.
func DialSFTP(ctx context.Context, c SFTPConfig, opts ...SFTPOption) (*SFTP, error) {
	o := sftpOptions{timeout: 30 * time.Second, dial: (&net.Dialer{}).DialContext}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "sftp" || u.Host == "" || u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("connecting by SFTP: %q is not sftp://user@host[:port]/dir", redactURL(c.URL))
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("connecting by SFTP to %s: a password in the URL is refused; use exports.sftp.password", redactURL(c.URL))
	}
	user := u.User.Username()
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "22")
	}
	dir := path.Clean(u.Path)
	if !path.IsAbs(dir) {
		return nil, fmt.Errorf("connecting by SFTP to %s: the URL needs an absolute directory", redactURL(c.URL))
	}
	s := &SFTP{display: "sftp://" + user + "@" + hostport + dir, dir: dir}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("connecting by SFTP to %s: %s", s.display, fmt.Sprintf(format, args...))
	}
	if c.KnownHosts == "" {
		return nil, fail("exports.sftp.known_hosts is required: the host key is always checked")
	}
	hostKeys, err := knownhosts.New(c.KnownHosts)
	if err != nil {
		return nil, fail("reading known_hosts: %v", err)
	}
	var auth []ssh.AuthMethod
	if c.KeyFile != "" {
		pem, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fail("reading the key file: %v", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fail("the key file %s is protected by a passphrase; MIM needs an unencrypted key readable only by its own user", c.KeyFile)
		}
		if err != nil {
			return nil, fail("reading the key file %s: %v", c.KeyFile, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if !c.Password.IsZero() {
		pw := c.Password
		auth = append(auth, ssh.PasswordCallback(func() (string, error) { return pw.Reveal(), nil }),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw.Reveal()
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return nil, fail("no credentials: set exports.sftp.key_file or exports.sftp.password")
	}
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              auth,
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: knownAlgorithms(hostKeys, hostport),
		Timeout:           o.timeout,
	}

	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	conn, err := o.dial(dctx, "tcp", hostport)
	if err != nil {
		return nil, fail("dialling: %v", err)
	}
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(o.timeout))
	sc, chans, reqs, err := ssh.NewClientConn(conn, hostport, cfg)
	if !stop() {
		err = errors.Join(err, dctx.Err())
	}
	if err != nil {
		conn.Close()
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return nil, fmt.Errorf("connecting by SFTP to %s: %w: the host is not in %s; check its key out of band and add it (ssh-keyscan)", s.display, ErrHostKey, c.KnownHosts)
		case errors.As(err, &ke):
			return nil, fmt.Errorf("connecting by SFTP to %s: %w: the host's key differs from the one in %s (%s:%d); the server may have been replaced or someone is in the way", s.display, ErrHostKey, c.KnownHosts, ke.Want[0].Filename, ke.Want[0].Line)
		case errors.As(err, &re):
			return nil, fmt.Errorf("connecting by SFTP to %s: %w: the host's key is revoked in %s", s.display, ErrHostKey, c.KnownHosts)
		}
		// ssh's errors name methods and algorithms, never the password.
		return nil, fail("%v", err)
	}
	_ = conn.SetDeadline(time.Time{})
	s.ssh = ssh.NewClient(sc, chans, reqs)
	s.client, err = sftp.NewClient(s.ssh, sftp.UseConcurrentWrites(true))
	if err != nil {
		s.ssh.Close()
		return nil, fail("starting SFTP: %v", err)
	}
	if v, ok := s.client.HasExtension("posix-rename@openssh.com"); ok && v == "1" {
		s.posixRename = true
	}
	if v, ok := s.client.HasExtension("fsync@openssh.com"); ok && v == "1" {
		s.fsync = true
	}
	st, err := s.client.Stat(dir)
	if err != nil {
		s.Close()
		return nil, fail("the remote directory: %v", err)
	}
	if !st.IsDir() {
		s.Close()
		return nil, fail("%s is not a directory", dir)
	}
	return s, nil
}

// knownAlgorithms lists the key types known_hosts has for the host, so the
// server is asked for a key that can be checked (otherwise it may offer, say,
// ECDSA while known_hosts holds its Ed25519 key, and the check fails).
func knownAlgorithms(cb ssh.HostKeyCallback, hostport string) []string {
	// Any key that is not the host's makes the callback list the host's keys.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	err = cb(hostport, &net.TCPAddr{IP: net.IPv4zero}, probe)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// String names the destination.
func (s *SFTP) String() string { return s.display }

// Exists reports whether name is in the remote directory.
func (s *SFTP) Exists(_ context.Context, name string) (bool, error) {
	_, err := s.client.Stat(path.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking for %s on %s: %w", name, s.display, err)
	}
	return true, nil
}

// Close ends the session.
func (s *SFTP) Close() error {
	var err error
	if s.client != nil {
		err = s.client.Close()
	}
	if s.ssh != nil {
		err = errors.Join(err, s.ssh.Close())
	}
	return err
}

// Deliver uploads f to name.tmp in the remote directory, checks what was
// sent against f's checksum and the remote size, syncs it if the server
// can, dates it after the file it replaces and renames it over that file
// (posix-rename@openssh.com when offered, so there is never a moment without
// a file). If ctx ends the connection is closed and the target cannot be
// used again; the published file is untouched either way.
func (s *SFTP) Deliver(ctx context.Context, f File) (_ Delivery, err error) {
	remote := path.Join(s.dir, f.Name)
	tmp := remote + ".tmp"
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			err = fmt.Errorf("uploading %s to %s: %w", f.Name, s.display, err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.ssh.Close() })
	defer stop()

	src, err := os.Open(f.Path)
	if err != nil {
		return Delivery{}, err
	}
	defer src.Close()
	if err := s.upload(src, tmp, f); err != nil {
		_ = s.client.Remove(tmp) // best effort; a stale .tmp is truncated next time
		return Delivery{}, err
	}
	mtime := f.ModTime
	if prev, err := s.client.Stat(remote); err == nil {
		mtime, _ = after(context.Background(), prev.ModTime(), mtime, writeConfig{maxWait: 0, now: time.Now})
	} else if !errors.Is(err, fs.ErrNotExist) {
		_ = s.client.Remove(tmp)
		return Delivery{}, fmt.Errorf("reading the published file's time: %w", err)
	}
	if err := s.client.Chtimes(tmp, mtime, mtime); err != nil {
		_ = s.client.Remove(tmp)
		return Delivery{}, fmt.Errorf("setting the time of %s: %w", tmp, err)
	}
	if err := ctx.Err(); err != nil {
		_ = s.client.Remove(tmp)
		return Delivery{}, err
	}
	if err := s.rename(tmp, remote); err != nil {
		_ = s.client.Remove(tmp)
		return Delivery{}, err
	}
	st, err := s.client.Stat(remote)
	if err != nil {
		return Delivery{}, fmt.Errorf("checking %s: %w", remote, err)
	}
	return Delivery{Location: s.display + "/" + f.Name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (s *SFTP) upload(src io.Reader, tmp string, f File) error {
	rf, err := s.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	h := sha256.New()
	n, err := rf.ReadFrom(&io.LimitedReader{R: io.TeeReader(src, h), N: f.Size})
	if err != nil {
		rf.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
		rf.Close()
		return fmt.Errorf("%w: sent %d bytes with SHA-256 %s, the file is %d bytes with %s", ErrChecksum, n, sum, f.Size, f.SHA256)
	}
	if s.fsync {
		if err := rf.Sync(); err != nil {
			rf.Close()
			return fmt.Errorf("syncing %s: %w", tmp, err)
		}
	}
	if err := rf.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := s.client.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("making %s readable: %w", tmp, err)
	}
	st, err := s.client.Stat(tmp)
	if err != nil {
		return fmt.Errorf("checking %s: %w", tmp, err)
	}
	if st.Size() != f.Size {
		return fmt.Errorf("%w: %s is %d bytes on the server, %d sent", ErrChecksum, tmp, st.Size(), f.Size)
	}
	return nil
}

// rename replaces remote with tmp. Without posix-rename, SFTP's own rename
// fails when the target exists (OpenSSH), so the old file is removed first:
// for that moment Moodle finds no file, which it treats as "nothing to do".
func (s *SFTP) rename(tmp, remote string) error {
	if s.posixRename {
		if err := s.client.PosixRename(tmp, remote); err != nil {
			return fmt.Errorf("renaming %s to %s: %w", tmp, remote, err)
		}
		return nil
	}
	if err := s.client.Rename(tmp, remote); err == nil {
		return nil
	}
	if err := s.client.Remove(remote); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the old %s: %w", remote, err)
	}
	if err := s.client.Rename(tmp, remote); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, remote, err)
	}
	return nil
}

// redactURL drops any password from an sftp URL before it is shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "sftp://[redacted]" + raw[i:]
		}
		return "[unparseable URL]"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
