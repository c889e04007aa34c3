// Package ckantest is a small CKAN action API in memory, for tests: it
// answers package_show, package_create and package_patch the way CKAN 2.10
// does (the {"success", "result"|"error"} envelope, 404 for a missing
// dataset, 403 without the right API token, 409 for a validation error),
// and keeps every dataset and request for the test to inspect.
package ckantest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
)

// Server is the fake CKAN.
type Server struct {
	*httptest.Server
	Token string // the API token it accepts

	mu       sync.Mutex
	datasets map[string]map[string]any // by name
	requests []Request
	orgs     map[string]bool
}

// Request is one call the fake received.
type Request struct {
	Action        string
	Authorization string
	Body          map[string]any
}

// New starts a fake CKAN accepting token, with the organisations orgs.
func New(token string, orgs ...string) *Server {
	s := &Server{Token: token, datasets: map[string]map[string]any{}, orgs: map[string]bool{}}
	for _, o := range orgs {
		s.orgs[o] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/3/action/{action}", s.handle)
	s.Server = httptest.NewServer(mux)
	return s
}

// Dataset returns a copy of the dataset called name.
func (s *Server) Dataset(name string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.datasets[name]
	if !ok {
		return nil, false
	}
	b, _ := json.Marshal(d)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c, true
}

// Names lists the datasets' names.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.datasets {
		out = append(out, n)
	}
	return out
}

// Requests returns the calls received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

var ckanName = regexp.MustCompile(`^[a-z0-9_-]{2,100}$`)

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fail(w, 400, "Validation Error", map[string]any{"message": "JSON Error: " + err.Error()})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Action: action, Authorization: r.Header.Get("Authorization"), Body: body})
	writes := action == "package_create" || action == "package_patch"
	if writes && r.Header.Get("Authorization") != s.Token {
		fail(w, 403, "Authorization Error", map[string]any{"message": "Access denied: User  not authorized to edit these packages"})
		return
	}
	switch action {
	case "package_show":
		d, ok := s.find(r.URL.Query().Get("id"))
		if !ok {
			fail(w, 404, "Not Found Error", map[string]any{"message": "Not found"})
			return
		}
		ok200(w, d)
	case "package_create":
		name, _ := body["name"].(string)
		if problems := s.validate(body); len(problems) > 0 {
			fail(w, 409, "Validation Error", problems)
			return
		}
		if _, dup := s.datasets[name]; dup {
			fail(w, 409, "Validation Error", map[string]any{"name": []string{"That URL is already in use."}})
			return
		}
		body["id"] = newID()
		assignResourceIDs(body)
		s.datasets[name] = body
		ok200(w, body)
	case "package_patch":
		id, _ := body["id"].(string)
		d, ok := s.find(id)
		if !ok {
			fail(w, 404, "Not Found Error", map[string]any{"message": "Not found"})
			return
		}
		merged := map[string]any{}
		for k, v := range d {
			merged[k] = v
		}
		for k, v := range body {
			merged[k] = v
		}
		if problems := s.validate(merged); len(problems) > 0 {
			fail(w, 409, "Validation Error", problems)
			return
		}
		assignResourceIDs(merged)
		delete(s.datasets, d["name"].(string))
		s.datasets[merged["name"].(string)] = merged
		ok200(w, merged)
	default:
		fail(w, 400, "Bad request", map[string]any{"message": "Bad request - Action name not known: " + action})
	}
}

func (s *Server) find(id string) (map[string]any, bool) {
	if d, ok := s.datasets[id]; ok {
		return d, true
	}
	for _, d := range s.datasets {
		if d["id"] == id {
			return d, true
		}
	}
	return nil, false
}

func (s *Server) validate(d map[string]any) map[string]any {
	problems := map[string]any{}
	if name, _ := d["name"].(string); !ckanName.MatchString(name) {
		problems["name"] = []string{"Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"}
	}
	if org, _ := d["owner_org"].(string); !s.orgs[org] {
		problems["owner_org"] = []string{"Organization does not exist"}
	}
	return problems
}

// assignResourceIDs gives new resources an id, as CKAN does.
func assignResourceIDs(d map[string]any) {
	rs, _ := d["resources"].([]any)
	for _, r := range rs {
		if m, ok := r.(map[string]any); ok {
			if id, _ := m["id"].(string); id == "" {
				m["id"] = newID()
			}
		}
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ok200(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"help": "fake", "success": true, "result": result})
}

func fail(w http.ResponseWriter, status int, typ string, detail map[string]any) {
	detail["__type"] = typ
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"help": "fake", "success": false, "error": detail})
}
