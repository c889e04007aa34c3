// Package notify sends MIM's mail: threshold refusals, held courses and run
// summaries. Callers depend on the small Mailer interface; the SMTP
// implementation insists on STARTTLS unless the relay is on loopback,
// authenticates when a username is configured, and never puts the password
// in an error.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mimwarehouse/mim/internal/secret"
)

// Message is one plain-text mail.
type Message struct {
	// To overrides the configured recipients (e.g. threshold_email from
	// ctl.settings); empty means the configured ones.
	To      []string
	Subject string
	Body    string // UTF-8 text; lines end with \n
}

// Mailer sends mail. The threshold guard and the run summary call it.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Options are where mail goes: the relay and the default recipients
// (notify.smtp and notify.to in the configuration).
type Options struct {
	Relay Relay
	To    []string
}

// Relay is the SMTP relay mail is sent through.
type Relay struct {
	Host     string
	Port     int
	Username string
	Password secret.Secret
	From     string
	// StartTLS is required unless the relay is on loopback.
	StartTLS bool
}

// New returns the Mailer o describes: SMTP when the relay's host is set
// (notify.smtp.host), otherwise one whose Send returns ErrNotConfigured.
func New(o Options, opts ...Option) (Mailer, error) {
	if o.Relay.Host == "" {
		return disabled{}, nil
	}
	return NewSMTP(o.Relay, o.To, opts...)
}

type disabled struct{}

func (disabled) Send(context.Context, Message) error { return ErrNotConfigured }

// Option changes how an SMTP mailer connects.
type Option func(*SMTP)

// WithTLSConfig sets the TLS configuration for STARTTLS (tests pass one
// that trusts their own certificate). ServerName defaults to the relay host.
func WithTLSConfig(c *tls.Config) Option { return func(s *SMTP) { s.tls = c.Clone() } }

// WithDialer replaces how the relay is dialled.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(s *SMTP) { s.dial = dial }
}

// WithClock sets the clock for the Date header.
func WithClock(now func() time.Time) Option { return func(s *SMTP) { s.now = now } }

// WithHelloName sets the name sent in EHLO (default: this host's name).
func WithHelloName(name string) Option { return func(s *SMTP) { s.hello = name } }

// WithTimeout bounds one Send when the context has no deadline (default 60s).
func WithTimeout(d time.Duration) Option { return func(s *SMTP) { s.timeout = d } }

// SMTP sends mail through one relay.
type SMTP struct {
	host       string
	port       int
	username   string
	password   secret.Secret
	from       *mail.Address
	to         []string
	requireTLS bool
	tls        *tls.Config
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	now        func() time.Time
	hello      string
	timeout    time.Duration
}

// NewSMTP returns a mailer for the relay cfg, sending to defaultTo unless a
// message names its own recipients. STARTTLS is required when cfg asks for
// it and always when the relay is not on loopback.
func NewSMTP(cfg Relay, defaultTo []string, opts ...Option) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, ErrNotConfigured
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify.smtp.from %q: %w", cfg.From, err)
	}
	for _, to := range defaultTo {
		if _, err := mail.ParseAddress(to); err != nil {
			return nil, fmt.Errorf("notify.to %q: %w", to, err)
		}
	}
	port := cfg.Port
	if port == 0 {
		port = 587
	}
	s := &SMTP{
		host: cfg.Host, port: port, username: cfg.Username, password: cfg.Password,
		from: from, to: slices.Clone(defaultTo),
		requireTLS: cfg.StartTLS || !isLoopback(cfg.Host),
		dial:       (&net.Dialer{}).DialContext,
		now:        time.Now,
		timeout:    60 * time.Second,
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		s.hello = h
	} else {
		s.hello = "localhost"
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// String names the relay, for logs.
func (s *SMTP) String() string { return "smtp://" + net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Send delivers m. If the relay refuses some recipients but accepts others,
// the mail goes to those it accepted and the error is a *RecipientsError.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	rcpts := m.To
	if len(rcpts) == 0 {
		rcpts = s.to
	}
	if len(rcpts) == 0 {
		return fmt.Errorf("sending mail %q: no recipients (set notify.to)", m.Subject)
	}
	addrs := make([]*mail.Address, len(rcpts))
	for i, r := range rcpts {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return fmt.Errorf("sending mail %q: recipient %q: %w", m.Subject, r, err)
		}
		addrs[i] = a
	}
	msg, err := s.compose(m, addrs)
	if err != nil {
		return fmt.Errorf("sending mail %q: %w", m.Subject, err)
	}
	if _, ok := ctx.Deadline(); !ok && s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if err := s.deliver(ctx, msg, addrs); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return fmt.Errorf("sending mail %q via %s: %w", m.Subject, s, err)
	}
	return nil
}

func (s *SMTP) deliver(ctx context.Context, msg []byte, addrs []*mail.Address) error {
	conn, err := s.dial(ctx, "tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	// Closing the connection when ctx ends unblocks any read or write; a
	// connection deadline would race with ctx and hide why Send stopped.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.hello); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if s.requireTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the relay does not offer STARTTLS, which is required unless the relay is on loopback")
		}
		tc := s.tls
		if tc == nil {
			tc = &tls.Config{}
		} else {
			tc = tc.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = s.host
		}
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.username != "" {
		if err := s.auth(c); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	var rejected RecipientsError
	for _, a := range addrs {
		if err := c.Rcpt(a.Address); err != nil {
			rejected.add(a.Address, err)
		}
	}
	if len(rejected.Rejected) == len(addrs) {
		return &rejected
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("sending the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("ending the message: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	if len(rejected.Rejected) > 0 {
		return &rejected
	}
	return nil
}

func (s *SMTP) auth(c *smtp.Client) error {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return errors.New("a username is configured but the relay offers no AUTH")
	}
	var a smtp.Auth
	switch fields := strings.Fields(strings.ToUpper(mechs)); {
	case slices.Contains(fields, "PLAIN"):
		a = smtp.PlainAuth("", s.username, s.password.Reveal(), s.host)
	case slices.Contains(fields, "LOGIN"):
		a = &loginAuth{user: s.username, pass: s.password.Reveal(), host: s.host}
	default:
		return fmt.Errorf("the relay offers AUTH %s; MIM speaks PLAIN and LOGIN", mechs)
	}
	if err := c.Auth(a); err != nil {
		// net/smtp's errors carry the server's reply, never the credentials.
		return fmt.Errorf("authenticating as %s: %w", s.username, err)
	}
	return nil
}

// loginAuth is the LOGIN mechanism some relays (Exchange) offer instead of
// PLAIN; like net/smtp's PLAIN it refuses to send a password in the clear
// except to loopback.
type loginAuth struct{ user, pass, host string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN prompt %q", fromServer)
}

// compose builds the message: RFC 5322 headers, MIME text/plain in UTF-8,
// quoted-printable body, CRLF line ends.
func (s *SMTP) compose(m Message, to []*mail.Address) ([]byte, error) {
	if !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Body) {
		return nil, errors.New("subject or body is not valid UTF-8")
	}
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("Date", s.now().Format(time.RFC1123Z))
	hdr("From", s.from.String())
	names := make([]string, len(to))
	for i, a := range to {
		names[i] = a.String()
	}
	hdr("To", strings.Join(names, ",\r\n "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", cleanSubject(m.Subject)))
	hdr("Message-ID", s.messageID())
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=UTF-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	// Auto-Submitted keeps out-of-office replies away from the relay's sender.
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// cleanSubject folds line breaks and tabs into spaces (a subject comes from
// ctl.settings and must not be able to add headers) and bounds its length.
func cleanSubject(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' || r == '\t' }), " ")
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:200]) + "…"
	}
	if strings.TrimSpace(s) == "" {
		s = "(MIM)"
	}
	return s
}

func (s *SMTP) messageID() string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	domain := "mim.invalid"
	if at := strings.LastIndexByte(s.from.Address, '@'); at >= 0 && at < len(s.from.Address)-1 {
		domain = s.from.Address[at+1:]
	}
	return "<" + strconv.FormatInt(s.now().UnixNano(), 36) + "." + hex.EncodeToString(r[:]) + "@" + domain + ">"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
