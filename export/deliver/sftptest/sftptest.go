// Package sftptest runs an SSH server with the SFTP subsystem on loopback
// for tests: password or public-key logins, host keys it makes up (so a test
// can write a matching or a wrong known_hosts), the real file system
// underneath, and a fault switch that cuts every connection once a given
// number of bytes has arrived (an upload interrupted half way).
package sftptest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Option configures a Server.
type Option func(*Server)

// WithPassword accepts user with password.
func WithPassword(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithAuthorizedKey accepts user with the private key of pub.
func WithAuthorizedKey(user string, pub ssh.PublicKey) Option {
	return func(s *Server) { s.user, s.authorized = user, pub }
}

// WithECDSAHostKey makes the server offer an ECDSA host key besides its
// Ed25519 one (clients that prefer ECDSA then need to ask for Ed25519).
func WithECDSAHostKey() Option { return func(s *Server) { s.ecdsa = true } }

// Server is a running SSH/SFTP server.
type Server struct {
	Host    string // 127.0.0.1
	Port    int
	HostKey ssh.PublicKey // the Ed25519 host key

	user, password string
	authorized     ssh.PublicKey
	ecdsa          bool
	ln             net.Listener
	config         *ssh.ServerConfig

	cutAfter atomic.Int64 // bytes of SFTP traffic to accept before cutting; <0 off
	received atomic.Int64
	logins   atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{conns: map[net.Conn]bool{}}
	s.cutAfter.Store(-1)
	for _, o := range opts {
		o(s)
	}
	if s.user == "" {
		t.Fatal("sftptest: give WithPassword or WithAuthorizedKey")
	}
	cfg := &ssh.ServerConfig{}
	if s.password != "" {
		cfg.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == s.user && string(pw) == s.password {
				s.logins.Add(1)
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if s.authorized != nil {
		want := s.authorized.Marshal()
		cfg.PublicKeyCallback = func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == s.user && string(k.Marshal()) == string(want) {
				s.logins.Add(1)
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = signer.PublicKey()
	if s.ecdsa {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		es, err := ssh.NewSignerFromKey(ek)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AddHostKey(es)
	}
	cfg.AddHostKey(signer)
	s.config = cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sftptest: listening: %v", err)
	}
	s.ln = ln
	s.Host = "127.0.0.1"
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URL is the sftp:// URL of dir on this server for its user.
func (s *Server) URL(dir string) string {
	return "sftp://" + s.user + "@" + s.Addr() + filepath.ToSlash(dir)
}

// KnownHostsLine is the known_hosts line for this server's Ed25519 key.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey)
}

// WriteKnownHosts writes a known_hosts file trusting this server and returns
// its path.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Logins counts successful authentications.
func (s *Server) Logins() int64 { return s.logins.Load() }

// CutAfter drops every connection once n more bytes of SFTP requests have
// arrived; a negative n switches the fault off.
func (s *Server) CutAfter(n int64) {
	s.received.Store(0)
	s.cutAfter.Store(n)
}

// Close stops the server and its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.dropAll()
	s.wg.Wait()
}

func (s *Server) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c)
		}()
	}
}

func (s *Server) handle(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ch.Close()
			for req := range chReqs {
				if req.Type != "subsystem" || len(req.Payload) < 4 || string(req.Payload[4:]) != "sftp" {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				srv, err := sftp.NewServer(&cutter{ReadWriteCloser: ch, s: s, conn: c})
				if err != nil {
					return
				}
				_ = srv.Serve() // ends when the client leaves or is cut
				srv.Close()
				return
			}
		}()
	}
}

// cutter counts what the client sends and cuts the connection when the
// server's budget is spent.
type cutter struct {
	io.ReadWriteCloser
	s    *Server
	conn net.Conn
}

func (c *cutter) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	if limit := c.s.cutAfter.Load(); limit >= 0 && c.s.received.Add(int64(n)) > limit {
		c.s.cutAfter.Store(-1)
		c.s.dropAll()
		return 0, fmt.Errorf("sftptest: connection cut after %d bytes", limit)
	}
	return n, err
}

// ClientKey makes a new Ed25519 key pair, writes the private key (OpenSSH
// PEM, unencrypted, mode 0600) into a temporary file and returns its path
// and the public key.
func ClientKey(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "mim test key")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return p, sp
}
