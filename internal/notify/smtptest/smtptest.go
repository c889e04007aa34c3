// Package smtptest runs a small SMTP server on loopback for tests: it
// speaks enough of RFC 5321 for MIM's mailer (EHLO, STARTTLS with a
// certificate it makes up, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET,
// NOOP, QUIT) and records every message it accepts.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one accepted message.
type Message struct {
	From     string
	To       []string
	Data     []byte // as received, dot-unstuffed, CRLF line ends
	TLS      bool   // sent after STARTTLS
	AuthUser string // "" when not authenticated
}

// Parse reads the message's headers and body.
func (m Message) Parse() (*mail.Message, error) { return mail.ReadMessage(bytes.NewReader(m.Data)) }

// Option configures a Server.
type Option func(*Server)

// WithTLS offers STARTTLS with a self-signed certificate valid for
// localhost, 127.0.0.1, ::1 and the extra names given.
func WithTLS(names ...string) Option {
	return func(s *Server) { s.tlsNames = append([]string{"localhost"}, names...); s.offerTLS = true }
}

// RequireTLS refuses MAIL before STARTTLS.
func RequireTLS() Option { return func(s *Server) { s.requireTLS = true } }

// WithAuth offers AUTH (PLAIN and LOGIN, or the mechanisms given) and
// requires it before MAIL; only user/pass is accepted.
func WithAuth(user, pass string, mechanisms ...string) Option {
	return func(s *Server) {
		s.user, s.pass = user, pass
		s.mechs = mechanisms
		if len(s.mechs) == 0 {
			s.mechs = []string{"PLAIN", "LOGIN"}
		}
	}
}

// RejectRecipient answers 550 to RCPT TO:<addr>.
func RejectRecipient(addr string) Option {
	return func(s *Server) { s.reject[strings.ToLower(addr)] = true }
}

// Server is a running test server.
type Server struct {
	Host string // 127.0.0.1
	Port int

	ln         net.Listener
	offerTLS   bool
	requireTLS bool
	tlsNames   []string
	tlsConf    *tls.Config
	roots      *x509.CertPool
	user, pass string
	mechs      []string
	reject     map[string]bool

	mu       sync.Mutex
	msgs     []Message
	attempts []string // AUTH outcomes, for tests: "ok user", "bad user"
	wg       sync.WaitGroup
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{reject: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if s.offerTLS {
		if err := s.makeCert(); err != nil {
			t.Fatalf("smtptest: making a certificate: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listening: %v", err)
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

// ClientTLSConfig trusts the server's certificate.
func (s *Server) ClientTLSConfig() *tls.Config { return &tls.Config{RootCAs: s.roots} }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// AuthAttempts returns "ok USER" or "bad USER" for each AUTH tried.
func (s *Server) AuthAttempts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.attempts...)
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			s.session(c)
		}()
	}
}

type session struct {
	tp       *textproto.Conn
	tls      bool
	helo     bool
	authUser string
	from     string
	to       []string
	inMail   bool
}

func (s *Server) session(c net.Conn) {
	ss := &session{tp: textproto.NewConn(c)}
	reply := func(code int, msg string) { _ = ss.tp.PrintfLine("%d %s", code, msg) }
	reply(220, "smtptest ready")
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ss.helo = true
			ss.reset()
			ext := []string{"smtptest", "8BITMIME", "PIPELINING"}
			if s.offerTLS && !ss.tls {
				ext = append(ext, "STARTTLS")
			}
			if s.user != "" {
				ext = append(ext, "AUTH "+strings.Join(s.mechs, " "))
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				_ = ss.tp.PrintfLine("250%s%s", sep, e)
			}
		case "STARTTLS":
			if !s.offerTLS || ss.tls {
				reply(502, "STARTTLS not offered")
				continue
			}
			reply(220, "go ahead")
			tc := tls.Server(c, s.tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			ss.tp = textproto.NewConn(tc)
			ss.tls, ss.helo = true, false
			ss.reset()
		case "AUTH":
			s.auth(ss, arg, reply)
		case "MAIL":
			switch {
			case !ss.helo:
				reply(503, "EHLO first")
			case s.requireTLS && !ss.tls:
				reply(530, "must issue STARTTLS first")
			case s.user != "" && ss.authUser == "":
				reply(530, "authentication required")
			default:
				ss.reset()
				ss.from = addrOf(arg, "FROM:")
				ss.inMail = true
				reply(250, "ok")
			}
		case "RCPT":
			a := addrOf(arg, "TO:")
			switch {
			case !ss.inMail:
				reply(503, "MAIL first")
			case s.reject[strings.ToLower(a)]:
				reply(550, "no such user "+a)
			default:
				ss.to = append(ss.to, a)
				reply(250, "ok")
			}
		case "DATA":
			if !ss.inMail || len(ss.to) == 0 {
				reply(503, "RCPT first")
				continue
			}
			reply(354, "end with .")
			data, err := ss.tp.ReadDotBytes()
			if err != nil {
				return
			}
			// ReadDotBytes turns CRLF into LF; keep what the client sent.
			data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			s.mu.Lock()
			s.msgs = append(s.msgs, Message{From: ss.from, To: ss.to, Data: data, TLS: ss.tls, AuthUser: ss.authUser})
			s.mu.Unlock()
			ss.reset()
			reply(250, "queued")
		case "RSET":
			ss.reset()
			reply(250, "ok")
		case "NOOP":
			reply(250, "ok")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "not implemented")
		}
	}
}

func (ss *session) reset() { ss.from, ss.to, ss.inMail = "", nil, false }

func addrOf(arg, prefix string) string {
	arg = strings.TrimSpace(arg)
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = strings.TrimSpace(arg[len(prefix):])
	}
	if i := strings.IndexByte(arg, ' '); i >= 0 {
		arg = arg[:i] // drop parameters such as BODY=8BITMIME
	}
	return strings.TrimSuffix(strings.TrimPrefix(arg, "<"), ">")
}

func (s *Server) auth(ss *session, arg string, reply func(int, string)) {
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	known := false
	for _, m := range s.mechs {
		known = known || m == mech
	}
	if s.user == "" || !known {
		reply(504, "mechanism not supported")
		return
	}
	var user, pass string
	switch mech {
	case "PLAIN":
		if initial == "" {
			reply(334, "")
			l, err := ss.tp.ReadLine()
			if err != nil {
				return
			}
			initial = l
		}
		raw, err := base64.StdEncoding.DecodeString(initial)
		if err != nil {
			reply(501, "bad base64")
			return
		}
		parts := strings.Split(string(raw), "\x00")
		if len(parts) != 3 {
			reply(501, "bad PLAIN response")
			return
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		ask := func(prompt string) (string, bool) {
			reply(334, base64.StdEncoding.EncodeToString([]byte(prompt)))
			l, err := ss.tp.ReadLine()
			if err != nil {
				return "", false
			}
			v, err := base64.StdEncoding.DecodeString(l)
			return string(v), err == nil
		}
		var ok bool
		if user, ok = ask("Username:"); !ok {
			reply(501, "bad base64")
			return
		}
		if pass, ok = ask("Password:"); !ok {
			reply(501, "bad base64")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if user == s.user && pass == s.pass {
		ss.authUser = user
		s.attempts = append(s.attempts, "ok "+user)
		reply(235, "authenticated")
		return
	}
	s.attempts = append(s.attempts, "bad "+user)
	reply(535, "authentication failed")
}

func (s *Server) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              s.tlsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	s.roots = x509.NewCertPool()
	s.roots.AddCert(cert)
	s.tlsConf = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	return nil
}
