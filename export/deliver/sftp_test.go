package deliver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mimwarehouse/mim/export/deliver/sftptest"
)

const sftpPassword = "sftp-Pa55word-0815"

func exportsWith(deliver string) Options {
	return Options{Dir: os.TempDir(), Deliver: deliver}
}

func localFile(t *testing.T, dir, name, content string) File {
	t.Helper()
	f, err := WriteFile(context.Background(), filepath.Join(dir, name), writeString(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func dialPassword(t *testing.T, srv *sftptest.Server, remote string) *SFTP {
	t.Helper()
	s, err := DialSFTP(context.Background(), SFTPConfig{URL: srv.URL(remote), KnownHosts: srv.WriteKnownHosts(t), Password: sftpPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSFTPUpload(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	remote, out := t.TempDir(), t.TempDir()
	s := dialPassword(t, srv, remote)
	if !s.posixRename {
		t.Error("the server offers posix-rename@openssh.com but it is not used")
	}
	first, err := s.Deliver(context.Background(), localFile(t, out, "ims-main.xml", "v1\n"))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(remote, "ims-main.xml")
	if readFile(t, dst) != "v1\n" || first.Location != srv.URL(remote)+"/ims-main.xml" || first.Size != 3 {
		t.Errorf("delivery %+v", first)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o644 {
		t.Errorf("remote mode %v", st.Mode())
	}
	// A second file in the same second still gets a later mtime on the server.
	big := strings.Repeat("<member>…</member>\n", 100000)
	second, err := s.Deliver(context.Background(), localFile(t, out, "ims-main.xml", big))
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, dst) != big || second.ModTime.Unix() <= first.ModTime.Unix() {
		t.Errorf("second delivery %+v after %+v", second, first)
	}
	noTmp(t, remote)
}

func TestSFTPKeyAuthAndAlgorithmChoice(t *testing.T) {
	keyFile, pub := sftptest.ClientKey(t)
	// The server offers ECDSA and Ed25519; known_hosts has only Ed25519.
	srv := sftptest.Start(t, sftptest.WithAuthorizedKey("mim", pub), sftptest.WithECDSAHostKey())
	remote := t.TempDir()
	s, err := DialSFTP(context.Background(), SFTPConfig{URL: srv.URL(remote), KnownHosts: srv.WriteKnownHosts(t), KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Deliver(context.Background(), localFile(t, t.TempDir(), "merge-main-1.csv", "seq\n")); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(remote, "merge-main-1.csv")) != "seq\n" || srv.Logins() != 1 {
		t.Error("upload with a key failed")
	}
}

func TestSFTPHostKeyIsAlwaysChecked(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	dir := t.TempDir()
	otherKey := func() ssh.PublicKey {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := ssh.NewPublicKey(pub)
		return k
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]struct {
		knownHosts string
		want       string
		hostKey    bool
	}{
		"changed key":    {write("changed", knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, otherKey())+"\n"), "differs", true},
		"unknown host":   {write("unknown", knownhosts.Line([]string{"moodle.example.ac.uk"}, srv.HostKey)+"\n"), "not in", true},
		"revoked key":    {write("revoked", "@revoked "+knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey)+"\n"), "revoked", true},
		"missing file":   {filepath.Join(dir, "nope"), "known_hosts", false},
		"not configured": {"", "required", false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DialSFTP(context.Background(), SFTPConfig{URL: srv.URL(dir), KnownHosts: c.knownHosts, Password: sftpPassword})
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrHostKey) != c.hostKey {
				t.Fatalf("error = %v", err)
			}
			if strings.Contains(err.Error(), sftpPassword) {
				t.Errorf("password in error: %v", err)
			}
		})
	}
	if srv.Logins() != 0 {
		t.Errorf("%d logins went through with an untrusted host key", srv.Logins())
	}
}

func TestSFTPWrongPassword(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	_, err := DialSFTP(context.Background(), SFTPConfig{URL: srv.URL(t.TempDir()), KnownHosts: srv.WriteKnownHosts(t), Password: "not-" + sftpPassword})
	if err == nil || strings.Contains(err.Error(), sftpPassword) {
		t.Fatalf("error = %v", err)
	}
	for _, bad := range []SFTPConfig{
		{URL: "sftp://mim:" + sftpPassword + "@" + srv.Addr() + "/tmp", KnownHosts: "x"},
		{URL: "sftp://" + srv.Addr() + "/tmp", KnownHosts: "x"},
		{URL: "sftp://mim@" + srv.Addr() + "/tmp", KnownHosts: srv.WriteKnownHosts(t)},
		{URL: "sftp://mim@" + srv.Addr() + "/no/such/dir", KnownHosts: srv.WriteKnownHosts(t), Password: sftpPassword},
	} {
		_, err := DialSFTP(context.Background(), bad)
		if err == nil || strings.Contains(err.Error(), sftpPassword) {
			t.Errorf("%s: error = %v", redactURL(bad.URL), err)
		}
	}
}

// An upload cut off half way leaves the published file as it was; the next
// run replaces it.
func TestSFTPInterruptedUploadKeepsThePublishedFile(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	remote, out := t.TempDir(), t.TempDir()
	s := dialPassword(t, srv, remote)
	v1 := localFile(t, out, "ims-main.xml", "<v1/>\n")
	if _, err := s.Deliver(context.Background(), v1); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(remote, "ims-main.xml")
	before, _ := os.Stat(dst)

	v2 := localFile(t, out, "ims-main.xml", strings.Repeat("<v2>0123456789</v2>\n", 200000))
	srv.CutAfter(300 << 10)
	if _, err := s.Deliver(context.Background(), v2); err == nil {
		t.Fatal("an upload through a cut connection succeeded")
	}
	if got := readFile(t, dst); got != "<v1/>\n" {
		t.Fatalf("the published file became %d bytes", len(got))
	}
	if after, _ := os.Stat(dst); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the published file's mtime changed")
	}
	s.Close()

	s2 := dialPassword(t, srv, remote)
	if _, err := s2.Deliver(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := Hash(dst); h != v2.SHA256 {
		t.Error("the retry did not publish v2")
	}
	noTmp(t, remote)
}

func TestSFTPCancelledUpload(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	remote, out := t.TempDir(), t.TempDir()
	s := dialPassword(t, srv, remote)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Deliver(ctx, localFile(t, out, "ims-main.xml", "x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(remote, "ims-main.xml")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a cancelled upload was published")
	}
}

// Servers without posix-rename get remove-then-rename.
func TestSFTPRenameWithoutPosixRename(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	remote, out := t.TempDir(), t.TempDir()
	s := dialPassword(t, srv, remote)
	s.posixRename = false
	for _, v := range []string{"one", "two"} {
		if _, err := s.Deliver(context.Background(), localFile(t, out, "tutor.csv", v)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(remote, "tutor.csv")); got != v {
			t.Errorf("remote has %q, want %q", got, v)
		}
	}
}

func TestOpenSFTP(t *testing.T) {
	srv := sftptest.Start(t, sftptest.WithPassword("mim", sftpPassword))
	ex := Options{Dir: t.TempDir(), Deliver: srv.URL(t.TempDir()),
		SFTP: SFTPAuth{KnownHosts: srv.WriteKnownHosts(t), Password: sftpPassword}}
	tg, err := Open(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if typeName(tg) != "*deliver.SFTP" || strings.Contains(tg.String(), sftpPassword) || !strings.HasPrefix(tg.String(), "sftp://mim@127.0.0.1:") {
		t.Errorf("target %T %s", tg, tg)
	}
	var _ io.Closer = tg
}
