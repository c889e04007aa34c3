// Package catalog publishes the marts' descriptions to a CKAN data catalog:
// one dataset per mart, holding its description, its column schema and its
// row count (never its rows), created or updated through CKAN's action API
// (package_show, then package_create or package_patch). The API key travels
// only in the Authorization header and never appears in an error or a log.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/secret"
)

// Package is the part of a CKAN dataset MIM writes and reads.
type Package struct {
	ID        string     `json:"id,omitempty"`
	Name      string     `json:"name"`
	Title     string     `json:"title,omitempty"`
	Notes     string     `json:"notes,omitempty"`
	OwnerOrg  string     `json:"owner_org,omitempty"`
	Private   bool       `json:"private"`
	Tags      []Tag      `json:"tags,omitempty"`
	Extras    []Extra    `json:"extras,omitempty"`
	Resources []Resource `json:"resources,omitempty"`
}

// Tag is a dataset tag.
type Tag struct {
	Name string `json:"name"`
}

// Extra is a free key/value of a dataset.
type Extra struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Resource is one resource of a dataset. RowCount and Schema are resource
// extras: CKAN keeps keys it does not know.
type Resource struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Format      string `json:"format,omitempty"`
	URL         string `json:"url"`
	RowCount    *int64 `json:"row_count,omitempty"`
	// Schema is a Frictionless Table Schema, as a JSON string (how CKAN
	// extensions such as ckanext-validation expect it).
	Schema string `json:"schema,omitempty"`
}

// Client calls one CKAN site's action API.
type Client struct {
	base   *url.URL
	apiKey secret.Secret
	http   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (default: 30-second timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// NewClient returns a client for the CKAN at baseURL (https://data.example.ac.uk).
func NewClient(baseURL string, apiKey secret.Secret, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("catalog.url %q is not an http(s) URL", baseURL)
	}
	c := &Client{base: u, apiKey: apiKey, http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// APIError is CKAN's answer {"success": false, "error": {...}}.
type APIError struct {
	Action string
	Status int    // HTTP status
	Type   string // CKAN's __type: "Not Found Error", "Validation Error", "Authorization Error"
	// Message is CKAN's message, or its validation errors by field.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("CKAN %s: %s (HTTP %d): %s", e.Action, e.Type, e.Status, e.Message)
}

// NotFound says whether CKAN answered that the object does not exist.
func (e *APIError) NotFound() bool {
	return e.Type == "Not Found Error" || e.Status == http.StatusNotFound
}

// IsNotFound reports whether err is CKAN's "Not Found Error".
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.NotFound()
}

// PackageShow reads a dataset by name or id; a missing one is an
// *APIError for which IsNotFound is true.
func (c *Client) PackageShow(ctx context.Context, id string) (*Package, error) {
	var p Package
	if err := c.call(ctx, http.MethodGet, "package_show", url.Values{"id": {id}}, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// PackageCreate creates a dataset.
func (c *Client) PackageCreate(ctx context.Context, p *Package) (*Package, error) {
	var out Package
	if err := c.call(ctx, http.MethodPost, "package_create", nil, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PackagePatch changes the fields p sets on the dataset p.ID and leaves
// the others (Resources, when given, replace the dataset's resources).
func (c *Client) PackagePatch(ctx context.Context, p *Package) (*Package, error) {
	if p.ID == "" {
		return nil, errors.New("CKAN package_patch: the dataset id is required")
	}
	var out Package
	if err := c.call(ctx, http.MethodPost, "package_patch", nil, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 16 << 20

func (c *Client) call(ctx context.Context, method, action string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += "/api/3/action/" + action
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("CKAN %s: encoding the request: %w", action, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("CKAN %s: %w", action, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.apiKey.IsZero() {
		req.Header.Set("Authorization", c.apiKey.Reveal())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error carries the URL, which never holds the key.
		return fmt.Errorf("CKAN %s: %w", action, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("CKAN %s: reading the answer: %w", action, err)
	}
	var env struct {
		Success bool            `json:"success"`
		Result  json.RawMessage `json:"result"`
		Error   map[string]any  `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("CKAN %s: HTTP %d with an answer that is not CKAN's JSON: %.200q", action, resp.StatusCode, raw)
	}
	if !env.Success {
		ae := &APIError{Action: action, Status: resp.StatusCode}
		ae.Type, _ = env.Error["__type"].(string)
		if m, ok := env.Error["message"].(string); ok {
			ae.Message = m
		} else {
			var parts []string
			for k, v := range env.Error {
				if k != "__type" {
					parts = append(parts, fmt.Sprintf("%s: %v", k, v))
				}
			}
			sort.Strings(parts)
			ae.Message = strings.Join(parts, "; ")
		}
		return ae
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CKAN %s: HTTP %d", action, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return fmt.Errorf("CKAN %s: decoding the result: %w", action, err)
		}
	}
	return nil
}
