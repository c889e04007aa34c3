// Package moodle is MIM's client for Moodle's REST web services. It is the
// only way MIM talks to a Moodle site: it encodes parameters the way PHP
// reads them, checks every answer for Moodle's HTTP-200 exceptions, retries
// what is safe to retry, keeps to a per-site rate and concurrency, never
// sends more form variables than PHP's max_input_vars keeps, and splits
// failed write batches until the bad item stands alone.
//
// The token never appears in a log line, an error, or a metric label: it
// travels only in request bodies, and every message the client produces is
// scrubbed of it.
package moodle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"
)

// Endpoint is the REST server's path below the site URL.
const Endpoint = "/webservice/rest/server.php"

// Observer receives one call per HTTP request, for metrics. instance is
// the site name, never its URL; outcome is one of the Outcome constants.
// internal/observe.Metrics satisfies it.
type Observer interface {
	RequestObserved(instance, function, outcome string, d time.Duration)
}

// Outcomes reported to the Observer.
const (
	OutcomeOK          = "ok"
	OutcomeMoodleError = "moodle_error"
	OutcomeTransient   = "transient"
	OutcomeThrottled   = "throttled"
	OutcomeTimeout     = "timeout"
	OutcomeCanceled    = "canceled"
	OutcomeHTTPError   = "http_error"
)

// Client calls one Moodle site's web services. It is safe for concurrent
// use; its rate limit and concurrency cap apply across all callers.
type Client struct {
	name     string
	siteURL  string
	endpoint string
	token    string

	http       *resty.Client
	limiter    *rate.Limiter
	sem        chan struct{}
	maxVars    int
	batchSize  int
	retries    int
	backoff    time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	log        *slog.Logger
	obs        Observer
	transport  http.RoundTripper

	ratePerSecond float64
	concurrency   int

	site atomic.Pointer[SiteInfo]
}

// Option configures a Client.
type Option func(*Client)

// WithRate limits requests to perSecond (default 10); requests beyond it
// wait, they are not refused. 0 or less means no limit.
func WithRate(perSecond float64) Option { return func(c *Client) { c.ratePerSecond = perSecond } }

// WithConcurrency caps requests in flight (default 4).
func WithConcurrency(n int) Option { return func(c *Client) { c.concurrency = n } }

// WithMaxInputVars sets how many form variables a request may carry
// (default 900: PHP's default max_input_vars of 1000 less headroom). PHP
// drops variables beyond its limit without a word, so the client splits
// requests to stay under this.
func WithMaxInputVars(n int) Option { return func(c *Client) { c.maxVars = n } }

// WithTimeout bounds each HTTP request, reading the body included
// (default 60s). A request that times out is transient.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetries sets how many times a read or an idempotent write is
// repeated after a transient failure (default 4).
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithBackoff sets the first retry's delay and the longest (defaults 250ms
// and 30s); each delay doubles, with jitter.
func WithBackoff(first, longest time.Duration) Option {
	return func(c *Client) { c.backoff, c.maxBackoff = first, longest }
}

// WithBatchSize caps the items of one write request (default 50); smaller
// batches make a failure cheaper to isolate.
func WithBatchSize(n int) Option { return func(c *Client) { c.batchSize = n } }

// WithLogger sets the logger (default: discard). Requests are logged at
// debug level, retries at warn, with the key instance = the site's name.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithObserver reports every request to o.
func WithObserver(o Observer) Option { return func(c *Client) { c.obs = o } }

// WithTransport sets the HTTP transport (TLS settings, proxies, tests).
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.transport = rt } }

// New returns a client for the site called name (the configured site name,
// used in logs and metrics) at siteURL, authenticating with token.
func New(name, siteURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(siteURL)
	switch {
	case name == "":
		return nil, errors.New("moodle client: a site name is required")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("moodle client %s: %q is not an http(s) URL", name, siteURL)
	case u.RawQuery != "" || u.User != nil:
		return nil, fmt.Errorf("moodle client %s: the site URL must not carry a query or credentials", name)
	case token == "":
		return nil, fmt.Errorf("moodle client %s: a token is required", name)
	}
	c := &Client{
		name:          name,
		siteURL:       strings.TrimRight(siteURL, "/"),
		token:         token,
		maxVars:       900,
		batchSize:     50,
		retries:       4,
		backoff:       250 * time.Millisecond,
		maxBackoff:    30 * time.Second,
		timeout:       60 * time.Second,
		ratePerSecond: 10,
		concurrency:   4,
	}
	for _, o := range opts {
		o(c)
	}
	switch {
	case c.concurrency < 1:
		return nil, fmt.Errorf("moodle client %s: concurrency %d is not positive", name, c.concurrency)
	case c.maxVars < 10:
		return nil, fmt.Errorf("moodle client %s: max input vars %d is below 10", name, c.maxVars)
	case c.batchSize < 1:
		return nil, fmt.Errorf("moodle client %s: batch size %d is not positive", name, c.batchSize)
	case c.retries < 0 || c.timeout <= 0 || c.backoff <= 0 || c.maxBackoff < c.backoff:
		return nil, fmt.Errorf("moodle client %s: retries, timeout or backoff out of range", name)
	}
	c.endpoint = c.siteURL + Endpoint
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.sem = make(chan struct{}, c.concurrency)
	c.limiter = rate.NewLimiter(rate.Inf, 1)
	if c.ratePerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(c.ratePerSecond), 1)
	}
	if c.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// One idle connection per concurrent request, or every request
		// beyond the default two would open a new one.
		t.MaxIdleConnsPerHost = c.concurrency
		c.transport = t
	}
	c.http = resty.New().
		SetTransport(c.transport).
		SetTimeout(c.timeout).
		SetRetryCount(0).
		SetLogger(restyLogger{c}).
		SetHeader("User-Agent", "mim-moodle-client").
		// A redirected POST loses its body: report it instead of following.
		SetRedirectPolicy(resty.RedirectPolicyFunc(func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		})).
		OnBeforeRequest(func(_ *resty.Client, r *resty.Request) error {
			// resty's own limiter refuses requests over the rate; this waits.
			if err := c.limiter.Wait(r.Context()); err != nil {
				return limiterError{err}
			}
			return nil
		})
	return c, nil
}

// Name returns the site's configured name.
func (c *Client) Name() string { return c.name }

// URL returns the configured site URL.
func (c *Client) URL() string { return c.siteURL }

// MaxInputVars returns the form-variable budget of one request.
func (c *Client) MaxInputVars() int { return c.maxVars }

// limiterError: the wait for the rate limit ended with the caller's
// context (or would outlast its deadline); it is not the site's fault.
type limiterError struct{ err error }

func (e limiterError) Error() string { return "waiting for the rate limit: " + e.err.Error() }
func (e limiterError) Unwrap() error { return e.err }

// redact removes the token from a message.
func (c *Client) redact(s string) string {
	if len(c.token) < 4 {
		return s
	}
	s = strings.ReplaceAll(s, c.token, "[redacted]")
	return strings.ReplaceAll(s, url.QueryEscape(c.token), "[redacted]")
}

// restyLogger sends resty's own messages to the client's logger at debug
// level, scrubbed of the token.
type restyLogger struct{ c *Client }

func (l restyLogger) Errorf(format string, v ...any) { l.log(format, v...) }
func (l restyLogger) Warnf(format string, v ...any)  { l.log(format, v...) }
func (l restyLogger) Debugf(format string, v ...any) { l.log(format, v...) }
func (l restyLogger) log(format string, v ...any) {
	l.c.log.Debug(l.c.redact(strings.TrimSpace(fmt.Sprintf(format, v...))), "instance", l.c.name, "source", "resty")
}

// retryable are the functions that may be sent again after a transient
// failure: every read, and the writes whose repetition changes nothing
// (adding a member twice, deleting a missing group, enrolling an enrolled
// user). Creating is not among them: a repeated create after a lost answer
// fails on the duplicate name, or makes a second object.
var retryable = map[string]bool{
	"core_group_add_group_members":    true,
	"core_group_delete_group_members": true,
	"core_group_delete_groups":        true,
	"core_group_delete_groupings":     true,
	"core_group_assign_grouping":      true,
	"core_group_unassign_grouping":    true,
	"enrol_manual_enrol_users":        true,
}

// isRetryable: a known idempotent write, or any read (by Moodle's naming,
// functions that read have "_get_" in their name).
func isRetryable(function string) bool {
	return retryable[function] || strings.Contains(function, "_get_")
}

// Call invokes function with params and decodes the answer into out (any
// json.Unmarshal target; *json.RawMessage keeps it as sent; nil discards
// it). The answer is checked whatever the HTTP status: a Moodle exception
// is an *Error, a failure worth retrying a *TransientError. Reads and
// idempotent writes are retried with backoff; other writes are sent once.
// Call refuses a request with more form variables than the client's max
// input vars; the typed methods split such requests themselves.
func (c *Client) Call(ctx context.Context, function string, params Params, out any) error {
	f := newForm(c.token, function)
	if err := f.params(params); err != nil {
		return fmt.Errorf("calling %s: %w", function, err)
	}
	if f.vars > c.maxVars {
		return fmt.Errorf("calling %s: %d form variables exceed max input vars %d (PHP would drop the rest silently); split the request",
			function, f.vars, c.maxVars)
	}
	body, err := c.do(ctx, function, f, isRetryable(function))
	if err != nil {
		return err
	}
	return decodeInto(function, body, out)
}

func decodeInto(function string, body []byte, out any) error {
	switch o := out.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		*o = body
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the answer of %s: %w", function, err)
	}
	return nil
}

// do sends one request, retrying transient failures when retry is set,
// and returns the checked body.
func (c *Client) do(ctx context.Context, function string, f *form, retry bool) ([]byte, error) {
	var body []byte
	err := c.retrying(ctx, function, retry, func() (err error) {
		body, err = c.once(ctx, function, f)
		return err
	})
	return body, err
}

// retrying runs attempt until it succeeds or fails other than with a
// *TransientError, up to c.retries more times when retry is set, waiting
// backoffFor between tries.
func (c *Client) retrying(ctx context.Context, function string, retry bool, attempt func() error) error {
	attempts := 1
	if retry {
		attempts += c.retries
	}
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		var te *TransientError
		if !errors.As(err, &te) || n >= attempts || ctx.Err() != nil {
			return err
		}
		wait := c.backoffFor(n, te.RetryAfter)
		c.log.LogAttrs(ctx, slog.LevelWarn, "retrying a Moodle request",
			slog.String("instance", c.name), slog.String("function", function),
			slog.Int("attempt", n), slog.Duration("wait", wait), slog.String("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("calling %s: %w (after: %v)", function, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoffFor doubles the delay per attempt, with jitter over its upper
// half, and honours a server's Retry-After up to two minutes.
func (c *Client) backoffFor(attempt int, retryAfter time.Duration) time.Duration {
	d := c.backoff << (attempt - 1)
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, 2*time.Minute)
	}
	return d
}

// once sends one HTTP request under the concurrency cap and checks the
// answer.
func (c *Client) once(ctx context.Context, function string, f *form) ([]byte, error) {
	if err := c.acquire(ctx, function); err != nil {
		return nil, err
	}
	defer c.release()
	start := time.Now()
	resp, err := c.http.R().
		SetContext(ctx).
		SetHeader("Content-Type", "application/x-www-form-urlencoded").
		SetBody(f.b).
		Post(c.endpoint)
	d := time.Since(start)
	if resp != nil && resp.Request != nil && !resp.Request.Time.IsZero() && !resp.ReceivedAt().IsZero() {
		d = resp.Time() // leaves out the wait for the rate limiter
	}
	body, outcome, err := c.check(ctx, function, resp, err)
	c.observe(function, outcome, d)
	status := 0
	if resp != nil {
		status = resp.StatusCode()
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "moodle request",
		slog.String("instance", c.name), slog.String("function", function), slog.Int("vars", f.vars),
		slog.Int("status", status), slog.String("outcome", outcome), slog.Duration("duration", d), slog.Int("bytes", len(body)))
	return body, err
}

// acquire takes one of the concurrency cap's slots (release gives it
// back), or fails when ctx ends first.
func (c *Client) acquire(ctx context.Context, function string) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		c.observe(function, OutcomeCanceled, 0)
		return fmt.Errorf("calling %s: %w", function, ctx.Err())
	}
}

func (c *Client) release() { <-c.sem }

func (c *Client) observe(function, outcome string, d time.Duration) {
	if c.obs != nil {
		c.obs.RequestObserved(c.name, function, outcome, d)
	}
}

// check turns a response into a body or an error, and names the outcome.
func (c *Client) check(ctx context.Context, function string, resp *resty.Response, err error) ([]byte, string, error) {
	if err != nil {
		outcome, err := c.failed(ctx, function, err)
		return nil, outcome, err
	}
	status := resp.StatusCode()
	body := resp.Body()
	if outcome, err := c.checkStatus(function, status, resp.Header(), body); err != nil {
		return nil, outcome, err
	}
	body = bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(body) == 0 {
		return nil, OutcomeTransient, c.transient(function, status, "empty body", 0, nil)
	}
	if body[0] == '<' {
		return nil, OutcomeTransient, c.transient(function, status, "body is not JSON"+describe(body), 0, nil)
	}
	if me := c.exception(function, body); me != nil {
		return nil, OutcomeMoodleError, me
	}
	if !json.Valid(body) {
		return nil, OutcomeTransient, c.transient(function, status, fmt.Sprintf("body is not complete JSON (%d bytes)", len(body)), 0, nil)
	}
	return body, OutcomeOK, nil
}

// failed names a request that got no response.
func (c *Client) failed(ctx context.Context, function string, err error) (string, error) {
	if ctx.Err() != nil {
		return OutcomeCanceled, fmt.Errorf("calling %s: %w", function, ctx.Err())
	}
	var le limiterError
	if errors.As(err, &le) {
		return OutcomeCanceled, fmt.Errorf("calling %s: %w", function, le)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return OutcomeTimeout, c.transient(function, 0, fmt.Sprintf("no answer within %s", c.timeout), 0, err)
	}
	return OutcomeTransient, c.transient(function, 0, "connection failed", 0, err)
}

// checkStatus turns an HTTP status other than 2xx into an error; body is
// the answer, or its start, for describing an error page.
func (c *Client) checkStatus(function string, status int, h http.Header, body []byte) (string, error) {
	switch {
	case status == http.StatusTooManyRequests:
		return OutcomeThrottled, c.transient(function, status, "HTTP 429 (throttled)", retryAfter(h), nil)
	case status == http.StatusRequestTimeout || status >= 500:
		return OutcomeTransient, c.transient(function, status, fmt.Sprintf("HTTP %d%s", status, describe(body)), retryAfter(h), nil)
	case status >= 300 && status < 400:
		loc := c.redact(h.Get("Location"))
		return OutcomeHTTPError, &StatusError{Function: function, Status: status, Location: loc,
			msg: c.redact(fmt.Sprintf("calling %s: HTTP %d redirect to %q: configure the URL Moodle answers at", function, status, loc))}
	case status < 200 || status >= 300:
		return OutcomeHTTPError, &StatusError{Function: function, Status: status,
			msg: c.redact(fmt.Sprintf("calling %s: HTTP %d%s from %s", function, status, describe(body), c.endpoint))}
	}
	return OutcomeOK, nil
}

// exception decodes Moodle's error object, if body is one. Moodle writes
// "exception" first; a small object is also checked for it anywhere at
// its top level, which costs nothing on large answers.
func (c *Client) exception(function string, body []byte) *Error {
	if body[0] != '{' || (!bytes.HasPrefix(body, []byte(`{"exception"`)) && len(body) > 64<<10) {
		return nil
	}
	var e struct {
		Exception *string `json:"exception"`
		ErrorCode string  `json:"errorcode"`
		Message   string  `json:"message"`
		DebugInfo string  `json:"debuginfo"`
	}
	if json.Unmarshal(body, &e) != nil || e.Exception == nil {
		return nil
	}
	return &Error{Function: function, Exception: *e.Exception, ErrorCode: e.ErrorCode,
		Message: c.redact(e.Message), DebugInfo: c.redact(e.DebugInfo), Kind: classify(e.ErrorCode, e.Message)}
}

func (c *Client) transient(function string, status int, reason string, after time.Duration, err error) *TransientError {
	msg := "calling " + function + ": " + reason
	if err != nil {
		msg += ": " + err.Error()
	}
	return &TransientError{Function: function, Status: status, Reason: reason, RetryAfter: after, Err: err,
		msg: c.redact(msg)}
}

// describe names what an unexpected body looks like, for errors.
func describe(body []byte) string {
	b := bytes.TrimSpace(body)
	switch {
	case len(b) == 0:
		return ""
	case bytes.HasPrefix(b, []byte("<")):
		if i := bytes.Index(b, []byte("<title>")); i >= 0 {
			if j := bytes.Index(b[i:], []byte("</title>")); j > 0 {
				return fmt.Sprintf(" (HTML page %q)", b[i+7:i+j])
			}
		}
		return " (HTML page)"
	}
	return ""
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
