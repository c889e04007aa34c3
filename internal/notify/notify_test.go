package notify

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/notify/smtptest"
)

const password = "pw-Sup3rSecret-4711"

func relay(srv *smtptest.Server) Relay {
	return Relay{Host: srv.Host, Port: srv.Port, From: "MIM <mim@example.ac.uk>"}
}

func newMailer(t *testing.T, cfg Relay, to []string, opts ...Option) *SMTP {
	t.Helper()
	m, err := NewSMTP(cfg, to, append([]Option{WithHelloName("mim.test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPlainOnLoopback(t *testing.T) {
	srv := smtptest.Start(t)
	when := time.Date(2025, 9, 21, 1, 5, 0, 0, time.UTC)
	m := newMailer(t, relay(srv), []string{"lama@example.ac.uk", "Ops Team <ops@example.ac.uk>"}, WithClock(func() time.Time { return when }))
	body := "Threshold breached for site main.\n" +
		".a line that starts with a dot\n" +
		"Active students: 41 230 → 12 004 (29.1 %), limit 75 %.\n" +
		strings.Repeat("long line ", 20) + "\n"
	if err := m.Send(context.Background(), Message{Subject: "MIM: export refusé — main", Body: body}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	got := msgs[0]
	if got.From != "mim@example.ac.uk" || strings.Join(got.To, ",") != "lama@example.ac.uk,ops@example.ac.uk" || got.TLS {
		t.Errorf("envelope from %q to %v tls %v", got.From, got.To, got.TLS)
	}
	pm, err := got.Parse()
	if err != nil {
		t.Fatal(err)
	}
	h := pm.Header
	if d, err := h.Date(); err != nil || !d.Equal(when) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if !regexp.MustCompile(`^<[0-9a-z]+\.[0-9a-f]{24}@example\.ac\.uk>$`).MatchString(h.Get("Message-Id")) {
		t.Errorf("Message-ID %q", h.Get("Message-Id"))
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || subj != "MIM: export refusé — main" {
		t.Errorf("Subject %q -> %q, %v", h.Get("Subject"), subj, err)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Name != "MIM" || from[0].Address != "mim@example.ac.uk" {
		t.Errorf("From %q", h.Get("From"))
	}
	if to, _ := h.AddressList("To"); len(to) != 2 || to[1].Name != "Ops Team" {
		t.Errorf("To %q", h.Get("To"))
	}
	for k, want := range map[string]string{"Mime-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
		"Content-Transfer-Encoding": "quoted-printable", "Auto-Submitted": "auto-generated"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(pm.Body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ReplaceAll(string(dec), "\r\n", "\n") != body {
		t.Errorf("body:\n%q\nwant\n%q", dec, body)
	}
	for _, l := range strings.Split(string(got.Data), "\r\n") {
		if len(l) > 78 {
			t.Errorf("line longer than 78 characters: %q", l)
		}
	}
}

func TestStartTLSWhenAsked(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithTLS(), smtptest.RequireTLS())
	cfg := relay(srv)
	cfg.StartTLS = true
	m := newMailer(t, cfg, []string{"lama@example.ac.uk"}, WithTLSConfig(srv.ClientTLSConfig()))
	if err := m.Send(context.Background(), Message{Subject: "s", Body: "b\n"}); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestStartTLSRequiredButNotOffered(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := relay(srv)
	cfg.StartTLS = true
	err := newMailer(t, cfg, []string{"lama@example.ac.uk"}).Send(context.Background(), Message{Subject: "s", Body: "b"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("want a STARTTLS error, got %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("mail went out in the clear")
	}
}

// A relay that is not on loopback gets STARTTLS even when the configuration
// says starttls: false.
func TestRemoteRelayAlwaysNeedsTLS(t *testing.T) {
	for _, offer := range []bool{false, true} {
		var opts []smtptest.Option
		if offer {
			opts = append(opts, smtptest.WithTLS("smtp.example.test"))
		}
		srv := smtptest.Start(t, opts...)
		cfg := Relay{Host: "smtp.example.test", Port: 587, From: "mim@example.ac.uk", StartTLS: false}
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "smtp.example.test:587" {
				t.Errorf("dialled %s", addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, srv.Addr())
		}
		m := newMailer(t, cfg, []string{"lama@example.ac.uk"}, WithDialer(dial), WithTLSConfig(srv.ClientTLSConfig()))
		err := m.Send(context.Background(), Message{Subject: "s", Body: "b"})
		switch {
		case !offer && (err == nil || !strings.Contains(err.Error(), "STARTTLS")):
			t.Errorf("relay without STARTTLS: %v", err)
		case offer && err != nil:
			t.Errorf("relay with STARTTLS: %v", err)
		case offer && (len(srv.Messages()) != 1 || !srv.Messages()[0].TLS):
			t.Errorf("not sent over TLS: %+v", srv.Messages())
		}
	}
}

func TestAuthentication(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run(mech, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.WithTLS(), smtptest.WithAuth("mim", password, mech))
			cfg := relay(srv)
			cfg.StartTLS, cfg.Username, cfg.Password = true, "mim", password
			m := newMailer(t, cfg, []string{"lama@example.ac.uk"}, WithTLSConfig(srv.ClientTLSConfig()))
			if err := m.Send(context.Background(), Message{Subject: "s", Body: "b"}); err != nil {
				t.Fatal(err)
			}
			if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].AuthUser != "mim" {
				t.Fatalf("messages %+v", msgs)
			}

			cfg.Password = "wrong-" + password
			err := newMailer(t, cfg, []string{"lama@example.ac.uk"}, WithTLSConfig(srv.ClientTLSConfig())).
				Send(context.Background(), Message{Subject: "s", Body: "b"})
			if err == nil || !strings.Contains(err.Error(), "authenticating as mim") {
				t.Fatalf("wrong password: %v", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the password is in the error: %v", err)
			}
			if a := srv.AuthAttempts(); len(a) != 2 || a[1] != "bad mim" {
				t.Errorf("attempts %v", a)
			}
		})
	}
}

func TestAuthWithoutOffer(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := relay(srv)
	cfg.Username, cfg.Password = "mim", password
	err := newMailer(t, cfg, []string{"a@example.ac.uk"}).Send(context.Background(), Message{Subject: "s", Body: "b"})
	if err == nil || !strings.Contains(err.Error(), "no AUTH") || strings.Contains(err.Error(), password) {
		t.Fatalf("got %v", err)
	}
}

func TestRecipients(t *testing.T) {
	srv := smtptest.Start(t, smtptest.RejectRecipient("gone@example.ac.uk"))
	m := newMailer(t, relay(srv), []string{"lama@example.ac.uk"})
	// A message's own recipients replace the configured ones.
	if err := m.Send(context.Background(), Message{To: []string{"threshold@example.ac.uk"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	if to := srv.Messages()[0].To; len(to) != 1 || to[0] != "threshold@example.ac.uk" {
		t.Errorf("to %v", to)
	}
	// One refused recipient: the others still get it, and the error says who did not.
	err := m.Send(context.Background(), Message{To: []string{"gone@example.ac.uk", "ok@example.ac.uk"}, Subject: "s", Body: "b"})
	var re *RecipientsError
	if !errors.As(err, &re) || len(re.Rejected) != 1 || !strings.Contains(re.Rejected["gone@example.ac.uk"], "550") {
		t.Fatalf("partial refusal: %v", err)
	}
	if msgs := srv.Messages(); len(msgs) != 2 || strings.Join(msgs[1].To, ",") != "ok@example.ac.uk" {
		t.Errorf("messages %+v", msgs)
	}
	// All refused: nothing is sent.
	if err := m.Send(context.Background(), Message{To: []string{"gone@example.ac.uk"}, Subject: "s", Body: "b"}); !errors.As(err, &re) {
		t.Errorf("all refused: %v", err)
	}
	if len(srv.Messages()) != 2 {
		t.Error("a message with no accepted recipient was sent")
	}
	if err := newMailer(t, relay(srv), nil).Send(context.Background(), Message{Subject: "s"}); err == nil {
		t.Error("no recipients accepted")
	}
	if err := m.Send(context.Background(), Message{To: []string{"not an address"}, Subject: "s"}); err == nil {
		t.Error("a bad address accepted")
	}
}

func TestSubjectCannotAddHeaders(t *testing.T) {
	srv := smtptest.Start(t)
	m := newMailer(t, relay(srv), []string{"lama@example.ac.uk"})
	if err := m.Send(context.Background(), Message{Subject: "Alert\r\nBcc: evil@example.com\nX-Evil: 1", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	pm, err := srv.Messages()[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if pm.Header.Get("Bcc") != "" || pm.Header.Get("X-Evil") != "" {
		t.Errorf("injected headers: %v", pm.Header)
	}
	if got := pm.Header.Get("Subject"); got != "Alert Bcc: evil@example.com X-Evil: 1" {
		t.Errorf("subject %q", got)
	}
}

func TestNotConfigured(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), Message{Subject: "s"}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("Send = %v", err)
	}
	srv := smtptest.Start(t)
	m, err = New(Options{Relay: relay(srv), To: []string{"lama@example.ac.uk"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), Message{Subject: "s", Body: "b"}); err != nil || len(srv.Messages()) != 1 {
		t.Errorf("configured mailer: %v", err)
	}
}

// A relay that accepts the connection and never answers is given up on
// when the context ends.
func TestSilentRelayHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	m := newMailer(t, Relay{Host: "127.0.0.1", Port: addr.Port, From: "mim@example.ac.uk"}, []string{"a@example.ac.uk"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = m.Send(ctx, Message{Subject: "s", Body: "b"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	m := newMailer(t, Relay{Host: "127.0.0.1", Port: 1, From: "mim@example.ac.uk", Username: "mim", Password: password}, []string{"a@example.ac.uk"})
	err := m.Send(context.Background(), Message{Subject: "s", Body: "b"})
	if err == nil {
		t.Fatal("dialling port 1 succeeded")
	}
	for _, s := range []string{err.Error(), m.String()} {
		if strings.Contains(s, password) {
			t.Errorf("password leaked in %q", s)
		}
	}
}
