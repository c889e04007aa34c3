package moodletest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Endpoint is the path of Moodle's REST server, relative to the site URL.
const Endpoint = "/webservice/rest/server.php"

// Token is a web-service token and what it may do.
type Token struct {
	Token string
	// UserID is the web-service user; 0 means the site administrator. Any
	// other user has only the capabilities their course roles give
	// (students may view participants; teachers also grades; editing
	// teachers and managers also manage groups and enrol) and can reach
	// only courses they are enrolled in.
	UserID int64
	// Functions are the functions of the token's external service; nil
	// means every function the simulator answers.
	Functions []string
	// Capabilities, when not nil, are those of a role the web-service user
	// holds at system context, the way a site sets up an integration's
	// account (WebServiceRole is the one MIM asks for): they reach every
	// course and user, on top of the user's own course roles, and decide
	// which users and fields every function shows.
	Capabilities []string
}

// Exception is a Moodle error a Fault makes the site answer with.
type Exception struct {
	Class     string // e.g. core\exception\moodle_exception
	ErrorCode string // empty for PHP errors, which have none
	Message   string
	DebugInfo string
}

// Fault is a misbehaviour the site shows on some calls. A call matches
// when Function is empty or names it; the first matching fault that is
// still due fires.
type Fault struct {
	Function string
	// Skip lets this many matching calls through before the fault fires:
	// "an error on the Nth call" is Skip: N-1, Times: 1.
	Skip int
	// Times is how many calls the fault hits; 0 means every one after Skip.
	Times int
	// Latency delays the answer (on top of the site's latency).
	Latency time.Duration
	// Status answers with this HTTP status and Body instead of Moodle:
	// 500, 503, 502/504 from a proxy, 429 from a throttling layer.
	Status int
	// Body is sent with Status; empty means the page a proxy sends for
	// it. A Body with Status 0 is sent with status 200, as a PHP fatal
	// error or a maintenance page is.
	Body string
	// Hang holds the request until the client gives up or the site closes.
	Hang bool
	// Truncate cuts Moodle's real answer after this many bytes, as a
	// dropped connection does.
	Truncate int
	// Exception makes Moodle answer HTTP 200 with this error.
	Exception *Exception
}

type faultState struct {
	Fault
	seen, fired int
}

// Request describes one request the site received, for tests.
type Request struct {
	Function string
	Vars     int // form variables received (query and body)
	Dropped  int // variables PHP dropped beyond max_input_vars
	Status   int // HTTP status answered
	Faulted  bool
}

// DefaultToken returns the site administrator's token.
func (s *Site) Token() string {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	return s.cfg.adminToken
}

// AddToken registers another token, e.g. one whose service lacks some
// functions or that belongs to a student.
func (s *Site) AddToken(t Token) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	cp := t
	cp.Functions = slices.Clone(t.Functions)
	cp.Capabilities = slices.Clone(t.Capabilities)
	s.cfg.tokens[t.Token] = &cp
}

// SetSiteURL changes the siteurl the site reports (see WithSiteURL).
func (s *Site) SetSiteURL(u string) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.siteURL = strings.TrimRight(u, "/")
}

// SetDebug switches debuginfo in errors on or off.
func (s *Site) SetDebug(on bool) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.debug = on
}

// SetMaxInputVars changes PHP's max_input_vars (see WithMaxInputVars).
func (s *Site) SetMaxInputVars(n int) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.maxInputVars = n
}

// SetLatency delays every answer by d.
func (s *Site) SetLatency(d time.Duration) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.latency = d
}

// SetThrottle makes the site answer 429 Too Many Requests (Retry-After: 1)
// to requests beyond perSecond with the given burst, as a cloud load
// balancer in front of Moodle does; perSecond <= 0 switches it off.
func (s *Site) SetThrottle(perSecond float64, burst int) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	if perSecond <= 0 {
		s.cfg.throttle = nil
		return
	}
	s.cfg.throttle = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// Inject adds a fault.
func (s *Site) Inject(f Fault) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.faults = append(s.cfg.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault, the throttle and the site latency.
func (s *Site) ClearFaults() {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.faults = nil
	s.cfg.throttle = nil
	s.cfg.latency = 0
}

// OnRequest calls fn after each request is answered (or abandoned).
func (s *Site) OnRequest(fn func(Request)) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.onRequest = fn
}

// Calls returns how many requests named function; "" counts all of them.
func (s *Site) Calls(function string) int {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	if function == "" {
		return s.cfg.total
	}
	return s.cfg.calls[function]
}

// SiteURL returns the siteurl the site reports.
func (s *Site) SiteURL() string {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	if s.cfg.siteURL != "" {
		return s.cfg.siteURL
	}
	return s.cfg.baseURL
}

// URL returns where the site listens once started ("" before).
func (s *Site) URL() string {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	return s.cfg.baseURL
}

// server is how the site listens: an httptest server in tests, a plain
// http.Server on a loopback port for `mim demo`.
type server struct {
	once sync.Once
	done chan struct{}
	http *http.Server
	test *httptest.Server
}

var errStarted = errors.New("moodletest: site already started")

// Start listens on a random loopback port.
func (s *Site) Start() error { return s.StartAt("127.0.0.1:0") }

// StartAt listens on addr (host:port).
func (s *Site) StartAt(addr string) error {
	s.cfg.mu.Lock()
	if s.cfg.baseURL != "" {
		s.cfg.mu.Unlock()
		return errStarted
	}
	s.cfg.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.setServer(&server{done: make(chan struct{}), http: srv}, "http://"+ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// TB is the part of testing.TB NewServer uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// NewServer builds a site from st and serves it with httptest until the
// test ends.
func NewServer(t TB, st State, opts ...Option) *Site {
	t.Helper()
	s, err := New(st, opts...)
	if err != nil {
		t.Fatalf("moodletest: %v", err)
	}
	ts := httptest.NewUnstartedServer(s)
	srv := &server{done: make(chan struct{}), test: ts}
	s.setServer(srv, "")
	ts.Start()
	s.cfg.mu.Lock()
	s.cfg.baseURL = ts.URL
	s.cfg.mu.Unlock()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (s *Site) setServer(srv *server, url string) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.srv = srv
	if url != "" {
		s.cfg.baseURL = url
	}
}

func (s *Site) srv() *server {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	return s.cfg.srv
}

// Close stops the server, releasing hung requests first.
func (s *Site) Close() error {
	srv := s.srv()
	if srv == nil {
		return nil
	}
	var err error
	srv.once.Do(func() {
		close(srv.done)
		if srv.test != nil {
			srv.test.Close()
		}
		if srv.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = srv.http.Shutdown(ctx)
		}
	})
	return err
}

func (s *Site) doneCh() <-chan struct{} {
	if srv := s.srv(); srv != nil {
		return srv.done
	}
	return nil
}

// Mount serves h for the paths that start with prefix on the site's own
// address: pages of Moodle beside its web services, such as the LTI
// platform's (internal/lti/ltitest), so that one URL is the whole site.
func (s *Site) Mount(prefix string, h http.Handler) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.mounts = append(s.cfg.mounts, mount{prefix: prefix, h: h})
}

// ServeHTTP answers Moodle's REST protocol at Endpoint, GET or POST, and
// the paths handlers are mounted at.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cfg.mu.Lock()
	mounts := s.cfg.mounts
	s.cfg.mu.Unlock()
	for _, m := range mounts {
		if strings.HasPrefix(r.URL.Path, m.prefix) {
			m.h.ServeHTTP(w, r)
			return
		}
	}
	if r.URL.Path != Endpoint {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>\n")
		return
	}
	if s.wrongHost(w, r) {
		return
	}
	getVars := parseForm(r.URL.RawQuery)
	var postVars []formVar
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
		if err != nil {
			return
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "" || ct == "application/x-www-form-urlencoded" {
			postVars = parseForm(string(body))
		}
	}
	s.cfg.mu.Lock()
	maxVars := s.cfg.maxInputVars
	s.cfg.mu.Unlock()
	req := Request{Vars: len(getVars) + len(postVars)}
	// PHP parses the query and the body separately and keeps, of each,
	// max_input_vars + 1 variables (PHP 8.2, as recorded): the rest is
	// dropped with nothing but a warning in the server's log.
	if maxVars > 0 {
		if keep := maxVars + 1; len(getVars) > keep {
			req.Dropped += len(getVars) - keep
			getVars = getVars[:keep]
		}
		if keep := maxVars + 1; len(postVars) > keep {
			req.Dropped += len(postVars) - keep
			postVars = postVars[:keep]
		}
	}
	vars := append(getVars, postVars...)
	for _, v := range vars {
		if v.name == "wsfunction" {
			req.Function = v.value
		}
	}
	fault, latency, throttled := s.admit(req.Function)
	req.Faulted = fault != nil
	defer func() {
		s.cfg.mu.Lock()
		fn := s.cfg.onRequest
		s.cfg.mu.Unlock()
		if fn != nil {
			fn(req)
		}
	}()
	if latency > 0 && !s.sleep(r.Context(), latency) {
		return
	}
	if throttled {
		req.Status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, proxyPage(http.StatusTooManyRequests))
		return
	}
	if fault != nil {
		switch {
		case fault.Hang:
			select {
			case <-r.Context().Done():
			case <-s.doneCh():
			}
			return
		case fault.Status != 0 || fault.Body != "":
			status := fault.Status
			if status == 0 {
				status = http.StatusOK
			}
			body := fault.Body
			if body == "" {
				body = proxyPage(status)
			}
			req.Status = status
			w.Header().Set("Content-Type", "text/html")
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	ctype, body := s.answer(vars, fault)
	if fault != nil && fault.Truncate > 0 && fault.Truncate < len(body) {
		body = body[:fault.Truncate]
	}
	req.Status = http.StatusOK
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "private, must-revalidate, pre-check=0, post-check=0, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Accept-Ranges", "none")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// admit counts the call and decides which fault, latency and throttling
// apply to it.
func (s *Site) admit(function string) (*faultState, time.Duration, bool) {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	s.cfg.total++
	if function != "" {
		s.cfg.calls[function]++
	}
	latency := s.cfg.latency
	var hit *faultState
	for _, fs := range s.cfg.faults {
		if fs.Function != "" && fs.Function != function {
			continue
		}
		fs.seen++
		if hit != nil || fs.seen <= fs.Skip || (fs.Times > 0 && fs.fired >= fs.Times) {
			continue
		}
		fs.fired++
		hit = fs
	}
	if hit != nil {
		latency += hit.Latency
	}
	throttled := s.cfg.throttle != nil && !s.cfg.throttle.Allow()
	return hit, latency, throttled
}

func (s *Site) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.doneCh():
		return false
	}
}

// proxyPage is what nginx or a load balancer sends for status.
func proxyPage(status int) string {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	return "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// control are the request variables server.php consumes itself.
var control = []string{"wstoken", "wsfunction", "moodlewsrestformat",
	"moodlewssettingfilter", "moodlewssettingfileurl", "moodlewssettinglang", "moodlewssettingtimezone"}

// answer runs one call and returns Moodle's body for it.
func (s *Site) answer(vars []formVar, fault *faultState) (string, []byte) {
	params := buildParams(vars)
	ctl := map[string]string{}
	for _, k := range control {
		if v, ok := params.get(k); ok {
			if str, isStr := v.(string); isStr {
				ctl[k] = str
			}
			params.del(k)
		}
	}
	asJSON := ctl["moodlewsrestformat"] == "json"
	s.cfg.mu.Lock()
	debug := s.cfg.debug
	tok := s.cfg.tokens[ctl["wstoken"]]
	siteURL := s.cfg.siteURL
	if siteURL == "" {
		siteURL = s.cfg.baseURL
	}
	s.cfg.mu.Unlock()

	var buf bytes.Buffer
	var e enc
	if asJSON {
		e = newJSONEnc(&buf)
	} else {
		buf.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n")
		e = &xmlEnc{b: &buf}
	}
	ex := func() *exception {
		if fault != nil && fault.Exception != nil {
			x := fault.Exception
			return &exception{x.Class, x.ErrorCode, x.Message, x.DebugInfo}
		}
		if tok == nil {
			return moodleException("invalidtoken", "Invalid token - token not found")
		}
		name := ctl["wsfunction"]
		if name == "" {
			return invalidParam("Missing function name")
		}
		fn := functions[name]
		if fn == nil && !unsimulated[name] {
			return missingRecord("external_functions", "SELECT * FROM {external_functions} WHERE name = ?", name)
		}
		if tok.Functions != nil && !slices.Contains(tok.Functions, name) || tok.Functions == nil && fn == nil {
			return accessException(name)
		}
		if fn == nil {
			return codingError("function not simulated", name+" exists in Moodle but moodletest does not answer it")
		}
		a, ex := validate(fn.params, params)
		if ex != nil {
			return ex
		}
		return s.run(fn, args(a.(map[string]any)), tok, out{e}, siteURL)
	}()
	if ex != nil {
		return exceptionBody(ex, asJSON, debug)
	}
	if asJSON {
		if buf.Len() == 0 {
			buf.WriteString("null")
		}
		return "application/json", buf.Bytes()
	}
	buf.WriteString("</RESPONSE>\n")
	return "application/xml; charset=utf-8", buf.Bytes()
}

func accessException(function string) *exception {
	return &exception{"webservice_access_exception", "accessexception", "Access control exception",
		"Access to the function " + function + "() is not allowed.\n" + `                     There could be multiple reasons for this:
                     1. The service linked to the user token does not contain the function.
                     2. The service is user-restricted and the user is not listed.
                     3. The service is IP-restricted and the user IP is not listed.
                     4. The service is time-restricted and the time has expired.
                     5. The token is time-restricted and the time has expired.
                     6. The service requires a specific capability which the user does not have.
                     7. The function is called with username/password (no user token is sent)
                     and none of the services has the function to allow the user.
                     These settings can be found in Administration > Site administration
                     > Server > Web services > External services and Manage tokens.`}
}

// exceptionBody writes an error the way server.php does for each format.
func exceptionBody(ex *exception, asJSON, debug bool) (string, []byte) {
	var b bytes.Buffer
	if asJSON {
		b.WriteString(`{"exception":`)
		phpString(&b, ex.class)
		if ex.errorcode != "" {
			b.WriteString(`,"errorcode":`)
			phpString(&b, ex.errorcode)
		}
		b.WriteString(`,"message":`)
		phpString(&b, ex.message)
		if debug && ex.debuginfo != "" {
			b.WriteString(`,"debuginfo":`)
			phpString(&b, ex.debuginfo)
		}
		b.WriteByte('}')
		return "application/json", b.Bytes()
	}
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"")
	b.WriteString(ex.class)
	b.WriteString("\">\n<ERRORCODE>")
	b.WriteString(xmlEscape(ex.errorcode))
	b.WriteString("</ERRORCODE>\n<MESSAGE>")
	b.WriteString(xmlEscape(ex.message))
	b.WriteString("</MESSAGE>\n")
	if debug && ex.debuginfo != "" {
		b.WriteString("<DEBUGINFO>")
		b.WriteString(xmlEscape(ex.debuginfo))
		b.WriteString("</DEBUGINFO>\n")
	}
	b.WriteString("</EXCEPTION>\n")
	return "application/xml; charset=utf-8", b.Bytes()
}

// call is one running web-service function.
type call struct {
	s       *Site
	a       args
	o       out
	tok     *Token
	admin   bool
	caps    map[string]bool // the token's system role; nil without one
	user    *User           // the web-service user, if it is an account of the site
	now     int64
	siteURL string
	undo    []func()
}

func (c *call) onUndo(f func()) { c.undo = append(c.undo, f) }

// run executes fn under the site's lock: shared for reads, exclusive for
// writes, whose changes are rolled back if fn fails part-way.
func (s *Site) run(fn *function, a args, tok *Token, o out, siteURL string) *exception {
	if fn.write {
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	c := &call{s: s, a: a, o: o, tok: tok, now: s.now().Unix(), siteURL: siteURL}
	if tok.UserID == 0 {
		c.admin = true
		if id, ok := s.userByName["admin"]; ok {
			c.user = s.users[id]
		}
	} else {
		c.user = s.users[tok.UserID]
		c.admin = c.user != nil && c.user.Username == "admin"
		if c.user == nil {
			return moodleException("invalidtoken", "Invalid token - token not found")
		}
		if tok.Capabilities != nil && !c.admin {
			c.caps = map[string]bool{}
			for _, cp := range tok.Capabilities {
				c.caps[cp] = true
			}
			// Checked by the web-service layer before any function runs.
			if !c.caps[CapRestUse] {
				return &exception{"webservice_access_exception", "accessexception", "Access control exception",
					"You are not allowed to use the rest protocol (missing capability: webservice/rest:use)"}
			}
		}
	}
	ex := fn.run(c)
	if ex != nil {
		for i := len(c.undo) - 1; i >= 0; i-- {
			c.undo[i]()
		}
	}
	return ex
}
