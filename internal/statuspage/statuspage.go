// Package statuspage is the status page `mim serve` and `mim demo --serve`
// show: the last runs with their steps, guard decisions and the override
// state, drift per site, held courses, the schedule and whether mim pause
// holds it, and small charts of
// counts over time. It is rendered on the server as one HTML page with
// inline CSS and SVG, so it needs nothing from the network to display.
package statuspage

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Options say what the page shows besides the warehouse.
type Options struct {
	// Environment and Version describe the running mim.
	Environment, Version string
	// Upcoming, if set, lists the scheduled jobs' next times.
	Upcoming func() []schedule.Upcoming
	// Pending, if set, lists per site and feed the changes sent to Moodle
	// in files that no extract has shown applied yet (feeds.PendingReport).
	Pending func(ctx context.Context) ([]Pending, error)
	// Runs is how many recent runs are listed (default 15), ExpandedRuns
	// how many of them show their steps (default 3).
	Runs, ExpandedRuns int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Pending is one site's feed's changes Moodle has not been seen to apply.
type Pending struct {
	Instance, Feed string
	Count          int64 // not seen applied yet
	Long           int64 // not shown by Nights extracts or more
	Nights         int
	Oldest         time.Time // when the oldest long one was first sent
	Cause          string
	Examples       []string
}

// Handler serves the status page at / and one run's steps at /runs/ID.
type Handler struct {
	pool warehouse.Querier
	opts Options
	now  func() time.Time
	mux  *http.ServeMux
}

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(time.Second).String()
	},
	"steptime": func(s ledger.StepSummary) string {
		if s.Finished == nil {
			return "running"
		}
		return fmt.Sprintf("%.1fs", s.Duration().Seconds())
	},
	"count": func(n int64) string { return progress.Count(n) },
	"str": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"runid": func(id *int64) string {
		if id == nil {
			return ""
		}
		return strconv.FormatInt(*id, 10)
	},
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}).Parse(pageTemplate))

// New returns the status page over the warehouse q.
func New(q warehouse.Querier, opts Options) *Handler {
	if opts.Runs <= 0 {
		opts.Runs = 15
	}
	if opts.ExpandedRuns <= 0 {
		opts.ExpandedRuns = 3
	}
	h := &Handler{pool: q, opts: opts, now: opts.Now}
	if h.now == nil {
		h.now = time.Now
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /runs/{id}", h.run)
	return h
}

// ServeHTTP serves the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	h.render(w, "page", h.load(r.Context()))
}

// runView is the page of one run.
type runView struct {
	Title  string
	Now    time.Time
	Run    Section[*ledger.RunSummary]
	Steps  Section[[]ledger.StepSummary]
	Guards Section[[]guardRow]
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such run", http.StatusNotFound)
		return
	}
	ctx := r.Context()
	v := &runView{Title: fmt.Sprintf("MIM run %d", id), Now: h.now()}
	rs, err := ledger.RunByID(ctx, h.pool, id)
	if err != nil {
		http.Error(w, fmt.Sprintf("run %d: not found", id), http.StatusNotFound)
		return
	}
	v.Run = section(&rs, nil)
	v.Steps = section(ledger.Steps(ctx, h.pool, id))
	v.Guards = section(readGuards(ctx, h.pool, "run_id = $1", 1000, id))
	h.render(w, "run", v)
}

func (h *Handler) render(w http.ResponseWriter, name string, v any) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, v); err != nil {
		http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Everything the page needs is inline; nothing may be fetched.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write(buf.Bytes())
}
